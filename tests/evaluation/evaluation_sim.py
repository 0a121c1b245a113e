"""A simulated experiment written into a real ledger: an 80/20 split by card with a 100% shadow,
labels arriving the realistic way (alerts investigated within days, missed frauds charged back
weeks later, legitimate transactions never labelled)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from fraudgate.config import parse_config
from fraudgate.config.schema import FraudgateConfig
from fraudgate.ledger import Decision, Label, LedgerStore

DAY = 86_400.0
T0 = 1_700_006_400.0  # a UTC midnight
A, B = "fraud-v1-baseline", "fraud-v2-candidate"


@dataclass(frozen=True, slots=True)
class Scenario:
    days: int = 40
    per_day: int = 400
    fraud_rate: float = 0.02
    recall_a: float = 0.6
    recall_b: float = 0.85
    false_alarm_a: float = 0.01
    false_alarm_b: float = 0.012
    investigation_days: float = 2.0
    chargeback_days: float = 25.0  # mean of an exponential tail
    share_b: float = 0.2
    seed: int = 1
    experiment: str = "ab"
    start: float = T0  # the first event day's midnight (UTC epoch seconds)


def config_data(
    url: str, uris: tuple[str, str] = ("models:/m@champion", "models:/m@c"), **analysis: object
) -> dict:
    """The evaluation tests' config as data: A and B (at ``uris``) split 80/20 with a 100%
    shadow, the ledger at ``url``, the ``analysis`` section's defaults overridden."""
    return {
        "models": [{"name": A, "uri": uris[0]}, {"name": B, "uri": uris[1]}],
        "experiment": {
            "name": "ab",
            "default": A,
            "candidates": [{"name": A, "weight": 80}, {"name": B, "weight": 20}],
            "mirror": {"percent": 100},
        },
        "ledger": {"url": url},
        "analysis": {"maturity_days": 30, "planned_frauds": 200, **analysis},
    }


def config(url: str, **analysis: object) -> FraudgateConfig:
    return parse_config(config_data(url, **analysis))


def fill(store: LedgerStore, s: Scenario = Scenario()) -> None:
    rng = random.Random(s.seed)
    decisions: list[Decision] = []
    labels: list[Label] = []
    for i in range(s.days * s.per_day):
        event = s.start + i * DAY / s.per_day
        card = rng.randrange(10**9)
        served = B if (card * 2654435761 % 2**32) / 2**32 < s.share_b else A
        fraud = rng.random() < s.fraud_rate
        amount = float(rng.randint(5, 800))
        u = rng.random()  # one draw for both models: correlated decisions, as real models are
        flags = {
            A: u < (s.recall_a if fraud else s.false_alarm_a),
            B: u < (s.recall_b if fraud else s.false_alarm_b),
        }
        txn = f"t{i}"
        for model in (A, B):
            role = "served" if model == served else "mirror"
            decisions.append(
                Decision(
                    f"r{i}",
                    txn,
                    event + 0.01,
                    s.experiment,
                    served,
                    role,
                    model,
                    "1",
                    0.5,
                    0.5,
                    flags[model],
                    2.0 + rng.random(),
                    amount,
                    f"card{card}",
                    event,
                )  # fmt: skip
            )
        if flags[served]:  # an alert: investigated within days
            known = event + rng.uniform(0.2, s.investigation_days) * DAY
            labels.append(Label(txn, fraud, known, None, "investigation"))
        elif fraud:  # a missed fraud: a chargeback weeks later
            known = event + (3 + rng.expovariate(1 / s.chargeback_days)) * DAY
            labels.append(Label(txn, True, known, None, "chargeback"))
    store.record_decisions(decisions)
    store.upsert_labels(labels, actor="simulation")
