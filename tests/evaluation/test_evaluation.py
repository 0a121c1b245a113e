"""`evaluate` on a real ledger filled with a simulated experiment: the decision, label maturity,
and an A/A experiment that must not promote."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from evaluation_sim import DAY, T0, A, B, Scenario, config, fill

from fraudgate.analysis.decision import Outcome
from fraudgate.evaluation import evaluate
from fraudgate.ledger import LedgerStore, open_ledger


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def any_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return request.getfixturevalue("pg_schema_url")


@pytest.fixture
def store(url: str) -> Iterator[LedgerStore]:
    ledger = open_ledger(url)
    yield ledger
    ledger.close()


def test_a_better_challenger_is_promoted_on_matured_paired_evidence(any_url: str) -> None:
    with open_ledger(any_url) as store:
        fill(store)
        tolerant = {"max_alert_rate_increase": 0.5}  # it catches more frauds: more alerts
        result = evaluate(config(any_url, guardrails=tolerant), store, as_of=T0 + 60 * DAY)
    assert result.design == "paired" and (result.champion, result.challenger) == (A, B)
    assert result.decision.outcome is Outcome.PROMOTE, result.decision.reasons
    assert result.sequence.sequence.low > 0
    assert result.srm is not None and not result.srm.mismatch
    assert result.arm(B).metrics.recall.estimate > result.arm(A).metrics.recall.estimate
    assert result.value_difference is not None and result.power is not None
    assert result.days and all(day.date for day in result.days)


def test_nothing_matured_yet_means_continue(url: str, store) -> None:
    fill(store, Scenario(days=10))
    result = evaluate(config(url), store, as_of=T0 + 10 * DAY)
    assert result.decision.outcome is Outcome.CONTINUE
    assert result.sequence.n == 0


def test_an_aa_experiment_does_not_promote(url: str, store) -> None:
    fill(store, Scenario(recall_b=0.6, false_alarm_b=0.01, seed=3))
    for day in (20, 35, 50, 70):
        result = evaluate(config(url), store, as_of=T0 + day * DAY)
        assert result.decision.outcome is not Outcome.PROMOTE, result.decision.reasons


def test_counting_pending_transactions_as_legitimate_overstates_early_recall(
    url: str, store
) -> None:
    """Must show: alerts are labelled within days, missed frauds weeks later, so on young
    transactions the labelled frauds are mostly the caught ones. Taking every unlabelled
    transaction as legitimate (maturity 0, all days) overstates recall; the matured days'
    estimate is close to the true recall."""
    s = Scenario(days=60, recall_a=0.6)
    fill(store, s)
    as_of = T0 + 60 * DAY
    naive = evaluate(config(url, maturity_days=0), store, as_of=as_of)
    matured = evaluate(config(url, maturity_days=30), store, as_of=as_of)
    naive_recall = naive.arm(A).metrics.recall
    matured_recall = matured.arm(A).metrics.recall
    assert naive_recall.low > s.recall_a  # credibly overstated
    assert matured_recall.low <= s.recall_a <= matured_recall.high
    assert naive.arm(A).window.unlabelled == 0 and matured.arm(A).window.unlabelled > 0


def test_the_split_design_and_value_detection_decide_too(url: str, store) -> None:
    fill(store, Scenario(days=60, per_day=800))
    tolerant = {"max_alert_rate_increase": 0.5}
    split = evaluate(config(url, design="split", guardrails=tolerant), store, as_of=T0 + 90 * DAY)
    assert split.design == "split" and split.sequence.design == "split"
    assert split.sequence.sequence.low > 0 and split.split is not None
    value = evaluate(
        config(url, primary_metric="value_detection", guardrails=tolerant),
        store,
        as_of=T0 + 90 * DAY,
    )
    assert value.metric == "value_detection_rate"
    assert value.decision.outcome is Outcome.PROMOTE, value.decision.reasons
    # the paired design needs fewer frauds than the split for the same power
    assert value.power is not None and value.power.paired.frauds_needed < (
        value.power.split.frauds_needed
    )


def test_a_stale_experiment_stops(url: str, store) -> None:
    fill(store, Scenario(days=40, recall_b=0.6, false_alarm_b=0.01, seed=5))
    result = evaluate(config(url, max_days=30), store, as_of=T0 + 75 * DAY)
    assert result.decision.outcome in (Outcome.STOP, Outcome.ROLLBACK), result.decision.reasons


def test_an_effect_too_small_to_ever_detect_gives_no_power_table_not_a_crash(url, store) -> None:
    # a few frauds a day and a tiny planned effect: millions of frauds, centuries of traffic
    fill(store, Scenario(days=40, per_day=20, fraud_rate=0.03))
    result = evaluate(config(url, minimum_effect=0.001), store, as_of=T0 + 60 * DAY)
    assert result.power is None
    assert result.decision.outcome in set(Outcome)
