"""The experiment side of the data plane: routing, the decision ledger, mirror scoring, admin.

One :class:`ExperimentPlane` per server, built from the config's ``experiment:``, ``ledger:`` and
``auth:`` sections (`ExperimentPlane.from_config`); the data plane holds it and calls it on every
request when it exists (without those sections there is none and the data plane serves exactly as
before). Transport-agnostic, like the data plane: REST and gRPC pass the request parameters and a
lazy view of their headers/metadata.

Per request addressed to the experiment (its name, or the default model's name, no explicit
version): the router picks the arm (sticky by routing key) and `ExperimentPlane.score` queues the
request for this loop tick. One callback at the end of the tick (`_flush`) scores every queued
request with one runtime call per model, records all their decisions as one columnar batch
(`fraudgate.ledger.DecisionBatch`) and only then lets the requests answer: the batch is durable
first, an acknowledged decision is never lost. Durable means appended to this process's decision
journal (``ledger.acknowledge: journal``, the default: one ``os.write`` per tick; a shipper
process moves it into the store, see `fraudgate.ledger.journal`), or committed by the store's
group commit (``acknowledge: commit``). Mirror copies: with the journal, their features go into
the journal with the tick's served decisions and the shipper scores them, in its own process
(`fraudgate.ledger.mirror`); the serving process spends no CPU on them. Otherwise the tick's
copies are scored in one more callback, queued behind the answered requests (so they never add
to the callers' latency), and recorded best effort; that queue is bounded: beyond
``max_pending_mirror_rows`` rows waiting, copies are dropped and counted, never a served request.
Everything per request is a tuple and a few list appends; the per-row work is done per tick.

Weights: an admin change is validated, written to the ledger (time, actor), then published to
the router (effective for the next request). Replicas sharing a ledger pick up each other's
changes by polling the ledger's weight history every ``ledger.weights_poll_s``; at start-up the
config's weights are recorded (actor ``config``) unless the ledger already holds them, in which
case the ledger's latest live change is restored: a restart neither silently undoes a live change
nor silently ignores an edited config file.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from fraudgate.config import DEFAULT_FEEDBACK_MAX_LABELS, FraudgateConfig
from fraudgate.experiments import (
    ExperimentConfigError,
    ExperimentState,
    InvalidRoutingKey,
    RouteDecision,
    extract_routing_key,
)
from fraudgate.ledger.mirror import MIRROR_KEY, entry_rows, mirror_entry, model_spec
from fraudgate.protocol.errors import (
    InvalidInput,
    ModelNotFound,
    PayloadTooLarge,
    Unavailable,
)
from fraudgate.protocol.limits import (
    MAX_ID_CHARS,
    MAX_ROUTING_KEY_CHARS,
    check_actor,
    check_id,
    preview,
    text_problem,
)
from fraudgate.serving.auth import AdminAuth

if TYPE_CHECKING:
    from prometheus_client.core import Metric

    from fraudgate.ledger.records import DecisionBatch

log = logging.getLogger(__name__)

CONFIG_ACTOR = "config"
FEEDBACK_ACTOR = "feedback-api"
FEEDBACK_LISTED = 100  # unknown ids and rejected fields listed in a feedback answer (+ counts)
_INLINE_LABELS = 64  # feedback batches above this are validated off the event-loop thread
MAX_PENDING_MIRROR_ROWS = 50_000
_SYNC_OFFLOAD_ROWS = 2048  # mirror batches above this are scored off the event-loop thread

HeadersFn = Callable[[], Mapping[str, str] | None]


def _iso(moment: datetime | float) -> str:
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, UTC)
    return moment.isoformat().replace("+00:00", "Z")


def _int_weights(weights: Mapping[str, float]) -> dict[str, int]:
    return {name: int(w) if float(w).is_integer() else w for name, w in weights.items()}  # type: ignore[misc]


# A request queued for this tick: (model, x, request id, transaction id(s), amount(s), route,
# perf_counter at its start, future). A one-row request holds a str transaction id and one amount
# (the common case: nothing to expand); a multi-row one holds lists of one per row.
_Queued = tuple[Any, np.ndarray, str, Any, Any, RouteDecision | None, float, asyncio.Future[Any]]
# Parameters that name per-row ledger values; without any, a one-row request is recorded under
# its request id with no amount.
_ROW_PARAMETERS = frozenset({"transaction_ids", "transaction_id", "amounts", "amount"})
_NO_ROUTE = (None, None, None, None, None)  # a request addressed to a model directly
# What a queued request's future resolves to: its rows of `DeployedModel.decide` (FP32 scores
# and decisions), computed once per tick for the ledger and the responses alike.
_Scored = tuple[np.ndarray, np.ndarray]
_Answer = tuple[asyncio.Future[Any], _Scored]


class ExperimentPlane:
    """Routing + ledger + mirror + auth for one server. See the module docstring."""

    def __init__(
        self,
        config: FraudgateConfig,
        *,
        store: Any = None,  # fraudgate.ledger.LedgerStore | None
        writer: Any = None,  # fraudgate.ledger.DecisionWriter | None (acknowledge: commit)
        journal: Any = None,  # fraudgate.ledger.journal.Journal | None (acknowledge: journal)
        shipper: Any = None,  # the child `fraudgate ledger ship` process, if we started it
        max_pending_mirror_rows: int = MAX_PENDING_MIRROR_ROWS,
        health: Any = None,  # fraudgate.serving.supervisor.LedgerHealth | None
    ) -> None:
        spec = config.experiment_spec
        self.state: ExperimentState | None = None if spec is None else ExperimentState(spec)
        self.store = store
        self.writer = writer
        self.journal = journal
        self.shipper = shipper
        self.health = health  # shipper supervision, journal lag, stalled commits: readiness
        self.token: str | None = config.auth.token
        self.auth_inference = config.auth.inference
        self.weights_poll_s = (
            config.ledger_config.weights_poll_s if config.ledger_config is not None else 0.0
        )
        self.feedback_max_labels = (
            config.ledger_config.feedback_max_labels
            if config.ledger_config is not None
            else DEFAULT_FEEDBACK_MAX_LABELS
        )
        self.max_pending_mirror_rows = max_pending_mirror_rows
        # the data plane hands its own (one object per server) to the plane it holds
        self.auth = AdminAuth.from_config(config.auth)
        self._routes: dict[str, bool] = {}
        self._router = self.state.router if self.state is not None else None
        routing = spec.routing if spec is not None else None
        # the request parameter that carries the routing key (a non-empty string: the fast path)
        self._key_parameter = (
            routing.key if routing is not None and routing.source == "parameter" else None
        )
        from fraudgate.ledger import LedgerWriteError, WriterClosed
        from fraudgate.ledger.journal import JournalWriteError

        self._write_errors = (LedgerWriteError, WriterClosed, JournalWriteError)
        self._resolve: Callable[[str], Any] | None = None
        self._recording = writer is not None or journal is not None
        self._queued: list[_Queued] = []
        self._seen = 0  # requests queued at the previous tick
        # a tick's batch waits for stragglers at most as long as the models' own batching would
        self.max_wait_s = max((m.batching.max_wait_ms for m in config.models), default=1.0) / 1e3
        self._mirror_rows = 0  # mirror rows waiting to be scored
        self._tasks: set[asyncio.Task[None]] = set()  # commits, large batches
        self.mirror_scored = 0
        self.mirror_journaled = 0  # copies handed to the shipper (acknowledge: journal)
        self.mirror_dropped = 0
        self.recorded = {"served": 0, "mirror": 0}  # decisions made durable (or queued: mirror)
        self.record_failures = 0  # ticks whose decisions could not be recorded (answered 503)
        self.mirror_failed = 0
        self._admin_lock = asyncio.Lock()
        self._specs: dict[tuple[str, str], dict[str, Any]] = {}  # mirror models, for the journal
        self._tracking_uri = config.resolved_tracking_uri()  # named in journaled mirror copies
        self._poll_task: asyncio.Task[None] | None = None
        self._quarantine: Any = None  # cached summary of the journal's quarantine (metrics)
        if journal is not None:
            from fraudgate.ledger.quarantine import SummaryCache

            self._quarantine = SummaryCache(journal.root)

    @classmethod
    def from_config(cls, config: FraudgateConfig) -> ExperimentPlane | None:
        """Open the ledger (migrating it) and build the plane; None when nothing is configured."""
        if config.experiment_spec is None and not config.ledger_enabled:
            return None
        store = writer = journal = shipper = None
        ledger = config.ledger_config
        if config.ledger_enabled:
            from fraudgate.ledger import DecisionWriter, open_ledger
            from fraudgate.ledger.journal import Journal, spawn_shipper

            assert ledger is not None
            try:
                store = open_ledger(ledger.url)
            except Exception as exc:
                raise Unavailable(
                    f"ledger.url: cannot open the ledger at {ledger.url!r}: {exc}"
                ) from exc
            if ledger.acknowledge == "commit":
                writer = DecisionWriter(store)
            else:
                try:
                    journal = Journal(
                        ledger.journal_dir, store.ledger_id(), fsync=ledger.journal_fsync
                    )
                except OSError as exc:
                    store.close()
                    raise Unavailable(
                        f"ledger.journal_dir: cannot create a journal in {ledger.journal_dir!r}: "
                        f"{exc}"
                    ) from exc
                if ledger.shipper == "child":
                    shipper = spawn_shipper(ledger.url, ledger.journal_dir)
        health = None
        if store is not None:
            from fraudgate.serving.supervisor import LedgerHealth, ShipperSupervisor

            assert ledger is not None
            supervisor = None
            if shipper is not None:
                url, directory = ledger.url, ledger.journal_dir
                supervisor = ShipperSupervisor(lambda: spawn_shipper(url, directory), shipper)
            health = LedgerHealth(
                store,
                journal=journal,
                supervisor=supervisor,
                max_lag_s=ledger.max_lag_s,
                commit_timeout_s=ledger.commit_timeout_ms / 1000,
            )
        return cls(
            config, store=store, writer=writer, journal=journal, shipper=shipper, health=health
        )

    def bind(self, resolve: Callable[[str], Any]) -> None:
        """Give the plane the data plane's ``resolve(name) -> DeployedModel`` (for the mirror)."""
        self._resolve = resolve

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Blocking (run in a thread): reconcile the configured weights with the ledger's."""
        state, store = self.state, self.store
        if state is None or store is None:
            return
        name = state.spec.name
        configured = state.spec.weights
        history = store.weight_history(name)
        last_config = next((c for c in reversed(history) if c.actor == CONFIG_ACTOR), None)
        if last_config is None or _int_weights(last_config.weights) != configured:
            store.record_weight_change(name, configured, CONFIG_ACTOR)
            return
        latest = _int_weights(history[-1].weights)
        if latest != configured:
            try:
                state.set_weights(latest, f"{history[-1].actor} (restored from the ledger)")
                log.info("experiment %s: restored live weights %s from the ledger", name, latest)
            except ExperimentConfigError as exc:
                log.warning("experiment %s: ignoring ledger weights %s: %s", name, latest, exc)

    def start_polling(self) -> None:
        if self.health is not None:
            self.health.start()
        if self.state is not None and self.store is not None and self.weights_poll_s > 0:
            self._poll_task = asyncio.get_running_loop().create_task(self._poll_weights())

    async def _poll_weights(self) -> None:
        assert self.state is not None and self.store is not None
        name = self.state.spec.name
        while True:
            await asyncio.sleep(self.weights_poll_s)
            try:
                history = await asyncio.to_thread(self.store.weight_history, name)
            except Exception as exc:  # the database is down: keep the current weights
                log.warning("experiment %s: polling weights failed: %s", name, exc)
                continue
            if not history:
                continue
            latest = _int_weights(history[-1].weights)
            if latest == self.state.spec.weights:
                continue
            async with self._admin_lock:
                try:
                    self.state.set_weights(latest, f"{history[-1].actor} (via the ledger)")
                    log.info("experiment %s: weights %s from another replica", name, latest)
                except ExperimentConfigError as exc:
                    log.warning("experiment %s: ignoring ledger weights %s: %s", name, latest, exc)

    async def aclose(self) -> None:
        if self._poll_task is not None:
            self._poll_task.cancel()
        if self.health is not None:  # the supervisor may have replaced the shipper
            self.shipper = await self.health.stop() or self.shipper
        while self._queued or self._mirror_rows or self._tasks:  # let queued work finish
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            else:
                await asyncio.sleep(0)
        if self.writer is not None:
            await self.writer.aclose()
        if self.journal is not None:
            self.journal.close()
        if self.shipper is not None:
            from fraudgate.ledger.journal import stop_shipper

            await asyncio.to_thread(stop_shipper, self.shipper)
        if self.store is not None:
            self.store.close()

    def unready_reason(self) -> str | None:
        """Why the ledger cannot take decisions now (None: it can); see `LedgerHealth`."""
        return None if self.health is None else self.health.unready_reason()

    # -- routing ------------------------------------------------------------------------------
    def routes(self, name: str, version: str | None) -> bool:
        state = self.state
        if state is None or version is not None:
            return False
        # the answer depends on the experiment's and default model's names only, which a weight
        # change keeps: remembered per requested name (a bounded set: names the server knows)
        routed = self._routes.get(name)
        if routed is None:
            routed = state.should_route(name, False)
            if len(self._routes) < 1024:
                self._routes[name] = routed
        return routed

    def route(self, parameters: Mapping[str, Any], headers: HeadersFn | None) -> RouteDecision:
        state = self.state
        assert state is not None
        key = parameters.get(self._key_parameter) if self._key_parameter else None
        # the common case, a valid string key: straight to the current table (a bad one takes
        # the general rule, which says what is wrong with it)
        if type(key) is str and key and text_problem(key, MAX_ROUTING_KEY_CHARS) is None:
            return self._router.table.route_key(key)  # type: ignore[union-attr]
        spec = state.spec  # the general rule
        try:
            key = extract_routing_key(spec, parameters)
            if key is None and headers is not None:
                key = extract_routing_key(spec, None, headers())
        except InvalidRoutingKey as exc:
            raise InvalidInput(str(exc)) from None
        return state.route(key)

    def response_parameters(self, route: RouteDecision | None) -> dict[str, Any] | None:
        if self.state is None:
            return None
        if route is None:
            return {"experiment": None, "routing_key_hash": None}
        return {"experiment": route.experiment, "routing_key_hash": route.key_hash}

    # -- scoring, the ledger and the mirror ------------------------------------------------
    def score(
        self,
        model: Any,  # DeployedModel
        x: np.ndarray,
        request_id: str,
        parameters: Mapping[str, Any],
        route: RouteDecision | None,
        started: float,
    ) -> asyncio.Future[_Scored]:
        """Queue a request for this tick; resolves to its (scores, decisions) once they are
        durable.

        Raises InvalidInput for bad ledger parameters (transaction ids, amounts) before queuing.
        """
        n = x.shape[0]
        if n == 1 and _ROW_PARAMETERS.isdisjoint(parameters):
            transaction: Any = request_id  # the common case: nothing to parse
            amount: Any = None
        else:
            transaction = _transaction_ids(parameters, request_id, n)
            amount = _amounts(parameters, n)
            if n == 1:
                transaction, amount = transaction[0], amount[0]
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_Scored] = loop.create_future()
        if not self._queued:
            self._seen = 1  # flushed at the next tick unless more requests join meanwhile
            loop.call_soon(self._tick, loop, started)
        self._queued.append((model, x, request_id, transaction, amount, route, started, future))
        return future

    def _tick(self, loop: asyncio.AbstractEventLoop, first: float) -> None:
        """Flush at the first tick in which no request joined (or after ``max_wait``), like
        `Batcher`: under load a batch gathers what is already arriving."""
        if len(self._queued) > self._seen and time.perf_counter() - first < self.max_wait_s:
            self._seen = len(self._queued)
            loop.call_soon(self._tick, loop, first)
            return
        self._flush()

    def _flush(self) -> None:
        queued, self._queued = self._queued, []
        try:
            self._flush_queued(queued)
        except Exception as exc:  # a bug: no request may wait forever for its answer
            log.exception("scoring a batch of %d requests failed", len(queued))
            for item in queued:
                _settle(item[7], exception=exc)

    def _flush_queued(self, queued: list[_Queued]) -> None:
        by_model: dict[Any, list[_Queued]] = {}  # DeployedModel (hashed by identity) -> group
        for item in queued:
            group = by_model.get(item[0])
            if group is None:
                by_model[item[0]] = [item]
            else:
                group.append(item)
        batches: list[DecisionBatch] = []
        answers: list[_Answer] = []
        mirrored: list[_Queued] = []
        for model, group in _calls(by_model):
            x = group[0][1] if len(group) == 1 else np.concatenate([item[1] for item in group])
            if x.shape[0] > model.batcher.offload_rows:  # a huge batch: off the event loop
                self._spawn(self._flush_large(model, x, group))
                continue
            try:
                out = model.batcher.call(x)
            except Exception as exc:  # the runtime failed: every request of the group learns why
                for item in group:
                    _settle(item[7], exception=exc)
                continue
            self._scored(model, group, x, out, batches, answers, mirrored)
        self._answer(batches, answers, mirrored)

    async def _flush_large(self, model: Any, x: np.ndarray, group: list[_Queued]) -> None:
        try:
            out = await model.batcher.predict(x)
        except Exception as exc:
            for item in group:
                _settle(item[7], exception=exc)
            return
        batches: list[DecisionBatch] = []
        answers: list[_Answer] = []
        mirrored: list[_Queued] = []
        self._scored(model, group, x, out, batches, answers, mirrored)
        self._answer(batches, answers, mirrored)

    def _scored(
        self,
        model: Any,
        group: list[_Queued],
        x: np.ndarray,
        out: np.ndarray,
        batches: list[DecisionBatch],
        answers: list[_Answer],
        mirrored: list[_Queued],
    ) -> None:
        """Collect a scored group's decisions, answers and mirror copies: the copies go into
        the journal with the decisions (the shipper scores them), else to ``mirrored``."""
        copies: dict[str, list[int]] = {}  # mirror model -> rows of the group (journal)
        scores, decisions = model.decide(out)
        if out.shape[0] == len(group):  # one row per request (the common case): in C
            rows = zip(scores, decisions, strict=True)
            answers.extend(zip([item[7] for item in group], rows, strict=True))
            mirrors = [None if item[5] is None else item[5].mirror for item in group]
            if mirrors[0] is not None and mirrors.count(mirrors[0]) == len(mirrors):
                copies[mirrors[0]] = list(range(len(group)))  # every row to one model
            else:
                for row, name in enumerate(mirrors):
                    if name is not None:
                        copies.setdefault(name, []).append(row)
            if self.journal is None:
                mirrored.extend(group[row] for rows in copies.values() for row in rows)
                copies = {}
        else:
            offset = 0
            for item in group:
                n = item[1].shape[0]
                answers.append(
                    (item[7], (scores[offset : offset + n], decisions[offset : offset + n]))
                )
                route = item[5]
                if route is not None and route.mirror is not None:
                    if self.journal is None:
                        mirrored.append(item)
                    else:
                        copies.setdefault(route.mirror, []).extend(range(offset, offset + n))
                offset += n
        if self._recording:
            batch = _decision_batch(model, "served", group, scores, decisions, time.perf_counter())
            if copies:
                batch[MIRROR_KEY] = self._mirror_entries(copies, x)
            batches.append(batch)

    def _mirror_entries(self, copies: dict[str, list[int]], x: np.ndarray) -> list[Any]:
        entries = []
        for name, rows in copies.items():
            try:
                assert self._resolve is not None
                model = self._resolve(name)
            except Exception as exc:  # mirror model unloaded / not ready: drop the copies
                self.mirror_failed += len(rows)
                log.debug("mirror %s unavailable: %s", name, exc)
                continue
            spec = self._specs.get((model.name, model.version))
            if spec is None:
                spec = self._specs[(model.name, model.version)] = model_spec(
                    model, self._tracking_uri
                )
            if len(rows) == x.shape[0]:  # every row (a 100% mirror)
                entries.append(mirror_entry(spec, None, x))
            else:
                entries.append(mirror_entry(spec, rows, x[rows]))
        return entries

    def _answer(
        self,
        batches: list[DecisionBatch],
        answers: list[_Answer],
        mirrored: list[_Queued],
    ) -> None:
        """Make the decisions durable, then resolve the requests' futures (they answer), then
        queue the mirror copies (behind the answers)."""
        if batches and self.journal is not None:
            try:
                self.journal.append(batches)
            except self._write_errors as exc:
                self.record_failures += 1
                _fail(answers, exc)
                return
            for batch in batches:
                self.recorded["served"] += batch["n"]
                for entry in batch.get(MIRROR_KEY, ()):
                    self.mirror_journaled += entry_rows(batch, entry)
        elif batches and self.writer is not None:
            self._spawn(self._commit(batches, answers, mirrored))
            return
        self._settle_all(answers, mirrored)

    async def _commit(
        self,
        batches: list[DecisionBatch],
        answers: list[_Answer],
        mirrored: list[_Queued],
    ) -> None:
        from fraudgate.ledger import batch_rows

        rows = [row for b in batches for row in batch_rows(b)]
        # A bounded wait: past ledger.commit_timeout_ms the requests get 503. Their commit goes
        # on (shielded) and may still land: then the decisions are recorded though they were not
        # acknowledged, as with any 503 whose work was done; an acknowledged one is never lost.
        commit = asyncio.ensure_future(self.writer.submit_rows(rows))
        self._tasks.add(commit)
        commit.add_done_callback(self._tasks.discard)
        health = self.health
        if health is not None:
            health.track_commit(commit)
        try:
            await asyncio.wait_for(
                asyncio.shield(commit), health.commit_timeout_s if health else None
            )
        except TimeoutError:
            assert health is not None
            health.commit_timeouts += len(answers)
            self.record_failures += 1
            _fail(
                answers,
                TimeoutError(
                    f"the ledger did not commit within ledger.commit_timeout_ms="
                    f"{health.commit_timeout_s * 1000:.0f}; check that the ledger database "
                    f"{self.store.url} is reachable and not locked by another process"
                ),
            )
            return
        except self._write_errors as exc:
            self.record_failures += 1
            _fail(answers, exc)
            return
        self.recorded["served"] += len(rows)
        self._settle_all(answers, mirrored)

    def _settle_all(self, answers: list[_Answer], mirrored: list[_Queued]) -> None:
        for future, scored in answers:
            if not future.done():  # else the waiting request was cancelled (client gone)
                future.set_result(scored)
        if mirrored:
            self._queue_mirror(mirrored)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _queue_mirror(self, items: list[_Queued]) -> None:
        rows = sum(item[1].shape[0] for item in items)
        if self._mirror_rows + rows > self.max_pending_mirror_rows:
            self.mirror_dropped += rows
            return
        self._mirror_rows += rows
        # Scheduled after the answered requests' wake-ups, whose steps write their responses
        # without yielding: the copies are scored once the callers have their answers.
        asyncio.get_running_loop().call_soon(self._score_mirror, items, rows)

    def _score_mirror(self, items: list[_Queued], rows: int) -> None:
        self._mirror_rows -= rows
        by_mirror: dict[str, list[_Queued]] = {}
        for item in items:
            by_mirror.setdefault(item[5].mirror, []).append(item)  # type: ignore[union-attr]
        by_model: dict[Any, list[_Queued]] = {}
        for name, group in by_mirror.items():
            try:
                assert self._resolve is not None
                by_model[self._resolve(name)] = group
            except Exception as exc:  # mirror model unloaded / not ready: drop the copies
                self.mirror_failed += sum(item[1].shape[0] for item in group)
                log.debug("mirror %s unavailable: %s", name, exc)
        for model, group in _calls(by_model):
            name = model.name
            x = group[0][1] if len(group) == 1 else np.concatenate([item[1] for item in group])
            if x.shape[0] > _SYNC_OFFLOAD_ROWS:
                self._spawn(self._score_mirror_offloaded(model, x, group))
                continue
            start = time.perf_counter()
            try:
                out = model.batcher.call(x)
            except Exception as exc:
                self.mirror_failed += x.shape[0]
                log.warning("mirror scoring on %s failed: %s", name, exc)
                continue
            self._record_mirror(model, group, out, time.perf_counter() - start)

    async def _score_mirror_offloaded(
        self, model: Any, x: np.ndarray, group: list[_Queued]
    ) -> None:
        start = time.perf_counter()
        try:
            out = await model.batcher.predict(x)
        except Exception as exc:
            self.mirror_failed += x.shape[0]
            log.warning("mirror scoring on %s failed: %s", model.name, exc)
            return
        self._record_mirror(model, group, out, time.perf_counter() - start)

    def _record_mirror(
        self, model: Any, group: list[_Queued], out: np.ndarray, elapsed_s: float
    ) -> None:
        self.mirror_scored += out.shape[0]
        if not self._recording:
            return
        scores, decisions = model.decide(out)
        batch = _decision_batch(model, "mirror", group, scores, decisions, None, elapsed_s * 1000.0)
        try:
            if self.journal is not None:
                self.journal.append([batch])
            else:
                from fraudgate.ledger import batch_rows

                if not self.writer.record_mirror_rows(batch_rows(batch)):
                    self.mirror_dropped += batch["n"]
                    return
        except self._write_errors:
            self.mirror_dropped += batch["n"]
            return
        self.recorded["mirror"] += batch["n"]

    # -- metrics (a prometheus_client collector, read at scrape time) ---------------------------
    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        if self.health is not None:
            yield from self.health.collect()
        if self.state is not None:
            spec = self.state.spec
            weights = GaugeMetricFamily(
                "fraudgate_experiment_weight",
                "Live traffic weight of each candidate of the experiment.",
                labels=["experiment", "model"],
            )
            for name, weight in spec.weights.items():
                weights.add_metric([spec.name, name], weight)
            yield weights
        mirror = CounterMetricFamily(
            "fraudgate_mirror_rows",
            "Mirrored rows: journaled (for the shipper to score), scored in shadow (by this "
            "server), dropped (queue full or not recordable), failed.",
            labels=["outcome"],
        )
        for outcome, value in (
            ("journaled", self.mirror_journaled),
            ("scored", self.mirror_scored),
            ("dropped", self.mirror_dropped),
            ("failed", self.mirror_failed),
        ):
            mirror.add_metric([outcome], value)
        yield mirror
        if self._recording:
            recorded = CounterMetricFamily(
                "fraudgate_ledger_decisions",
                "Decisions recorded: served ones durable before their response (journal or "
                "commit), mirror ones journaled or queued for the commit.",
                labels=["role"],
            )
            for role, value in self.recorded.items():
                recorded.add_metric([role], value)
            yield recorded
            yield CounterMetricFamily(
                "fraudgate_ledger_write_failures",
                "Batches of served decisions that could not be recorded (answered 503).",
                value=self.record_failures,
            )
        if self._quarantine is not None:  # journal lines the store refused (at most 1 read/s)
            held = self._quarantine.get()
            yield GaugeMetricFamily(
                "fraudgate_ledger_quarantined_lines",
                "Journal lines the ledger store refused (their data), set aside in quarantine: "
                "see `fraudgate ledger quarantine`.",
                value=held.lines,
            )
            yield GaugeMetricFamily(
                "fraudgate_ledger_quarantined_rows",
                "Decisions in the quarantined journal lines (not in the ledger until re-shipped).",
                value=held.rows,
            )

    # -- auth ---------------------------------------------------------------------------------
    def check_token(self, authorization: str | None) -> None:
        """Raise Unauthorized unless ``authorization`` is ``Bearer <the configured token>``."""
        self.auth.check(authorization)

    # -- feedback -----------------------------------------------------------------------------
    async def feedback(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Validate and store a batch of labels; the answer is a summary: counts, plus the first
        ``FEEDBACK_LISTED`` unknown ids and rejected fields (an answer stays small whatever the
        batch). Validation runs off the event loop: a large batch never stalls inference."""
        from fraudgate.ledger import validate_label_rows

        store = self._ledger()
        rows = body.get("labels")
        if not isinstance(rows, list):
            raise InvalidInput(
                "labels: expected a list of {transaction_id, is_fraud, label_time, amount?}, "
                f"received {type(rows).__name__ if rows is not None else 'nothing'}"
            )
        if len(rows) > self.feedback_max_labels:
            raise PayloadTooLarge(
                f"labels: expected at most {self.feedback_max_labels} labels per request "
                f"(ledger.feedback_max_labels), received {len(rows)}; send them in batches"
            )
        actor = check_actor(body.get("actor", FEEDBACK_ACTOR))
        if len(rows) > _INLINE_LABELS:
            labels, errors = await asyncio.to_thread(validate_label_rows, rows)
        else:
            labels, errors = validate_label_rows(rows)
        inserted = updated = unchanged = 0
        unknown: tuple[str, ...] = ()
        if labels:
            await self._wait_shipped()  # so decisions this server acknowledged are not "unknown"
            try:
                result = await asyncio.to_thread(store.upsert_labels, labels, actor)
            except InvalidInput:
                raise
            except Exception as exc:
                raise Unavailable(f"the labels could not be stored in the ledger: {exc}") from exc
            inserted, updated, unchanged = result.inserted, result.updated, result.unchanged
            unknown = result.unknown_transaction_ids
        return {
            "inserted": inserted,
            "updated": updated,
            "unchanged": unchanged,
            "unknown_count": len(unknown),
            "unknown_transaction_ids": list(unknown[:FEEDBACK_LISTED]),
            "rejected_count": len(errors),
            "rejected": [error.to_dict() for error in errors[:FEEDBACK_LISTED]],
        }

    async def _wait_shipped(self, timeout_s: float = 10.0) -> None:
        """Wait (bounded) until the shipper has moved what this process journaled so far."""
        journal, store = self.journal, self.store
        if journal is None or store is None:
            return
        segment, size = journal.position()
        path = journal.root / segment
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and path.exists():
            offsets = await asyncio.to_thread(store.journal_offsets, segment)
            if offsets.get(segment, 0) >= size:
                return
            await asyncio.sleep(0.02)

    def _ledger(self) -> Any:
        if self.store is None:
            raise Unavailable(
                "no decision ledger is configured; add a `ledger:` section to the config"
            )
        return self.store

    # -- admin --------------------------------------------------------------------------------
    def _experiment(self, name: str) -> ExperimentState:
        state = self.state
        if state is None or state.spec.name != name:
            known = [] if state is None else [state.spec.name]
            raise ModelNotFound(
                f"experiment {preview(name)}: unknown experiment; expected one of {known}"
            )
        return state

    async def experiment_view(self, name: str) -> dict[str, Any]:
        state = self._experiment(name)
        if self.store is not None:
            try:
                changes = await asyncio.to_thread(self.store.weight_history, name)
            except Exception as exc:
                raise Unavailable(f"the ledger could not be read: {exc}") from exc
            history = []
            previous: dict[str, Any] = {}
            for change in changes:
                new = _int_weights(change.weights)
                history.append(
                    {"at": _iso(change.at), "actor": change.actor, "old": previous, "new": new}
                )
                previous = new
        else:
            history = [
                {"at": _iso(c.at), "actor": c.actor, "old": c.old, "new": c.new}
                for c in state.history
            ]
        return {
            "experiment": state.spec.to_config(),
            "generation": state.generation,
            "history": history,
        }

    async def set_weights(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        state = self._experiment(name)
        weights = body.get("weights")
        actor = body.get("actor", "admin-api")
        check_actor(actor)
        async with self._admin_lock:
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
        return {
            "at": _iso(change.at),
            "actor": change.actor,
            "old": change.old,
            "new": change.new,
            "generation": change.generation,
        }


# -- decision batches -------------------------------------------------------------------------


def _decision_batch(
    model: Any,  # DeployedModel
    role: str,
    group: list[_Queued],
    scores: np.ndarray,
    decisions: np.ndarray,
    now: float | None,
    latency_ms: float = 0.0,
) -> DecisionBatch:
    """The decisions of one model's runtime call on ``group``, in columns.

    ``scores`` and ``decisions``: `DeployedModel.decide`'s, the FP32 scores and the decisions the
    responses carry. Latency: per request up to ``now`` (served), else ``latency_ms`` (mirror).
    """
    rows: list[Any] = group
    if scores.shape[0] != len(group):  # multi-row requests: one entry per row
        rows = [
            (None, None, request_id, row_transaction, row_amount, route, started, None)
            for _, _, request_id, transaction, amount, route, started, _ in group
            for row_transaction, row_amount in _per_row(transaction, amount)
        ]
    # columns by transposing (in C): the per-tick cost of recording stays small
    _, _, request_ids, transactions, amounts, routes, starts, _ = zip(*rows, strict=True)
    experiments: Any
    arms: Any
    if None in routes:  # some requests addressed a model directly
        experiments, arms, _, keys, _ = zip(*[route or _NO_ROUTE for route in routes], strict=True)
    else:  # one experiment per server, and a group is one served model: one arm
        experiments, arms = routes[0].experiment, routes[0].model
        keys = [route.key_hash for route in routes]
    if now is None:
        latencies = [latency_ms] * len(rows)
    else:
        latencies = [(now - started) * 1000.0 for started in starts]
    return {
        "n": scores.shape[0],
        "request_id": request_ids,
        "transaction_id": transactions,
        "decided_at": time.time(),
        "experiment": experiments,
        "arm": arms,
        "role": role,
        "model_name": model.name,
        "model_version": model.version,
        "score": scores.reshape(-1).tolist(),
        "threshold": model.threshold,
        "is_fraud_decision": decisions.reshape(-1).tolist(),
        "latency_ms": latencies,
        "amount": amounts,
        "routing_key_hash": keys,
    }


def _calls(by_model: dict[Any, list[_Queued]]) -> Iterator[tuple[Any, list[_Queued]]]:
    """Each model's requests in runtime calls of at most ``batching.max_batch_size`` rows (a
    request of more rows is a call on its own), as the model's `Batcher` cuts them."""
    for model, group in by_model.items():
        limit = model.batcher.max_batch_size
        call: list[_Queued] = []
        rows = 0
        for item in group:
            n = item[1].shape[0]
            if call and rows + n > limit:
                yield model, call
                call, rows = [], 0
            call.append(item)
            rows += n
        if call:
            yield model, call


