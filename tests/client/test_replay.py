"""`fraudgate replay` against live servers, plus its deterministic pieces."""

from __future__ import annotations

import json
import time
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fraudgate.cli.replay import app, parse_days
from fraudgate.config import load_config
from fraudgate.data.simulator import SimulationConfig, simulate
from fraudgate.ledger import open_ledger
from fraudgate.replay import (
    LabelDelays,
    ReplayBatch,
    ReplaySettings,
    _Run,
    label_schedule,
    run_replay,
    select_transactions,
    target_from_config,
)

V1, V2 = "fraud-v1-baseline", "fraud-v2-candidate"
TOKEN = "client-tests-token-0123456789"  # experiment_server's admin token (conftest)


@pytest.fixture(scope="module")
def small_workdir(tmp_path_factory):
    """A workdir holding a small demo simulation in <workdir>/data (as `fraudgate demo` writes)."""
    workdir = tmp_path_factory.mktemp("replay")
    simulate(SimulationConfig(days=30, transactions_per_day=400, emerging_day=16)).write(
        workdir / "data"
    )
    return workdir


def test_parse_days():
    assert parse_days("3d") == 3 and parse_days("12h") == 0.5 and parse_days("1w") == 7
    assert parse_days("2") == 2 and parse_days("0") == 0
    with pytest.raises(ValueError, match="--label-horizon: expected a duration"):
        parse_days("soon", "--label-horizon")


def test_selection_is_deterministic_and_after_the_pattern(small_workdir):
    settings = ReplaySettings(url="http://unused", transactions=150, workdir=small_workdir)
    a, b = select_transactions(settings), select_transactions(settings)
    assert a.frame.equals(b.frame) and np.array_equal(a.features, b.features)
    assert a.features.shape == (150, 30) and a.features.dtype == np.float32
    cfg = SimulationConfig(days=30, transactions_per_day=400, emerging_day=16)
    assert (a.frame["timestamp"] >= cfg.emerging_date).all()
    assert a.frame["timestamp"].is_monotonic_increasing
    assert a.source.endswith("data")
    other = select_transactions(
        ReplaySettings(url="http://unused", transactions=150, workdir=small_workdir, seed=8)
    )
    assert not other.frame["transaction_id"].equals(a.frame["transaction_id"])


def _frame(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "transaction_id": [f"t{i}" for i in range(n)],
            "timestamp": pd.Timestamp("2026-04-01") + pd.to_timedelta(np.arange(n), unit="min"),
            "card_id": np.arange(n) % 97,
            "amount": 1.0,
            "is_fraud": np.arange(n) % 50 == 0,
        }
    )


def test_label_schedule_is_realistic_and_ordered():
    """Alerts: an investigation outcome within hours to days; missed frauds: a long-tailed
    chargeback; legitimate unflagged transactions: no label at all."""
    frame = _frame(20_000)
    flagged = (np.arange(20_000) % 50 == 0) & (np.arange(20_000) % 100 != 0)  # half the frauds
    flagged |= np.arange(20_000) % 301 == 7  # and some false alerts
    labels = label_schedule(frame, flagged, LabelDelays(), seed=1)
    assert labels["known_at"].is_monotonic_increasing
    fraud = frame["is_fraud"].to_numpy()
    expected = set(frame["transaction_id"][flagged | fraud])
    assert len(labels) == len(expected) and set(labels["transaction_id"]) == expected
    investigated = labels[labels["source"] == "investigation"]
    charged = labels[labels["source"] == "chargeback"]
    assert set(investigated["transaction_id"]) == set(frame["transaction_id"][flagged])
    assert charged["is_fraud"].all() and not investigated["is_fraud"].all()  # false alerts too
    inv = investigated["delay_days"]
    assert inv.min() >= 1 / 24 and inv.max() <= 3.0 and 0.35 < inv.median() < 0.65
    cb = charged["delay_days"]
    assert 8 < cb.median() < 22 and cb.max() <= 120
    _, chargeback = LabelDelays().draw(100_000, seed=2)
    assert 13 < np.median(chargeback) < 15
    assert 0.005 < (chargeback > 90).mean() < 0.02  # a long tail past 90 days
    assert (
        (labels["known_at"] - labels["event_time"])
        .dt.total_seconds()
        .div(86_400)
        .round(6)
        .equals(labels["delay_days"].round(6))
    )
    assert labels.equals(label_schedule(frame, flagged, LabelDelays(), seed=1))
    with pytest.raises(ValueError, match="flagged: expected one decision per transaction"):
        label_schedule(frame, flagged[:10], LabelDelays(), seed=1)


