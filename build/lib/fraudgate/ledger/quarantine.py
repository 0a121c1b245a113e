"""Journal lines the ledger store refused because of their data: set aside so shipping goes on.

Why: one line the store can never take (an id longer than its column, a NUL PostgreSQL refuses)
used to fail its batch forever, so nothing journaled after it reached the ledger. The shipper
(`fraudgate.ledger.journal.JournalShipper`) now tells a refusal of the data (`refused_data`:
retrying cannot help) from the database being down (retried as before), finds the refused line
by retrying the failed batch by halves, moves it here with the reason, and ships the rest.

Layout: ``<journal_dir>/quarantine/<instance>/<segment>.jsonl``, one JSON record per refused
journal line (`QuarantinedLine`: where it was, its rows, why, when, and the original line), and
``<journal_dir>/quarantine/<instance>/lock``, a flock that serialises the shipper's appends with
`fraudgate ledger quarantine reship`'s rewrites.

Exactly once: the journal offset moves past a quarantined line in the same transaction that
records a marker, ``quarantine:<segment>@<offset>`` in ``journal_offsets``: 0 = quarantined, 1 =
re-shipped (written in the transaction that inserts its rows). The file is written (and synced)
before that transaction, so a kill in between leaves a record without a marker: the shipper meets
the line again and quarantines it again (the record is not duplicated), or ships it, which
`JournalShipper.reship_quarantined` sees (the segment went past the line without a marker) and
drops the record. A record whose marker says 1 was re-shipped already: it is only removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson

QUARANTINE_DIR = "quarantine"
LOCK_FILE = "lock"
MARKER_PREFIX = "quarantine:"
QUARANTINED, RESHIPPED = 0, 1  # marker values (journal_offsets.shipped_bytes)


@dataclass(frozen=True, slots=True)
class QuarantinedLine:
    """One journal line the store refused: its place in the journal, its rows, why, when."""

    segment: str  # "<instance>/<segment>.jsonl", the journal offset key
    offset: int  # byte offset of the line in its segment
    end: int  # byte offset just past it
    rows: int
    reason: str
    at: float
    line: bytes = field(repr=False)  # the original journal line, without its newline
    path: Path | None = field(default=None, compare=False)  # the quarantine file holding it
    number: int = field(default=0, compare=False)  # its 1-based line in that file

    @property
    def marker(self) -> str:
        return f"{MARKER_PREFIX}{self.segment}@{self.offset}"

    def to_json(self) -> bytes:
        record = {
            "segment": self.segment,
            "offset": self.offset,
            "end": self.end,
            "rows": self.rows,
            "reason": self.reason,
            "at": self.at,
            "line": self.line.decode("utf-8", "replace"),
        }
        return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)

    @classmethod
    def from_json(cls, data: bytes, path: Path, number: int) -> QuarantinedLine:
        record = orjson.loads(data)
        return cls(
            segment=str(record["segment"]),
            offset=int(record["offset"]),
            end=int(record["end"]),
            rows=int(record["rows"]),
            reason=str(record["reason"]),
            at=float(record["at"]),
            line=str(record["line"]).encode(),
            path=path,
            number=number,
        )


@dataclass(frozen=True, slots=True)
class QuarantineSummary:
    """What the quarantine holds: refused journal lines and the decision rows in them."""

    lines: int = 0
    rows: int = 0


def quarantine_root(journal_dir: str | Path) -> Path:
    return Path(journal_dir) / QUARANTINE_DIR


def refused_data(exc: BaseException) -> bool:
    """Whether the store refused the DATA written (retrying the same rows cannot help), rather
    than failing as a database (down, unreachable, locked, a missing table: retried).

    PostgreSQL says it by SQLSTATE class: 22 (data exception: too long, NUL, out of range) or 23
    (integrity constraint). A driver refusing a value before sending it raises DataError (a NUL
    for psycopg), a type or value error, or a binding error."""
    error: BaseException = exc
    while getattr(error, "orig", None) is not None or (
        type(error).__name__ == "LedgerStoreError" and error.__cause__ is not None
    ):
        error = getattr(error, "orig", None) or error.__cause__  # type: ignore[assignment]
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate:
        return sqlstate[:2] in ("22", "23")
    if isinstance(error, TypeError | ValueError | OverflowError):  # incl. UnicodeEncodeError
        return True
    names = {klass.__name__ for klass in type(error).__mro__}
    if names & {"DataError", "IntegrityError"}:
        return True
    if "ProgrammingError" in names:  # binding: psycopg "cannot adapt", sqlite3 "binding"
        text = str(error).lower()
        return "adapt" in text or "bind" in text or "placeholder" in text
    return False


def describe(exc: BaseException) -> str:
    """The reason recorded with a quarantined line: the error's type and first line."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first[:300]}"


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Hold the quarantine lock of one instance directory (created if needed)."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def quarantine_file(journal_dir: str | Path, segment: str) -> Path:
    return quarantine_root(journal_dir) / segment


