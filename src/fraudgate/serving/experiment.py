"""The experiment plane: what a server adds to plain serving when it has an experiment or a ledger.

One :class:`ExperimentPlane` per server, built from the config's ``experiment:``, ``ledger:`` and
``auth:`` sections (`ExperimentPlane.from_config`, which opens the ledger); without them there is
none and the data plane serves plainly. It composes the parts, each a module of its own:

* `fraudgate.serving.routing`: the experiment's arms, sticky key and live weights;
* `fraudgate.serving.recording`: decisions made durable (journal or commit) before the answer;
* `fraudgate.serving.shadow`: the mirror copies (journaled for the shipper, or scored here);
* `fraudgate.serving.scheduler`: the per-tick scheduler, given the recorder and the mirror;
* `fraudgate.serving.admin` and `fraudgate.serving.feedback`: the admin and feedback handlers;
* `fraudgate.serving.supervisor`: the ledger pipeline's health (shipper, lag, stalled commits);
* `fraudgate.serving.metrics.PlaneCollector`: their metrics.

The transports call the handlers here (`feedback`, `experiment_view`, `set_weights`, `dashboard`,
`promote`, `rollback`, behind `check_token`; promotion is `fraudgate.serving.promote`); the data
plane gets the scheduler (`bind`) and the routing (`routing`).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from fraudgate.config import DEFAULT_FEEDBACK_MAX_LABELS, FraudgateConfig, ModelConfig
from fraudgate.experiments import ExperimentState
from fraudgate.protocol.errors import Unavailable
from fraudgate.serving.admin import ExperimentAdmin
from fraudgate.serving.auth import AdminAuth
from fraudgate.serving.feedback import FeedbackHandler
from fraudgate.serving.metrics import PlaneCollector
from fraudgate.serving.promote import PromotionAdmin
from fraudgate.serving.recording import CommitRecorder, JournalRecorder, NoRecorder
from fraudgate.serving.routing import HeadersFn, Routing
from fraudgate.serving.scheduler import Scheduler, Tasks
from fraudgate.serving.shadow import (
    MAX_PENDING_MIRROR_ROWS,
    JournaledMirror,
    MirrorCounts,
    ShadowScorer,
)

if TYPE_CHECKING:
    from prometheus_client.core import Metric

__all__ = ["ExperimentPlane", "HeadersFn"]


class ExperimentPlane:
    """Routing + ledger + mirror + admin for one server. See the module docstring."""

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
        self.config = config  # the dashboard evaluates the experiment with it
        self.state: ExperimentState | None = None if spec is None else ExperimentState(spec)
        self.store = store
        self.writer = writer
        self.journal = journal
        self.shipper = shipper
        self.health = health  # shipper supervision, journal lag, stalled commits: readiness
        self.token: str | None = config.auth.token
        # the data plane hands its own (one object per server) to the plane it holds
        self.auth = AdminAuth.from_config(config.auth)
        ledger = config.ledger_config
        self.routing: Routing | None = None
        if self.state is not None:
            poll_s = ledger.weights_poll_s if ledger is not None else 0.0
            self.routing = Routing(self.state, store, poll_s)
        self.tasks = Tasks()  # commits, offloaded batches
        self.mirror_counts = MirrorCounts()
        self.recorder: Any = NoRecorder()
        if journal is not None:
            self.recorder = JournalRecorder(journal, self.mirror_counts)
        elif writer is not None:
            url = store.url if store is not None else "?"
            self.recorder = CommitRecorder(writer, health, url, self.tasks)
        self.max_pending_mirror_rows = max_pending_mirror_rows
        self._dashboard: Any = None  # fraudgate.ui.source.DashboardSource, made on first use
        # the data plane's background gauges (fraudgate.serving.monitoring.Monitor), handed over
        # by the data plane: the dashboard's estimate and drift panels read them
        self.monitor: Any = None
        self._mirrors = spec is not None and spec.mirror is not None and spec.mirror.percent > 0
        self._tracking_uri = config.resolved_tracking_uri()  # named in journaled mirror copies
        self.mirror: JournaledMirror | ShadowScorer | None = None
        self.scheduler: Scheduler | None = None
        self.admin = ExperimentAdmin(self.routing, store)
        self.promotion = PromotionAdmin(config, self.admin)
        max_labels = (
            ledger.feedback_max_labels if ledger is not None else DEFAULT_FEEDBACK_MAX_LABELS
        )
        self.feedback_handler = FeedbackHandler(store, journal, max_labels)
        quarantine = None
        if journal is not None:  # a cached summary of the journal's quarantine (metrics)
            from fraudgate.ledger.quarantine import SummaryCache

            quarantine = SummaryCache(journal.root)
        self._collector = PlaneCollector(
            health=health,
            state=self.state,
            recorder=self.recorder,
            mirror=self.mirror_counts,
            quarantine=quarantine,
            routing=self.routing,
            feedback=self.feedback_handler if store is not None else None,
        )

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

    def bind(self, resolve: Callable[[str], Any]) -> Scheduler:
        """The scheduler of this plane's recorder and mirror; ``resolve(name) -> DeployedModel``
        is the data plane's (the mirror models are looked up by name)."""
        if self._mirrors:
            if self.journal is not None:
                self.mirror = JournaledMirror(resolve, self.mirror_counts, self._tracking_uri)
            else:
                self.mirror = ShadowScorer(
                    resolve,
                    self.recorder,
                    self.mirror_counts,
                    self.tasks,
                    self.max_pending_mirror_rows,
                )
        self.scheduler = Scheduler(self.recorder, self.mirror, self.tasks)

        def served(name: str) -> str | None:  # the MLflow version behind a serving name
            try:
                deployed = resolve(name)
            except Exception:
                return None
            return str(deployed.metadata["parameters"]["mlflow_model_version"]) or None

        self.promotion.served = served
        return self.scheduler

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Blocking (run in a thread): reconcile the configured weights with the ledger's."""
        if self.routing is not None:
            self.routing.reconcile()

    def pinned_models(self) -> tuple[ModelConfig, ...] | None:
        """Blocking: the config's models pinned to the versions the ledger's last promotion or
        rollback left (None: no act recorded, serve the config as it is); PromotionConflict when
        the registry disagrees (`fraudgate.promotion.startup_models`)."""
        if self.store is None or self.state is None:
            return None
        from fraudgate.promotion import last_act, recorded_state, startup_models

        previous = last_act(self.store, self.state.spec.name)
        state = recorded_state(previous)
        if state is None:
            return None
        aliases = self.promotion.registry().aliases()
        return startup_models(self.promotion.config, state, aliases, previous)

    def start_polling(self) -> None:
        if self.health is not None:
            self.health.start()
        if self.routing is not None:
            self.routing.start_polling()

    async def aclose(self) -> None:
        """Stop polling, let queued work finish (answers, mirror copies, commits), then close
        the recorder, the shipper and the store."""
        if self.routing is not None:
            self.routing.stop_polling()
        if self.health is not None:  # the supervisor may have replaced the shipper
            self.shipper = await self.health.stop() or self.shipper
        while self._busy():
            if self.tasks:
                await self.tasks.wait()
            else:
                await asyncio.sleep(0)
        await self.recorder.aclose()
        if self.shipper is not None:
            from fraudgate.ledger.journal import stop_shipper

            await asyncio.to_thread(stop_shipper, self.shipper)
        if self.store is not None:
            self.store.close()

    def _busy(self) -> bool:
        scheduler, mirror = self.scheduler, self.mirror
        return bool(
            self.tasks
            or (scheduler is not None and scheduler.pending)
            or (mirror is not None and mirror.pending)
        )

    def unready_reason(self) -> str | None:
        """Why the ledger cannot take decisions now (None: it can); see `LedgerHealth`."""
        return None if self.health is None else self.health.unready_reason()

    # -- handlers the transports call ---------------------------------------------------------
    def check_token(self, authorization: str | None) -> None:
        """Raise Unauthorized unless ``authorization`` is ``Bearer <the configured token>``."""
        self.auth.check(authorization)

    async def feedback(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Store a batch of labels (see `fraudgate.serving.feedback`)."""
        return await self.feedback_handler.feedback(body)

    async def experiment_view(self, name: str) -> dict[str, Any]:
        return await self.admin.view(name)

    async def set_weights(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        change = await self.admin.set_weights(name, body)
        self.invalidate_dashboard()
        return change

    def invalidate_dashboard(self) -> None:
        """After an admin action: the dashboard's next read evaluates anew (history included)."""
        if self._dashboard is not None:
            self._dashboard.invalidate()

    async def dashboard(self) -> dict[str, Any]:
        """The dashboard's JSON (``GET /ui/api/dashboard``): the live weights, the pipeline's
        health and the monitoring's estimate and drift (`fraudgate.serving.panels`) as they are
        now, the evaluation as cached by `fraudgate.ui.source` (computed in a worker thread, at
        most once per few seconds whatever the polling rate)."""
        from fraudgate.ui.source import DashboardSource
        from fraudgate.ui.view import LiveExperiment, dashboard_json, dashboard_view

        if self.state is None:
            raise Unavailable(
                "no experiment is configured, so the dashboard has nothing to show; add an "
                "`experiment:` section to the config"
            )
        if self._dashboard is None:
            estimate = drift = None
            if self.monitor is not None:
                from fraudgate.serving.panels import drift_panel, estimate_panel

                estimate = functools.partial(estimate_panel, self.monitor)
                drift = functools.partial(drift_panel, self.monitor)
            self._dashboard = DashboardSource(
                self.config, self.store, estimate=estimate, drift=drift
            )
        snapshot = await self._dashboard.snapshot()
        panels = self._dashboard.panels()  # now, on the loop: the figures /metrics has now
        spec = self.state.spec
        live = LiveExperiment(
            name=spec.name,
            generation=self.state.generation,
            weights={c.name: float(c.weight) for c in spec.candidates},
            default=spec.default,
            mirror_percent=0 if spec.mirror is None else spec.mirror.percent,
        )
        view = dashboard_view(
            live,
            self._pipeline_status(),
            snapshot,
            refresh_s=self._dashboard.ttl_s,
            estimated=panels.estimated,
            drift=panels.drift,
        )
        return dashboard_json(view)

    def _pipeline_status(self) -> Any:  # fraudgate.ui.view.PipelineStatus
        from fraudgate.ui.view import PipelineStatus

        ledger = self.config.ledger_config
        if self.store is None or ledger is None:
            return PipelineStatus(acknowledge="none")
        health = self.health
        if self.journal is None:
            return PipelineStatus(
                acknowledge="commit",
                unready_reason=None if health is None else health.unready_reason(),
            )
        supervisor = None if health is None else health.supervisor
        return PipelineStatus(
            acknowledge="journal",
            unready_reason=None if health is None else health.unready_reason(),
            journal_lag_s=None if health is None else health.lag.seconds,
            journal_lag_bytes=None if health is None else health.lag.bytes,
            shipper=ledger.shipper,
            shipper_up=None if supervisor is None else supervisor.up,
            shipper_restarts=None if supervisor is None else supervisor.restarts,
        )

    async def promote(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        result = await self.promotion.act("promote", name, body)
        self.invalidate_dashboard()
        return result

    async def rollback(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        result = await self.promotion.act("rollback", name, body)
        self.invalidate_dashboard()
        return result

    # -- metrics (a prometheus_client collector, read at scrape time) ---------------------------
    def collect(self) -> Iterator[Metric]:
        return self._collector.collect()