def _per_row(transaction: Any, amount: Any) -> Any:
    """(transaction id, amount) of each row of a queued request."""
    if type(transaction) is str:
        return ((transaction, amount),)
    return zip(transaction, amount, strict=True)


def _settle(
    future: asyncio.Future[Any], result: Any = None, exception: BaseException | None = None
) -> None:
    if future.done():  # the waiting request was cancelled (client gone)
        return
    if exception is not None:
        future.set_exception(exception)
    else:
        future.set_result(result)


def _fail(answers: list[_Answer], exc: BaseException) -> None:
    error = Unavailable(f"the decision could not be recorded: {exc}")
    for future, _ in answers:
        _settle(future, exception=error)


# -- request parameters -----------------------------------------------------------------------

# Request ids the server generates are ordered (like UUIDv7): 12 hex digits of the process's
# start time in Unix milliseconds, 10 of a per-process random nonce, then a per-process counter
# in 10 decimal digits (from 10**9; cheaper to format than hex) -- 32 hex digits, unique across
# processes and restarts. Ordered keys append at the right edge of the ledger's transaction_id
# index (a request without a transaction id is recorded under its request id); random ones
# (uuid4) touch a random B-tree page per row, several times the insert cost. After 9e9 requests
# the counter grows an 11th digit: the ids stay unique, only no longer ordered.
_REQUEST_PREFIX = f"{int(time.time() * 1000):012x}{os.urandom(5).hex()}"
_request_counter = itertools.count(10**9)


