"""The server's background gauges: traffic share, label-joined and estimated performance, drift.

Nothing here runs per request or per scrape. The hot path only bumps plain counters
(`fraudgate.serving.metrics.ModelMetrics`: rows served per arm, decisions, summed scores) and, for
a model whose registry version carries a drift reference, keeps a reference to each scored batch
(one deque append per runtime call, `LiveSample.keep`). One task on the event loop wakes every
``monitoring.refresh_s`` and:

* reads the counters into a ring of readings, so a window (``traffic_window_s``) is the
  difference of two readings: the observed traffic share of each arm and its deviation from the
  live weights' share, and the label-free estimated precision and recall
  (`fraudgate.analysis.estimated`);
* moves the kept batches into each model's ring of its ``drift_sample_rows`` most recent rows
  and, every ``drift_refresh_s`` when new rows came, recomputes PSI and KS per feature and for
  the score (`fraudgate.analysis.drift`) in a thread (it reads the whole ring: by far the
  monitoring's largest cost, bench/README.md);
* every ``ledger_refresh_s``, with a ledger and an experiment, reads the experiment's counts of
  the last ``label_window_days`` (`LedgerStore.experiment_counts`, in a thread): per arm the
  label-joined precision, recall, labelled frauds, pending decisions, label coverage and alert
  rate, and the champion/challenger disagreement on the paired (shadow) transactions;
* every ``rollup_interval_s`` (not 0), with a ledger and an experiment, counts the experiment's
  closed days into the ledger's count cache as the report reads them
  (`fraudgate.evaluation.roll_up`, its own task and thread: 25-45 s on a cold 10-million
  ledger, then the open days only), so that no report pays for the days already closed.

Scrapes read the cached results (`Monitor.collect`). A figure with nothing behind it (no labelled
alert, no traffic in the window, too few rows for drift) is NaN.

``monitoring.enabled: false``: no live samples, no task, no gauges (`Monitor.collect` yields
nothing and the data plane does not register it).

Label sets are bounded: models are the configured ones and the experiment's arms, features the
reference's 30 contract names plus ``score``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from fraudgate.analysis.drift import (
    DriftReference,
    DriftResult,
    DriftThresholds,
    drift,
    level,
    prepare,
)
from fraudgate.analysis.estimated import ExpectedCounts
from fraudgate.config import FraudgateConfig, MonitoringConfig
from fraudgate.promotion import champion_and_challenger

if TYPE_CHECKING:
    from prometheus_client.core import Metric

    from fraudgate.evaluation import Rollup
    from fraudgate.serving.metrics import ServerMetrics

log = logging.getLogger(__name__)

NAN = math.nan
T = TypeVar("T")
_KEEP_ROWS = 256  # rows of a bigger batch kept for drift (a view would pin the whole batch)
_PENDING_BATCHES = 4096  # batches kept between two refreshes (older ones are dropped)
# The metrics (as PromQL names them) that `Monitor.collect` exports, none of them when
# ``monitoring.enabled`` is false: `fraudgate export prometheus` then leaves out the alerts that
# read them (tests keep this equal to what collect yields and a real server exposes).
MONITOR_METRICS = frozenset(
    {
        "fraudgate_drift_features_over_threshold",
        "fraudgate_drift_ks_statistic",
        "fraudgate_drift_psi",
        "fraudgate_drift_sample_rows",
        "fraudgate_experiment_served_total",
        "fraudgate_experiment_traffic_share",
        "fraudgate_experiment_traffic_share_deviation",
        "fraudgate_label_coverage_ratio",
        "fraudgate_label_pending_decisions",
        "fraudgate_ledger_rollup_duration_seconds",
        "fraudgate_ledger_rollup_failures_total",
        "fraudgate_ledger_rollup_last_success_timestamp_seconds",
        "fraudgate_model_alert_rate",
        "fraudgate_model_estimated_precision",
        "fraudgate_model_estimated_recall",
        "fraudgate_model_labelled_frauds",
        "fraudgate_model_precision",
        "fraudgate_model_recall",
        "fraudgate_shadow_disagreement_ratio",
    }
)


def in_daemon_thread(work: Callable[[], T]) -> asyncio.Future[T]:
    """``work`` in a daemon thread of its own, its result (or error) in the returned future.

    Not the loop's default executor: its threads are joined when the loop closes, so a roll-up
    of a cold 10-million ledger (25-45 s) would hold up the server's stop. A daemon thread dies
    with the process; its write transaction, unfinished, is rolled back by the database."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(outcome: Callable[[], object]) -> None:
        if not future.done():  # not cancelled meanwhile
            outcome()

    def run() -> None:
        outcome: Callable[[], object]
        try:
            result = work()
        except BaseException as exc:  # handed to the future, which the caller reads
            outcome = partial(future.set_exception, exc)
        else:
            outcome = partial(future.set_result, result)
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits for it
            loop.call_soon_threadsafe(settle, outcome)

    threading.Thread(target=run, name="fraudgate-rollup", daemon=True).start()
    return future


