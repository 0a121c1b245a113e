"""Classification statistics as pure functions: counts in, estimates and intervals out.

No I/O here. Confusion counts add together (across windows, replicas or days); ranking metrics
take optional per-row weights so the Poisson bootstrap reuses one sort for every replicate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fraudgate.analysis.counts import ConfusionCounts, Interval, PairedTable
from fraudgate.analysis.paired import paired_difference
from fraudgate.analysis.proportions import proportion_interval

__all__ = [
    "ConfusionCounts",
    "Interval",
    "PairedRecallComparison",
    "RankedScores",
    "bootstrap_ranking_metrics",
    "confusion_at",
    "paired_recall_gap",
    "proportion_interval",
]


def confusion_at(y_true: np.ndarray, scores: np.ndarray, threshold: float) -> ConfusionCounts:
    """Flag a transaction when its score is at or above the threshold."""
    y = np.asarray(y_true).astype(bool)
    flagged = np.asarray(scores) >= threshold
    return ConfusionCounts(
        tp=int(np.sum(flagged & y)),
        fp=int(np.sum(flagged & ~y)),
        fn=int(np.sum(~flagged & y)),
        tn=int(np.sum(~flagged & ~y)),
    )


class RankedScores:
    """Scores sorted once (descending) so weighted PR-AUC and ROC-AUC cost O(n) per replicate."""

    def __init__(self, y_true: np.ndarray, scores: np.ndarray):
        order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="mergesort")
        self.y = np.asarray(y_true)[order].astype(bool)
        ranked = np.asarray(scores, dtype=np.float64)[order]
        # last row of every group of tied scores: curves only change between distinct scores
        self.group_ends = np.r_[np.nonzero(np.diff(ranked))[0], len(ranked) - 1]
        self.order = order

    def _curves(self, weights: np.ndarray | None):
        w = np.ones(len(self.y)) if weights is None else np.asarray(weights)[self.order]
        tp = np.cumsum(np.where(self.y, w, 0.0))[self.group_ends]
        fp = np.cumsum(np.where(self.y, 0.0, w))[self.group_ends]
        return tp, fp

    def average_precision(self, weights: np.ndarray | None = None) -> float:
        """Area under the precision-recall curve as a step sum (scikit-learn's definition)."""
        tp, fp = self._curves(weights)
        if tp[-1] == 0:
            return float("nan")
        precision = tp / np.maximum(tp + fp, 1e-300)
        recall_step = np.diff(np.r_[0.0, tp]) / tp[-1]
        return float(np.sum(recall_step * precision))

    def roc_auc(self, weights: np.ndarray | None = None) -> float:
        tp, fp = self._curves(weights)
        if tp[-1] == 0 or fp[-1] == 0:
            return float("nan")
        tpr = np.r_[0.0, tp / tp[-1]]
        fpr = np.r_[0.0, fp / fp[-1]]
        return float(np.trapezoid(tpr, fpr))


def _weighted_f1(y: np.ndarray, flagged: np.ndarray, w: np.ndarray) -> float:
    tp = np.sum(w[flagged & y])
    denominator = 2 * tp + np.sum(w[flagged & ~y]) + np.sum(w[~flagged & y])
    return float(2 * tp / denominator) if denominator else float("nan")


def _percentile_interval(estimate: float, replicates: np.ndarray, alpha: float) -> Interval:
    replicates = replicates[np.isfinite(replicates)]
    if len(replicates) == 0:
        return Interval(estimate, float("nan"), float("nan"))
    low, high = np.quantile(replicates, [alpha / 2, 1 - alpha / 2])
    return Interval(estimate, float(low), float(high))


def bootstrap_ranking_metrics(
    y_true: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    *,
    replicates: int = 200,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, Interval]:
    """F1, PR-AUC and ROC-AUC with percentile intervals from a Poisson bootstrap."""
    ranked = RankedScores(y_true, scores)
    y = np.asarray(y_true).astype(bool)
    flagged = np.asarray(scores) >= threshold
    ones = np.ones(len(y))
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {"f1": [], "pr_auc": [], "roc_auc": []}
    for _ in range(replicates):
        w = rng.poisson(1.0, len(y)).astype(np.float64)
        draws["f1"].append(_weighted_f1(y, flagged, w))
        draws["pr_auc"].append(ranked.average_precision(w))
        draws["roc_auc"].append(ranked.roc_auc(w))
    estimates = {
        "f1": _weighted_f1(y, flagged, ones),
        "pr_auc": ranked.average_precision(),
        "roc_auc": ranked.roc_auc(),
    }
    return {
        name: _percentile_interval(estimates[name], np.asarray(draws[name]), alpha)
        for name in estimates
    }


@dataclass(frozen=True)
class PairedRecallComparison:
    """Recall of two models on the same fraud cases, and the difference b - a."""

    positives: int
    caught_by_a_only: int
    caught_by_b_only: int
    gap: Interval
    mcnemar_p_value: float

    def as_dict(self) -> dict:
        return {
            "positives": self.positives,
            "caught_by_a_only": self.caught_by_a_only,
            "caught_by_b_only": self.caught_by_b_only,
            "recall_gap": self.gap.as_dict(),
            "mcnemar_p_value": self.mcnemar_p_value,
        }


def paired_recall_gap(
    caught_a: np.ndarray, caught_b: np.ndarray, alpha: float = 0.05
) -> PairedRecallComparison:
    """Compare recall on the same positives: Newcombe's hybrid score interval, McNemar test.

    `caught_a[i]` says whether model a flagged fraud case i. The interval for recall(b) -
    recall(a) is Newcombe's (1998) method 10 for paired proportions and the test McNemar's
    (both from `fraudgate.analysis.paired`, which works on counts; this counts the flags).
    """
    a = np.asarray(caught_a, dtype=bool)
    b = np.asarray(caught_b, dtype=bool)
    table = PairedTable(
        both=int(np.sum(a & b)),
        only_a=int(np.sum(a & ~b)),
        only_b=int(np.sum(b & ~a)),
        neither=int(np.sum(~a & ~b)),
    )
    if table.total == 0:
        return PairedRecallComparison(0, 0, 0, Interval(float("nan"), -1.0, 1.0), float("nan"))
    result = paired_difference(table, alpha)
    return PairedRecallComparison(
        positives=table.total,
        caught_by_a_only=table.only_a,
        caught_by_b_only=table.only_b,
        gap=result.difference,
        mcnemar_p_value=result.mcnemar_p_value,
    )
