"""One promote or rollback through a running server, with the evaluation it is based on.

The server does the act (`fraudgate.serving.promote`: registry aliases, weights, the ledger
record, all replicas following); this module adds the evidence: it evaluates the experiment
from the ledger as of now and sends the snapshot with the reason, so the record says why.
A promotion the evaluation does not support is refused unless forced.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fraudgate.client import ActionResult, FraudgateClient
    from fraudgate.config import FraudgateConfig
    from fraudgate.evaluation import Evaluation
    from fraudgate.ledger import LedgerStore


class ActionRefused(RuntimeError):
    """The act was not attempted (e.g. the evaluation does not support a promotion)."""


@dataclass(frozen=True)
class Acted:
    """The server's answer and the evaluation sent with it (None without a ledger)."""

    result: ActionResult
    evaluation: Evaluation | None


def live_config(config: FraudgateConfig, weights: dict[str, int] | None) -> FraudgateConfig:
    """``config`` with the experiment's live weights (the evaluation's expected split)."""
    spec = config.experiment_spec
    if spec is None or weights is None or set(weights) != set(spec.weights):
        return config
    return replace(config, experiment_spec=spec.with_weights(weights))


def evaluate_now(
    config: FraudgateConfig, store: LedgerStore, weights: dict[str, int] | None = None
) -> Evaluation:
    from fraudgate.evaluation import evaluate

    return evaluate(live_config(config, weights), store)


def snapshot(evaluation: Evaluation | None) -> dict[str, Any] | None:
    if evaluation is None:
        return None
    from fraudgate.report.evaluation import evaluation_snapshot

    return evaluation_snapshot(evaluation)


def act_on_server(
    client: FraudgateClient,
    config: FraudgateConfig,
    store: LedgerStore | None,
    action: str,
    *,
    experiment: str,
    reason: str,
    actor: str,
    force: bool = False,
    evaluation: Evaluation | None = None,
) -> Acted:
    """Evaluate (unless given ``evaluation``), check a promotion is supported, then ask the
    server to act. ActionRefused if the evaluation says other than PROMOTE and not ``force``."""
    if evaluation is None and store is not None and config.experiment_spec is not None:
        weights = client.get_experiment(experiment).weights
        evaluation = evaluate_now(config, store, weights)
    if action == "promote" and not force:
        outcome = None if evaluation is None else evaluation.decision.outcome.value
        if outcome != "PROMOTE":
            why = (
                "no ledger to evaluate from"
                if evaluation is None
                else f"the evaluation says {outcome}: " + "; ".join(evaluation.decision.reasons)
            )
            raise ActionRefused(
                f"promote: not supported by the evidence ({why}); pass --force to promote anyway"
            )
    result = client.act(experiment, action, reason, actor, snapshot(evaluation))
    return Acted(result, evaluation)
