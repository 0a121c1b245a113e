"""The ledger store: decisions, labels, their audit, and experiment weight changes.

One class, :class:`LedgerStore`, written in SQLAlchemy Core, runs on both backends:

* SQLite (the embedded default, a file in the work dir) in WAL mode, so readers never block the
  writer. Write transactions start with ``BEGIN IMMEDIATE`` (take the write lock up front, so a
  read-then-write never fails on lock upgrade). ``synchronous=NORMAL`` by default: in WAL mode a
  committed transaction survives the process being killed (SIGKILL, OOM, crash) -- the guarantee
  the server needs -- but the last commits may be lost on power loss or an OS crash.
  ``synchronous=FULL`` (``?synchronous=FULL`` in the URL, or ``sqlite_synchronous="FULL"``)
  fsyncs every commit and survives power loss too, at about 3x the per-request latency at
  concurrency 32 (see ``bench/results/ledger.json``).
* PostgreSQL by URL (``postgresql+psycopg://user@host:5432/db``; ``postgresql://`` is accepted and
  mapped to the psycopg 3 driver). Cross-process critical sections (migrations, label upserts)
  take transaction-scoped advisory locks.

Everything the analysis needs leaves as counts (:meth:`LedgerStore.labelled_outcomes`), never rows.

Caller text (label transaction ids, actors) is checked against `fraudgate.protocol.limits` by the
write methods themselves, so both backends answer the same `InvalidInput` for it, whoever calls.
A database error leaves the store as :class:`LedgerStoreError`, whose message is short and holds
no SQL text or parameters (it may reach a client in a 503); the full error is logged here.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain, repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event

from fraudgate.ledger.counting import ExperimentQueries, Parallelism
from fraudgate.ledger.day_cache import (
    MIN_DECISIONS,
    DayBounds,
    DayCache,
    decision_ids,
    signature,
)
from fraudgate.ledger.records import (
    DECISION_FIELDS,
    DEFAULT_LABEL_SOURCE,
    AdminAction,
    ConfusionCounts,
    Decision,
    DecisionBatch,
    ExperimentAction,
    ExperimentCounts,
    Label,
    LabelChange,
    LabelResult,
    ModelOutcome,
    RolloutRecord,
    WeightChange,
)
from fraudgate.ledger.schema import (
    LATEST_VERSION,
    LEDGER_ID_KEY,
    admin_actions,
    count_cache,
    count_cache_marks,
    count_cache_units,
    decisions,
    experiment_actions,
    journal_offsets,
    label_audit,
    labels,
    ledger_meta,
    migrate,
    rollouts,
    schema_version,
    weight_changes,
)
from fraudgate.protocol.limits import check_actor, check_id, check_reason, check_text

if TYPE_CHECKING:
    from fraudgate.ledger.monitoring_counts import MonitoringCounts

log = logging.getLogger(__name__)

DEFAULT_LEDGER_FILE = "ledger.db"
# Advisory lock keys (PostgreSQL), arbitrary but fixed: "fgl" + purpose.
_MIGRATION_LOCK = 0x66676C_0001
_LABEL_LOCK = 0x66676C_0002
_ROLLOUT_LOCK = 0x66676C_0003
# Held shared by every decision insert on PostgreSQL, exclusively while the count cache reads
# its cut (fraudgate.ledger.day_cache.decision_ids): then every id up to the largest is
# committed, though a sequence hands ids out in insert order, not commit order.
DECISIONS_CUT_LOCK = 0x66676C_0004
# Serialises the count cache's writes on PostgreSQL (SQLite's BEGIN IMMEDIATE does already): a
# report and a server's roll-up saving at once would otherwise both see no mark and collide on
# the same days' keys; serialised, the later one finds the mark moved and writes nothing.
_COUNT_CACHE_LOCK = 0x66676C_0005
_IN_CHUNK = 500  # ids per IN (...) list
# PostgreSQL planner settings of experiment_counts' read-only transaction (bench/README.md,
# report.py): its hashes in memory (the default 4 MB work_mem, per sort or hash node, spills
# the routing keys to disk); the covering index read in transaction order costed as the mostly
# cached pages it is (the default random_page_cost sorts 10M rows to disk instead); and its
# few statements over millions of rows worth parallel workers' start-up.
_COUNTS_SETTINGS = (
    ("work_mem", "'64MB'"),
    ("random_page_cost", "1.1"),
    ("parallel_setup_cost", "10"),
    ("parallel_tuple_cost", "0.001"),
)
# A 32 MiB SQLite page cache per connection (the decisions' indexes stay in memory).
_SQLITE_CACHE_KIB = 32 * 1024
# decision rows per multi-row INSERT statement (x 15 columns = bound parameters, well within
# SQLite's limit of 32766); see DecisionSink
SQLITE_ROWS_PER_STATEMENT = 500


def default_ledger_url(workdir: str | Path) -> str:
    """The embedded default: a SQLite file in the work dir."""
    return f"sqlite:///{Path(workdir).resolve() / DEFAULT_LEDGER_FILE}"


def normalize_url(url: str | Path) -> str:
    """Accept a SQLAlchemy URL, a plain ``postgresql://`` URL, or a path to a SQLite file."""
    text = str(url)
    if "://" not in text:
        return f"sqlite:///{Path(text).resolve()}"
    for prefix in ("postgresql://", "postgres://"):
        if text.startswith(prefix):
            return "postgresql+psycopg://" + text[len(prefix) :]
    return text


