"""The decision journal: a decision is acknowledged once it is on disk, shipped to the store later.

Serving (``ledger.acknowledge: journal``, the default): each server process appends the rows of
every scored request to its own append-only journal (`Journal.append`: one orjson line, one
``os.write`` on the event loop, about a microsecond) and sends its 200 after the write returned.
The rows are then in the kernel's page cache: killing the server, even with SIGKILL, cannot lose
them. A power loss can, unless ``journal_fsync`` (an fdatasync per append) or
``acknowledge: commit`` (wait for the store's commit, see `DecisionWriter`).

Shipping: `JournalShipper` (``fraudgate ledger ship``; `fraudgate serve` runs it as a child
process, or a sidecar runs it) moves complete lines into the ledger store in large batches and
records the byte offset it reached in ``journal_offsets`` in the same transaction, so every line
is inserted exactly once, whatever is killed when. A served batch may carry the features of its
mirror copies: the shipper scores them and inserts the mirror decisions in the same transaction
(`fraudgate.ledger.mirror`).

Layout: ``<journal_dir>/<instance>/<segment>.jsonl``; an instance is one server process. Its
directory holds ``ledger-id`` (the identity of the ledger it belongs to: a shipper only moves
journals of its own ledger), ``owner.lock`` (flock held by the server while it lives) and
``shipper.lock`` (held by the shipper working on it, so two shippers never share an instance).
A segment is sealed once a newer one exists or its owner is gone; sealed, fully shipped segments
are deleted, and the directory of a dead owner once empty. So a journal left by a killed server
is adopted and shipped by the next shipper that runs on the same directory. A line torn by a kill
in the middle of a write was never acknowledged (the write had not returned): it is skipped, and
counted. A line the store refuses because of its data is moved to ``<journal_dir>/quarantine``
with the reason (`fraudgate.ledger.quarantine`), exactly once, and shipping goes on: no line can
jam the shipper.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from fraudgate.ledger import quarantine
from fraudgate.ledger.mirror import MirrorScorer
from fraudgate.ledger.records import DecisionBatch
from fraudgate.ledger.store import DecisionSink, LedgerStore

log = logging.getLogger(__name__)

LEDGER_ID_FILE = "ledger-id"
OWNER_LOCK = "owner.lock"
SHIPPER_LOCK = "shipper.lock"
SEGMENT_BYTES = 64 << 20
_DUMPS_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_SERIALIZE_NUMPY


class JournalWriteError(RuntimeError):
    """The rows could not be appended: do not acknowledge the request."""


def _segment_name(number: int) -> str:
    return f"{number:012d}.jsonl"


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@dataclass
class OrphanSegment:
    """A journal segment whose file was unlinked under the server (its directory deleted) while
    it still holds the descriptors: the acknowledged, unshipped tail can be read back from it."""

    key: str  # "<instance>/<segment>", its key in the store's journal_offsets
    fd: int  # the segment, opened read-write: os.pread works after the unlink
    shipper_lock: int  # the instance's shipper.lock: held, no shipper moves the segment any more
    acknowledged_bytes: int  # bytes written before the append that found the file gone


class JournalLost(JournalWriteError):
    """The journal's file was deleted: what went into it is not durable (answer 503)."""


