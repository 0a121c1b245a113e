import math

import pytest
from scipy.stats import chisquare

from fraudgate.analysis.srm import SRM_P_THRESHOLD, ArmUnits, sample_ratio_mismatch


def test_matches_scipy_chisquare_against_the_weights():
    arms = [ArmUnits("champion", 8_113, 0.8), ArmUnits("challenger", 1_887, 0.2)]
    result = sample_ratio_mismatch(arms)
    expected = chisquare([8_113, 1_887], [8_000, 2_000])
    assert result.chi_square == pytest.approx(expected.statistic)
    assert result.p_value == pytest.approx(expected.pvalue)
    assert result.expected == (8_000.0, 2_000.0)
    assert result.mismatch == (expected.pvalue < SRM_P_THRESHOLD)


def test_flags_a_broken_split_and_passes_a_healthy_one():
    healthy = sample_ratio_mismatch([ArmUnits("a", 4_020, 80), ArmUnits("b", 980, 20)])
    assert not healthy.mismatch and healthy.p_value > 0.001
    broken = sample_ratio_mismatch([ArmUnits("a", 4_300, 80), ArmUnits("b", 700, 20)])
    assert broken.mismatch and broken.observed_shares == (0.86, 0.14)
    three = [ArmUnits("a", 500, 1), ArmUnits("b", 520, 1), ArmUnits("c", 300, 1)]
    assert sample_ratio_mismatch(three).p_value == pytest.approx(chisquare([500, 520, 300]).pvalue)


def test_edge_cases_and_errors():
    assert sample_ratio_mismatch([ArmUnits("a", 0, 0.5), ArmUnits("b", 0, 0.5)]).p_value == 1.0
    leaked = sample_ratio_mismatch([ArmUnits("a", 100, 1.0), ArmUnits("off", 3, 0.0)])
    assert leaked.mismatch and math.isinf(leaked.chi_square)
    with pytest.raises(ValueError, match="at least 2"):
        sample_ratio_mismatch([ArmUnits("a", 1, 1.0)])
    with pytest.raises(ValueError, match="weight >= 0"):
        sample_ratio_mismatch([ArmUnits("a", 1, -1.0), ArmUnits("b", 1, 1.0)])
