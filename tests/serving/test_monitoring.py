"""The monitor's parts in process: the drift ring, the counter windows, the exported gauges."""

from __future__ import annotations

import asyncio
import math
import threading
import time

import numpy as np
import pytest

from fraudgate.analysis.drift import drift, drift_reference
from fraudgate.config import parse_config
from fraudgate.data.contract import FEATURE_NAMES, N_FEATURES
from fraudgate.experiments import ExperimentState
from fraudgate.serving.metrics import ServerMetrics, observe_scores
from fraudgate.serving.monitoring import MONITOR_METRICS, LiveSample, Monitor, in_daemon_thread

CONFIG = {
    "models": [
        {"name": "m", "uri": "models:/fraud-detection@champion"},
        {"name": "n", "uri": "models:/fraud-detection@challenger"},
    ],
    "experiment": {
        "name": "ab",
        "default": "m",
        "candidates": [{"name": "m", "weight": 3}, {"name": "n", "weight": 1}],
    },
    "monitoring": {
        "refresh_s": 0.05,
        "drift_refresh_s": 0.05,
        "traffic_window_s": 0.5,
        "drift_min_rows": 10,
    },
}


def _reference(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2000, N_FEATURES))
    return drift_reference(x, rng.random(2000), FEATURE_NAMES)


def test_the_ring_keeps_the_most_recent_rows():
    sample = LiveSample(_reference(), rows=100)
    rng = np.random.default_rng(1)
    batches = [rng.normal(size=(n, N_FEATURES)).astype(np.float32) for n in (30, 50, 40, 7)]
    for x in batches:
        sample.keep(x, x[:, 0].astype(np.float64))
    assert sample.drain() == 127 and sample.filled == 100 and not sample.pending
    recent = np.concatenate(batches)[-100:]
    kept = {row.tobytes() for row in sample.x}
    assert kept == {row.tobytes() for row in recent}
    assert sorted(sample.scores) == sorted(recent[:, 0].astype(np.float64))
    big = rng.normal(size=(1000, N_FEATURES)).astype(np.float32)
    sample.keep(big, big[:, 0].astype(np.float64))
    assert sample.pending[-1][0].shape == (256, N_FEATURES)  # never pins a whole huge batch
    assert sample.pending[-1][0].base is None  # a copy, not a view of the request's array


def test_gauges_from_counter_windows_and_the_drift_ring():
    config = parse_config(CONFIG)
    metrics = ServerMetrics()
    m, n = metrics.for_model("m", "1"), metrics.for_model("n", "1")

    class Deployed:
        def __init__(self, name, sample):
            self.name, self.sample = name, sample

    reference = _reference()
    sample = LiveSample(reference, rows=500)
    state = ExperimentState(config.experiment_spec)
    monitor = Monitor(config, metrics, lambda: [Deployed("m", sample)], state=state)
    rng = np.random.default_rng(2)
    x = (rng.normal(size=(200, N_FEATURES)) + 0.5).astype(np.float32)
    scores = rng.random(200).astype(np.float32)

    async def run():
        monitor.start()
        m.served.value += 150  # before the window: must not count
        n.served.value += 50
        await asyncio.sleep(0.7)
        m.served.value += 60
        n.served.value += 40
        observe_scores(m, scores, (scores >= 0.5).reshape(-1, 1))
        sample.keep(x, scores.astype(np.float64))
        await asyncio.sleep(0.2)
        monitor.stop()

    asyncio.run(run())
    values = {}
    for family in monitor.collect():
        for s in family.samples:
            values[(s.name, tuple(sorted(s.labels.items())))] = s.value
    key = (("experiment", "ab"), ("model", "m"))
    assert values[("fraudgate_experiment_served_total", key)] == 210
    assert values[("fraudgate_experiment_traffic_share", key)] == pytest.approx(0.6)
    assert values[("fraudgate_experiment_traffic_share_deviation", key)] == pytest.approx(-0.15)
    flagged = scores >= 0.5
    assert values[("fraudgate_model_estimated_precision", key)] == pytest.approx(
        float(scores[flagged].astype(np.float64).sum() / flagged.sum())
    )
    other = (("experiment", "ab"), ("model", "n"))
    assert math.isnan(values[("fraudgate_model_estimated_precision", other)])
    expected = drift(reference, x, scores.astype(np.float64))
    for result in expected:
        labels = (("feature", result.column), ("model", "m"))
        assert values[("fraudgate_drift_psi", labels)] == pytest.approx(result.psi)
        assert values[("fraudgate_drift_ks_statistic", labels)] == pytest.approx(
            result.ks_statistic
        )
    over = sum(r.psi >= 0.1 for r in expected)
    assert over > 0  # every feature moved by half a standard deviation
    assert (
        values[("fraudgate_drift_features_over_threshold", (("level", "warning"), ("model", "m")))]
        == over
    )
    # no ledger: no label-joined gauges
    assert not any(name == "fraudgate_model_precision" for name, _ in values)