def new_request_id() -> str:
    return _REQUEST_PREFIX + str(next(_request_counter))


def _list_parameter(parameters: Mapping[str, Any], name: str) -> Any:
    """A list parameter; gRPC parameters hold only scalars, so a JSON array string is one too."""
    value = parameters.get(name)
    if isinstance(value, str) and value.startswith("["):
        with contextlib.suppress(orjson.JSONDecodeError):
            return orjson.loads(value)
    return value


def _transaction_ids(parameters: Mapping[str, Any], request_id: str, n: int) -> list[str]:
    ids = _list_parameter(parameters, "transaction_ids")
    if ids is not None:
        if not isinstance(ids, list) or len(ids) != n:
            raise InvalidInput(
                f"parameters.transaction_ids: expected a list of {n} strings (one per row), "
                f"received {_preview(ids)}"
            )
        out = []
        for i, value in enumerate(ids):
            out.append(check_id(value, f"parameters.transaction_ids[{i}]"))
        return out
    single = parameters.get("transaction_id")
    if single is not None:
        if n != 1:
            raise InvalidInput(
                f"parameters.transaction_id: names one transaction but the request has {n} rows; "
                "expected parameters.transaction_ids (a list of one id per row)"
            )
        return [check_id(single, "parameters.transaction_id")]
    if n == 1:
        return [request_id]
    longest = len(request_id) + 1 + len(str(n - 1))
    if longest > MAX_ID_CHARS:  # the rows' ids must fit the ledger like any other id
        raise InvalidInput(
            f"id: the {n} rows of a request without parameters.transaction_ids are recorded as "
            f"'<id>:<row>', at most {MAX_ID_CHARS} characters; expected an id of at most "
            f"{MAX_ID_CHARS - longest + len(request_id)} characters, received "
            f"{len(request_id)} (or send parameters.transaction_ids)"
        )
    return [f"{request_id}:{row}" for row in range(n)]


def _amounts(parameters: Mapping[str, Any], n: int) -> list[float | None]:
    many = _list_parameter(parameters, "amounts")
    if many is not None:
        if not isinstance(many, list) or len(many) != n:
            raise InvalidInput(
                f"parameters.amounts: expected a list of {n} numbers (one per row), "
                f"received {_preview(many)}"
            )
        return [_amount(v, f"parameters.amounts[{i}]") for i, v in enumerate(many)]
    one = parameters.get("amount")
    if one is None:
        return [None] * n
    if n != 1:
        raise InvalidInput(
            f"parameters.amount: one amount for {n} rows; expected parameters.amounts "
            "(a list of one amount per row)"
        )
    return [_amount(one, "parameters.amount")]


def _amount(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"{where}: expected a finite number, received {_preview(value)}")
    return float(value)


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