def open_ledger(url: str | Path, *, sqlite_synchronous: str | None = None) -> LedgerStore:
    """Open (creating or migrating as needed) the ledger at ``url``.

    ``url`` is a SQLAlchemy URL (``sqlite:////abs/path/ledger.db``,
    ``postgresql+psycopg://postgres@127.0.0.1:5432/fraudgate``) or a path to a SQLite file.
    Pending schema migrations are applied under a cross-process lock. For SQLite,
    ``sqlite_synchronous`` (or ``?synchronous=`` in the URL) picks NORMAL (default) or FULL.
    """
    sa_url = sa.make_url(normalize_url(url))
    backend = sa_url.get_backend_name()
    if backend == "sqlite":
        from_url = sa_url.query.get("synchronous")
        sa_url = sa_url.difference_update_query(["synchronous"])
        synchronous = sqlite_synchronous or (from_url if isinstance(from_url, str) else None)
        engine = _sqlite_engine(sa_url, synchronous or "NORMAL")
    elif backend == "postgresql":
        if sa_url.drivername == "postgresql":
            sa_url = sa_url.set(drivername="postgresql+psycopg")
        engine = sa.create_engine(sa_url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    else:
        raise ValueError(
            f"ledger url: expected a sqlite:/// or postgresql:// URL, received {str(url)!r}"
        )
    event.listen(engine, "handle_error", _short_error)
    store = LedgerStore(engine)
    try:
        store.migrate()
    except BaseException:
        store.close()
        raise
    return store


@dataclass(frozen=True, slots=True)
class CountCacheStatus:
    """``applies``: the ledger is big enough for the count cache; ``days``: the days it keeps
    for the experiment asked about (summed over its statements' signatures: distinct days)."""

    applies: bool
    days: int


class LedgerStoreError(RuntimeError):
    """A database error, said in one short line without SQL text or parameters (the full error,
    statement included, is logged and chained as ``__cause__``)."""


def _short_error(context: sa.engine.ExceptionContext) -> LedgerStoreError | None:
    """The engine's ``handle_error`` hook: the one place a database error is put into words."""
    if context.is_pre_ping:  # the pool's liveness probe handles its own failures
        return None
    error = context.original_exception
    first = str(error).strip().splitlines()[0] if str(error).strip() else ""
    log.warning("ledger database error: %s", context.sqlalchemy_exception or error)
    return LedgerStoreError(f"the ledger database failed ({type(error).__name__}: {first[:160]})")


def _sqlite_engine(url: sa.URL, synchronous: str) -> sa.Engine:
    synchronous = synchronous.upper()
    if synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
        raise ValueError(
            f"sqlite_synchronous: expected OFF, NORMAL, FULL or EXTRA, received {synchronous!r}"
        )
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        raise ValueError(
            "ledger url: expected a SQLite *file* (sqlite:////path/to/ledger.db), "
            f"received {url.render_as_string(hide_password=True)!r}"
        )
    Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 30.0},
        pool_size=5,
        max_overflow=10,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to the "begin" hook below (pysqlite's own is broken).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute(f"PRAGMA cache_size=-{_SQLITE_CACHE_KIB}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        write = conn.get_execution_options().get("fraudgate_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _epoch(value: float | datetime | None) -> float | None:
    if value is None or isinstance(value, int | float):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def _chunks(items: Sequence[str], size: int = _IN_CHUNK) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _label_from(row: sa.Row) -> Label:
    return Label(
        transaction_id=row.transaction_id,
        is_fraud=bool(row.is_fraud),
        label_time=float(row.label_time),
        amount=None if row.amount is None else float(row.amount),
        source=row.source,
    )


def _decision_from(row: sa.Row) -> Decision:
    m = row._mapping
    return Decision(
        request_id=m["request_id"],
        transaction_id=m["transaction_id"],
        decided_at=float(m["decided_at"]),
        experiment=m["experiment"],
        arm=m["arm"],
        role=m["role"],
        model_name=m["model_name"],
        model_version=m["model_version"],
        score=float(m["score"]),
        threshold=float(m["threshold"]),
        is_fraud_decision=bool(m["is_fraud_decision"]),
        latency_ms=float(m["latency_ms"]),
        amount=None if m["amount"] is None else float(m["amount"]),
        routing_key_hash=m["routing_key_hash"],
        event_time=_event_time(m["event_time"], m["decided_at"]),
    )


def _event_time(event_time: float | None, decided_at: float) -> float | None:
    """A stored event time as the record has it: None when it is the decision time."""
    return None if event_time is None or event_time == decided_at else float(event_time)


class LedgerStore:
    """Decisions, labels and weight changes in one SQL database (SQLite or PostgreSQL).

    Thread-safe: every method takes its own pooled connection. Obtain one with
    :func:`open_ledger`; close it with :meth:`close` (or use it as a context manager).
    """

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self.backend: str = engine.dialect.name  # "sqlite" | "postgresql"
        self.url: str = engine.url.render_as_string(hide_password=True)
        placeholder = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self._insert_decisions_sql = (
            f"INSERT INTO decisions ({', '.join(DECISION_FIELDS)}) "
            f"VALUES ({', '.join([placeholder] * len(DECISION_FIELDS))})"
        )

    def __repr__(self) -> str:
        return f"LedgerStore({self.url!r})"

    def __enter__(self) -> LedgerStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._engine.dispose()

    # -- plumbing ---------------------------------------------------------------------------

    @contextmanager
    def _write(self, lock: int | None = None) -> Iterator[sa.Connection]:
        """A write transaction; ``lock`` serialises it across processes (PostgreSQL)."""
        with self._engine.connect() as conn:
            if self.backend == "sqlite":
                conn.execution_options(fraudgate_write=True)  # -> BEGIN IMMEDIATE
            with conn.begin():
                if lock is not None and self.backend == "postgresql":
                    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(lock)))
                yield conn

    def migrate(self) -> list[int]:
        """Apply pending schema migrations; returns the versions applied (idempotent)."""
        with self._write(lock=_MIGRATION_LOCK) as conn:
            return migrate(conn)

    def schema_version(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar_one())

    @staticmethod
    def latest_schema_version() -> int:
        return LATEST_VERSION

    def checkpoint(self) -> None:
        """SQLite: copy the WAL into the database file (PASSIVE: never blocks a writer)."""
        if self.backend == "sqlite":
            with self._engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    # -- decision journal shipping (see fraudgate.ledger.journal) ----------------------------

    def ledger_id(self) -> str:
        """This ledger's identity (random, set when it was created): stamps its journals."""
        query = sa.select(ledger_meta.c.value).where(ledger_meta.c.key == LEDGER_ID_KEY)
        with self._engine.connect() as conn:
            return str(conn.execute(query).scalar_one())

    def journal_offsets(self, prefix: str = "") -> dict[str, int]:
        """Bytes shipped per journal segment (``instance/segment`` keys starting with prefix)."""
        query = sa.select(journal_offsets.c.segment, journal_offsets.c.shipped_bytes)
        if prefix:
            query = query.where(journal_offsets.c.segment.startswith(prefix, autoescape=True))
        with self._engine.connect() as conn:
            return {segment: int(done) for segment, done in conn.execute(query)}

    def forget_journal_segment(self, segment: str) -> None:
        """Drop a segment's offset once its file is deleted (never before: it would re-ship)."""
        with self._write() as conn:
            conn.execute(sa.delete(journal_offsets).where(journal_offsets.c.segment == segment))

    # -- decisions --------------------------------------------------------------------------

    def record_decisions(self, batch: Iterable[Decision]) -> int:
        """Insert decisions in one transaction; returns how many. Durable when this returns."""
        decisions = list(batch)
        if decisions:
            with self.decision_sink() as sink:
                sink.write([DecisionBatch.of(decisions)])
        return len(decisions)

    @contextmanager
    def decision_sink(self) -> Iterator[DecisionSink]:
        """A :class:`DecisionSink` on its own pooled connection, returned to the pool on exit."""
        sink = DecisionSink(self)
        try:
            yield sink
        finally:
            sink.close()

    def count_decisions(self, *, role: str | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(decisions)
        if role is not None:
            query = query.where(decisions.c.role == role)
        with self._engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def decisions_for(self, transaction_ids: Iterable[str]) -> list[Decision]:
        """All decisions on these transactions (served and mirror), oldest first."""
        return self._decisions_where(decisions.c.transaction_id, transaction_ids)

    def decisions_for_requests(self, request_ids: Iterable[str]) -> list[Decision]:
        """All decisions recorded for these request ids, oldest first."""
        return self._decisions_where(decisions.c.request_id, request_ids)

    def _decisions_where(self, column: sa.Column, ids: Iterable[str]) -> list[Decision]:
        wanted = sorted({str(i) for i in ids})
        found: list[tuple[float, int, Decision]] = []
        with self._engine.connect() as conn:
            for chunk in _chunks(wanted):
                query = sa.select(decisions).where(column.in_(chunk))
                for row in conn.execute(query):
                    found.append((float(row.decided_at), int(row.id), _decision_from(row)))
        found.sort(key=lambda item: item[:2])
        return [decision for _, _, decision in found]

    # -- labels -----------------------------------------------------------------------------

    def upsert_labels(
        self, batch: Iterable[Label], actor: str, *, at: float | None = None
    ) -> LabelResult:
        """Store labels idempotently.

        A label identical to the stored one (same is_fraud, label_time, amount and source) is
        ``unchanged``; a different one replaces it and the old and new values go to the audit
        table with ``actor`` and the time. Labels for transactions that have no decision yet are
        stored anyway (labels may arrive before a replica's decisions are flushed, and the join
        picks them up later) and are listed in ``unknown_transaction_ids``. Within one batch the
        labels apply in order, so a repeated id counts once per change.
        """
        check_actor(actor)
        batch = list(batch)
        if not batch:
            return LabelResult(0, 0, 0, ())
        for index, label in enumerate(batch):
            check_id(label.transaction_id, f"labels[{index}].transaction_id")
        now = time.time() if at is None else float(at)
        ids = sorted({label.transaction_id for label in batch})
        inserted = updated = unchanged = 0
        with self._write(lock=_LABEL_LOCK) as conn:
            stored: dict[str, Label] = {}
            for chunk in _chunks(ids):
                query = sa.select(labels).where(labels.c.transaction_id.in_(chunk))
                for row in conn.execute(query):
                    stored[row.transaction_id] = _label_from(row)
            current = dict(stored)
            audit_rows: list[dict[str, object]] = []
            for label in batch:
                previous = current.get(label.transaction_id)
                if previous is None:
                    inserted += 1
                elif previous == label:
                    unchanged += 1
                    continue
                else:
                    updated += 1
                    audit_rows.append(
                        {
                            "transaction_id": label.transaction_id,
                            "old_is_fraud": previous.is_fraud,
                            "old_label_time": previous.label_time,
                            "old_amount": previous.amount,
                            "old_source": previous.source,
                            "new_is_fraud": label.is_fraud,
                            "new_label_time": label.label_time,
                            "new_amount": label.amount,
                            "new_source": label.source,
                            "changed_at": now,
                            "actor": actor,
                        }
                    )
                current[label.transaction_id] = label

            new_rows = [
                {
                    "transaction_id": txn,
                    "is_fraud": label.is_fraud,
                    "label_time": label.label_time,
                    "amount": label.amount,
                    "source": label.source,
                    "received_at": now,
                    "updated_at": now,
                    "actor": actor,
                }
                for txn, label in current.items()
                if txn not in stored
            ]
            changed_rows = [
                {
                    "b_txn": txn,
                    "is_fraud": label.is_fraud,
                    "label_time": label.label_time,
                    "amount": label.amount,
                    "source": label.source,
                    "updated_at": now,
                    "actor": actor,
                }
                for txn, label in current.items()
                if txn in stored and stored[txn] != label
            ]
            if new_rows:
                conn.execute(sa.insert(labels), new_rows)
            if changed_rows:
                conn.execute(
                    sa.update(labels)
                    .where(labels.c.transaction_id == sa.bindparam("b_txn"))
                    .values(
                        is_fraud=sa.bindparam("is_fraud"),
                        label_time=sa.bindparam("label_time"),
                        amount=sa.bindparam("amount"),
                        source=sa.bindparam("source"),
                        updated_at=sa.bindparam("updated_at"),
                        actor=sa.bindparam("actor"),
                    ),
                    changed_rows,
                )
            if audit_rows:
                conn.execute(sa.insert(label_audit), audit_rows)

            known: set[str] = set()
            for chunk in _chunks(ids):
                query = sa.select(decisions.c.transaction_id).where(
                    decisions.c.transaction_id.in_(chunk)
                )
                known.update(conn.execute(query.distinct()).scalars())
        unknown = tuple(txn for txn in ids if txn not in known)
        return LabelResult(inserted, updated, unchanged, unknown)

    def labels_for(self, transaction_ids: Iterable[str]) -> dict[str, Label]:
        wanted = sorted({str(i) for i in transaction_ids})
        out: dict[str, Label] = {}
        with self._engine.connect() as conn:
            for chunk in _chunks(wanted):
                query = sa.select(labels).where(labels.c.transaction_id.in_(chunk))
                for row in conn.execute(query):
                    out[row.transaction_id] = _label_from(row)
        return out

    def count_labels(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(labels)).scalar_one())

    def label_history(self, transaction_id: str | None = None) -> list[LabelChange]:
        """Audited label changes (all, or of one transaction), oldest first. Audits recorded
        before schema version 8 did not keep the source: they read as the default (manual)."""
        query = sa.select(label_audit).order_by(label_audit.c.changed_at, label_audit.c.id)
        if transaction_id is not None:
            query = query.where(label_audit.c.transaction_id == transaction_id)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()

        def side(row: sa.Row, prefix: str) -> Label:
            amount = getattr(row, f"{prefix}_amount")
            source = getattr(row, f"{prefix}_source")
            return Label(
                transaction_id=row.transaction_id,
                is_fraud=bool(getattr(row, f"{prefix}_is_fraud")),
                label_time=float(getattr(row, f"{prefix}_label_time")),
                amount=None if amount is None else float(amount),
                source=DEFAULT_LABEL_SOURCE if source is None else source,
            )

        return [
            LabelChange(
                transaction_id=row.transaction_id,
                old=side(row, "old"),
                new=side(row, "new"),
                changed_at=float(row.changed_at),
                actor=row.actor,
            )
            for row in rows
        ]

    # -- analysis input ---------------------------------------------------------------------

    def labelled_outcomes(
        self,
        experiment: str | None = None,
        since: float | datetime | None = None,
        until: float | datetime | None = None,
    ) -> list[ModelOutcome]:
        """Confusion counts per (model_name, model_version, role), decisions joined with labels.

        Filters: ``experiment`` (None = all decisions), ``since <= decided_at < until``. A
        transaction counts once per (model, version, role) -- its first decision -- so client
        retries do not inflate the sample. Positive = fraud: tp is a fraud flagged as fraud.
        """
        d = decisions
        filters = []
        if experiment is not None:
            filters.append(d.c.experiment == experiment)
        if (lo := _epoch(since)) is not None:
            filters.append(d.c.decided_at >= lo)
        if (hi := _epoch(until)) is not None:
            filters.append(d.c.decided_at < hi)
        rank = (
            sa.func.row_number()
            .over(
                partition_by=(d.c.model_name, d.c.model_version, d.c.role, d.c.transaction_id),
                order_by=(d.c.decided_at, d.c.id),
            )
            .label("rank")
        )
        first = (
            sa.select(
                d.c.model_name,
                d.c.model_version,
                d.c.role,
                d.c.transaction_id,
                d.c.is_fraud_decision,
                d.c.amount,
                rank,
            )
            .where(*filters)
            .subquery("first")
        )
        flagged = first.c.is_fraud_decision == sa.true()
        labelled = labels.c.transaction_id.is_not(None)
        fraud = labels.c.is_fraud == sa.true()
        amount = sa.func.coalesce(first.c.amount, labels.c.amount, 0.0)
        cells = {
            "tp": sa.and_(labelled, fraud, flagged),
            "fp": sa.and_(labelled, sa.not_(fraud), flagged),
            "fn": sa.and_(labelled, fraud, sa.not_(flagged)),
            "tn": sa.and_(labelled, sa.not_(fraud), sa.not_(flagged)),
        }
        columns = [first.c.model_name, first.c.model_version, first.c.role]
        for name, cond in cells.items():
            columns.append(sa.func.sum(sa.case((cond, 1), else_=0)).label(name))
            columns.append(sa.func.sum(sa.case((cond, amount), else_=0.0)).label(f"{name}_amount"))
        columns.append(sa.func.sum(sa.case((labelled, 0), else_=1)).label("unlabelled"))
        columns.append(
            sa.func.sum(sa.case((sa.and_(sa.not_(labelled), flagged), 1), else_=0)).label(
                "unlabelled_flagged"
            )
        )
        query = (
            sa.select(*columns)
            .select_from(first.outerjoin(labels, labels.c.transaction_id == first.c.transaction_id))
            .where(first.c.rank == 1)
            .group_by(first.c.model_name, first.c.model_version, first.c.role)
            .order_by(first.c.model_name, first.c.model_version, first.c.role)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            ModelOutcome(
                model_name=row.model_name,
                model_version=row.model_version,
                role=row.role,
                counts=ConfusionCounts(
                    tp=int(row.tp or 0),
                    fp=int(row.fp or 0),
                    fn=int(row.fn or 0),
                    tn=int(row.tn or 0),
                    unlabelled=int(row.unlabelled or 0),
                    unlabelled_flagged=int(row.unlabelled_flagged or 0),
                    tp_amount=float(row.tp_amount or 0.0),
                    fp_amount=float(row.fp_amount or 0.0),
                    fn_amount=float(row.fn_amount or 0.0),
                    tn_amount=float(row.tn_amount or 0.0),
                ),
            )
            for row in rows
        ]

    def experiment_counts(
        self,
        experiment: str,
        champion: str,
        challenger: str,
        *,
        as_of: float | datetime | None = None,
        maturity_s: float,
        since: float | datetime | None = None,
        until: float | datetime | None = None,
        parallelism: Parallelism | None = None,
        cache: bool | None = None,
    ) -> ExperimentCounts:
        """The evaluation's counts for ``experiment`` as of T, aggregated in the database.

        Decisions with ``since <= event_time < until`` and ``event_time <= T`` (T = ``as_of``,
        default now: a transaction exists once it happened, which also holds when simulated
        days are replayed faster than real time) count, one per transaction and arm (its
        retries collapse: flagged if any decision flagged it). A label counts only if known by
        T (``label_time <= T``); an unlabelled transaction counts as legitimate once
        ``event_time + maturity_s <= T``, else it is pending (``unlabelled``). Per arm (served
        decisions): confusion counts with amount sums, per event day, distinct routing keys and
        the latency histogram. Paired: the transactions both ``champion`` and ``challenger``
        scored (served or mirrored). Only grouped rows leave the database.

        On SQLite a big ledger's statements run on several connections at once (``parallelism``,
        default `Parallelism()`: one a core, up to 4; the same counts, see
        `fraudgate.ledger.counting.ExperimentQueries`), and the closed days' counts are kept in
        the ledger and read back by the next call (``cache``, default: a ledger of at least
        `fraudgate.ledger.day_cache.MIN_DECISIONS` decisions; True: any ledger; False: never;
        the same counts, see `fraudgate.ledger.day_cache`).
        """
        if not maturity_s >= 0:
            raise ValueError(f"maturity_s: expected seconds >= 0, received {maturity_s!r}")
        t = time.time() if as_of is None else _epoch(as_of)
        assert t is not None
        d = decisions
        where = [d.c.experiment == experiment, d.c.event_time <= t]
        if (lo := _epoch(since)) is not None:
            where.append(d.c.event_time >= lo)
        if (hi := _epoch(until)) is not None:
            where.append(d.c.event_time < hi)
        with self._counts_connection() as conn:
            day_cache = self._day_cache(
                conn,
                experiment,
                signature("experiment_counts", champion=champion, challenger=challenger),
                DayBounds(t, lo, hi, float(maturity_s)),
                cache,
            )
            queries = ExperimentQueries(
                conn,
                self.backend,
                where,
                t,
                maturity_s,
                connect=self._counts_connection,
                parallelism=Parallelism() if parallelism is None else parallelism,
                cache=day_cache,
                begin=self._count_cache_write,
            )
            arms, paired, paired_days = queries.counts(champion, challenger)
        return ExperimentCounts(
            experiment, champion, challenger, t, float(maturity_s), arms, paired, paired_days
        )

    @contextmanager
    def _counts_connection(self) -> Iterator[sa.Connection]:
        """A connection for the counts' statements (PostgreSQL: with `_COUNTS_SETTINGS`)."""
        with self._engine.connect() as conn:
            if self.backend == "postgresql":
                for name, value in _COUNTS_SETTINGS:
                    conn.exec_driver_sql(f"SET LOCAL {name} = {value}")
            yield conn

    def _count_cache_write(self) -> AbstractContextManager[sa.Connection]:
        """The count cache's write transaction (`_COUNT_CACHE_LOCK`)."""
        return self._write(lock=_COUNT_CACHE_LOCK)

    def clear_count_cache(self, experiment: str) -> int:
        """Drop what the count cache keeps for ``experiment`` (its days, units and marks; the
        next counts recount every day and store them anew); returns the rows dropped."""
        dropped = 0
        with self._count_cache_write() as conn:
            for table in (count_cache, count_cache_units, count_cache_marks):
                result = conn.execute(sa.delete(table).where(table.c.experiment == experiment))
                dropped += result.rowcount
        return dropped

    def count_cache_status(self, experiment: str) -> CountCacheStatus:
        """Whether the count cache applies to this ledger (at least `MIN_DECISIONS`
        decisions) and how many days it keeps for ``experiment``."""
        with self._engine.connect() as conn:
            low, high = decision_ids(conn, self.backend)
            days = conn.execute(
                sa.select(sa.func.count(sa.distinct(count_cache.c.day))).where(
                    count_cache.c.experiment == experiment
                )
            ).scalar()
        size = 0 if low is None or high is None else high - low + 1
        return CountCacheStatus(size >= MIN_DECISIONS, int(days or 0))

    def _day_cache(
        self,
        conn: sa.Connection,
        experiment: str,
        signature: str,
        bounds: DayBounds,
        cache: bool | None,
    ) -> DayCache | None:
        """The count cache of one statement (``cache``: None by the ledger's size, True
        always, False never), opened at the cut."""
        if cache is False:
            return None
        minimum = 0 if cache else MIN_DECISIONS
        ids = decision_ids(conn, self.backend)
        low, high = ids
        big = low is not None and high is not None and high - low + 1 >= minimum
        if self.backend == "postgresql" and big:
            ids = self._cut()  # only for a ledger the cache is opened for: it blocks writers
        return DayCache.open(
            conn, self.backend, experiment, signature, bounds, ids, min_decisions=minimum
        )

    def _cut(self) -> tuple[int | None, int | None]:
        """The count cache's cut on PostgreSQL (`fraudgate.ledger.day_cache.decision_ids`),
        read in a transaction of its own holding the cut lock exclusively."""
        with self._write(lock=DECISIONS_CUT_LOCK) as locked:
            return decision_ids(locked, self.backend)

    def monitoring_counts(
        self,
        experiment: str,
        *,
        as_of: float | datetime | None = None,
        edges: Mapping[str, Sequence[float]] | None = None,
        cache: bool | None = None,
    ) -> MonitoringCounts:
        """The report's score sums (CBPE) per model, role and event day, and per model of
        ``edges`` (its drift reference's inner bin edges) its decisions' score histogram, over
        the decisions ``experiment_counts`` reads (``event_time <= T``); see
        `fraudgate.ledger.monitoring_counts`. Only grouped rows leave the database. ``cache``:
        the closed days' rows kept and read back, as ``experiment_counts``."""
        from fraudgate.ledger.monitoring_counts import (
            MonitoringCounts,
            cache_signature,
            monitoring_rows,
        )

        t = time.time() if as_of is None else _epoch(as_of)
        assert t is not None
        where = [decisions.c.experiment == experiment, decisions.c.event_time <= t]
        edges = edges or {}
        with self._engine.connect() as conn:
            day_cache = self._day_cache(
                conn, experiment, cache_signature(edges), DayBounds(t), cache
            )
            sums, histograms = monitoring_rows(
                conn, self.backend, where, edges, day_cache, self._count_cache_write
            )
        return MonitoringCounts(experiment, t, tuple(sums), tuple(histograms))

    # -- experiment weight audit ------------------------------------------------------------

    def record_weight_change(
        self,
        experiment: str,
        weights: dict[str, float],
        actor: str,
        at: float | datetime | None = None,
    ) -> WeightChange:
        check_actor(actor)
        clean = _clean_weights(weights)
        when = time.time() if at is None else _epoch(at)
        assert when is not None
        with self._write() as conn:
            return _insert_weight_change(conn, experiment, clean, actor, when)

    def weight_history(self, experiment: str) -> list[WeightChange]:
        """The experiment's recorded weight changes, oldest first (``old``: the previous
        change's weights; ``generation`` unknown: None)."""
        query = (
            sa.select(weight_changes)
            .where(weight_changes.c.experiment == experiment)
            .order_by(weight_changes.c.changed_at, weight_changes.c.id)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        history: list[WeightChange] = []
        old: dict[str, float] = {}
        for row in rows:
            new = json.loads(row.weights_json)
            history.append(
                WeightChange(
                    experiment=row.experiment,
                    at=float(row.changed_at),
                    actor=row.actor,
                    old=old,
                    new=new,
                )
            )
            old = new
        return history

    # -- model-management audit -------------------------------------------------------------

    def record_admin_action(
        self,
        action: str,
        model: str,
        actor: str,
        detail: dict[str, Any],
        at: float | datetime | None = None,
    ) -> AdminAction:
        """Record a repository load/unload (durable when this returns)."""
        check_actor(actor)
        check_text(action, "action", 32)
        check_text(model, "model", 200)
        when = time.time() if at is None else _epoch(at)
        assert when is not None
        with self._write() as conn:
            conn.execute(
                sa.insert(admin_actions).values(
                    at=when,
                    actor=actor,
                    action=action,
                    model=model,
                    detail_json=json.dumps(detail, sort_keys=True),
                )
            )
        return AdminAction(at=when, actor=actor, action=action, model=model, detail=dict(detail))

    def admin_actions(self, model: str | None = None, limit: int = 1000) -> list[AdminAction]:
        """The latest ``limit`` admin actions (of ``model``), oldest first."""
        query = sa.select(admin_actions).order_by(admin_actions.c.id.desc()).limit(limit)
        if model is not None:
            query = query.where(admin_actions.c.model == model)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            AdminAction(
                at=float(row.at),
                actor=row.actor,
                action=row.action,
                model=row.model,
                detail=json.loads(row.detail_json),
            )
            for row in reversed(rows)
        ]

    # -- experiment actions (promote, rollback, rollout steps) and rollouts ------------------

    def record_experiment_action(
        self,
        experiment: str,
        action: str,
        actor: str,
        reason: str,
        detail: dict[str, Any],
        *,
        weights: dict[str, float] | None = None,
        at: float | None = None,
    ) -> ExperimentAction:
        """Record an act on ``experiment``; with ``weights``, the weight change it makes too, in
        the same transaction (replicas polling the weights see both or neither)."""
        check_actor(actor)
        check_text(action, "action", 32)
        check_reason(reason)
        clean = None if weights is None else _clean_weights(weights)
        when = time.time() if at is None else at
        with self._write() as conn:
            return _insert_action(conn, experiment, action, actor, reason, detail, clean, when)

    def experiment_actions(
        self, experiment: str, *, actions: Sequence[str] | None = None, limit: int = 1000
    ) -> list[ExperimentAction]:
        """The latest ``limit`` acts on ``experiment`` (of the kinds ``actions``), oldest first."""
        table = experiment_actions.c
        query = (
            sa.select(experiment_actions)
            .where(table.experiment == experiment)
            .order_by(table.at.desc(), table.id.desc())
            .limit(limit)
        )
        if actions is not None:
            query = query.where(table.action.in_(list(actions)))
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            ExperimentAction(
                experiment=row.experiment,
                at=float(row.at),
                actor=row.actor,
                action=row.action,
                reason=row.reason,
                detail=json.loads(row.detail_json),
                id=int(row.id),
            )
            for row in reversed(rows)
        ]

    def start_rollout(
        self, experiment: str, actor: str, plan: dict[str, Any], baseline: dict[str, Any]
    ) -> RolloutRecord:
        """A new running rollout (step -1) and its ``rollout_start`` act; ValueError if one is
        already running for ``experiment`` (checked under a lock on PostgreSQL)."""
        check_actor(actor)
        now = time.time()
        with self._write(lock=_ROLLOUT_LOCK) as conn:
            running = _running_rollout(conn, experiment)
            if running is not None:
                raise ValueError(
                    f"experiment {experiment!r}: rollout {running.id} (started by "
                    f"{running.actor}) is still running; resume it or end it first"
                )
            inserted = conn.execute(
                sa.insert(rollouts).values(
                    experiment=experiment,
                    actor=actor,
                    status="running",
                    plan_json=json.dumps(plan, sort_keys=True),
                    step=-1,
                    step_started_at=now,
                    baseline_json=json.dumps(baseline, sort_keys=True),
                    started_at=now,
                    updated_at=now,
                )
            ).inserted_primary_key
            assert inserted is not None
            rollout_id = int(inserted[0])
            _insert_action(
                conn,
                experiment,
                "rollout_start",
                actor,
                f"rollout {rollout_id} started",
                {"rollout": rollout_id, "plan": plan},
                None,
                now,
            )
            record = _rollout_by_id(conn, rollout_id)
        assert record is not None
        return record

    def running_rollout(self, experiment: str) -> RolloutRecord | None:
        with self._engine.connect() as conn:
            return _running_rollout(conn, experiment)

    def latest_rollout(self, experiment: str) -> RolloutRecord | None:
        """The experiment's most recent rollout, running or ended."""
        query = (
            sa.select(rollouts)
            .where(rollouts.c.experiment == experiment)
            .order_by(rollouts.c.id.desc())
            .limit(1)
        )
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _rollout_from(row)

    def advance_rollout(
        self,
        rollout: RolloutRecord,
        *,
        step: int,
        status: str,
        baseline: dict[str, Any],
        action: str,
        reason: str,
        detail: dict[str, Any],
        weights: dict[str, float] | None = None,
    ) -> RolloutRecord | None:
        """Move ``rollout`` from the step it was read at to ``step`` (and ``status``), recording
        the act (and the weights) in the same transaction. None when the ledger's rollout is no
        longer at ``rollout.step`` or running (another controller moved it): nothing recorded."""
        check_reason(reason)
        check_text(status, "status", 16)
        clean = None if weights is None else _clean_weights(weights)
        now = time.time()
        table = rollouts.c
        with self._write(lock=_ROLLOUT_LOCK) as conn:
            moved = conn.execute(
                sa.update(rollouts)
                .where(table.id == rollout.id, table.step == rollout.step)
                .where(table.status == "running")
                .values(
                    step=step,
                    status=status,
                    step_started_at=now if step != rollout.step else rollout.step_started_at,
                    baseline_json=json.dumps(baseline, sort_keys=True),
                    updated_at=now,
                )
            ).rowcount
            if moved != 1:
                return None
            full = {"rollout": rollout.id, "step": step, **detail}
            _insert_action(
                conn, rollout.experiment, action, rollout.actor, reason, full, clean, now
            )
            return _rollout_by_id(conn, rollout.id)