def test_monitoring_off_keeps_no_sample_runs_no_task_and_exports_nothing():
    config = parse_config({**CONFIG, "monitoring": {**CONFIG["monitoring"], "enabled": False}})
    metrics = ServerMetrics()
    monitor = Monitor(config, metrics, list, state=ExperimentState(config.experiment_spec))

    async def run():
        monitor.start()
        assert monitor._task is None
        await asyncio.sleep(0.15)  # three refresh periods: nothing read

    asyncio.run(run())
    assert monitor.sample_for(_reference()) is None
    assert len(monitor.readings) == 0 and list(monitor.collect()) == []
    on = Monitor(parse_config(CONFIG), metrics, list)
    assert isinstance(on.sample_for(_reference()), LiveSample)
    # what is then missing from /metrics (all of it once a ledger is read too: the real server's
    # exposition shows it, test_metrics_exposed): the alert export leaves out the rules reading it
    state = ExperimentState(config.experiment_spec)
    with_experiment = Monitor(parse_config(CONFIG), metrics, list, state=state)
    names = {
        f.name + "_total" if f.type == "counter" else f.name for f in with_experiment.collect()
    }
    assert "fraudgate_experiment_served_total" in names and names <= MONITOR_METRICS


def test_drift_is_recomputed_only_when_due_and_new_rows_came():
    def monitor_with(drift_refresh_s: float):
        config = parse_config(
            {**CONFIG, "monitoring": {**CONFIG["monitoring"], "drift_refresh_s": drift_refresh_s}}
        )
        sample = LiveSample(_reference(), rows=500)

        class Deployed:
            name = "m"

        Deployed.sample = sample
        return Monitor(config, ServerMetrics(), lambda: [Deployed()]), sample

    rng = np.random.default_rng(4)

    def batch():
        x = rng.normal(size=(40, N_FEATURES)).astype(np.float32)
        return x, rng.random(40)

    async def rounds(monitor, sample, keeps):
        results = []
        for keep in keeps:
            if keep:
                sample.keep(*batch())
            await asyncio.sleep(0.06)  # past a drift_refresh_s of 0.05
            await monitor.refresh()
            results.append(monitor.drift.get("m"))
        return results

    slow, sample = monitor_with(3600.0)  # due once (the first time rows are there)
    first, second = asyncio.run(rounds(slow, sample, [True, True]))
    assert first is not None and second is first and sample.filled == 80  # rows still move
    fast, sample = monitor_with(0.05)
    first, idle, fresh = asyncio.run(rounds(fast, sample, [True, False, True]))
    assert idle is first  # due, but nothing new: not recomputed
    assert fresh is not first and fresh[0].rows == 80
    expected = drift(sample.reference, sample.x[:80], sample.scores[:80])
    assert fresh == expected  # the prepared arrays give drift()'s figures


def test_a_long_backlog_copies_only_the_batches_that_fill_the_ring():
    sample = LiveSample(_reference(), rows=100)
    rng = np.random.default_rng(5)
    batches = [rng.normal(size=(30, N_FEATURES)).astype(np.float32) for _ in range(50)]
    for x in batches:
        sample.keep(x, x[:, 1].astype(np.float64))
    assert sample.drain() == 1500 and sample.moved == 1500 and sample.filled == 100
    recent = np.concatenate(batches)[-100:]
    assert {row.tobytes() for row in sample.x} == {row.tobytes() for row in recent}
    assert sorted(sample.scores) == sorted(recent[:, 1].astype(np.float32).astype(np.float64))


