"""What fraudgate concludes from the seed's own counts (v1 TP 22, FN 8, FP 1; v2 TP 30, FN 0, FP 1).

The seed reported "+36.4% recall, Z = 15.47, p < 0.00001, $1.47M a year" from these 30 fraud
cases. Computed: the +36.4% lift is right as a point estimate, but its 95% interval runs from
+9.9% to +69.2%; the two-proportion z is 3.04, not 15.47, and with an expected cell count of 4
the right test is Fisher's exact, p = 0.0046. Read as paired (both models on the same 30
frauds: v2 caught the 8 v1 missed and missed none v1 caught), McNemar's exact p = 0.0078.
A real difference, but measured very loosely: recall +26.7 points, interval +9.8 to +44.4.
Under continuous monitoring with a realistic plan (tuned for 1,000 frauds) 30 frauds do not
reach an always-valid decision: the sequence spans -19 to +73 points and the rule says CONTINUE.
"""

import pytest
from scipy.stats import binomtest, fisher_exact
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportions_ztest,
)

from fraudgate.analysis.compare import compare_arms
from fraudgate.analysis.counts import ConfusionCounts, PairedTable
from fraudgate.analysis.decision import Evidence, Outcome, decide
from fraudgate.analysis.paired import paired_difference
from fraudgate.analysis.proportions import arm_metrics
from fraudgate.analysis.sequential import SequentialPlan, paired_confidence_sequence

V1 = ConfusionCounts(tp=22, fn=8, fp=1)
V2 = ConfusionCounts(tp=30, fn=0, fp=1)
SAME_FRAUDS = PairedTable(both=22, only_a=0, only_b=8, neither=0)


def test_per_model_recall_intervals():
    v1, v2 = arm_metrics(V1), arm_metrics(V2)
    assert (v1.recall.low, v1.recall.high) == pytest.approx(
        proportion_confint(22, 30, method="wilson")
    )
    assert v1.recall.estimate == pytest.approx(0.733, abs=1e-3)
    assert (round(v1.recall.low, 3), round(v1.recall.high, 3)) == (0.556, 0.858)
    assert v2.recall.estimate == 1.0 and round(v2.recall.low, 3) == 0.886  # 30/30 is not 100%


def test_as_independent_arms():
    recall = compare_arms(V1, V2).recall
    assert recall.relative_lift.estimate == pytest.approx(30 / 22 - 1)  # the seed's +36.4%
    low, high = confint_proportions_2indep(30, 30, 22, 30, method="log", compare="ratio")
    assert (recall.relative_lift.low, recall.relative_lift.high) == pytest.approx(
        (low - 1, high - 1)
    )
    assert (round(recall.relative_lift.low, 3), round(recall.relative_lift.high, 3)) == (
        0.099,
        0.692,
    )
    z, p = proportions_ztest([30, 22], [30, 30])
    assert recall.z_statistic == pytest.approx(z) and round(z, 2) == 3.04  # not 15.47
    assert recall.test == "fisher"  # expected count 4 < 5 in the "missed" column
    assert recall.p_value == pytest.approx(fisher_exact([[30, 0], [22, 8]]).pvalue)
    assert round(recall.p_value, 4) == 0.0046


def test_as_paired_on_the_same_frauds():
    result = paired_difference(SAME_FRAUDS)
    assert result.exact
    assert result.mcnemar_p_value == pytest.approx(binomtest(8, 8).pvalue)  # 2 / 2**8
    assert result.mcnemar_p_value == pytest.approx(mcnemar([[22, 0], [8, 0]], exact=True).pvalue)
    assert result.difference.estimate == pytest.approx(8 / 30)
    assert (round(result.difference.low, 3), round(result.difference.high, 3)) == (0.098, 0.444)


def test_always_valid_conclusion_and_decision():
    realistic = paired_confidence_sequence(SAME_FRAUDS, SequentialPlan(planned_n=1000))
    assert realistic.sequence.low < 0 < realistic.sequence.high
    assert realistic.fixed.low > 0  # only the (invalid under peeking) fixed interval excludes 0
    tuned_for_30 = paired_confidence_sequence(SAME_FRAUDS, SequentialPlan(planned_n=30))
    assert tuned_for_30.sequence.low > 0  # had the plan been exactly these 30 frauds
    # alerts on a 3,000-transaction holdout: v1 flags 23, v2 flags 31 (the 8 extra frauds)
    alerts = PairedTable(both=23, only_b=8, neither=2969)
    decision = decide(
        Evidence(
            primary=realistic,
            alert_rate=paired_confidence_sequence(alerts, SequentialPlan(planned_n=300_000)),
            champion_alert_rate=23 / 3000,
            challenger_precision=arm_metrics(V2).precision,
            challenger_labelled_alerts=31,
            days_elapsed=1,
        )
    )
    assert decision.outcome is Outcome.CONTINUE
    assert decision.reasons[0].startswith(
        "not decided yet: recall difference (challenger - champion) +26.7 points"
    )
