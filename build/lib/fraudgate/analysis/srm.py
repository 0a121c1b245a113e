"""Sample ratio mismatch: did randomisation deliver the configured split?

Counted on the randomisation units (cards, not requests: one card's many requests all go to one
arm, so request counts are not independent draws). A chi-square goodness-of-fit test of the
units per arm against the configured weights; a p-value below ``SRM_P_THRESHOLD`` means the
assignment or the logging is broken and no metric from the experiment can be trusted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy.stats import chisquare

# The conventional SRM alarm level: strict, because the test runs at every evaluation and a
# false alarm stops a healthy experiment.
SRM_P_THRESHOLD = 0.001


@dataclass(frozen=True, slots=True)
class ArmUnits:
    """Distinct randomisation units seen in an arm and the arm's configured weight."""

    arm: str
    units: int
    weight: float


@dataclass(frozen=True, slots=True)
class SampleRatioResult:
    """Observed against expected units per arm, the chi-square test and the verdict."""

    arms: tuple[str, ...]
    observed: tuple[int, ...]
    expected: tuple[float, ...]
    chi_square: float
    p_value: float
    threshold: float

    @property
    def mismatch(self) -> bool:
        return self.p_value < self.threshold

    @property
    def observed_shares(self) -> tuple[float, ...]:
        total = sum(self.observed)
        return tuple(o / total if total else math.nan for o in self.observed)


def sample_ratio_mismatch(
    arms: Sequence[ArmUnits], threshold: float = SRM_P_THRESHOLD
) -> SampleRatioResult:
    """Chi-square goodness of fit of the units per arm against the weights (normalised).

    An arm with weight 0 that received units is a mismatch outright (p = 0).
    """
    if len(arms) < 2:
        raise ValueError(f"sample_ratio_mismatch arms: expected at least 2, got {len(arms)}")
    for a in arms:
        if a.weight < 0 or a.units < 0:
            raise ValueError(f"arm {a.arm!r}: expected weight >= 0 and units >= 0, got {a}")
    total_weight = sum(a.weight for a in arms)
    if total_weight <= 0:
        raise ValueError(f"sample_ratio_mismatch weights: expected a positive sum, got {arms}")
    n = sum(a.units for a in arms)
    expected = tuple(n * a.weight / total_weight for a in arms)
    names = tuple(a.arm for a in arms)
    observed = tuple(a.units for a in arms)
    if n == 0:
        return SampleRatioResult(names, observed, expected, 0.0, 1.0, threshold)
    if any(e == 0 and o > 0 for e, o in zip(expected, observed, strict=True)):
        return SampleRatioResult(names, observed, expected, math.inf, 0.0, threshold)
    live = [(o, e) for o, e in zip(observed, expected, strict=True) if e > 0]
    result = chisquare([o for o, _ in live], [e for _, e in live])
    return SampleRatioResult(
        names, observed, expected, float(result.statistic), float(result.pvalue), threshold
    )
