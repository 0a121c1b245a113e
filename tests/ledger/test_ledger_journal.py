"""The decision journal and its shipper, on real SQLite and PostgreSQL stores and real processes:
every acknowledged line reaches the store exactly once, whatever is killed when."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fraudgate.cli import app
from fraudgate.ledger import Decision, DecisionBatch, LedgerStore, open_ledger
from fraudgate.ledger.journal import LEDGER_ID_FILE, Journal, JournalShipper

HERE = Path(__file__).parent


def _row(i: int, role: str = "served") -> Decision:
    return Decision(
        f"r{i}",
        f"t{i}",
        1.7e9 + i,
        "exp",
        "m1",
        role,
        "m1",
        "1",
        0.25,
        0.5,
        False,
        0.1,
        None,
        None,
    )


def _request_counts(store: LedgerStore) -> Counter:
    with store._engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT request_id FROM decisions").fetchall()
    return Counter(r[0] for r in rows)


def test_ships_exactly_once_across_passes_and_rotations(store: LedgerStore, tmp_path: Path):
    journal = Journal(tmp_path / "journal", store.ledger_id(), segment_bytes=1500)
    shipper = JournalShipper(store, tmp_path / "journal")
    try:
        for i in range(40):
            journal.append([DecisionBatch.of([_row(i)])])
        assert shipper.ship_once() == 40
        assert shipper.ship_once() == 0  # nothing twice
        segments = sorted(journal.directory.glob("*.jsonl"))
        assert len(segments) == 1, "sealed, shipped segments are deleted; the live one stays"
        journal.append([DecisionBatch.of([_row(i) for i in range(40, 45)])])  # one line, 5 rows
        assert shipper.ship_once() == 5
        journal.close()  # the owner is gone: the rest is sealed, shipped and cleaned up
        shipper.ship_once()
        assert not journal.directory.exists()
        counts = _request_counts(store)
        assert len(counts) == 45 and set(counts.values()) == {1}
        assert store.journal_offsets() == {}
        decision = store.decisions_for(["t7"])[0]
        assert (decision.score, decision.is_fraud_decision, decision.amount) == (0.25, False, None)
    finally:
        shipper.close()
        journal.close()


def test_a_torn_last_line_of_a_dead_writer_is_skipped_and_counted(tmp_path: Path):
    store = open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    journal = Journal(tmp_path / "journal", store.ledger_id())
    for i in range(3):
        journal.append([DecisionBatch.of([_row(i)])])
    segment = next(journal.directory.glob("*.jsonl"))
    shipper = JournalShipper(store, tmp_path / "journal")
    try:
        with segment.open("ab") as file:
            file.write(b'[["r-torn", "t')  # a kill in the middle of a write
        assert shipper.ship_once() == 3  # the owner lives: the partial line may still complete
        assert shipper.torn_lines == 0
        journal.close()
        assert shipper.ship_once() == 0
        assert shipper.torn_lines == 1 and store.count_decisions() == 3
        assert not journal.directory.exists()
    finally:
        shipper.close()
        store.close()


def test_a_journal_whose_server_died_while_creating_it_is_removed(tmp_path: Path):
    store = open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    staging = tmp_path / "journal" / ".0123-42-dead"  # never renamed: nothing was acknowledged
    staging.mkdir(parents=True)
    (staging / "owner.lock").touch()
    young = tmp_path / "journal" / ".0124-43-starting"  # a server may be building it right now
    young.mkdir()
    os.utime(staging, (time.time() - 120, time.time() - 120))
    live = Journal(tmp_path / "journal", store.ledger_id())
    shipper = JournalShipper(store, tmp_path / "journal")
    try:
        assert shipper.ship_once() == 0
        assert not staging.exists() and young.exists() and live.directory.exists()
    finally:
        shipper.close()
        live.close()
        store.close()


def test_a_corrupt_line_is_reported_and_the_rest_shipped(tmp_path: Path, caplog):
    store = open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    journal = Journal(tmp_path / "journal", store.ledger_id())
    journal.append([DecisionBatch.of([_row(0)])])
    with next(journal.directory.glob("*.jsonl")).open("ab") as file:
        file.write(b'{"not": "rows"}\n')
    journal.append([DecisionBatch.of([_row(1)])])
    journal.close()
    shipper = JournalShipper(store, tmp_path / "journal")
    try:
        assert shipper.ship_once() == 2 and shipper.bad_lines == 1
        assert "corrupt line" in caplog.text
    finally:
        shipper.close()
        store.close()


def test_a_journal_of_another_ledger_is_left_alone(tmp_path: Path):
    ours = open_ledger(f"sqlite:///{tmp_path / 'ours.db'}")
    theirs = open_ledger(f"sqlite:///{tmp_path / 'theirs.db'}")
    assert ours.ledger_id() != theirs.ledger_id()
    root = tmp_path / "shared-journal"
    mine, other = Journal(root, ours.ledger_id()), Journal(root, theirs.ledger_id())
    mine.append([DecisionBatch.of([_row(1)])])
    other.append([DecisionBatch.of([_row(2)])])
    mine.close()
    other.close()
    shippers = [JournalShipper(ours, root), JournalShipper(theirs, root)]
    try:
        assert shippers[0].ship_once() == 1
        assert (other.directory / LEDGER_ID_FILE).exists()  # untouched by our shipper
        assert shippers[1].ship_once() == 1
        assert [d.request_id for d in ours.decisions_for(["t1", "t2"])] == ["r1"]
        assert [d.request_id for d in theirs.decisions_for(["t1", "t2"])] == ["r2"]
    finally:
        for shipper in shippers:
            shipper.close()
        ours.close()
        theirs.close()


def test_two_shippers_never_share_an_instance(tmp_path: Path):
    store = open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    journals = [Journal(tmp_path / "journal", store.ledger_id()) for _ in range(3)]
    for n, journal in enumerate(journals):
        journal.append([DecisionBatch.of([_row(100 * n + i) for i in range(10)])])
    first, second = (
        JournalShipper(store, tmp_path / "journal"),
        JournalShipper(store, tmp_path / "journal"),
    )
    try:
        assert first.ship_once() == 30  # claims all three
        for n, journal in enumerate(journals):
            journal.append([DecisionBatch.of([_row(100 * n + 50)])])
        assert second.ship_once() == 0  # every instance is claimed by the first
        assert first.ship_once() == 3
        counts = _request_counts(store)
        assert len(counts) == 33 and set(counts.values()) == {1}
    finally:
        first.close()
        second.close()
        for journal in journals:
            journal.close()
        store.close()


def _writer_process(journal_dir: Path, ledger_id: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(HERE / "journal_appender.py"), str(journal_dir), ledger_id],
        stdout=subprocess.PIPE,
        text=True,
    )


def test_sigkilled_writer_then_sigkilled_shipper_lose_nothing_and_duplicate_nothing(
    ledger_url: str, tmp_path: Path
):
    """A writer SIGKILLed mid-stream: every line it acknowledged is shipped; a shipper SIGKILLed
    mid-batch and run again ships each line exactly once (rows and offset share a transaction)."""
    store = open_ledger(ledger_url)
    journal_dir = tmp_path / "journal"
    try:
        writer = _writer_process(journal_dir, store.ledger_id())
        acknowledged: list[str] = []
        assert writer.stdout is not None
        deadline = time.monotonic() + 60
        while len(acknowledged) < 20_000 and time.monotonic() < deadline:
            acknowledged.append(writer.stdout.readline().strip())
        writer.send_signal(signal.SIGKILL)
        tail, _ = writer.communicate(timeout=30)
        acknowledged.extend(line for line in tail.splitlines() if line)
        assert writer.returncode == -signal.SIGKILL
        command = [sys.executable, "-m", "fraudgate", "ledger", "ship", "--once"]
        command += ["--ledger", ledger_url, "--journal", str(journal_dir)]
        shipper = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while store.count_decisions() == 0 and shipper.poll() is None:
            time.sleep(0.01)
        shipper.send_signal(signal.SIGKILL)  # mid-way (or just done: still a valid run)
        shipper.wait(timeout=30)
        again = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stderr
        counts = _request_counts(store)
        missing = set(acknowledged) - set(counts)
        assert not missing, f"{len(missing)} acknowledged rows lost, e.g. {sorted(missing)[:5]}"
        duplicated = [request for request, n in counts.items() if n > 1]
        assert not duplicated, f"shipped twice: {duplicated[:5]}"
        assert len(counts) >= len(acknowledged) > 1000
        assert not any(journal_dir.iterdir()), "the dead writer's journal is cleaned up"
    finally:
        store.close()


def test_ship_command_reports_and_validates(tmp_path: Path):
    runner = CliRunner()
    result = runner.invoke(app, ["ledger", "ship", "--once"])
    assert result.exit_code == 2 and "--ledger and --journal" in result.output
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    store = open_ledger(url)
    journal = Journal(tmp_path / "journal", store.ledger_id())
    journal.append([DecisionBatch.of([_row(i) for i in range(7)])])
    journal.close()
    store.close()
    args = ["ledger", "ship", "--once", "--ledger", url, "--journal", str(tmp_path / "journal")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "shipped 7 decisions" in " ".join(result.output.split())


def test_shipper_follows_its_parent_and_drains_when_it_is_gone(tmp_path: Path):
    """`fraudgate serve`'s child shipper: ships while the parent lives, drains when it dies."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    store = open_ledger(url)
    try:
        parent = subprocess.Popen(
            [
                sys.executable,
                str(HERE / "journal_appender.py"),
                str(tmp_path / "journal"),
                store.ledger_id(),
                "--spawn-shipper",
                url,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert parent.stdout is not None
        acknowledged = [parent.stdout.readline().strip() for _ in range(2000)]
        deadline = time.monotonic() + 30
        while store.count_decisions() < 1000 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert store.count_decisions() >= 1000, "the child ships while the parent is alive"
        parent.send_signal(signal.SIGKILL)
        tail, _ = parent.communicate(timeout=30)
        acknowledged += [line for line in tail.splitlines() if line]
        deadline = time.monotonic() + 60
        while any((tmp_path / "journal").iterdir()) and time.monotonic() < deadline:
            time.sleep(0.1)  # the orphaned shipper drains, cleans up and exits
        assert set(acknowledged) <= set(_request_counts(store))
        assert not any((tmp_path / "journal").iterdir())
    finally:
        store.close()


@pytest.mark.parametrize("fsync", [False, True])
def test_fsync_option_appends_the_same(tmp_path: Path, fsync: bool):
    store = open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    journal = Journal(tmp_path / "journal", store.ledger_id(), fsync=fsync)
    journal.append([DecisionBatch.of([_row(1)])])
    segment, size = journal.position()
    assert size == (journal.root / segment).stat().st_size > 0
    assert os.path.basename(segment).endswith(".jsonl")
    journal.close()
    store.close()


def test_a_deleted_journal_is_detected_and_its_unshipped_tail_recovered_exactly_once(
    tmp_path: Path,
):
    """rm -rf of the journal directory: the next append raises JournalLost (not acknowledged)
    and opens a fresh instance; once the shipper lets go of the vanished instance, the tail it
    never shipped is read back from the open file and re-journaled: every acknowledged row lands
    once, the unacknowledged one is not re-journaled."""
    import shutil

    from fraudgate.ledger.journal import JournalLost, close_orphan, recover_orphan

    store = open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    journal = Journal(tmp_path / "journal", store.ledger_id())
    shipper = JournalShipper(store, tmp_path / "journal")
    try:
        for i in range(10):
            journal.append([DecisionBatch.of([_row(i)])])
        assert shipper.ship_once() == 10  # the shipper now holds the instance's shipper lock
        for i in range(10, 25):  # acknowledged, never shipped
            journal.append([DecisionBatch.of([_row(i)])])
        old = journal.directory
        shutil.rmtree(tmp_path / "journal")
        with pytest.raises(JournalLost, match="was deleted"):
            journal.append([DecisionBatch.of([_row(99)])])  # the append that finds it gone
        assert journal.lost == 1 and journal.directory != old and journal.directory.is_dir()
        (orphan,) = journal.orphans
        busy = recover_orphan(store, orphan, wait_s=0.2)  # the shipper still holds the lock
        assert not busy.exclusive and busy.rows == 15
        shipper.ship_once()  # notices the vanished instance and releases it
        tail = recover_orphan(store, orphan, wait_s=0.2)
        assert tail.exclusive and tail.rows == 15 and tail.shipped_bytes > 0
        journal.append_raw(tail.data)
        close_orphan(orphan)
        journal.append([DecisionBatch.of([_row(25)])])
        shipper.ship_once()
        counts = _request_counts(store)
        assert set(counts) == {f"r{i}" for i in range(26)} and set(counts.values()) == {1}
    finally:
        shipper.close()
        journal.close()
        store.close()
