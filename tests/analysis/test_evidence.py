import numpy as np
import pytest

from fraudgate.analysis.counts import ConfusionCounts, PairedCounts, PairedTable
from fraudgate.analysis.decision import Outcome, decide
from fraudgate.analysis.evidence import paired_evidence, split_evidence
from fraudgate.analysis.sequential import SequentialPlan, split_confidence_sequence
from fraudgate.analysis.srm import ArmUnits, sample_ratio_mismatch

PLAN, ALERT_PLAN = SequentialPlan(planned_n=600), SequentialPlan(planned_n=300_000)


def _paired_day(rng, days: int, gain: float) -> PairedCounts:
    """Simulated shadow counts: 10,000 transactions a day, 0.2% fraud, amounts lognormal."""
    n = 10_000 * days
    fraud = rng.random(n) < 0.002
    amount = rng.lognormal(4.0, 0.8, n)
    a = np.where(fraud, rng.random(n) < 0.7, rng.random(n) < 0.01)
    b = np.where(fraud, a | (rng.random(n) < gain), a)

    def table(mask):
        return PairedTable.from_flags(a[mask].tolist(), b[mask].tolist(), amount[mask].tolist())

    return PairedCounts(fraud=table(fraud), legit=table(~fraud))


@pytest.mark.parametrize("metric", ["recall", "value_detection_rate"])
def test_a_clear_winner_on_the_shadow_is_promoted(metric):
    counts = _paired_day(np.random.default_rng(1), days=30, gain=0.5)
    evidence = paired_evidence(counts, PLAN, ALERT_PLAN, days_elapsed=30, metric=metric)
    assert evidence.challenger_labelled_alerts == counts.fraud.flagged_b + counts.legit.flagged_b
    assert evidence.champion_alert_rate == pytest.approx(
        counts.transactions.flagged_a / counts.transactions.total
    )
    decision = decide(evidence)
    assert decision.outcome is Outcome.PROMOTE, decision.reasons
    assert decision.reasons[0].startswith(f"the challenger is better: {metric} difference")


def test_identical_models_on_the_shadow_are_not_promoted():
    counts = _paired_day(np.random.default_rng(2), days=30, gain=0.0)
    decision = decide(paired_evidence(counts, PLAN, ALERT_PLAN, days_elapsed=30))
    assert decision.outcome is Outcome.CONTINUE


def test_split_evidence_reads_the_arms_and_the_split():
    champion = ConfusionCounts(tp=420, fn=180, fp=800, tn=79_000, unlabelled=2_000)
    challenger = ConfusionCounts(tp=130, fn=20, fp=190, tn=19_800, unlabelled=500)
    srm = sample_ratio_mismatch([ArmUnits("a", 8_000, 0.8), ArmUnits("b", 2_010, 0.2)])
    evidence = split_evidence(champion, challenger, PLAN, ALERT_PLAN, days_elapsed=30, srm=srm)
    assert evidence.primary == split_confidence_sequence(420, 600, 130, 150, PLAN)
    assert evidence.challenger_labelled_alerts == 320
    decision = decide(evidence)
    assert decision.outcome is Outcome.PROMOTE, decision.reasons
    with pytest.raises(ValueError, match="metric: expected one of"):
        split_evidence(champion, challenger, PLAN, ALERT_PLAN, 30, metric="f1")
