"""Which model answers a request: the experiment's weights, its sticky key, and live weights.

A request addressed to the experiment (its name, or the default model's name, with no explicit
version) is routed: the router (`fraudgate.experiments`) picks the arm, sticky by the routing key
(a request parameter or header), and says whether a copy goes to the mirror. Any other request
reaches the model it names.

Weights change live (an admin change, see `fraudgate.serving.admin`) and are kept in the ledger:
replicas sharing a ledger pick up each other's changes by polling its weight history every
``ledger.weights_poll_s``; at start-up the config's weights are recorded (actor ``config``)
unless the ledger already holds them, in which case the ledger's latest live change is restored:
a restart neither silently undoes a live change nor silently ignores an edited config file.
The same poll reads the step of the experiment's running rollout (for ``/metrics``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from fraudgate.experiments import (
    ExperimentConfigError,
    ExperimentState,
    InvalidRoutingKey,
    RouteDecision,
    extract_routing_key,
)
from fraudgate.protocol.errors import InvalidInput
from fraudgate.protocol.limits import MAX_ROUTING_KEY_CHARS, text_problem
from fraudgate.weights import whole_weights

log = logging.getLogger(__name__)

CONFIG_ACTOR = "config"
_ROUTE_CACHE = 1024  # requested names whose routing is remembered (names the server knows)

# the transport's headers (REST) or metadata (gRPC), built only when a request needs them
HeadersFn = Callable[[], Mapping[str, str] | None]


class Routing:
    """The experiment's routing for one server, and its weights kept in step with the ledger.

    ``store``: the `fraudgate.ledger.LedgerStore` holding the weight history, or None.
    """

    def __init__(self, state: ExperimentState, store: Any = None, poll_s: float = 0.0) -> None:
        self.state = state
        self.store = store
        self.poll_s = poll_s
        self.lock = asyncio.Lock()  # serialises weight changes (admin and polling)
        self._router = state.router
        self._routes: dict[str, bool] = {}
        routing = state.spec.routing
        # the request parameter that carries the routing key (a non-empty string: the fast path)
        self._key_parameter = routing.key if routing.source == "parameter" else None
        self._poll_task: asyncio.Task[None] | None = None
        # the running rollout's step index as the ledger had it at the last poll (-1: none)
        self.rollout_step = -1

    # -- per request ------------------------------------------------------------------------
    def routes(self, name: str, version: str | None) -> bool:
        """Whether a request for ``name`` (and ``version``) goes through the experiment."""
        if version is not None:
            return False
        # the answer depends on the experiment's and default model's names only, which a weight
        # change keeps: remembered per requested name (a bounded set: names the server knows)
        routed = self._routes.get(name)
        if routed is None:
            routed = self.state.should_route(name, False)
            if len(self._routes) < _ROUTE_CACHE:
                self._routes[name] = routed
        return routed

    def route(self, parameters: Mapping[str, Any], headers: HeadersFn | None) -> RouteDecision:
        """The arm (and mirror) of a routed request; InvalidInput for a bad routing key."""
        key = parameters.get(self._key_parameter) if self._key_parameter else None
        # the common case, a valid string key: straight to the current table (a bad one takes
        # the general rule, which says what is wrong with it)
        if type(key) is str and key and text_problem(key, MAX_ROUTING_KEY_CHARS) is None:
            return self._router.table.route_key(key)
        state = self.state
        spec = state.spec  # the general rule
        try:
            key = extract_routing_key(spec, parameters)
            if key is None and headers is not None:
                key = extract_routing_key(spec, None, headers())
        except InvalidRoutingKey as exc:
            raise InvalidInput(str(exc)) from None
        return state.route(key)

    @staticmethod
    def response_parameters(route: RouteDecision | None) -> dict[str, Any]:
        """The experiment's parameters in a response (None values: not routed)."""
        if route is None:
            return {"experiment": None, "routing_key_hash": None}
        return {"experiment": route.experiment, "routing_key_hash": route.key_hash}

    # -- weights and the ledger -------------------------------------------------------------
    def reconcile(self) -> None:
        """Blocking (run in a thread): reconcile the configured weights with the ledger's."""
        state, store = self.state, self.store
        if store is None:
            return
        name = state.spec.name
        configured = state.spec.weights
        self.rollout_step = self._read_rollout_step()
        history = store.weight_history(name)
        last_config = next((c for c in reversed(history) if c.actor == CONFIG_ACTOR), None)
        if last_config is None or whole_weights(last_config.new) != configured:
            store.record_weight_change(name, configured, CONFIG_ACTOR)
            return
        latest = whole_weights(history[-1].new)
        if latest != configured:
            try:
                state.set_weights(latest, f"{history[-1].actor} (restored from the ledger)")
                log.info("experiment %s: restored live weights %s from the ledger", name, latest)
            except ExperimentConfigError as exc:
                log.warning("experiment %s: ignoring ledger weights %s: %s", name, latest, exc)

    def _read_rollout_step(self) -> int:
        rollout = self.store.running_rollout(self.state.spec.name)
        return -1 if rollout is None else rollout.step

    def start_polling(self) -> None:
        """Follow other replicas' weight changes through the ledger (with a store and a period)."""
        if self.store is not None and self.poll_s > 0:
            self._poll_task = asyncio.get_running_loop().create_task(self._poll())

    def stop_polling(self) -> None:
        if self._poll_task is not None:
            self._poll_task.cancel()

    async def _poll(self) -> None:
        state, store = self.state, self.store
        name = state.spec.name
        while True:
            await asyncio.sleep(self.poll_s)
            # a change made here while the ledger was being read is newer than what the read saw
            generation = state.generation
            try:
                history = await asyncio.to_thread(store.weight_history, name)
                self.rollout_step = await asyncio.to_thread(self._read_rollout_step)
            except Exception as exc:  # the database is down: keep the current weights
                log.warning("experiment %s: polling weights failed: %s", name, exc)
                continue
            if not history:
                continue
            latest = whole_weights(history[-1].new)
            if latest == state.spec.weights:
                continue
            async with self.lock:
                if state.generation != generation:
                    continue  # the next poll reads the ledger after that change
                try:
                    state.set_weights(latest, f"{history[-1].actor} (via the ledger)")
                    log.info("experiment %s: weights %s from another replica", name, latest)
                except ExperimentConfigError as exc:
                    log.warning("experiment %s: ignoring ledger weights %s: %s", name, latest, exc)