def test_the_monitor_rolls_the_closed_days_up_once_per_interval(tmp_path, monkeypatch):
    """Every ``rollup_interval_s`` the server counts the experiment's closed days into the
    ledger (its own task: the refresh goes on); ``0`` never. A real SQLite ledger, the cache's
    minimum lowered so a small one qualifies."""
    import sys

    import fraudgate.ledger.store as ledger_store
    from fraudgate.ledger import open_ledger

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parents[1] / "evaluation"))
    from evaluation_sim import Scenario, fill
    from evaluation_sim import config_data as experiment_config

    monkeypatch.setattr(ledger_store, "MIN_DECISIONS", 1_000)
    url = f"sqlite:///{tmp_path / 'ledger.db'}"

    def monitor_with(store, interval: float) -> Monitor:
        data = experiment_config(url)
        data["monitoring"] = {**CONFIG["monitoring"], "rollup_interval_s": interval}
        config = parse_config(data)
        state = ExperimentState(config.experiment_spec)
        return Monitor(config, ServerMetrics(), list, state=state, store=store)

    async def refresh_twice(monitor: Monitor) -> list[object]:
        started = []
        for _ in range(2):
            await monitor.refresh()
            started.append(monitor._rollup)
            if monitor._rollup is not None:
                await monitor._rollup
        return started

    with open_ledger(url) as store:
        fill(store, Scenario(days=6, per_day=150))  # 1,800 decisions on 6 days, long ago
        assert store.count_cache_status("ab").days == 0
        never = asyncio.run(refresh_twice(monitor_with(store, 0)))
        assert never == [None, None] and store.count_cache_status("ab").days == 0
        hourly = monitor_with(store, 3600)
        first, second = asyncio.run(refresh_twice(hourly))
        assert first is not None and second is first  # not due again within the hour
        assert first.result().counted and store.count_cache_status("ab").days == 6
        # its outcome on /metrics: when the last one finished, how long it took, failures
        assert not rollup_samples(monitor_with(store, 0))
        samples = rollup_samples(hourly)
        assert (
            abs(samples["fraudgate_ledger_rollup_last_success_timestamp_seconds"] - time.time())
            < 60
        )
        assert 0 < samples["fraudgate_ledger_rollup_duration_seconds"] < 60
        assert samples["fraudgate_ledger_rollup_failures_total"] == 0

        def broken(experiment: str) -> object:
            raise RuntimeError("the ledger is gone")

        failing = monitor_with(store, 3600)
        monkeypatch.setattr(store, "count_cache_status", broken)

        async def once() -> None:
            await failing.refresh()
            with pytest.raises(RuntimeError, match="the ledger is gone"):
                await failing._rollup

        asyncio.run(once())
        samples = rollup_samples(failing)
        assert samples["fraudgate_ledger_rollup_failures_total"] == 1
        assert math.isnan(samples["fraudgate_ledger_rollup_last_success_timestamp_seconds"])


def rollup_samples(monitor: Monitor) -> dict[str, float]:
    return {
        sample.name: sample.value
        for family in monitor.collect()
        for sample in family.samples
        if sample.name.startswith("fraudgate_ledger_rollup_")
    }


def test_a_rollup_in_progress_does_not_hold_up_the_servers_stop():
    """The roll-up's thread is a daemon: the loop closes (the server stops) while it still
    runs, where the default executor's thread (`asyncio.to_thread`) would be joined first."""
    release = threading.Event()

    async def start_and_leave() -> asyncio.Future[bool]:
        running = in_daemon_thread(lambda: release.wait(20))
        await asyncio.sleep(0.05)
        return running

    started = time.monotonic()
    running = asyncio.run(start_and_leave())
    assert time.monotonic() - started < 5 and not running.done()
    release.set()

    async def result() -> object:
        return await in_daemon_thread(lambda: 42)

    assert asyncio.run(result()) == 42

    async def error() -> object:
        return await in_daemon_thread(lambda: 1 / 0)

    with pytest.raises(ZeroDivisionError):
        asyncio.run(error())