class Journal:
    """One server process's append-only decision journal. Not thread-safe: one event loop.

    If its directory is deleted under it (``rm -rf``), the append that finds its file unlinked
    (``fstat().st_nlink == 0``, one cheap syscall per append) raises `JournalLost` instead of
    acknowledging, opens a fresh instance directory (re-creating ``root`` if needed) and keeps the
    old segment as an `OrphanSegment` in ``orphans``: `recover_orphan` then reads its
    acknowledged, unshipped tail back so the server can re-journal it (`append_raw`)."""

    def __init__(
        self,
        root: str | Path,
        ledger_id: str,
        *,
        fsync: bool = False,
        segment_bytes: int = SEGMENT_BYTES,
    ) -> None:
        self.root = Path(root)
        self._ledger_id = ledger_id
        self._fsync = fsync
        self._segment_bytes = segment_bytes
        self._closed = False
        self.orphans: list[OrphanSegment] = []  # unlinked segments waiting for recover_orphan
        self.lost = 0  # times the journal's file was found deleted
        self.sealed: dict[str, int] = {}  # key -> size of rotated segments (until shipped)
        self.appended_rows = 0
        self._fd = -1
        self._create_instance()

    def _create_instance(self) -> None:
        self.instance = f"{int(time.time() * 1000):012x}-{os.getpid()}-{os.urandom(4).hex()}"
        # Built under a hidden name and renamed once locked, so a shipper never sees an instance
        # directory without a live owner lock and removes it as abandoned.
        staging = self.root / f".{self.instance}"
        staging.mkdir(parents=True)
        (staging / LEDGER_ID_FILE).write_text(self._ledger_id)
        owner = os.open(staging / OWNER_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        fcntl.flock(owner, fcntl.LOCK_EX)
        # kept open (unlocked) so a deleted instance's shipper lock can still be taken
        shipper_lock = os.open(staging / SHIPPER_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        fd = self._open(staging / _segment_name(1))
        self.directory = self.root / self.instance
        staging.rename(self.directory)
        self._owner, self._shipper_lock = owner, shipper_lock
        self._segment, self._fd, self._size = 1, fd, 0

    @staticmethod
    def _open(path: Path) -> int:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)

    def _rotate(self) -> None:
        fd = self._open(self.directory / _segment_name(self._segment + 1))
        os.close(self._fd)
        self.sealed[self.position()[0]] = self._size
        self._fd, self._segment, self._size = fd, self._segment + 1, 0

    def append(self, batches: Sequence[DecisionBatch]) -> None:
        """Append decision batches as one line (a JSON list of `DecisionBatch.to_json`
        objects); durable against a kill once this returns."""
        data = orjson.dumps([batch.to_json() for batch in batches], option=_DUMPS_OPTIONS)
        self.append_raw(data)
        self.appended_rows += sum(batch.n for batch in batches)

    def append_raw(self, data: bytes) -> None:
        """Append complete journal lines (``data`` ends with a newline)."""
        if self._fd < 0:
            if self._closed:
                raise JournalWriteError(f"the decision journal {self.directory} is closed")
            self._reopen()
        try:
            written = os.write(self._fd, data)
            while written < len(data):  # a regular file writes everything unless the disk is full
                written += os.write(self._fd, data[written:])
            if self._fsync:
                os.fdatasync(self._fd)
            unlinked = os.fstat(self._fd).st_nlink == 0
        except OSError as exc:
            with contextlib.suppress(OSError):  # a torn line must not prefix the next append
                self._rotate()
            raise JournalWriteError(
                f"the decision journal {self.directory} could not be written: {exc}"
            ) from exc
        if unlinked:
            self._orphan()
            raise JournalLost(
                f"the decision journal {self.directory} was deleted; this decision was not "
                f"made durable (a fresh journal is opened: check what removes files under "
                f"{self.root})"
            )
        self._size += len(data)
        if self._size >= self._segment_bytes:
            self._rotate()

    def check_unlinked(self) -> bool:
        """True (and a fresh instance opened) if the current segment was deleted: for a
        periodic check while no append comes."""
        if self._fd < 0 or os.fstat(self._fd).st_nlink > 0:
            return False
        self._orphan()
        return True

    def _orphan(self) -> None:
        """The current segment was unlinked: keep it for recovery, open a fresh instance."""
        key = self.position()[0]
        log.error(
            "the decision journal %s was deleted under the server; %d acknowledged bytes of %s "
            "are recovered from the open file, a fresh journal is opened",
            self.directory,
            self._size,
            key,
        )
        self.lost += 1
        self.orphans.append(OrphanSegment(key, self._fd, self._shipper_lock, self._size))
        lost_sealed = [k for k in self.sealed if not (self.root / k).exists()]
        for sealed in lost_sealed:  # closed on rotation: not recoverable (see recover_orphan)
            log.error("sealed journal segment %s was deleted before it was shipped", sealed)
            del self.sealed[sealed]
        os.close(self._owner)
        self._fd = -1
        self._reopen()

    @property
    def writable(self) -> bool:
        """False once closed, or while no fresh instance could be opened after a deletion."""
        return self._fd >= 0

    @property
    def closed(self) -> bool:
        return self._closed

    def reopen(self) -> None:
        """Retry opening a fresh instance (after `_orphan` could not)."""
        if self._fd < 0 and not self._closed:
            self._reopen()

    def _reopen(self) -> None:
        try:
            self._create_instance()
        except OSError as exc:  # retried by the next append
            log.error("cannot open a fresh decision journal under %s: %s", self.root, exc)

    def position(self) -> tuple[str, int]:
        """(segment key, bytes written): shipped once its journal offset reaches the bytes."""
        return f"{self.instance}/{_segment_name(self._segment)}", self._size

    def read_at(self, key: str, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes of segment ``key`` from ``offset`` (thread-safe: pread)."""
        if key == self.position()[0] and self._fd >= 0:
            return os.pread(self._fd, length, offset)
        with (self.root / key).open("rb") as file:
            file.seek(offset)
            return file.read(length)

    def close(self) -> None:
        """Stop writing; the shipper then sees every segment sealed and drains the directory."""
        self._closed = True
        if self._fd >= 0:
            os.close(self._fd)
            os.close(self._owner)  # releases the owner lock
            os.close(self._shipper_lock)
            self._fd = -1
        for orphan in self.orphans:
            close_orphan(orphan)
        self.orphans.clear()


@dataclass(frozen=True)
class RecoveredTail:
    """What `recover_orphan` read back from a deleted segment."""

    data: bytes  # complete journal lines, acknowledged and never shipped
    rows: int  # decisions in them
    shipped_bytes: int  # what the store had already shipped of the segment
    exclusive: bool  # read under the shipper lock: exactly once (else only counted, as lost)


def recover_orphan(
    store: LedgerStore, orphan: OrphanSegment, *, wait_s: float = 30.0
) -> RecoveredTail:
    """Blocking: the acknowledged tail of a deleted segment that no shipper moved, exactly once.

    First takes the instance's shipper lock (a shipper that still works on the deleted
    directory releases it once it notices it is gone, see `JournalShipper.ship_once`), so no
    shipper moves the segment any more and its offset in the store is final; then reads the
    bytes between that offset and the acknowledged end. None if the lock is not free within
    ``wait_s``: then ``exclusive`` is False (a shipper still holds it, the tail cannot be
    recovered exactly once) and the tail is only read to count what is lost."""
    deadline = time.monotonic() + wait_s
    exclusive = _try_lock(orphan.shipper_lock)
    while not exclusive and time.monotonic() < deadline:
        time.sleep(0.05)
        exclusive = _try_lock(orphan.shipper_lock)
    # A shipper killed right after sending its COMMIT may have it land after its lock is gone
    # (PostgreSQL finishes it): read the offset until two reads half a second apart agree.
    shipped = store.journal_offsets(prefix=orphan.key).get(orphan.key, 0)
    while True:
        time.sleep(0.5)
        again = store.journal_offsets(prefix=orphan.key).get(orphan.key, 0)
        if again == shipped:
            break
        shipped = again
    chunks = []
    offset = shipped
    while offset < orphan.acknowledged_bytes:
        chunk = os.pread(orphan.fd, min(16 << 20, orphan.acknowledged_bytes - offset), offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
    data = b"".join(chunks)
    data = data[: data.rfind(b"\n") + 1]  # complete lines only (acknowledged ones are)
    rows = 0
    for line in data.splitlines():
        with contextlib.suppress(ValueError, TypeError, KeyError):
            rows += sum(batch["n"] for batch in orjson.loads(line))  # a count, not validated
    return RecoveredTail(data, rows, shipped, exclusive)


def close_orphan(orphan: OrphanSegment) -> None:
    for fd in (orphan.fd, orphan.shipper_lock):
        with contextlib.suppress(OSError):
            os.close(fd)


@dataclass(frozen=True, slots=True)
class _Line:
    """One complete journal line of a batch being shipped, with its parsed decisions (the
    served batches and the mirror decisions scored from their entries)."""

    start: int  # byte offset in the segment
    end: int  # just past its newline
    raw: bytes
    batches: list[DecisionBatch]
    rows: int  # decisions in ``batches``


@dataclass(frozen=True, slots=True)
class ReshipResult:
    """`fraudgate ledger quarantine reship`: lines (and their rows) that went into the store,
    and the lines kept (the store still refuses them, or the shipper has not passed them)."""

    shipped_lines: int
    shipped_rows: int
    kept: list[quarantine.QuarantinedLine]


class JournalShipper:
    """Moves journal lines into the store, exactly once. See the module docstring."""

    def __init__(
        self, store: LedgerStore, root: str | Path, *, max_batch_bytes: int = 4 << 20
    ) -> None:
        self.store = store
        self.root = Path(root)
        self.max_batch_bytes = max_batch_bytes
        self.shipped_rows = 0
        self.torn_lines = 0  # lines cut by a kill mid-write: never acknowledged
        self.bad_lines = 0  # complete lines that do not parse (corruption): logged
        self.quarantined_lines = 0  # lines the store refused (their data): set aside
        self.quarantined_rows = 0
        self._claimed: dict[str, int] = {}  # instance -> our shipper.lock fd
        # Shipped bytes per segment of the claimed instances: read from the store once per claim
        # (only the claimant moves them), dropped after any failed write (it may have committed).
        self._offsets: dict[str, dict[str, int]] = {}
        self._sink = DecisionSink(store)
        self.ledger_id = store.ledger_id()
        self._foreign: set[str] = set()  # instances of other ledgers: left alone
        self.mirror = MirrorScorer()  # scores the mirror copies servers journaled

    def close(self) -> None:
        self._sink.close()
        for fd in self._claimed.values():
            os.close(fd)
        self._claimed.clear()

    def ship_once(self) -> int:
        """One pass over every instance directory under the root; returns the rows shipped."""
        try:
            present = sorted(self.root.iterdir())
        except FileNotFoundError:  # no journal yet, or the directory was deleted
            present = []
        self._release_vanished({directory.name for directory in present})
        shipped = 0
        for directory in present:
            if not directory.is_dir() or directory.name in self._foreign:
                continue
            if directory.name == quarantine.QUARANTINE_DIR:  # refused lines, not a journal
                continue
            if directory.name.startswith("."):  # a journal being created (see Journal)
                if self._abandoned_staging(directory):  # its server died before any append
                    shutil.rmtree(directory, ignore_errors=True)
                continue
            if self._ours(directory) and self._claim(directory):
                try:
                    shipped += self._ship_instance(directory)
                except BaseException:
                    self._offsets.pop(directory.name, None)  # re-read: the commit may have landed
                    raise
        return shipped

    def _release_vanished(self, present: set[str]) -> None:
        """Let go of claimed instances whose directory was deleted: their server takes the
        shipper lock to recover what was not shipped (see `recover_orphan`)."""
        for name in [name for name in self._claimed if name not in present]:
            log.error("journal %s/%s vanished; releasing it to its server", self.root, name)
            os.close(self._claimed.pop(name))
            self._offsets.pop(name, None)

    def _abandoned_staging(self, directory: Path, min_age_s: float = 60.0) -> bool:
        try:  # a minute old: not one that a starting server is still building
            old = time.time() - directory.stat().st_mtime > min_age_s
        except FileNotFoundError:
            return False
        return old and not self._owner_alive(directory)

    def _ours(self, directory: Path) -> bool:
        try:
            stamp = (directory / LEDGER_ID_FILE).read_text().strip()
        except FileNotFoundError:
            stamp = "(none)"
        if stamp == self.ledger_id:
            return True
        self._foreign.add(directory.name)
        log.info(
            "journal %s belongs to ledger %s, not ours (%s): left alone",
            directory,
            stamp,
            self.ledger_id,
        )
        return False

    def _claim(self, directory: Path) -> bool:
        if directory.name in self._claimed:
            return True
        try:
            fd = os.open(directory / SHIPPER_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except FileNotFoundError:  # removed by another shipper meanwhile
            return False
        if not _try_lock(fd):
            os.close(fd)
            return False
        self._claimed[directory.name] = fd
        return True

    @staticmethod
    def _owner_alive(directory: Path) -> bool:
        try:
            fd = os.open(directory / OWNER_LOCK, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            if _try_lock(fd):
                fcntl.flock(fd, fcntl.LOCK_UN)
                return False
            return True
        finally:
            os.close(fd)

    def _ship_instance(self, directory: Path) -> int:
        alive = self._owner_alive(directory)  # first: a segment listed after is sealed if dead
        segments = sorted(directory.glob("*.jsonl"))
        offsets = self._offsets.get(directory.name)
        if offsets is None:
            offsets = self.store.journal_offsets(prefix=f"{directory.name}/")
            self._offsets[directory.name] = offsets
        shipped = 0
        for index, path in enumerate(segments):
            key = f"{directory.name}/{path.name}"
            sealed = not alive or index < len(segments) - 1
            done = offsets.get(key, 0)
            if path.stat().st_size > done or sealed:
                rows, done, complete = self._ship_segment(path, key, done, sealed)
                offsets[key] = done
                shipped += rows
                if sealed and complete:
                    path.unlink()
                    self.store.forget_journal_segment(key)
                    del offsets[key]
        if not alive and not any(directory.glob("*.jsonl")):
            os.close(self._claimed.pop(directory.name))
            self._offsets.pop(directory.name, None)
            shutil.rmtree(directory, ignore_errors=True)
        return shipped

    def _ship_segment(self, path: Path, key: str, done: int, sealed: bool) -> tuple[int, int, bool]:
        """Ship ``path`` from byte ``done``; returns (rows shipped, the new offset, whether
        everything is shipped)."""
        shipped = 0
        with path.open("rb") as file:
            file.seek(done)
            while True:
                buffer = file.read(self.max_batch_bytes)
                if not buffer:
                    return shipped, done, True
                end = buffer.rfind(b"\n")
                while end < 0:  # one line longer than a batch
                    more = file.read(self.max_batch_bytes)
                    if not more:
                        break
                    buffer += more
                    end = buffer.rfind(b"\n")
                if end < 0:  # a partial last line
                    if sealed:
                        self.torn_lines += 1
                        log.warning(
                            "journal %s: skipping a line torn at byte %d (%d bytes, never "
                            "acknowledged: the server was killed mid-write)",
                            key,
                            done,
                            len(buffer),
                        )
                        return shipped, done, True
                    return shipped, done, False
                complete = buffer[: end + 1]
                lines = self._parse(complete, key, done)
                batches = [batch for line in lines for batch in line.batches]
                try:
                    self._sink.write(batches, (key, done + len(complete)))
                    written = sum(line.rows for line in lines)
                except Exception as exc:
                    if not quarantine.refused_data(exc):
                        raise  # the database is down: retried, the journal keeps everything
                    written = self._ship_lines(lines, key, exc)
                done += len(complete)
                shipped += written
                self.shipped_rows += written
                file.seek(done)

    def _ship_lines(self, lines: list[_Line], key: str, refusal: BaseException) -> int:
        """Ship ``lines``, which the store refused together (``refusal``), by halves: the good
        ones go in, each refused one is quarantined; the offset only moves forward. Returns the
        rows inserted."""
        if len(lines) == 1:
            self._quarantine(lines[0], key, refusal)
            return 0
        written = 0
        middle = len(lines) // 2
        for half in (lines[:middle], lines[middle:]):
            batches = [batch for line in half for batch in line.batches]
            try:
                self._sink.write(batches, (key, half[-1].end))
            except Exception as exc:
                if not quarantine.refused_data(exc):
                    raise
                written += self._ship_lines(half, key, exc)
            else:
                written += sum(line.rows for line in half)
        return written

    def _quarantine(self, line: _Line, key: str, refusal: BaseException) -> None:
        record = quarantine.QuarantinedLine(
            segment=key,
            offset=line.start,
            end=line.end,
            rows=line.rows,
            reason=quarantine.describe(refusal),
            at=time.time(),
            line=line.raw,
        )
        quarantine.add(self.root, record)  # durable before the offset passes the line
        self._sink.write([], (key, line.end), marks=((record.marker, quarantine.QUARANTINED),))
        self.quarantined_lines += 1
        self.quarantined_rows += record.rows
        log.error(
            "journal %s byte %d: the store refused this line's %d rows (%s); moved to %s",
            key,
            line.start,
            record.rows,
            record.reason,
            quarantine.quarantine_file(self.root, key),
        )

    def _parse(self, data: bytes, key: str, offset: int) -> list[_Line]:
        lines: list[_Line] = []
        for raw in data.splitlines():
            end = offset + len(raw) + 1
            batches = self._parse_line(raw, key, offset)
            lines.append(_Line(offset, end, raw, batches, sum(batch.n for batch in batches)))
            offset = end
        return lines

    def _parse_line(self, raw: bytes, key: str, offset: int) -> list[DecisionBatch]:
        """The line's served batches and their scored mirror decisions ([] if corrupt)."""
        try:
            data = orjson.loads(raw)
            if not isinstance(data, list):
                raise ValueError("expected a list of decision batches")
            batches = [DecisionBatch.from_json(item, self.mirror.reject) for item in data]
        except ValueError as exc:  # orjson.JSONDecodeError is a ValueError
            self.bad_lines += 1
            log.error("journal %s near byte %d: skipping a corrupt line: %s", key, offset, exc)
            return []
        return batches + self.mirror.decisions(batches)

    def reship_quarantined(self) -> ReshipResult:
        """Try the quarantined lines again (e.g. once the schema or store is fixed): a line
        that goes in leaves the quarantine, one still refused stays with the fresh reason.
        Exactly once, through the markers (see `fraudgate.ledger.quarantine`)."""
        shipped_lines = shipped_rows = 0
        kept: list[quarantine.QuarantinedLine] = []
        for path in quarantine.files(self.root):
            instance = path.parent.name
            with quarantine.locked(path.parent):
                marker_prefix = f"{quarantine.MARKER_PREFIX}{instance}/"
                markers = self.store.journal_offsets(prefix=marker_prefix)
                offsets = self.store.journal_offsets(prefix=f"{instance}/")
                keep: list[quarantine.QuarantinedLine] = []
                done: list[str] = []
                for record in quarantine.read(path):
                    state = markers.get(record.marker)
                    if state == quarantine.RESHIPPED:  # went in; a kill kept its record
                        done.append(record.marker)
                    elif state is None:  # the quarantine's commit never happened
                        pending = (self.root / record.segment).exists() and offsets.get(
                            record.segment, 0
                        ) <= record.offset
                        if pending:  # still the shipper's to ship or quarantine
                            keep.append(record)
                    else:
                        batches = self._parse_line(record.line, record.segment, record.offset)
                        try:
                            self._sink.write(batches, None, marks=((record.marker, 1),))
                        except Exception as exc:
                            if not quarantine.refused_data(exc):
                                raise
                            keep.append(_refused_again(record, exc))
                            continue
                        done.append(record.marker)
                        shipped_lines += 1
                        shipped_rows += sum(batch.n for batch in batches)
                quarantine.rewrite(path, keep)
                kept.extend(keep)
            for marker in done:  # after the rewrite: a kill before it leaves marker 1
                self.store.forget_journal_segment(marker)
        return ReshipResult(shipped_lines, shipped_rows, kept)

    def run(
        self,
        stop: threading.Event,
        *,
        parent_pid: int | None = None,
        poll_s: float = 0.05,
        retry_s: float = 1.0,
        give_up_s: float = 60.0,
    ) -> None:
        """Ship until ``stop`` is set (or the parent process is gone), then drain and return.

        While finishing, a database that stays down for ``give_up_s`` ends the run: the journal
        keeps the rows for the next shipper on this directory."""
        failing_since: float | None = None
        idle_s = poll_s
        while True:
            finishing = stop.is_set() or (parent_pid is not None and os.getppid() != parent_pid)
            try:
                shipped = self.ship_once()
            except Exception as exc:  # the database is down: the journal keeps everything
                log.warning("shipping the decision journal failed (retrying): %s", exc)
                failing_since = failing_since or time.monotonic()
                if finishing and time.monotonic() - failing_since > give_up_s:
                    log.error("giving up; the journal in %s keeps the unshipped rows", self.root)
                    return
                time.sleep(retry_s) if finishing else stop.wait(retry_s)
                continue
            failing_since = None
            if finishing and shipped == 0:
                return
            if shipped:
                idle_s = poll_s
            else:  # idle: poll less and less often, up to 8x (a quiet shipper costs nothing)
                stop.wait(idle_s)
                idle_s = min(idle_s * 2, 8 * poll_s)


def _refused_again(
    record: quarantine.QuarantinedLine, exc: BaseException
) -> quarantine.QuarantinedLine:
    from dataclasses import replace

    return replace(record, reason=quarantine.describe(exc), at=time.time())


def run_shipper(
    ledger_url: str,
    journal_dir: str | Path,
    *,
    once: bool = False,
    parent_pid: int | None = None,
    nice: int = 0,
) -> JournalShipper:
    """`fraudgate ledger ship`: ship until SIGTERM/SIGINT (or the parent's exit), then drain.

    ``nice``: lower this process's CPU priority first: shipping is background work that must not
    take CPU from serving on the same machine."""
    from fraudgate.ledger.store import open_ledger

    if nice:
        os.nice(nice)
    store = open_ledger(ledger_url)
    shipper = JournalShipper(store, journal_dir)
    try:
        if once:
            while shipper.ship_once():
                pass
            return shipper
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        shipper.run(stop, parent_pid=parent_pid)
        return shipper
    finally:
        shipper.close()
        store.close()


def spawn_shipper(ledger_url: str, journal_dir: str | Path) -> subprocess.Popen[bytes]:
    """Start ``fraudgate ledger ship`` as a child that follows this process (see `run`)."""
    command = [
        sys.executable,
        "-m",
        "fraudgate",
        "ledger",
        "ship",
        "--ledger",
        ledger_url,
        "--journal",
        str(journal_dir),
        "--parent",
        str(os.getpid()),
    ]
    return subprocess.Popen(command, stdin=subprocess.DEVNULL)


def stop_shipper(process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Ask the child shipper to drain and exit; the journal keeps whatever it could not ship."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        log.warning(
            "the ledger shipper did not finish in %.0f s; the journal keeps the rest", timeout
        )
        process.kill()