def _clean_weights(weights: dict[str, float]) -> dict[str, float]:
    clean: dict[str, float] = {}
    for name, weight in weights.items():
        value = float(weight)
        if not math.isfinite(value) or value < 0:
            raise ValueError(
                f"weights[{name!r}]: expected a finite number >= 0, received {weight!r}"
            )
        clean[str(name)] = value
    return clean


def _insert_weight_change(
    conn: sa.Connection, experiment: str, clean: dict[str, float], actor: str, when: float
) -> WeightChange:
    table = weight_changes.c
    inserted = conn.execute(
        sa.insert(weight_changes).values(
            experiment=experiment,
            weights_json=json.dumps(clean, sort_keys=True),
            actor=actor,
            changed_at=when,
        )
    ).inserted_primary_key
    assert inserted is not None
    inserted_id = inserted[0]
    before = conn.execute(  # the change before it in `weight_history` order
        sa.select(table.weights_json)
        .where(
            table.experiment == experiment,
            sa.or_(
                table.changed_at < when,
                sa.and_(table.changed_at == when, table.id < inserted_id),
            ),
        )
        .order_by(table.changed_at.desc(), table.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    old = {} if before is None else json.loads(before)
    return WeightChange(experiment=experiment, at=when, actor=actor, old=old, new=clean)


def _insert_action(
    conn: sa.Connection,
    experiment: str,
    action: str,
    actor: str,
    reason: str,
    detail: dict[str, Any],
    weights: dict[str, float] | None,
    when: float,
) -> ExperimentAction:
    inserted = conn.execute(
        sa.insert(experiment_actions).values(
            experiment=experiment,
            at=when,
            actor=actor,
            action=action,
            reason=reason,
            detail_json=json.dumps(detail, sort_keys=True),
        )
    ).inserted_primary_key
    assert inserted is not None
    if weights is not None:
        _insert_weight_change(conn, experiment, weights, f"{actor} ({action})"[:100], when)
    return ExperimentAction(experiment, when, actor, action, reason, dict(detail), int(inserted[0]))


def _rollout_from(row: sa.Row) -> RolloutRecord:
    return RolloutRecord(
        id=int(row.id),
        experiment=row.experiment,
        actor=row.actor,
        status=row.status,
        plan=json.loads(row.plan_json),
        step=int(row.step),
        step_started_at=float(row.step_started_at),
        baseline=json.loads(row.baseline_json),
        started_at=float(row.started_at),
        updated_at=float(row.updated_at),
    )


def _rollout_by_id(conn: sa.Connection, rollout_id: int) -> RolloutRecord | None:
    row = conn.execute(sa.select(rollouts).where(rollouts.c.id == rollout_id)).first()
    return None if row is None else _rollout_from(row)


def _running_rollout(conn: sa.Connection, experiment: str) -> RolloutRecord | None:
    query = (
        sa.select(rollouts)
        .where(rollouts.c.experiment == experiment, rollouts.c.status == "running")
        .order_by(rollouts.c.id.desc())
        .limit(1)
    )
    row = conn.execute(query).first()
    return None if row is None else _rollout_from(row)


_UPSERT_OFFSET = (
    "INSERT INTO journal_offsets (segment, shipped_bytes, updated_at) VALUES (%s, %s, %s) "
    "ON CONFLICT (segment) DO UPDATE SET shipped_bytes = excluded.shipped_bytes, "
    "updated_at = excluded.updated_at"
)


# A decision as the DBAPI inserts it: its values in DECISION_FIELDS order (private to the store).
_Row = tuple[Any, ...]


_EVENT_TIME = DECISION_FIELDS.index("event_time")
_DECIDED_AT = DECISION_FIELDS.index("decided_at")


def _value_rows(batches: Sequence[DecisionBatch]) -> list[_Row]:
    """The value tuples of the batches' rows (a shared value repeated on every row); a missing
    event time is the decision time."""
    rows: list[_Row] = []
    for batch in batches:
        n = batch.n
        values = list(batch.columns())
        event, decided = values[_EVENT_TIME], values[_DECIDED_AT]
        if event is None:
            values[_EVENT_TIME] = decided
        elif isinstance(event, list | tuple) and None in event:
            if isinstance(decided, list | tuple) and len(decided) == len(event):
                pairs = zip(event, decided, strict=True)
                values[_EVENT_TIME] = [d if e is None else e for e, d in pairs]
            elif not isinstance(decided, list | tuple):
                values[_EVENT_TIME] = [decided if e is None else e for e in event]
        columns = [v if isinstance(v, list | tuple) else repeat(v, n) for v in values]
        try:
            rows.extend(zip(*columns, strict=True))
        except ValueError:
            for name, column in zip(DECISION_FIELDS, columns, strict=True):
                if isinstance(column, list | tuple) and len(column) != n:
                    raise ValueError(
                        f"batch.{name}: expected {n} values, received {len(column)}"
                    ) from None
            raise
    return rows


class DecisionSink:
    """Inserts decision batches on one DBAPI connection it keeps: the group-commit writer's and
    the journal shipper's hot path.

    Plain DBAPI calls with one value tuple per row, made here from the batches' columns (no
    per-row SQLAlchemy processing, no object per row); the rows are durable when
    :meth:`write` returns. On SQLite a write is ONE multi-row ``INSERT ... VALUES (...), (...)``
    statement per chunk of ``SQLITE_ROWS_PER_STATEMENT`` rows: a single ``sqlite3_step``, so the
    writer thread gives up and retakes the GIL once per chunk instead of once per row (on a busy
    single core each retake can wait for the event loop's switch interval), and it is ~15%
    cheaper per row than ``executemany``. One chunk is its own (autocommit) transaction; several
    share one ``BEGIN IMMEDIATE`` transaction. The sink's connection never checkpoints the WAL
    itself (``wal_autocheckpoint=0``): a checkpoint fsyncs and took 4-30 ms, stalling every
    request waiting for that commit; whoever owns the sink calls :meth:`LedgerStore.checkpoint`
    from another thread instead (the `DecisionWriter` does, every ``checkpoint_interval_s``).
    Durability is unchanged: a commit is durable once in the WAL. On PostgreSQL it is
    ``executemany`` + commit.

    The connection is checked out of the store's pool once (lazily) and kept; after a failed
    write it is discarded, and the next write opens a fresh one (the database may have
    restarted). Not thread-safe: one sink per thread.
    """

    def __init__(self, store: LedgerStore) -> None:
        self._store = store
        self._sqlite = store.backend == "sqlite"
        self._raw: Any = None  # the pool's DBAPI connection proxy
        self._sql: dict[int, str] = {}  # rows per statement -> multi-row INSERT (SQLite)

    def write(
        self,
        batches: Sequence[DecisionBatch],
        shipped: tuple[str, int] | None = None,
        marks: Sequence[tuple[str, int]] = (),
    ) -> None:
        """Insert the decisions of ``batches``; with ``shipped`` (journal segment, byte offset)
        also record that offset, and ``marks`` (more such pairs: quarantine markers), in the
        same transaction (see `fraudgate.ledger.journal` and `fraudgate.ledger.quarantine`).
        ValueError if a batch's column does not hold one value per row."""
        rows = _value_rows(batches)
        if marks:
            offsets = [*marks] if shipped is None else [shipped, *marks]
        else:
            offsets = [] if shipped is None else [shipped]
        if not rows and not offsets:
            return
        if self._raw is None:
            self._raw = self._store._engine.raw_connection()
            if self._sqlite:
                self._raw.cursor().execute("PRAGMA wal_autocheckpoint=0")
        try:
            if self._sqlite:
                self._write_sqlite(rows, offsets)
            else:
                self._write_postgresql(rows, offsets)
        except BaseException:
            self._discard()
            raise

    def _write_sqlite(self, rows: Sequence[_Row], offsets: list[tuple[str, int]]) -> None:
        cursor = self._raw.cursor()
        step = SQLITE_ROWS_PER_STATEMENT
        try:
            if len(rows) <= step and not offsets:
                cursor.execute(self._insert_sql(len(rows)), list(chain.from_iterable(rows)))
                return
            cursor.execute("BEGIN IMMEDIATE")
            for start in range(0, len(rows), step):
                chunk = rows[start : start + step]
                cursor.execute(self._insert_sql(len(chunk)), list(chain.from_iterable(chunk)))
            for offset in offsets:
                cursor.execute(_UPSERT_OFFSET.replace("%s", "?"), (*offset, time.time()))
            cursor.execute("COMMIT")
        finally:
            cursor.close()

    def _insert_sql(self, n: int) -> str:
        sql = self._sql.get(n)
        if sql is None:
            one = f"({', '.join(['?'] * len(DECISION_FIELDS))})"
            sql = self._sql[n] = (
                f"INSERT INTO decisions ({', '.join(DECISION_FIELDS)}) VALUES "
                + ", ".join([one] * n)
            )
        return sql

    def _write_postgresql(self, rows: Sequence[_Row], offsets: list[tuple[str, int]]) -> None:
        cursor = self._raw.cursor()
        try:
            if rows:
                cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", (DECISIONS_CUT_LOCK,))
                cursor.executemany(self._store._insert_decisions_sql, rows)
            for offset in offsets:
                cursor.execute(_UPSERT_OFFSET, (*offset, time.time()))
        finally:
            cursor.close()
        self._raw.commit()

    def _discard(self) -> None:
        raw, self._raw = self._raw, None
        if raw is not None:
            raw.invalidate()  # never back to the pool: its state is unknown
            raw.close()

    def close(self) -> None:
        raw, self._raw = self._raw, None
        if raw is not None:
            if self._sqlite:  # back to the pool: checkpoint on commit like any connection
                raw.cursor().execute("PRAGMA wal_autocheckpoint=1000")
            raw.close()