@dataclass(slots=True)
class RollupGauges:
    """The background roll-up's last outcome, for the scrape (NaN: none finished yet)."""

    last_success: float = NAN  # epoch seconds
    seconds: float = NAN  # wall time of the last finished one
    failures: int = 0


class LiveSample:
    """One model's most recent scored rows (a ring of ``rows``), against its drift reference."""

    def __init__(self, reference: DriftReference, rows: int) -> None:
        self.reference = reference
        self.prepared = prepare(reference)  # its columns as arrays, converted once
        self.n_features = len(reference.columns) - 1
        self.pending: deque[tuple[np.ndarray, np.ndarray]] = deque(maxlen=_PENDING_BATCHES)
        self.x = np.zeros((rows, self.n_features), dtype=np.float32)
        self.scores = np.zeros(rows, dtype=np.float64)
        self.filled = 0
        self.moved = 0  # rows moved in since the start (drift is recomputed when it grew)
        self._next = 0

    def keep(self, x: np.ndarray, scores: np.ndarray) -> None:
        """The hot path's part: keep a scored batch until the next refresh."""
        if x.shape[0] > _KEEP_ROWS:
            x = x[:_KEEP_ROWS].copy()
        # always a copy of the scores: a runtime may answer in a buffer it reuses for the next
        # call (a kept view then drifts to later batches' scores before the refresh reads it)
        self.pending.append((x, np.array(scores[:_KEEP_ROWS], dtype=np.float32)))

    def drain(self) -> int:
        """Move the kept batches into the ring, all at once (one copy, not one per batch);
        returns the rows moved."""
        pending = self.pending
        if not pending:
            return 0
        batches = [pending.popleft() for _ in range(len(pending))]
        moved = sum(b[0].shape[0] for b in batches)
        size = self.x.shape[0]
        if moved > size:  # copy only the most recent batches that fill the ring
            rows = first = 0
            for first in range(len(batches) - 1, -1, -1):
                rows += batches[first][0].shape[0]
                if rows >= size:
                    break
            batches = batches[first:]
        if len(batches) == 1:
            x, scores = batches[0]
        else:
            x = np.concatenate([b[0] for b in batches])
            scores = np.concatenate([b[1].reshape(-1) for b in batches])
        n = min(x.shape[0], size)
        # the score as answered (FP32 on the wire), so the gauge is what clients were told
        x, scores = x[-n:], scores.reshape(-1)[-n:]
        end = self._next + n
        if end <= size:
            self.x[self._next : end] = x
            self.scores[self._next : end] = scores
        else:
            first = size - self._next
            self.x[self._next :] = x[:first]
            self.scores[self._next :] = scores[:first]
            self.x[: n - first] = x[first:]
            self.scores[: n - first] = scores[first:]
        self._next = end % size
        self.filled = min(size, self.filled + n)
        self.moved += moved
        return moved

    def drift(self) -> list[DriftResult]:
        """PSI and KS of the ring's rows (blocking: run it in a thread)."""
        n = self.filled
        return drift(self.reference, self.x[:n], self.scores[:n], self.prepared)


@dataclass(frozen=True, slots=True)
class Reading:
    """The counters at one moment: rows served per arm and each model's estimate counters."""

    at: float  # monotonic
    served: dict[str, float]
    expected: dict[str, ExpectedCounts]


