"""Fit a LightGBM fraud model and choose its decision threshold on a validation window."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
from sklearn.metrics import precision_recall_curve

DEFAULT_PARAMS: dict = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_child_samples": 50,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "verbose": -1,
}
DEFAULT_ROUNDS = 300
MIN_PRECISION = 0.95
NEGATIVE_RATE = 0.1


@dataclass(frozen=True)
class ThresholdChoice:
    threshold: float
    precision: float
    recall: float
    met_precision_target: bool


@dataclass
class FittedModel:
    booster: lgb.Booster
    params: dict
    rounds: int
    negative_rate: float
    training_rows: int
    training_frauds: int
    extras: dict = field(default_factory=dict)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """P(fraud) per row of ``x`` (the booster's dense output)."""
        return np.asarray(self.booster.predict(x))


def fit_model(
    x: np.ndarray,
    y: np.ndarray,
    *,
    seed: int,
    rounds: int = DEFAULT_ROUNDS,
    negative_rate: float = NEGATIVE_RATE,
    params: dict | None = None,
    threads: int = 1,
) -> FittedModel:
    """Gradient-boosted trees on every fraud case and a seeded sample of legitimate ones.

    Keeping `negative_rate` of the ~99.5% legitimate rows makes training several times faster
    with no loss of PR-AUC; weighting the kept ones by 1/negative_rate keeps the scores calibrated
    probabilities. The imbalance itself is handled where it matters: the decision threshold is
    chosen on validation data for a precision target. One thread by default: on a shared
    2-core machine OpenMP's spinning threads made a 2-second fit take 30 seconds.
    """
    y = np.asarray(y).astype(np.int8)
    positives = int(np.sum(y))
    if positives == 0:
        raise ValueError("the training window holds no fraud cases; widen it or simulate more days")
    if not 0 < negative_rate <= 1:
        raise ValueError(f"negative_rate must be in (0, 1], got {negative_rate}")
    rng = np.random.default_rng(seed)
    keep = (y == 1) | (rng.random(len(y)) < negative_rate)
    weights = np.where(y[keep] == 1, 1.0, 1.0 / negative_rate)
    merged = {
        **DEFAULT_PARAMS,
        **(params or {}),
        "seed": seed,
        "deterministic": True,
        "num_threads": threads,
    }
    dataset = lgb.Dataset(x[keep], label=y[keep], weight=weights, free_raw_data=True)
    booster = lgb.train(merged, dataset, num_boost_round=rounds)
    return FittedModel(booster, merged, rounds, negative_rate, len(y), positives)


def choose_threshold(
    y_valid: np.ndarray, scores: np.ndarray, min_precision: float = MIN_PRECISION
) -> ThresholdChoice:
    """The highest-recall threshold whose validation precision is at least `min_precision`."""
    precision, recall, thresholds = precision_recall_curve(y_valid, scores)
    # precision/recall have one more entry than thresholds (the final (1, 0) point)
    precision, recall = precision[:-1], recall[:-1]
    ok = precision >= min_precision
    if not ok.any():
        best = int(np.argmax(precision))
        warnings.warn(
            f"no threshold reaches precision {min_precision}; using the most precise one "
            f"({precision[best]:.3f})",
            stacklevel=2,
        )
        return ThresholdChoice(
            float(thresholds[best]), float(precision[best]), float(recall[best]), False
        )
    candidates = np.nonzero(ok)[0]
    best = candidates[np.argmax(recall[candidates])]
    return ThresholdChoice(
        float(thresholds[best]), float(precision[best]), float(recall[best]), True
    )


def pr_curve_figure(y: np.ndarray, scores: np.ndarray, choice: ThresholdChoice, title: str):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    precision, recall, _ = precision_recall_curve(y, scores)
    figure = Figure(figsize=(5, 4), dpi=100)
    ax = figure.subplots()
    ax.plot(recall, precision, lw=1.5)
    ax.scatter(
        [choice.recall],
        [choice.precision],
        color="red",
        zorder=3,
        label=f"threshold {choice.threshold:.3f}",
    )
    ax.axhline(MIN_PRECISION, color="grey", ls="--", lw=1)
    ax.set(xlabel="recall", ylabel="precision", title=title, xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="lower left")
    return figure
