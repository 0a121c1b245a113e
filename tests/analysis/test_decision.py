import pytest

from fraudgate.analysis.counts import PairedTable
from fraudgate.analysis.decision import DecisionPolicy, Evidence, Outcome, decide
from fraudgate.analysis.proportions import proportion_interval
from fraudgate.analysis.sequential import SequentialPlan, paired_confidence_sequence
from fraudgate.analysis.srm import ArmUnits, sample_ratio_mismatch

PLAN = SequentialPlan(planned_n=400)
# 400 frauds: the challenger catches 40 the champion misses, misses 8 it catches
BETTER = PairedTable(both=300, only_a=8, only_b=40, neither=52)
WORSE = PairedTable(both=300, only_a=40, only_b=8, neither=52)
UNDECIDED = PairedTable(both=300, only_a=20, only_b=24, neither=56)
# alert rates on 100,000 transactions: the champion flags 1%
SAME_ALERTS = PairedTable(both=900, only_a=100, only_b=110, neither=98_890)
MANY_ALERTS = PairedTable(both=900, only_a=100, only_b=600, neither=98_400)
HEALTHY_SPLIT = sample_ratio_mismatch(
    [ArmUnits("champion", 8010, 0.8), ArmUnits("challenger", 1990, 0.2)]
)
BROKEN_SPLIT = sample_ratio_mismatch(
    [ArmUnits("champion", 8400, 0.8), ArmUnits("challenger", 1600, 0.2)]
)


def _evidence(primary=BETTER, alerts=SAME_ALERTS, srm=HEALTHY_SPLIT, **overrides):
    values = dict(
        primary=paired_confidence_sequence(primary, PLAN),
        alert_rate=paired_confidence_sequence(alerts, SequentialPlan(100_000)),
        champion_alert_rate=alerts.flagged_a / alerts.total,
        challenger_precision=proportion_interval(300, 1000),
        challenger_labelled_alerts=1000,
        days_elapsed=20,
        srm=srm,
        frauds_per_day=20,
        error_rate=0.001,
    )
    values.update(overrides)
    return Evidence(**values)


def test_promote_when_the_sequence_is_above_zero_and_guardrails_pass():
    decision = decide(_evidence())
    assert decision.outcome is Outcome.PROMOTE
    assert decision.reasons[0].startswith("the challenger is better: recall difference")
    assert "entirely above zero" in decision.reasons[0]
    assert any("traffic split as configured" in r for r in decision.reasons)
    assert all(not c.breached for c in decision.guardrails)


def test_rollback_when_the_challenger_is_worse():
    decision = decide(_evidence(primary=WORSE))
    assert decision.outcome is Outcome.ROLLBACK
    assert "the challenger is worse" in decision.reasons[0]


def test_sample_ratio_mismatch_rolls_back_even_a_winner():
    decision = decide(_evidence(srm=BROKEN_SPLIT))
    assert decision.outcome is Outcome.ROLLBACK
    assert decision.reasons[0].startswith("sample ratio mismatch: the cards reached the arms as")
    assert "champion 84.0% (configured 80.0%)" in decision.reasons[0]


def test_alert_rate_guardrail_rolls_back_a_credible_increase():
    decision = decide(_evidence(alerts=MANY_ALERTS))
    assert decision.outcome is Outcome.ROLLBACK
    assert "more alerts than the champion (credibly" in decision.reasons[0]
    # an increase above the limit that is not yet credible only holds the promotion
    few = PairedTable(both=9, only_a=1, only_b=4, neither=986)
    held = decide(_evidence(alerts=few), DecisionPolicy(max_alert_rate_increase=0.25))
    assert held.outcome is Outcome.CONTINUE
    assert "but a guardrail holds the promotion" in held.reasons[0]
    assert "not yet credibly" in held.reasons[1]


def test_precision_floor_and_serving_guardrails():
    poor = proportion_interval(10, 1000)
    decision = decide(_evidence(challenger_precision=poor), DecisionPolicy(precision_floor=0.05))
    assert decision.outcome is Outcome.ROLLBACK
    assert "credibly below the floor 5.0%" in decision.reasons[0]
    unjudged = decide(_evidence(challenger_precision=poor, challenger_labelled_alerts=10))
    assert unjudged.outcome is Outcome.PROMOTE  # too few labelled alerts to judge precision
    slow = decide(_evidence(p99_latency_ms=80.0), DecisionPolicy(max_p99_latency_ms=50.0))
    assert slow.outcome is Outcome.ROLLBACK
    assert slow.reasons[0] == "challenger p99 latency 80 ms above the limit 50.0 ms"
    failing = decide(_evidence(error_rate=0.05))
    assert failing.outcome is Outcome.ROLLBACK and "error rate 0.05" in failing.reasons[0]


def test_continue_says_how_long_and_stop_ends_it():
    decision = decide(_evidence(primary=UNDECIDED))
    assert decision.outcome is Outcome.CONTINUE
    assert decision.expected_days_to_decision is not None
    assert decision.expected_days_to_decision > 0
    assert "more days of labelled frauds" in decision.reasons[0]
    assert "which holds zero" in decision.reasons[0]
    stopped = decide(_evidence(primary=UNDECIDED, days_elapsed=61))
    assert stopped.outcome is Outcome.STOP
    assert stopped.reasons[0].startswith("the maximum duration of 60 days is reached")
    by_sample = decide(_evidence(primary=UNDECIDED), DecisionPolicy(max_frauds=400))
    assert by_sample.outcome is Outcome.STOP


def test_aa_experiment_does_not_promote():
    same = PairedTable(both=380, only_a=0, only_b=0, neither=20)  # one model in both arms
    decision = decide(_evidence(primary=same, alerts=PairedTable(both=1000, neither=99_000)))
    assert decision.outcome is Outcome.CONTINUE
    assert decision.reasons[0].startswith("not decided yet")


def test_outcome_is_a_string():
    assert Outcome.PROMOTE == "PROMOTE"
    assert pytest.importorskip("json").dumps(Outcome.ROLLBACK) == '"ROLLBACK"'


def test_daily_decisions_on_an_aa_experiment_rarely_promote_or_roll_back():
    import numpy as np

    from fraudgate.analysis.counts import PairedCounts
    from fraudgate.analysis.evidence import paired_evidence

    rng = np.random.default_rng(99)
    replays, days = 300, 30
    # two equally good models on the shadow: 20 frauds and 2,000 legitimate transactions a day
    fraud = rng.multinomial(np.full((replays, days), 20), [0.6, 0.06, 0.06, 0.28]).cumsum(1)
    legit = rng.multinomial(np.full((replays, days), 2000), [0.01, 0.002, 0.002, 0.986]).cumsum(1)
    plan, alert_plan = SequentialPlan(planned_n=600), SequentialPlan(planned_n=60_000)
    acted = 0
    for r in range(replays):
        for day in range(days):
            counts = PairedCounts(
                fraud=PairedTable(*fraud[r, day].tolist()),
                legit=PairedTable(*legit[r, day].tolist()),
            )
            evidence = paired_evidence(counts, plan, alert_plan, days_elapsed=day + 1)
            if decide(evidence).outcome in (Outcome.PROMOTE, Outcome.ROLLBACK):
                acted += 1
                break
    assert acted / replays <= 0.05, acted / replays
