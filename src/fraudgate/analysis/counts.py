"""The analysis' sufficient statistics: counts that add together, stdlib only.

The ledger produces these and the server exports them, so this module imports nothing heavy:
the statistics over them (`fraudgate.analysis.classification`) import scipy/statsmodels.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return {"estimate": self.estimate, "low": self.low, "high": self.high}


@dataclass(frozen=True, slots=True)
class ConfusionCounts:
    """Sufficient statistics of one model's decisions against the labels (positive = fraud).

    Counts add together (``a + b``) so replicas, time windows and batches merge without rows.
    ``unlabelled`` decisions have no label yet (``unlabelled_flagged`` of them were flagged);
    the ``*_amount`` fields sum transaction amounts per cell for business-impact estimates.
    """

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    unlabelled: int = 0
    unlabelled_flagged: int = 0
    tp_amount: float = 0.0
    fp_amount: float = 0.0
    fn_amount: float = 0.0
    tn_amount: float = 0.0

    def __add__(self, other: ConfusionCounts) -> ConfusionCounts:
        if not isinstance(other, ConfusionCounts):
            return NotImplemented
        return ConfusionCounts(
            *(getattr(self, f.name) + getattr(other, f.name) for f in fields(self))
        )

    @property
    def labelled(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    @property
    def total(self) -> int:
        return self.labelled + self.unlabelled

    @property
    def precision(self) -> float:
        flagged = self.tp + self.fp
        return self.tp / flagged if flagged else float("nan")

    @property
    def recall(self) -> float:
        positives = self.tp + self.fn
        return self.tp / positives if positives else float("nan")

    @property
    def f1(self) -> float:
        denominator = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / denominator if denominator else float("nan")

    def precision_interval(self, alpha: float = 0.05) -> Interval:
        """Wilson interval of the precision (imports the statistics only when asked)."""
        from fraudgate.analysis.classification import proportion_interval

        return proportion_interval(self.tp, self.tp + self.fp, alpha)

    def recall_interval(self, alpha: float = 0.05) -> Interval:
        """Wilson interval of the recall."""
        from fraudgate.analysis.classification import proportion_interval

        return proportion_interval(self.tp, self.tp + self.fn, alpha)

    def as_dict(self) -> dict[str, int]:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn}
