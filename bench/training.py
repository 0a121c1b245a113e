"""Offline benchmark: wall time of the default simulate + features + training of both models,
and the model-family evidence (quality on the holdout, single-row predict latency).

    .venv/bin/python bench/training.py [--skip-families]

Writes bench/results/training.json. Target (issue 2): simulate + features + both models < 60 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from fraudgate.data.contract import to_matrix
from fraudgate.data.features import compute_features
from fraudgate.data.simulator import SimulationConfig, simulate
from fraudgate.training.fit import fit_model
from fraudgate.training.windows import TrainingPlan, split

RESULTS = Path(__file__).resolve().parent / "results" / "training.json"
console = Console()


def timed(fn, *args, **kwargs):
    began = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - began


def single_row_latency(predict, rows: np.ndarray, calls: int = 3000) -> dict[str, float]:
    for row in rows[:200]:
        predict(row[None, :])
    samples = np.empty(calls)
    for i in range(calls):
        row = rows[i % len(rows)][None, :]
        began = time.perf_counter_ns()
        predict(row)
        samples[i] = time.perf_counter_ns() - began
    return {
        "p50_us": float(np.median(samples) / 1e3),
        "p99_us": float(np.quantile(samples, 0.99) / 1e3),
    }


def model_families(parts) -> list[dict]:
    """Same windows (v2's), same negative sampling, similar capacity; PR-AUC on the holdout."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import average_precision_score

    train, holdout = parts["v2_train"], parts["holdout"]
    rng = np.random.default_rng(0)
    y = train["is_fraud"].to_numpy()
    keep = (y == 1) | (rng.random(len(y)) < 0.1)
    x, y = to_matrix(train)[keep], y[keep]
    weight = np.where(y == 1, 1.0, 10.0)
    xh, yh = to_matrix(holdout), holdout["is_fraud"].to_numpy()
    rows = xh[:3000]
    results = []

    fitted, seconds = timed(fit_model, to_matrix(train), train["is_fraud"].to_numpy(), seed=0)
    booster = fitted.booster
    results.append(
        {
            "family": "lightgbm",
            "fit_seconds": seconds,
            "holdout_pr_auc": float(average_precision_score(yh, booster.predict(xh))),
            **single_row_latency(lambda r: booster.predict(r, num_threads=1), rows),
        }
    )
    try:
        import xgboost as xgb

        model = xgb.XGBClassifier(
            n_estimators=300,
            max_depth=6,
            learning_rate=0.05,
            subsample=0.8,
            colsample_bytree=0.8,
            tree_method="hist",
            random_state=0,
            n_jobs=os.cpu_count(),
        )
        _, seconds = timed(model.fit, x, y, sample_weight=weight)
        xgb_booster = model.get_booster()
        xgb_booster.set_param({"nthread": 1})
        results.append(
            {
                "family": "xgboost",
                "fit_seconds": seconds,
                "holdout_pr_auc": float(average_precision_score(yh, model.predict_proba(xh)[:, 1])),
                **single_row_latency(lambda r: xgb_booster.inplace_predict(r), rows),
            }
        )
    except ImportError:
        console.print("xgboost not installed; skipped (pip install xgboost-cpu)")
    hist = HistGradientBoostingClassifier(
        max_iter=300, learning_rate=0.05, max_leaf_nodes=31, random_state=0
    )
    _, seconds = timed(hist.fit, x, y, sample_weight=weight)
    results.append(
        {
            "family": "sklearn_hist_gb",
            "fit_seconds": seconds,
            "holdout_pr_auc": float(average_precision_score(yh, hist.predict_proba(xh)[:, 1])),
            **single_row_latency(lambda r: hist.predict_proba(r), rows),
        }
    )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-families", action="store_true")
    args = parser.parse_args()
    cfg = SimulationConfig()
    timings = {}
    sim, timings["simulate"] = timed(simulate, cfg)
    features, timings["features"] = timed(
        compute_features, sim.transactions, sim.customers, sim.terminals
    )
    parts = split(features, TrainingPlan(), cfg.start)
    for key in ("v1", "v2"):
        train = parts[f"{key}_train"]
        _, timings[f"train_{key}"] = timed(
            fit_model, to_matrix(train), train["is_fraud"].to_numpy(), seed=cfg.seed
        )
    total = sum(timings.values())
    table = Table(
        title=f"simulate + features + train both ({len(sim.transactions):,} transactions)"
    )
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    for stage, seconds in timings.items():
        table.add_row(stage, f"{seconds:.1f}")
    table.add_row("[bold]total[/] (target < 60 s)", f"[bold]{total:.1f}")
    console.print(table)
    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "transactions": len(sim.transactions),
        "stage_seconds": timings,
        "total_seconds": total,
        "target_met": total < 60,
    }
    if not args.skip_families:
        families = model_families(parts)
        fam = Table(title="Model family evidence (v2 windows, holdout PR-AUC, 1-row predict)")
        for column in ("family", "fit s", "holdout PR-AUC", "1-row p50 µs", "1-row p99 µs"):
            fam.add_column(column, justify="right")
        for row in families:
            fam.add_row(
                row["family"],
                f"{row['fit_seconds']:.1f}",
                f"{row['holdout_pr_auc']:.3f}",
                f"{row['p50_us']:.0f}",
                f"{row['p99_us']:.0f}",
            )
        console.print(fam)
        result["model_families"] = families
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    console.print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
