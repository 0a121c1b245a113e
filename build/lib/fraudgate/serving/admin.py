"""The experiment's admin endpoints: its view (spec, generation, weight history) and live weights.

Both need the admin token (checked by the plane, `fraudgate.serving.auth`). A weight change is
validated, written to the ledger (time, actor), then published to the router: effective for the
very next request, and seen by the other replicas sharing the ledger (`fraudgate.serving.routing`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from fraudgate.experiments import ExperimentConfigError, ExperimentState
from fraudgate.protocol.errors import InvalidInput, ModelNotFound, Unavailable
from fraudgate.protocol.limits import check_actor, preview
from fraudgate.serving.routing import Routing

log = logging.getLogger(__name__)

ADMIN_ACTOR = "admin-api"


class ExperimentAdmin:
    """``GET /admin/experiments/<name>`` and ``PUT .../weights`` (REST; the CLI uses them)."""

    def __init__(self, routing: Routing | None, store: Any = None) -> None:
        self.routing = routing
        self.store = store  # fraudgate.ledger.LedgerStore | None

    def _experiment(self, name: str) -> tuple[Routing, ExperimentState]:
        routing = self.routing
        if routing is None or routing.state.spec.name != name:
            known = [] if routing is None else [routing.state.spec.name]
            raise ModelNotFound(
                f"experiment {preview(name)}: unknown experiment; expected one of {known}"
            )
        return routing, routing.state

    async def view(self, name: str) -> dict[str, Any]:
        """The experiment's spec, weight generation and weight history (the ledger's, if any)."""
        _, state = self._experiment(name)
        if self.store is not None:
            try:
                changes = await asyncio.to_thread(self.store.weight_history, name)
            except Exception as exc:
                raise Unavailable(f"the ledger could not be read: {exc}") from exc
        else:
            changes = list(state.history)
        history = [change.to_json(with_generation=False) for change in changes]
        return {
            "experiment": state.spec.to_config(),
            "generation": state.generation,
            "history": history,
        }

    async def set_weights(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Validate, record in the ledger, then publish ``body["weights"]``."""
        routing, state = self._experiment(name)
        weights: Any = body.get("weights")  # validated by the spec below
        actor = body.get("actor", ADMIN_ACTOR)
        check_actor(actor)
        async with routing.lock:
            try:
                state.spec.with_weights(weights)  # validate before anything is recorded
            except ExperimentConfigError as exc:
                raise InvalidInput(str(exc)) from None
            if self.store is not None:
                try:
                    await asyncio.to_thread(
                        self.store.record_weight_change, name, dict(weights), actor
                    )
                except Exception as exc:
                    raise Unavailable(
                        f"the weight change could not be recorded in the ledger: {exc}"
                    ) from exc
            try:
                change = state.set_weights(weights, actor)
            except ExperimentConfigError as exc:  # pragma: no cover - validated above
                raise InvalidInput(str(exc)) from None
        log.info("experiment %s: weights %s -> %s by %s", name, change.old, change.new, actor)
        return change.to_json()
