"""``POST /admin/experiments/{name}/promote`` and ``.../rollback``: act on this server's state.

The mechanics are `fraudgate.promotion`'s; this handler adds what only a live server knows:
the MLflow version behind each serving name, the routing that publishes the new weights at
once (other replicas follow through the ledger), and the one lock that serialises weight
changes. Both need the admin token (checked by the transport's call to the plane).

Body: ``{"reason": "...", "actor": "...", "evaluation": {...}}``; ``reason`` is required (a
bounded text), ``actor`` defaults to ``admin-api``, ``evaluation`` (optional, at most
`MAX_EVALUATION_BYTES` as JSON) is the analysis snapshot the act was based on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from fraudgate.config import FraudgateConfig
from fraudgate.experiments import ExperimentConfigError
from fraudgate.promotion import (
    PromotionConflict,
    ServingState,
    act,
    check_agreement,
    initial_state,
    last_act,
    plan,
    recorded_state,
)
from fraudgate.protocol.errors import Conflict, InvalidInput, Unavailable
from fraudgate.protocol.limits import check_actor, check_reason, preview
from fraudgate.serving.admin import ADMIN_ACTOR, ExperimentAdmin
from fraudgate.weights import iso_utc

if TYPE_CHECKING:
    from fraudgate.registry import Registry

log = logging.getLogger(__name__)

MAX_EVALUATION_BYTES = 256 * 1024


class PromotionAdmin:
    """Promote / roll back the experiment of ``admin`` (its routing and ledger store).

    ``served(name)`` is the MLflow version this server serves under ``name`` (None: not
    loaded), bound by the plane once the data plane exists.
    """

    def __init__(self, config: FraudgateConfig, admin: ExperimentAdmin) -> None:
        self.config = config
        self.admin = admin
        self.served: Callable[[str], str | None] = lambda name: None
        self._registry: Registry | None = None

    def registry(self) -> Registry:
        if self._registry is None:
            from fraudgate.registry import Registry

            self._registry = Registry(self.config.resolved_tracking_uri())
        return self._registry

    async def act(self, action: str, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        routing, state = self.admin._experiment(name)
        reason = check_reason(body.get("reason"), "reason")
        actor = check_actor(body.get("actor", ADMIN_ACTOR))
        evaluation = body.get("evaluation")
        if evaluation is not None:
            if not isinstance(evaluation, Mapping):
                raise InvalidInput(
                    f"evaluation: expected a JSON object, received {preview(evaluation)}"
                )
            size = len(orjson.dumps(evaluation))
            if size > MAX_EVALUATION_BYTES:
                raise InvalidInput(
                    f"evaluation: expected at most {MAX_EVALUATION_BYTES} bytes of JSON, "
                    f"received {size}"
                )
        store = self.admin.store
        if store is None:
            raise Unavailable(
                f"{action}: needs a ledger to record it (add a `ledger:` section to the config)"
            )
        async with routing.lock:
            try:
                record, before, after = await asyncio.to_thread(
                    self._act, action, name, actor, reason, evaluation
                )
            except PromotionConflict as exc:
                raise Conflict(f"{action} refused: {exc}") from None
            except ExperimentConfigError as exc:
                raise InvalidInput(str(exc)) from None
            except Exception as exc:
                raise Unavailable(
                    f"{action} failed (nothing changed): {type(exc).__name__}: {str(exc)[:300]}"
                ) from exc
            change = state.set_weights(dict(after.weights), f"{actor} ({action})")
        log.info(
            "experiment %s: %s by %s (%s): champion %s, weights %s",
            name,
            action,
            actor,
            reason,
            after.champion,
            dict(after.weights),
        )
        return {
            "action": action,
            "experiment": name,
            "at": iso_utc(record.at),
            "actor": actor,
            "reason": reason,
            "before": before.to_json(),
            "state": after.to_json(),
            "generation": change.generation,
        }

    def _act(
        self,
        action: str,
        name: str,
        actor: str,
        reason: str,
        evaluation: Mapping[str, Any] | None,
    ) -> tuple[Any, ServingState, ServingState]:
        """Blocking: read what is live, check it agrees, plan, move the aliases and record."""
        spec = self.admin._experiment(name)[1].spec
        store = self.admin.store
        registry = self.registry()
        aliases = registry.aliases()
        previous = last_act(store, name)
        served: dict[str, str] = {}
        for candidate in spec.candidates:
            version = self.served(candidate.name)
            if version is None:
                raise PromotionConflict(
                    f"{candidate.name} is not loaded on this server; load it (or restart the "
                    "server) and retry"
                )
            served[candidate.name] = version
        before = recorded_state(previous)
        if before is None:
            before = initial_state(spec, self.config.analysis, served)
        check_agreement(before, served, aliases, previous)
        after = plan(action, before, previous)
        spec.with_weights(dict(after.weights))  # validate before anything moves
        record = act(
            action,
            before,
            after,
            experiment=name,
            registry=registry,
            store=store,
            actor=actor,
            reason=reason,
            evaluation=evaluation,
            aliases=aliases,
        )
        return record, before, after
