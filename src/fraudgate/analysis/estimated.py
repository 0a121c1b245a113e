"""Label-free performance estimates from calibrated scores (confidence-based, as NannyML's CBPE).

If a model's score p is a calibrated probability of fraud, a decision it flags is a true
positive with probability p and one it lets through is a missed fraud with probability p. So,
with no label at all, the expected confusion counts of a set of decisions are

    E[TP] = sum of p over flagged,   E[FP] = flagged - E[TP],   E[FN] = sum of p over unflagged,

and the estimated precision is E[TP] / flagged and recall E[TP] / (E[TP] + E[FN]) (ratios of
expectations: close to the expected ratio when the counts are not tiny). The sums add across
requests, replicas and windows, so the server exports them as counters and the window is a
difference of two readings. The estimate is only as good as the calibration on *today's*
traffic: it follows covariate shift (new kinds of transactions the model scores correctly) but
not concept drift (a new fraud pattern the model scores low looks like legitimate traffic), which
is why it is shown beside the realised, label-joined figures, never instead of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ExpectedCounts:
    """Sufficient statistics of the estimate: decisions and summed fraud probabilities by
    decision (``flagged_score`` = E[TP], ``passed_score`` = E[FN])."""

    flagged: float = 0.0
    passed: float = 0.0
    flagged_score: float = 0.0
    passed_score: float = 0.0

    def __add__(self, other: ExpectedCounts) -> ExpectedCounts:
        if not isinstance(other, ExpectedCounts):
            return NotImplemented
        return ExpectedCounts(
            self.flagged + other.flagged,
            self.passed + other.passed,
            self.flagged_score + other.flagged_score,
            self.passed_score + other.passed_score,
        )

    def __sub__(self, other: ExpectedCounts) -> ExpectedCounts:
        """A window: a later reading minus an earlier one of the same counters."""
        return ExpectedCounts(
            self.flagged - other.flagged,
            self.passed - other.passed,
            self.flagged_score - other.flagged_score,
            self.passed_score - other.passed_score,
        )

    @property
    def decisions(self) -> float:
        return self.flagged + self.passed

    @property
    def expected_frauds(self) -> float:
        return self.flagged_score + self.passed_score

    @property
    def precision(self) -> float:
        """Estimated precision: E[TP] / flagged (NaN with nothing flagged)."""
        return self.flagged_score / self.flagged if self.flagged > 0 else math.nan

    @property
    def recall(self) -> float:
        """Estimated recall: E[TP] / E[frauds] (NaN when no fraud is expected)."""
        frauds = self.expected_frauds
        return self.flagged_score / frauds if frauds > 0 else math.nan


def expected_counts(scores: object, flagged: object) -> ExpectedCounts:
    """The counts of arrays of calibrated ``scores`` and their boolean decisions (numpy)."""
    import numpy as np

    p = np.asarray(scores, dtype=np.float64).reshape(-1)
    f = np.asarray(flagged, dtype=bool).reshape(-1)
    flagged_score = float(p[f].sum())
    return ExpectedCounts(
        float(np.count_nonzero(f)),
        float(f.size - np.count_nonzero(f)),
        flagged_score,
        float(p.sum()) - flagged_score,
    )
