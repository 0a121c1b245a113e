"""Ledger tables and the ordered list of schema migrations.

The tables below describe the *current* schema and are what queries use. ``MIGRATIONS`` is the
ordered history that produces it: each step has a version number, a description and a function
run inside the migration transaction. A new schema change is a new step appended at the end
(never an edit to an applied one). ``schema_version`` holds one row per applied step.

Migrations run at ``open_ledger`` under a lock, so two processes opening the same database at
once apply each step exactly once: ``pg_advisory_xact_lock`` on PostgreSQL, ``BEGIN IMMEDIATE``
(the database write lock) on SQLite. DDL is transactional on both, so a step either fully
applies, together with its ``schema_version`` row, or not at all.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("description", sa.String(200), nullable=False),
    sa.Column("applied_at", sa.Double, nullable=False),
)

# Decisions are append-only. No uniqueness on request_id: callers may reuse request ids, and an
# acknowledged decision must never be dropped by a constraint.
decisions = sa.Table(
    "decisions",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("request_id", sa.String(200), nullable=False),
    sa.Column("transaction_id", sa.String(200), nullable=False),
    sa.Column("decided_at", sa.Double, nullable=False),
    sa.Column("experiment", sa.String(200)),
    sa.Column("arm", sa.String(200)),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("model_name", sa.String(200), nullable=False),
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("score", sa.Double, nullable=False),
    sa.Column("threshold", sa.Double, nullable=False),
    sa.Column("is_fraud_decision", sa.Boolean, nullable=False),
    sa.Column("latency_ms", sa.Double, nullable=False),
    sa.Column("amount", sa.Double),
    sa.Column("routing_key_hash", sa.String(128)),
    # when the transaction happened (migration 6; the store writes decided_at when not given)
    sa.Column("event_time", sa.Double),
)

labels = sa.Table(
    "labels",
    metadata,
    sa.Column("transaction_id", sa.String(200), primary_key=True),
    sa.Column("is_fraud", sa.Boolean, nullable=False),
    sa.Column("label_time", sa.Double, nullable=False),
    sa.Column("amount", sa.Double),
    sa.Column("received_at", sa.Double, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    # investigation | chargeback | manual (migration 6); label_time is when it became known
    sa.Column("source", sa.String(16), nullable=False, server_default="manual"),
)

label_audit = sa.Table(
    "label_audit",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("transaction_id", sa.String(200), nullable=False, index=True),
    sa.Column("old_is_fraud", sa.Boolean, nullable=False),
    sa.Column("old_label_time", sa.Double, nullable=False),
    sa.Column("old_amount", sa.Double),
    sa.Column("new_is_fraud", sa.Boolean, nullable=False),
    sa.Column("new_label_time", sa.Double, nullable=False),
    sa.Column("new_amount", sa.Double),
    sa.Column("changed_at", sa.Double, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    # the label's source before and after (migration 8; NULL in audits recorded before it)
    sa.Column("old_source", sa.String(16)),
    sa.Column("new_source", sa.String(16)),
)

weight_changes = sa.Table(
    "weight_changes",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("experiment", sa.String(200), nullable=False, index=True),
    sa.Column("weights_json", sa.Text, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("changed_at", sa.Double, nullable=False),
)

# Model-management actions (repository load, reload with a new threshold, unload), audited like
# weight changes: recorded before the change takes effect, so nothing changes unrecorded.
admin_actions = sa.Table(
    "admin_actions",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("at", sa.Double, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("model", sa.String(200), nullable=False, index=True),
    sa.Column("detail_json", sa.Text, nullable=False),
)

# Promotions, rollbacks and rollout steps of an experiment: what was done, by whom, why, on which
# evidence (``detail_json``: the serving state it left and the evaluation it was based on).
experiment_actions = sa.Table(
    "experiment_actions",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("experiment", sa.String(200), nullable=False, index=True),
    sa.Column("at", sa.Double, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("detail_json", sa.Text, nullable=False),
)

# One row per `fraudgate rollout`: its plan and where it stands. ``step`` moves only by a
# compare-and-set on (id, step), in the transaction that records the step, so a rollout killed
# and restarted resumes at the recorded step: never one repeated, never one skipped.
rollouts = sa.Table(
    "rollouts",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("experiment", sa.String(200), nullable=False, index=True),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # running | promoted | rolled_back | ...
    sa.Column("plan_json", sa.Text, nullable=False),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("step_started_at", sa.Double, nullable=False),
    sa.Column("baseline_json", sa.Text, nullable=False),
    sa.Column("started_at", sa.Double, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
)

# How far `fraudgate ledger ship` has moved each decision-journal segment into ``decisions``:
# updated in the same transaction as the rows it moved, so a segment is shipped exactly once.
journal_offsets = sa.Table(
    "journal_offsets",
    metadata,
    sa.Column("segment", sa.String(300), primary_key=True),
    sa.Column("shipped_bytes", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
)

# Closed event days' grouped rows of the evaluation's and the monitoring's counts (migration
# 10; `fraudgate.ledger.day_cache`): a report recounts only the days that changed. One mark per
# (experiment, signature): the entries hold the decisions with ids up to ``through_id``.
count_cache = sa.Table(
    "count_cache",
    metadata,
    sa.Column("experiment", sa.String(200), primary_key=True),
    sa.Column("signature", sa.String(64), primary_key=True),
    sa.Column("day", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("rows_json", sa.Text, nullable=False),
)
# The experiment's randomisation units with the earliest event time of each (arm, routing key)'s
# served decisions (the SRM's distinct units as of any T: a count of first_time <= T), brought up
# to the mark of the signature "units" by each report.
count_cache_units = sa.Table(
    "count_cache_units",
    metadata,
    sa.Column("experiment", sa.String(200), primary_key=True),
    sa.Column("arm", sa.String(200), primary_key=True),
    sa.Column("routing_key", sa.String(128), primary_key=True),
    sa.Column("first_time", sa.Double, nullable=False),
    sqlite_with_rowid=False,  # one B-tree (the key), not a table and its key's index
)
count_cache_marks = sa.Table(
    "count_cache_marks",
    metadata,
    sa.Column("experiment", sa.String(200), primary_key=True),
    sa.Column("signature", sa.String(64), primary_key=True),
    sa.Column("through_id", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
)

# One row, written by the migration that creates it: this ledger's random identity. A decision
# journal is stamped with it, and a shipper only moves journals stamped with its own ledger's
# (two servers with different ledgers may share a journal directory without mixing them).
ledger_meta = sa.Table(
    "ledger_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(200), nullable=False),
)
LEDGER_ID_KEY = "ledger_id"

# Indexes for the joins the analysis does (created by migration 2). Each index costs the hot
# insert path -- on SQLite a few microseconds per row, far more when its keys arrive in random
# order -- so only these two: transaction_id (the label join, decisions_for) and model + time
# (per-model windows). Finding a request's decisions (decisions_for_requests) scans: it is a
# test and debugging aid, not a hot query. An experiment filter scans; analysis is periodic.
ANALYSIS_INDEXES = (
    sa.Index("ix_decisions_transaction_id", decisions.c.transaction_id),
    sa.Index(
        "ix_decisions_model_decided_at",
        decisions.c.model_name,
        decisions.c.model_version,
        decisions.c.decided_at,
    ),
)
# Index for the evaluation's counts (migration 6): an experiment's decisions by role and event
# time (the window). Labels join by their primary key; the as-of filter is on the joined row.
EVALUATION_INDEXES = (
    sa.Index(
        "ix_decisions_experiment_role_event_time",
        decisions.c.experiment,
        decisions.c.role,
        decisions.c.event_time,
    ),
)
# The covering index of the evaluation's counts (migration 9): an experiment's decisions in
# transaction order with every column the per-transaction grouping reads, so the GROUP BY
# transaction streams through it without a sort or a table lookup (fraudgate.ledger.counting),
# and the labels reach their decisions by it. The write path's price: one more index whose keys
# arrive in random order (see bench/README.md, "report.py").
TRANSACTION_COUNTS_INDEX = "ix_decisions_experiment_transaction"
COUNTS_INDEXES = (
    sa.Index(
        TRANSACTION_COUNTS_INDEX,
        decisions.c.experiment,
        decisions.c.transaction_id,
        decisions.c.arm,
        decisions.c.role,
        decisions.c.model_name,
        decisions.c.is_fraud_decision,
        decisions.c.event_time,
        decisions.c.amount,
    ),
)
# Columns added by later migrations (6, 8): version 1's tables are created without them.
_LATER_COLUMNS = {
    "decisions": ("event_time",),
    "labels": ("source",),
    "label_audit": ("old_source", "new_source"),
}
# Created by migration 2 as well, dropped by migration 3 (it cost ~20% of the per-row insert).
_REQUEST_ID_INDEX = "ix_decisions_request_id"


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[sa.Connection], None]


def _create_tables(conn: sa.Connection) -> None:
    # The tables of version 1: copies of the tables above without the indexes that later steps
    # add, so this step keeps doing what it did when it was first applied.
    v1 = sa.MetaData()
    for table in (decisions, labels, label_audit, weight_changes):
        later = _LATER_COLUMNS.get(table.name, ())
        sa.Table(
            table.name,
            v1,
            *(column._copy() for column in table.columns if column.name not in later),
        )
    v1.create_all(conn, checkfirst=True)


def _create_analysis_indexes(conn: sa.Connection) -> None:
    for index in ANALYSIS_INDEXES:
        index.create(conn, checkfirst=True)
    conn.execute(
        sa.text(f"CREATE INDEX IF NOT EXISTS {_REQUEST_ID_INDEX} ON decisions (request_id)")
    )


def _drop_request_id_index(conn: sa.Connection) -> None:
    conn.execute(sa.text(f"DROP INDEX IF EXISTS {_REQUEST_ID_INDEX}"))


def _create_journal_tables(conn: sa.Connection) -> None:
    journal_offsets.create(conn, checkfirst=True)
    ledger_meta.create(conn, checkfirst=True)
    conn.execute(sa.insert(ledger_meta).values(key=LEDGER_ID_KEY, value=uuid.uuid4().hex))


def _create_admin_actions(conn: sa.Connection) -> None:
    admin_actions.create(conn, checkfirst=True)


def _add_event_time_and_label_source(conn: sa.Connection) -> None:
    # ALTER TABLE ADD COLUMN is cheap on both (no table rewrite for a nullable column / a
    # constant default); the backfill gives old decisions their decision time as event time.
    conn.execute(sa.text("ALTER TABLE decisions ADD COLUMN event_time DOUBLE PRECISION"))
    conn.execute(sa.text("UPDATE decisions SET event_time = decided_at"))
    conn.execute(
        sa.text("ALTER TABLE labels ADD COLUMN source VARCHAR(16) NOT NULL DEFAULT 'manual'")
    )
    for index in EVALUATION_INDEXES:
        index.create(conn, checkfirst=True)


def _create_experiment_actions(conn: sa.Connection) -> None:
    experiment_actions.create(conn, checkfirst=True)
    rollouts.create(conn, checkfirst=True)


def _add_label_audit_source(conn: sa.Connection) -> None:
    for column in ("old_source", "new_source"):
        conn.execute(sa.text(f"ALTER TABLE label_audit ADD COLUMN {column} VARCHAR(16)"))


def _create_counts_indexes(conn: sa.Connection) -> None:
    for index in COUNTS_INDEXES:
        index.create(conn, checkfirst=True)


def _create_count_cache(conn: sa.Connection) -> None:
    count_cache.create(conn, checkfirst=True)
    count_cache_units.create(conn, checkfirst=True)
    count_cache_marks.create(conn, checkfirst=True)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "decisions, labels, label_audit, weight_changes", _create_tables),
    Migration(2, "indexes for analysis joins", _create_analysis_indexes),
    Migration(3, "drop the request_id index (cheaper inserts)", _drop_request_id_index),
    Migration(
        4, "journal_offsets and the ledger's identity (journal shipping)", _create_journal_tables
    ),
    Migration(5, "admin_actions (model-management audit)", _create_admin_actions),
    Migration(
        6,
        "decisions.event_time, labels.source, indexes for the evaluation's counts",
        _add_event_time_and_label_source,
    ),
    Migration(
        7, "experiment_actions and rollouts (promote, rollback, ramp)", _create_experiment_actions
    ),
    Migration(8, "label_audit.old_source, new_source", _add_label_audit_source),
    Migration(
        9, "covering index for the evaluation's per-transaction counts", _create_counts_indexes
    ),
    Migration(
        10, "count_cache: closed days' grouped counts, the units' first times", _create_count_cache
    ),
)
LATEST_VERSION = MIGRATIONS[-1].version


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer fraudgate than this one."""


def migrate(conn: sa.Connection) -> list[int]:
    """Apply pending migrations on ``conn`` (inside a transaction that already holds the lock).

    Returns the versions applied now (empty when the schema was already current).
    """
    schema_version.create(conn, checkfirst=True)
    applied = {row[0] for row in conn.execute(sa.select(schema_version.c.version))}
    newest = max(applied, default=0)
    if newest > LATEST_VERSION:
        raise SchemaTooNew(
            f"ledger schema is at version {newest}, newer than the {LATEST_VERSION} this fraudgate "
            "supports; upgrade fraudgate (or point it at another ledger)"
        )
    done: list[int] = []
    for step in MIGRATIONS:
        if step.version in applied:
            continue
        step.apply(conn)
        conn.execute(
            sa.insert(schema_version).values(
                version=step.version, description=step.description, applied_at=time.time()
            )
        )
        done.append(step.version)
    return done