def read(path: Path) -> list[QuarantinedLine]:
    """The records of one quarantine file (empty if it does not exist)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    return [
        QuarantinedLine.from_json(line, path, number)
        for number, line in enumerate(data.splitlines(), 1)
        if line.strip()
    ]


def add(journal_dir: str | Path, record: QuarantinedLine) -> None:
    """Append ``record`` to its segment's quarantine file and sync it, unless a record of the
    same line is there already (a kill came between this and the offset's commit)."""
    path = quarantine_file(journal_dir, record.segment)
    with locked(path.parent):
        last = _last_offset(path)  # the shipper goes in order: a repeat can only be the last
        if last is not None and last >= record.offset:
            return
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, record.to_json())
            os.fsync(fd)
        finally:
            os.close(fd)


def _last_offset(path: Path, block: int = 64 << 10) -> int | None:
    """The journal offset of the last record of a quarantine file (None if it has none),
    reading only its tail."""
    try:
        file = path.open("rb")
    except FileNotFoundError:
        return None
    with file:
        position = file.seek(0, os.SEEK_END)
        tail = b""
        while position > 0 and tail.rstrip(b"\n").find(b"\n") < 0:
            step = min(block, position)
            position -= step
            file.seek(position)
            tail = file.read(step) + tail
    last = tail.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    if not last.strip():
        return None
    return int(orjson.loads(last)["offset"])


def rewrite(path: Path, keep: list[QuarantinedLine]) -> None:
    """Replace a quarantine file by ``keep`` (atomically); remove it when nothing is left.
    The caller holds the directory's lock."""
    if not keep:
        path.unlink(missing_ok=True)
        return
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("wb") as file:
        for record in keep:
            file.write(record.to_json())
        file.flush()
        os.fsync(file.fileno())
    temporary.replace(path)


def files(journal_dir: str | Path) -> list[Path]:
    """Every quarantine file, oldest instance and segment first."""
    root = quarantine_root(journal_dir)
    if not root.is_dir():
        return []
    return sorted(root.glob("*/*.jsonl"))


def records(journal_dir: str | Path) -> list[QuarantinedLine]:
    return [record for path in files(journal_dir) for record in read(path)]


def quarantine_summary(journal_dir: str | Path) -> QuarantineSummary:
    """Lines and rows in quarantine (reads the files: see `SummaryCache` for a cheap read)."""
    found = records(journal_dir)
    return QuarantineSummary(len(found), sum(record.rows for record in found))


class SummaryCache:
    """`quarantine_summary`, computed at most once per ``max_age_s`` and re-reading only the
    files that changed (by size and mtime): cheap enough for a metrics scrape on the event loop
    (an empty quarantine costs one failed stat)."""

    def __init__(self, journal_dir: str | Path, max_age_s: float = 1.0) -> None:
        self.journal_dir = Path(journal_dir)
        self.max_age_s = max_age_s
        self._value = QuarantineSummary()
        self._read_at = -float("inf")
        self._per_file: dict[Path, tuple[int, int, QuarantineSummary]] = {}

    def get(self) -> QuarantineSummary:
        now = time.monotonic()
        if now - self._read_at >= self.max_age_s:
            self._read_at = now
            # a file removed while read: keep the last value until the next refresh
            with contextlib.suppress(OSError):
                self._value = self._refresh()
        return self._value

    def _refresh(self) -> QuarantineSummary:
        per_file: dict[Path, tuple[int, int, QuarantineSummary]] = {}
        lines = rows = 0
        for path in files(self.journal_dir):
            stat = path.stat()
            cached = self._per_file.get(path)
            if cached is not None and cached[:2] == (stat.st_size, stat.st_mtime_ns):
                summary = cached[2]
            else:
                found = read(path)
                summary = QuarantineSummary(len(found), sum(r.rows for r in found))
            per_file[path] = (stat.st_size, stat.st_mtime_ns, summary)
            lines += summary.lines
            rows += summary.rows
        self._per_file = per_file
        return QuarantineSummary(lines, rows)
