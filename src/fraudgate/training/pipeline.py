"""Train the baseline and the candidate, evaluate both on the shared holdout, compare honestly."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fraudgate.analysis.classification import (
    bootstrap_ranking_metrics,
    confusion_at,
    paired_recall_gap,
)
from fraudgate.analysis.drift import DriftReference, drift_reference
from fraudgate.data.contract import FEATURE_NAMES, FEATURE_VERSION, to_matrix
from fraudgate.training.fit import (
    DEFAULT_ROUNDS,
    MIN_PRECISION,
    FittedModel,
    ThresholdChoice,
    choose_threshold,
    fit_model,
    pr_curve_figure,
)
from fraudgate.training.windows import TrainingPlan, split

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ModelSpec:
    key: str  # "v1" / "v2"
    serving_name: str
    alias: str


MODELS = (
    ModelSpec("v1", "fraud-v1-baseline", "champion"),
    ModelSpec("v2", "fraud-v2-candidate", "challenger"),
)


@dataclass
class TrainedModel:
    spec: ModelSpec
    fitted: FittedModel
    threshold: ThresholdChoice
    validation: tuple[np.ndarray, np.ndarray]  # labels, scores (for the PR-curve plot)
    holdout_scores: np.ndarray
    holdout_report: dict
    seconds: float
    reference: DriftReference | None = None  # training features, validation scores (drift)

    def metrics(self) -> dict[str, float]:
        report = self.holdout_report
        return {
            "valid_precision": self.threshold.precision,
            "valid_recall": self.threshold.recall,
            "threshold": self.threshold.threshold,
            **{f"holdout_{k}": v["estimate"] for k, v in report["metrics"].items()},
        }

    def figure(self):
        y, scores = self.validation
        return pr_curve_figure(y, scores, self.threshold, f"{self.spec.serving_name} (validation)")


@dataclass
class OfflineResult:
    models: dict[str, TrainedModel]
    comparison: dict
    plan: TrainingPlan
    data_summary: dict
    holdout_labels: np.ndarray
    feature_version: str = FEATURE_VERSION
    timings: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "feature_version": self.feature_version,
            "min_precision": MIN_PRECISION,
            "plan_days": self.plan.as_dict(),
            "data": self.data_summary,
            "models": {
                key: {
                    "serving_name": m.spec.serving_name,
                    "alias": m.spec.alias,
                    "threshold": m.threshold.threshold,
                    "validation": {
                        "precision": m.threshold.precision,
                        "recall": m.threshold.recall,
                        "met_precision_target": m.threshold.met_precision_target,
                    },
                    "training_rows": m.fitted.training_rows,
                    "training_frauds": m.fitted.training_frauds,
                    "train_seconds": round(m.seconds, 2),
                    "holdout": m.holdout_report,
                }
                for key, m in self.models.items()
            },
            "comparison": self.comparison,
            "timings_seconds": {k: round(v, 2) for k, v in self.timings.items()},
        }


def evaluate(y: np.ndarray, scores: np.ndarray, threshold: float, scenarios, seed: int) -> dict:
    counts = confusion_at(y, scores, threshold)
    ranking = bootstrap_ranking_metrics(y, scores, threshold, seed=seed)
    report = {
        "confusion": counts.as_dict(),
        "metrics": {
            "precision": counts.precision_interval().as_dict(),
            "recall": counts.recall_interval().as_dict(),
            **{name: interval.as_dict() for name, interval in ranking.items()},
        },
    }
    if scenarios is not None:
        flagged = scores >= threshold
        per = {}
        for name in pd.unique(scenarios[y == 1]):
            mask = (scenarios == name) & (y == 1)
            per[str(name)] = {"frauds": int(mask.sum()), "caught": int(flagged[mask].sum())}
        report["recall_by_scenario"] = per
    return report


def train_and_compare(
    features: pd.DataFrame,
    start: pd.Timestamp,
    plan: TrainingPlan,
    *,
    seed: int,
    rounds: int | None = None,
    data_summary: dict | None = None,
    feature_names: tuple[str, ...] = FEATURE_NAMES,
    feature_version: str = FEATURE_VERSION,
    progress: Progress | None = None,
) -> OfflineResult:
    """Fit v1 and v2 on their windows, pick thresholds on validation, score the shared holdout."""
    say = progress or (lambda _msg: None)
    parts = split(features, plan, start)
    holdout = parts["holdout"]
    x_holdout = to_matrix(holdout, feature_names)
    y_holdout = holdout["is_fraud"].to_numpy().astype(int)
    scenarios = holdout["scenario"].astype(str).to_numpy() if "scenario" in holdout else None
    models: dict[str, TrainedModel] = {}
    for spec in MODELS:
        began = time.perf_counter()
        train, valid = parts[f"{spec.key}_train"], parts[f"{spec.key}_valid"]
        say(f"training {spec.serving_name} on {len(train):,} transactions")
        x_train = to_matrix(train, feature_names)
        fitted = fit_model(
            x_train,
            train["is_fraud"].to_numpy(),
            seed=seed,
            rounds=rounds or DEFAULT_ROUNDS,
        )
        y_valid = valid["is_fraud"].to_numpy().astype(int)
        valid_scores = fitted.predict(to_matrix(valid, feature_names))
        choice = choose_threshold(y_valid, valid_scores)
        say(f"evaluating {spec.serving_name} on the holdout")
        scores = fitted.predict(x_holdout)
        report = evaluate(y_holdout, scores, choice.threshold, scenarios, seed)
        models[spec.key] = TrainedModel(
            spec,
            fitted,
            choice,
            (y_valid, valid_scores),
            scores,
            report,
            time.perf_counter() - began,
            drift_reference(x_train, valid_scores, feature_names, seed=seed),
        )
    comparison = compare(models["v1"], models["v2"], y_holdout, scenarios)
    return OfflineResult(
        models, comparison, plan, data_summary or {}, y_holdout, feature_version=feature_version
    )


def compare(v1: TrainedModel, v2: TrainedModel, y: np.ndarray, scenarios) -> dict:
    """Recall gap of v2 over v1 on the same holdout frauds (paired), overall and per scenario."""
    fraud = y == 1
    caught_v1 = v1.holdout_scores[fraud] >= v1.threshold.threshold
    caught_v2 = v2.holdout_scores[fraud] >= v2.threshold.threshold
    result = {"all_frauds": paired_recall_gap(caught_v1, caught_v2).as_dict()}
    if scenarios is not None:
        for name in pd.unique(scenarios[fraud]):
            mask = scenarios[fraud] == name
            result[str(name)] = paired_recall_gap(caught_v1[mask], caught_v2[mask]).as_dict()
    return result
