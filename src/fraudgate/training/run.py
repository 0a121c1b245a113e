"""The offline jobs behind `fraudgate simulate`, `train` and the first half of `demo`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fraudgate.data.contract import CREDITCARD_FEATURE_NAMES, FEATURE_NAMES, FEATURE_VERSION
from fraudgate.data.creditcard import CREDITCARD_FEATURE_VERSION, load_creditcard
from fraudgate.data.features import compute_features
from fraudgate.data.simulator import SimulatedData, SimulationConfig, simulate
from fraudgate.registry import Registry
from fraudgate.report.html import write_offline_html
from fraudgate.report.progress import StepProgress
from fraudgate.training.pipeline import OfflineResult, train_and_compare
from fraudgate.training.windows import TrainingPlan, day_index


@dataclass(frozen=True)
class TrainingData:
    features: pd.DataFrame
    start: pd.Timestamp
    plan: TrainingPlan
    summary: dict
    feature_names: tuple[str, ...] = FEATURE_NAMES
    feature_version: str = FEATURE_VERSION


def simulated_training_data(sim: SimulatedData, steps: StepProgress) -> TrainingData:
    with steps.step("computing the 30 causal features"):
        features = compute_features(sim.transactions, sim.customers, sim.terminals)
    plan = TrainingPlan.for_simulation(sim.config.days, sim.config.emerging_day)
    return TrainingData(features, sim.config.start, plan, {"source": "simulator", **sim.summary})


def creditcard_training_data(path: Path) -> TrainingData:
    frame = load_creditcard(path)
    start = frame["timestamp"].min()
    total_days = float(day_index(frame, start).max()) + 1e-6
    summary = {
        "source": str(path),
        "transactions": len(frame),
        "frauds": int(frame["is_fraud"].sum()),
        "fraud_rate": float(frame["is_fraud"].mean()),
    }
    return TrainingData(
        frame,
        start,
        TrainingPlan.chronological(total_days),
        summary,
        CREDITCARD_FEATURE_NAMES,
        CREDITCARD_FEATURE_VERSION,
    )


def train_and_register(
    data: TrainingData,
    registry: Registry,
    workdir: Path,
    steps: StepProgress,
    *,
    seed: int,
    rounds: int | None = None,
) -> OfflineResult:
    """Train v1 and v2, register both (aliases champion/challenger), write offline.json."""
    with steps.step("training and evaluating fraud-v1-baseline and fraud-v2-candidate"):
        result = train_and_compare(
            data.features,
            data.start,
            data.plan,
            seed=seed,
            rounds=rounds,
            data_summary=data.summary,
            feature_names=data.feature_names,
            feature_version=data.feature_version,
            progress=steps.note,
        )
    with steps.step("registering both models in MLflow"):
        sample = data.features.loc[:, list(data.feature_names)].to_numpy("float32")[:2]
        versions = {}
        for key, model in result.models.items():
            versions[key] = registry.register(
                model.fitted.booster,
                serving_name=model.spec.serving_name,
                alias=model.spec.alias,
                threshold=model.threshold.threshold,
                params={
                    **model.fitted.params,
                    "rounds": model.fitted.rounds,
                    "negative_rate": model.fitted.negative_rate,
                    **{f"window_{k}": v for k, v in data.plan.as_dict().items()},
                },
                metrics=model.metrics(),
                figures={"pr_curve_validation": model.figure()},
                sample=sample,
                feature_version=data.feature_version,
                drift_reference=model.reference,
            )
    result.timings.update(steps.timings)
    offline = result.as_dict()
    offline["registry"] = {
        "tracking_uri": registry.tracking_uri,
        "versions": {result.models[k].spec.serving_name: v for k, v in versions.items()},
        "aliases": registry.aliases(),
    }
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "offline.json").write_text(json.dumps(offline, indent=2))
    write_offline_html(
        offline,
        workdir / "offline.html",
        result.holdout_labels,
        {m.spec.serving_name: m.holdout_scores for m in result.models.values()},
    )
    return result


def run_simulation(config: SimulationConfig, out: Path, steps: StepProgress) -> SimulatedData:
    with steps.step(f"simulating {config.days} days of transactions"):
        sim = simulate(config)
    with steps.step(f"writing Parquet to {out}"):
        sim.write(out)
    return sim