def test_labels_are_delivered_by_the_simulated_clock():
    """The replay's queue gives out only labels known by the simulated time asked for, oldest
    first, each with its known time and source, and the same schedule as `label_schedule`."""
    frame = _frame(3000)
    settings = ReplaySettings(url="http://unused", transactions=3000, seed=3)
    run = _Run(settings, ReplayBatch(frame, np.zeros((3000, 30), np.float32), "test", ("", "")))
    flagged = np.arange(3000) % 7 == 0
    for i in range(3000):
        run.answer(i, "m", None, bool(flagged[i]), 1.0)
    schedule = label_schedule(frame, flagged, settings.delays, settings.seed)
    horizon = pd.Timestamp("2026-04-05")
    rows = run.due(horizon.value, limit=10**6)
    known = schedule[schedule["known_at"] <= horizon]
    assert [run.ids[i] for i in rows] == known["transaction_id"].tolist()
    assert len(run.labels.pending) == len(schedule) - len(known) > 0
    first = run.label_row(rows[0])
    row = known.iloc[0]
    assert first["transaction_id"] == row["transaction_id"]
    assert first["source"] == row["source"] and first["is_fraud"] == row["is_fraud"]
    assert abs(pd.Timestamp(first["label_time"]) - row["known_at"].tz_localize("UTC")) < (
        pd.Timedelta(milliseconds=1)
    )
    assert run.due(horizon.value, limit=10) == []  # nothing twice


@pytest.mark.slow
def test_replay_against_the_experiment_server_all_ok(experiment_server, small_workdir):
    target = target_from_config(experiment_server.config_path)
    assert target.model == V1 and target.routing_parameter == "card_id"
    assert target.token == TOKEN and target.experiment == "fraud-detection-ab-test"
    settings = ReplaySettings(
        url=experiment_server.http_url,
        transactions=200,
        rate=1000.0,
        concurrency=8,
        token=target.token,
        workdir=small_workdir,
        model=target.model,
        routing_parameter=target.routing_parameter,
        label_batch=64,
    )
    summary = run_replay(settings, show_progress=False)
    assert summary["sent"] == 200 and summary["ok"] == 200, summary["error_examples"]
    assert summary["errors"] == {}
    assert sum(summary["split"].values()) == 200 and set(summary["split"]) <= {V1, V2}
    assert V1 in summary["split"]  # 80/20 by card: the champion answers most
    assert sum(summary["routes"].values()) == 200
    assert summary["elapsed_s"] >= 199 / 1000.0  # paced by the rate limit
    assert 0 < summary["latency_ms"]["p50"] <= summary["latency_ms"]["p99"]
    assert summary["throughput_rps"] > 0
    labels = summary["labels"]
    assert labels["error"] is None
    frauds = summary["frauds_replayed"]
    alerts = sum(summary["flagged"].values())
    # every alert is investigated, every missed fraud charged back, the rest never labelled
    assert labels["by_source"].get("investigation", 0) == alerts
    assert labels["sent"] + labels["unlabelled"] == 200 and labels["pending"] == 0
    assert labels["sent"] >= frauds and labels["rejected"] == 0
    assert labels["inserted"] + labels["updated"] + labels["unchanged"] == labels["sent"]
    # labels delivered while scoring may reach the ledger before their decisions (stored
    # anyway, joined later): once the shipper caught up, every label joins a served decision
    # and the ledger holds each with its source and simulated known time
    frame = select_transactions(settings).frame.set_index("transaction_id")
    ids = frame.index.tolist()
    store = open_ledger(load_config(experiment_server.config_path).ledger_config.url)
    try:
        stored = store.labels_for(ids)
        assert len(stored) == labels["sent"]
        assert Counter(label.source for label in stored.values()) == Counter(labels["by_source"])
        deadline = time.monotonic() + 60
        while True:
            served = {d.transaction_id for d in store.decisions_for(stored) if d.role == "served"}
            if served == set(stored) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert served == set(stored)
        for tid, label in stored.items():  # simulated known times: event time + the delay
            delay = label.label_time - frame.loc[tid, "timestamp"].tz_localize("UTC").timestamp()
            assert 3600 - 1 <= delay <= 120 * 86_400 + 1, (tid, delay)
    finally:
        store.close()
    assert json.loads((small_workdir / "replay.json").read_text()) == json.loads(
        json.dumps(summary, default=str)
    )