@dataclass(frozen=True, slots=True)
class ArmGauges:
    """One arm's label-joined figures over the label window (from the ledger's counts)."""

    precision: float
    recall: float
    labelled_frauds: int
    pending: int
    coverage: float
    alert_rate: float


@dataclass(frozen=True, slots=True)
class LedgerGauges:
    """What the last ledger read gave: per arm, and the paired disagreement."""

    arms: dict[str, ArmGauges]
    disagreement: float
    paired: int


class Monitor:
    """The background gauges of one server (see the module docstring).

    ``deployed()`` returns the deployed models (`DeployedModel`: ``name``, ``metrics``,
    ``sample``); ``store`` is the ledger (None: no label-joined gauges)."""

    def __init__(
        self,
        config: FraudgateConfig,
        metrics: ServerMetrics,
        deployed: Callable[[], Iterable[Any]],
        *,
        state: Any = None,  # fraudgate.experiments.ExperimentState | None
        store: Any = None,  # fraudgate.ledger.LedgerStore | None
    ) -> None:
        self.settings: MonitoringConfig = config.monitoring
        self.thresholds = DriftThresholds(self.settings.psi_warning, self.settings.psi_alert)
        self.metrics = metrics
        self.deployed = deployed
        self.state = state
        self.store = store if state is not None else None
        self.config = config
        self.maturity_s = config.analysis.maturity_s
        self.pair: tuple[str, str] | None = None
        if state is not None:
            with contextlib.suppress(Exception):  # no challenger: no paired figures
                self.pair = champion_and_challenger(state.spec, config.analysis)
        self.models = tuple(m.name for m in config.models)
        keep = math.ceil(self.settings.traffic_window_s / self.settings.refresh_s) + 2
        self.readings: deque[Reading] = deque(maxlen=keep)
        self.drift: dict[str, list[DriftResult]] = {}  # model name -> per column
        self.ledger: LedgerGauges | None = None
        self.ledger_error: str | None = None
        self._ledger_at = -math.inf
        self._rollup_at = -math.inf
        self._rollup: asyncio.Future[Rollup | None] | None = None
        self.rollups = RollupGauges()
        self._drift_at = -math.inf
        # per model, (its sample, rows moved into it) at the last drift
        self._drift_seen: dict[str, tuple[int, int]] = {}
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    def sample_for(self, reference: DriftReference | None) -> LiveSample | None:
        """A live sample for a newly loaded model with a drift reference (None: without, or
        monitoring off)."""
        if reference is None or not self.settings.enabled:
            return None
        return LiveSample(reference, self.settings.drift_sample_rows)

    def start(self) -> None:
        if self._task is None and self.settings.enabled:
            self.readings.append(self._read())
            self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        for task in (self._task, self._rollup):
            if task is not None:
                task.cancel()
        self._task = self._rollup = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.settings.refresh_s)
            try:
                await self.refresh()
            except Exception:  # a bug must not end the monitoring
                log.exception("refreshing the monitoring gauges failed")

    async def refresh(self) -> None:
        """One round: a counter reading, the drift, and (when due) the ledger's counts."""
        self.readings.append(self._read())
        now = time.monotonic()
        due = now - self._drift_at >= self.settings.drift_refresh_s
        samples = {}
        for model in self.deployed():
            sample = getattr(model, "sample", None)
            if sample is not None:
                sample.drain()
                if sample.filled >= self.settings.drift_min_rows:
                    samples[model.name] = sample
        seen = {name: (id(sample), sample.moved) for name, sample in samples.items()}
        if samples and due and seen != self._drift_seen:  # due, and new rows since
            self._drift_at, self._drift_seen = now, seen
            self.drift = await asyncio.to_thread(
                lambda: {name: sample.drift() for name, sample in samples.items()}
            )
        self._maybe_roll_up(now)
        if self.store is not None and now - self._ledger_at >= self.settings.ledger_refresh_s:
            self._ledger_at = now
            try:
                self.ledger = await asyncio.to_thread(self._ledger_gauges)
                self.ledger_error = None
            except Exception as exc:  # the database is down: keep the last figures
                self.ledger_error = str(exc)
                log.warning("reading the experiment's counts from the ledger failed: %s", exc)

    def _maybe_roll_up(self, now: float) -> None:
        """Start a roll-up when one is due and none is running (it may take a minute: the
        refresh goes on meanwhile; a failure is logged and retried at the next interval)."""
        interval = self.settings.rollup_interval_s
        if self.store is None or not interval or now - self._rollup_at < interval:
            return
        if self._rollup is not None and not self._rollup.done():
            return
        self._rollup_at = now
        config, store, name = self.config, self.store, self.state.spec.name

        def run() -> Rollup | None:
            if not store.count_cache_status(name).applies:
                return None  # a small ledger: the report counts it live, nothing to keep
            # imported here: the statistics (scipy, statsmodels) would add ~1.4 s to a start
            from fraudgate.evaluation import registry_references, roll_up

            return roll_up(config, store, references=registry_references(config))

        def done(task: asyncio.Future[Rollup | None]) -> None:
            if task.cancelled():
                return
            gauges = self.rollups
            gauges.seconds = time.monotonic() - now
            if (error := task.exception()) is not None:
                gauges.failures += 1
                log.warning("counting the closed days into the ledger failed: %s", error)
                return
            gauges.last_success = time.time()
            if (result := task.result()) is not None and result.counted:
                log.info("count cache: %d closed days kept (%.1f s)", result.days, result.seconds)

        self._rollup = in_daemon_thread(run)
        self._rollup.add_done_callback(done)

    def _read(self) -> Reading:
        served: dict[str, float] = {}
        expected: dict[str, ExpectedCounts] = {}
        for (name, _version), mm in list(self.metrics.models.items()):
            served[name] = served.get(name, 0.0) + mm.served.value
            expected[name] = expected.get(name, ExpectedCounts()) + mm.expected()
        return Reading(time.monotonic(), served, expected)

    def _ledger_gauges(self) -> LedgerGauges:
        """Blocking (a thread): the experiment's counts of the label window, as gauges."""
        assert self.state is not None and self.store is not None
        spec = self.state.spec
        champion, challenger = self.pair or (spec.candidate_names[0], spec.candidate_names[0])
        now = time.time()
        counts = self.store.experiment_counts(
            spec.name,
            champion,
            challenger,
            as_of=now,
            maturity_s=self.maturity_s,
            since=now - self.settings.label_window_s,
        )
        arms = {}
        for name in dict.fromkeys([*spec.candidate_names, *(a.arm for a in counts.arms)]):
            c = counts.arm(name).counts
            arms[name] = ArmGauges(
                precision=c.precision,
                recall=c.recall,
                labelled_frauds=c.frauds,
                pending=c.unlabelled,
                coverage=c.labelled / c.total if c.total else NAN,
                alert_rate=c.alert_rate,
            )
        paired = counts.paired.transactions if self.pair is not None else None
        total = paired.total if paired is not None else 0
        disagreement = paired.discordant / total if paired is not None and total else NAN
        return LedgerGauges(arms, disagreement, total)

    # -- windows ------------------------------------------------------------------------------
    def _window(self) -> tuple[Reading, Reading] | None:
        """(oldest reading in the traffic window, newest), None before two readings."""
        if len(self.readings) < 2:
            return None
        newest = self.readings[-1]
        start = newest.at - self.settings.traffic_window_s
        oldest = next((r for r in self.readings if r.at >= start - 1e-9), self.readings[0])
        if oldest is newest:
            oldest = self.readings[-2]
        return oldest, newest

    # -- read-only views (the gauges below and the dashboard read the same figures) -----------
    def estimated_counts(
        self, window: tuple[Reading, Reading] | None = None
    ) -> dict[str, ExpectedCounts]:
        """Each configured model's estimate counters over the traffic window (the current one
        unless given; empty counts before two readings)."""
        window = window if window is not None else self._window()
        out = {}
        for name in self.models:
            counts = ExpectedCounts()
            if window is not None:
                old, new = window
                counts = new.expected.get(name, counts) - old.expected.get(name, counts)
            out[name] = counts
        return out

    def drift_results(self) -> dict[str, list[DriftResult]]:
        """Per deployed model with a drift reference, its last drift per column (NaN, 0 rows:
        not computed yet), as the drift gauges export it."""
        out = {}
        for model in self.deployed():
            sample = getattr(model, "sample", None)
            if sample is None:
                continue
            results = self.drift.get(model.name)
            if results is None:
                results = [DriftResult(c.name, NAN, NAN, 0) for c in sample.reference.columns]
            out[model.name] = results
        return out

    # -- metrics ------------------------------------------------------------------------------
    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        if not self.settings.enabled:
            return
        experiment = self.state.spec if self.state is not None else None
        window = self._window()
        arm_of = set(experiment.candidate_names) if experiment is not None else set()
        exp_name = experiment.name if experiment is not None else ""
        if experiment is not None:
            labels = ["experiment", "model"]
            served = CounterMetricFamily(
                "fraudgate_experiment_served_total",
                "Rows (transactions) served through the experiment by each arm.",
                labels=labels,
            )
            share = GaugeMetricFamily(
                "fraudgate_experiment_traffic_share",
                "Observed share of the experiment's served rows per arm over the last "
                "monitoring.traffic_window_s (NaN: no traffic in the window).",
                labels=labels,
            )
            deviation = GaugeMetricFamily(
                "fraudgate_experiment_traffic_share_deviation",
                "Observed traffic share minus the live weights' share, per arm, same window.",
                labels=labels,
            )
            totals: dict[str, float] = {}
            for (name, _version), mm in list(self.metrics.models.items()):
                totals[name] = totals.get(name, 0.0) + mm.served.value
            weights = experiment.weights
            weight_sum = sum(weights.values())
            delta: dict[str, float] = {}
            if window is not None:
                old, new = window
                delta = {n: new.served.get(n, 0.0) - old.served.get(n, 0.0) for n in weights}
            rows = sum(delta.values())
            for name, weight in weights.items():
                served.add_metric([exp_name, name], totals.get(name, 0.0))
                observed = delta.get(name, 0.0) / rows if rows > 0 else NAN
                share.add_metric([exp_name, name], observed)
                expected_share = weight / weight_sum if weight_sum else NAN
                deviation.add_metric([exp_name, name], observed - expected_share)
            yield from (served, share, deviation)
        yield from self._estimated(window, exp_name, arm_of)
        yield from self._ledger_metrics(exp_name)
        yield from self._rollup_metrics(exp_name)
        yield from self._drift_metrics()

    def _estimated(
        self, window: tuple[Reading, Reading] | None, exp_name: str, arms: set[str]
    ) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        labels = ["experiment", "model"]
        precision = GaugeMetricFamily(
            "fraudgate_model_estimated_precision",
            "Label-free precision estimate from the calibrated scores (sum of the flagged "
            "scores / flagged) over the last monitoring.traffic_window_s.",
            labels=labels,
        )
        recall = GaugeMetricFamily(
            "fraudgate_model_estimated_recall",
            "Label-free recall estimate from the calibrated scores (sum of the flagged "
            "scores / sum of all scores) over the last monitoring.traffic_window_s.",
            labels=labels,
        )
        for name, counts in self.estimated_counts(window).items():
            experiment = exp_name if name in arms else ""
            precision.add_metric([experiment, name], counts.precision)
            recall.add_metric([experiment, name], counts.recall)
        yield from (precision, recall)

    def _ledger_metrics(self, exp_name: str) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        if self.store is None:
            return
        labels = ["experiment", "model"]
        window = "over the last monitoring.label_window_days (by event time), from the ledger"
        families = {
            "precision": GaugeMetricFamily(
                "fraudgate_model_precision",
                f"Label-joined precision of the arm's served decisions {window} (NaN: no "
                "labelled alert).",
                labels=labels,
            ),
            "recall": GaugeMetricFamily(
                "fraudgate_model_recall",
                f"Label-joined recall of the arm's served decisions {window} (NaN: no "
                "labelled fraud).",
                labels=labels,
            ),
            "labelled_frauds": GaugeMetricFamily(
                "fraudgate_model_labelled_frauds",
                f"Labelled frauds behind fraudgate_model_recall {window}.",
                labels=labels,
            ),
            "pending": GaugeMetricFamily(
                "fraudgate_label_pending_decisions",
                f"Served decisions still waiting for a label (neither labelled nor matured) "
                f"{window}.",
                labels=labels,
            ),
            "coverage": GaugeMetricFamily(
                "fraudgate_label_coverage_ratio",
                f"Share (0..1) of the arm's decisions that are labelled or matured {window}.",
                labels=labels,
            ),
            "alert_rate": GaugeMetricFamily(
                "fraudgate_model_alert_rate",
                f"Share of the arm's transactions it flagged {window}.",
                labels=labels,
            ),
        }
        gauges = self.ledger
        names = list(self.state.spec.candidate_names) if self.state is not None else []
        empty = ArmGauges(NAN, NAN, 0, 0, NAN, NAN)
        for name in names:
            arm = gauges.arms.get(name, empty) if gauges is not None else empty
            for key, family in families.items():
                family.add_metric([exp_name, name], float(getattr(arm, key)))
        yield from families.values()
        disagreement = GaugeMetricFamily(
            "fraudgate_shadow_disagreement_ratio",
            "Share of the transactions both the champion and the challenger scored (the "
            f"shadow) on which their decisions differ, {window}.",
            labels=["experiment"],
        )
        disagreement.add_metric([exp_name], gauges.disagreement if gauges is not None else NAN)
        yield disagreement

    def _rollup_metrics(self, exp_name: str) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        if self.store is None or not self.settings.rollup_interval_s:
            return
        labels = ["experiment"]
        last = GaugeMetricFamily(
            "fraudgate_ledger_rollup_last_success_timestamp_seconds",
            "When the last roll-up of the experiment's closed days into the ledger's count "
            "cache finished (epoch seconds; NaN: none yet). Older than two "
            "monitoring.rollup_interval_s: reports count the closed days themselves.",
            labels=labels,
        )
        seconds = GaugeMetricFamily(
            "fraudgate_ledger_rollup_duration_seconds",
            "Wall time of the last roll-up that finished (NaN: none yet).",
            labels=labels,
        )
        failures = CounterMetricFamily(
            "fraudgate_ledger_rollup_failures_total",
            "Roll-ups that failed (logged; retried at the next interval).",
            labels=labels,
        )
        gauges = self.rollups
        last.add_metric([exp_name], gauges.last_success)
        seconds.add_metric([exp_name], gauges.seconds)
        failures.add_metric([exp_name], gauges.failures)
        yield from (last, seconds, failures)

    def _drift_metrics(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        psi = GaugeMetricFamily(
            "fraudgate_drift_psi",
            "Population Stability Index of the model's most recent scored rows against the "
            "training reference stored with its registry version, per feature and score.",
            labels=["model", "feature"],
        )
        ks = GaugeMetricFamily(
            "fraudgate_drift_ks_statistic",
            "Two-sample Kolmogorov-Smirnov statistic of the same rows against the reference "
            "sample, per feature and score.",
            labels=["model", "feature"],
        )
        over = GaugeMetricFamily(
            "fraudgate_drift_features_over_threshold",
            "Columns (features and score) whose PSI is at or above monitoring.psi_warning "
            "(level=warning) or monitoring.psi_alert (level=alert).",
            labels=["model", "level"],
        )
        sampled = GaugeMetricFamily(
            "fraudgate_drift_sample_rows",
            "Recent scored rows the drift gauges were computed on (0: not enough yet).",
            labels=["model"],
        )
        for name, results in self.drift_results().items():
            warning = alert = 0
            for result in results:
                psi.add_metric([name, result.column], result.psi)
                ks.add_metric([name, result.column], result.ks_statistic)
                state = level(result.psi, self.thresholds)
                warning += state in ("warning", "alert")
                alert += state == "alert"
            over.add_metric([name, "warning"], warning)
            over.add_metric([name, "alert"], alert)
            sampled.add_metric([name], results[0].rows if results else 0)
        yield from (psi, ks, over, sampled)