@pytest.mark.slow
def test_replay_cli_simulates_when_there_is_no_data(experiment_server, tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "--config",
            str(experiment_server.config_path),
            "--url",
            experiment_server.http_url,
            "--transactions",
            "60",
            "--rate",
            "0",
            "--protocol",
            "grpc",
            "--grpc-address",
            experiment_server.grpc_address,
            "--investigation-delay",
            "6h",
            "--chargeback-delay",
            "2d",
            "--workdir",
            str(tmp_path),
            "--days",
            "10",
            "--tx-per-day",
            "300",
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "replay.json").read_text())
    assert summary["ok"] == 60 and summary["errors"] == {} and summary["protocol"] == "grpc"
    assert summary["source"].startswith("simulated")
    assert "Observed split" in result.output and "labels" in result.output


@pytest.mark.slow
def test_replay_reports_label_failures_without_failing_the_scoring(server, small_workdir, tmp_path):
    """The plain two-model server has no feedback endpoint: scoring is fine, labels report it."""
    settings = ReplaySettings(
        url=server.http_url, transactions=300, rate=0, workdir=small_workdir, label_batch=10
    )
    summary = run_replay(settings, show_progress=False)
    assert summary["ok"] == 300 and summary["split"] == {V1: 300}
    assert summary["frauds_replayed"] > 0  # so there are labels to send
    assert summary["labels"]["error"] and summary["labels"]["sent"] == 0


def test_http1_pool_keeps_connections_alive_and_reads_whole_answers():
    """The replay's transport against a tiny real HTTP/1.1 server: status, headers and body of
    each answer, connections reused, a closed one replaced, a dead port a ConnectionFailed."""
    import asyncio

    from fraudgate.client.errors import ConnectionFailed
    from fraudgate.client.http1 import Http1Pool

    connections = []

    async def handle(reader, writer):
        connections.append(writer)
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            lines = head.decode().split("\r\n")
            length = next(int(h.split(":")[1]) for h in lines if h.startswith("content-length"))
            body = await reader.readexactly(length)
            close = body == b"close"
            answer = b'{"echo":' + body + b"}" if not close else b"bye"
            writer.write(
                b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\n"
                + (b"connection: close\r\n" if close else b"")
                + f"content-length: {len(answer)}\r\nx-seldon-route: :m_1:\r\n\r\n".encode()
                + answer
            )
            await writer.drain()
            if close:
                break
        writer.close()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with Http1Pool(f"http://127.0.0.1:{port}", max_connections=2) as pool:
            answers = await asyncio.gather(
                *(pool.request("POST", "/x", str(i).encode()) for i in range(20))
            )
            assert [a.body for a in answers] == [b'{"echo":%d}' % i for i in range(20)]
            assert {a.status for a in answers} == {201}
            assert answers[0].headers["x-seldon-route"] == ":m_1:"
            assert len(connections) == 2  # kept alive, never more than max_connections
            assert (await pool.request("POST", "/x", b"close")).body == b"bye"
            assert (await pool.request("POST", "/x", b"7")).body == b'{"echo":7}'
        server.close()
        await server.wait_closed()
        with pytest.raises(ConnectionFailed):
            async with Http1Pool(f"http://127.0.0.1:{port}", timeout=2) as pool:
                await pool.request("POST", "/x", b"1")

    asyncio.run(main())
