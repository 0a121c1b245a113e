"""Closed event days' grouped rows, kept in the ledger: a report recounts only what changed.

The evaluation's counts (`fraudgate.ledger.counting`) and the monitoring counts
(`fraudgate.ledger.monitoring_counts`) are GROUP BYs with the event day among their keys, so
one day's rows add to the others' (mergeable counts). A day that is wholly inside what a call
reads is stored in ``count_cache`` once counted and read back by the next call instead of
recounted: a daily report over a long experiment counts about two days, not all of them.

Exact, because:

* **one cut**: every statement of a call reads ``decisions.id <= W``, W the largest id when
  the call began, and every decision up to W is committed by then (`decision_ids`). SQLite:
  its one writer holds the lock from the insert to the commit, so ids commit in order.
  PostgreSQL: ids come from a sequence at insert time, so a smaller id could commit after a
  larger one; every decision insert holds an advisory lock shared, and W is read holding it
  exclusively (for a few milliseconds) -- so every process writing decisions must be a
  fraudgate that takes it (one that predates schema 10 refuses to open the migrated ledger;
  during a rolling upgrade, keep the report off until the old writers are gone, or run it with
  ``--recount`` after). Decisions are append-only. The entries written by a
  call hold exactly the decisions up to its W, the mark ``through_id``.
* **what changed**: the next call, with W' > W, reads the decisions ``W < id <= W'`` (by
  rowid) and drops the entry of every day in which one of their *transactions* has a decision
  -- a new decision changes its own day and may join a transaction of an older day (a retry,
  a late mirror copy).
* **a day stands alone**: a day is stored only if no transaction with a decision in it has a
  decision on another day (the ``spans`` statement over the days counted live), so its
  per-transaction counts depend on its own decisions only.
* **wholly inside**: only days that end before T and lie inside ``[since, until)``, and, for
  the evaluation's counts, are wholly matured or wholly not at T, each with a second's margin
  for the rounding of the SQL day number. Rows are stored without the matured bit, which each
  call sets from its own T.

The SRM's units (distinct routing keys per arm) do not add up by day; `DayCache.units` keeps
each (arm, key)'s earliest event time instead, brought up to the cut by each call.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from fraudgate.ledger.records import ROLES, SECONDS_PER_DAY
from fraudgate.ledger.schema import count_cache, count_cache_marks, count_cache_units, decisions

_log = logging.getLogger(__name__)
# Bumped whenever a cached statement's rows change shape or meaning (old entries then unused).
CACHE_VERSION = 1
# Below this many decisions in the ledger, counting is cheap and the cache's reads, writes and
# dirty-day look-ups are not worth it.
MIN_DECISIONS = 200_000
# Seconds between a day's edge and T, since, until or the maturity cut for the day to count as
# wholly on one side (the SQL day number, event_time / 86400, rounds).
_MARGIN_S = 1.0
# Decision ids per write transaction of the units table's fill (0.15-1.1 s each at 10 million).
_UNITS_CHUNK = 100_000

Entry = Any  # one day's stored rows: whatever JSON the statement's owner keeps
Begin = Callable[[], AbstractContextManager[sa.Connection]]


def signature(kind: str, **parameters: Any) -> str:
    """A cached statement's identity: its kind, CACHE_VERSION and what its rows depend on."""
    text = orjson.dumps(
        {"kind": kind, "version": CACHE_VERSION, **parameters}, option=orjson.OPT_SORT_KEYS
    )
    return hashlib.sha256(text).hexdigest()[:32]


UNITS_SIGNATURE = signature("units")


def sql_day(event_time: Any, backend: str) -> Any:
    """The UTC day number of an event time in SQL, as the counts' queries group by it (floor;
    SQLite's CAST truncates, and event times are positive; PostgreSQL's CAST would round)."""
    if backend == "postgresql":
        return sa.cast(sa.func.floor(event_time / SECONDS_PER_DAY), sa.BigInteger)
    return sa.cast(event_time / SECONDS_PER_DAY, sa.Integer)


@dataclass(frozen=True, slots=True)
class DayBounds:
    """What a call reads in event time: ``event_time <= as_of``, ``since <= event_time <
    until``; ``maturity_s``: the call splits transactions at ``event_time + maturity_s <=
    as_of`` (None: it does not)."""

    as_of: float
    since: float | None = None
    until: float | None = None
    maturity_s: float | None = None

    def matured(self, day: int) -> int | None:
        """For a day wholly inside: 1 if every event of it is matured at T, else 0 (also
        without maturity); None if the day is cut by T, the window or the maturity cut."""
        start, end = day * SECONDS_PER_DAY - _MARGIN_S, (day + 1) * SECONDS_PER_DAY + _MARGIN_S
        if end > self.as_of:
            return None
        if (self.since is not None and start < self.since) or (
            self.until is not None and end > self.until
        ):
            return None
        if self.maturity_s is None:
            return 0
        if end + self.maturity_s <= self.as_of:
            return 1
        if start + self.maturity_s > self.as_of:
            return 0
        return None


@dataclass(slots=True)
class DayCache:
    """One call's view of one statement's entries (``experiment``, ``signature``): the days
    read from the cache (``days``: their stored rows), the cut ``through_id`` every statement
    of the call reads up to, and what `save` writes back."""

    backend: str
    experiment: str
    signature: str
    bounds: DayBounds
    through_id: int
    days: dict[int, Entry] = field(default_factory=dict)
    _mark: int | None = None  # the mark as loaded (None: no entries)
    _dirty: set[int] = field(default_factory=set)
    _writable: bool = True

    @classmethod
    def open(
        cls,
        conn: sa.Connection,
        backend: str,
        experiment: str,
        signature: str,
        bounds: DayBounds,
        ids: tuple[int | None, int | None],
        *,
        min_decisions: int = MIN_DECISIONS,
    ) -> DayCache | None:
        """The usable entries for the cut ``ids`` (the smallest and the largest decision id,
        every decision up to the largest committed: `decision_ids`); None when the ledger
        holds fewer than ``min_decisions`` decisions."""
        low, high = ids
        if low is None or high is None or high - low + 1 < min_decisions:
            return None
        cache = cls(backend, experiment, signature, bounds, int(high))
        key = (count_cache_marks.c.experiment == experiment) & (
            count_cache_marks.c.signature == signature
        )
        mark = conn.execute(sa.select(count_cache_marks.c.through_id).where(key)).scalar()
        if mark is None:
            return cache
        cache._mark = int(mark)
        if cache._mark > cache.through_id:  # written by a call with a later cut: not ours
            cache._writable = False
            return cache
        if cache._mark < cache.through_id:
            cache._dirty = _dirty_days(conn, backend, experiment, cache._mark, cache.through_id)
        entries = sa.select(count_cache.c.day, count_cache.c.rows_json).where(
            count_cache.c.experiment == experiment, count_cache.c.signature == signature
        )
        for day, rows_json in conn.execute(entries):
            if day not in cache._dirty and bounds.matured(day) is not None:
                cache.days[int(day)] = orjson.loads(rows_json)
        return cache

    def where(self, event_time: Any) -> list[Any]:
        """The conditions of the statements that count live: the cut, and not a cached day.

        The live decisions are picked by id from the experiment's event-time index (its
        ranges around the days not cached, a second wider on each side), then kept by their
        exact day number: without the ranges SQLite would test every decision of the
        experiment (about 2 s at 10 million a statement, against 0.5 s)."""
        conditions = [self._cut()]
        if not self.days:
            return conditions
        d = decisions
        ranges = []
        for low, high in _live_ranges(sorted(self.days)):
            bounds = []
            if low is not None:
                bounds.append(d.c.event_time >= low)
            if high is not None:
                bounds.append(d.c.event_time < high)
            ranges.append(sa.and_(*bounds))
        picked = sa.select(d.c.id).where(
            d.c.experiment == self.experiment, d.c.role.in_(ROLES), sa.or_(*ranges)
        )
        day = sql_day(event_time, self.backend)
        conditions += [d.c.id.in_(picked), day.not_in(sorted(self.days))]
        return conditions

    def _cut(self) -> Any:
        """``id <= W``, on SQLite as true for almost every decision (``likely``): else its
        planner may read the table in rowid order for it instead of the experiment's index."""
        cut = decisions.c.id <= self.through_id
        return sa.func.likely(cut) if self.backend == "sqlite" else cut

    def spans(self) -> sa.Select[Any]:
        """The (first, last) day pairs of the transactions counted live whose decisions fall
        on more than one day: none of the days from first to last may be stored."""
        d = decisions
        first = sql_day(sa.func.min(d.c.event_time), self.backend)
        last = sql_day(sa.func.max(d.c.event_time), self.backend)
        per_txn = (
            sa.select(first.label("first"), last.label("last"))
            .where(d.c.experiment == self.experiment, *self.where(d.c.event_time))
            .group_by(d.c.transaction_id)
            .having(first != last)
            .subquery("spanning")
        )
        return sa.select(per_txn.c.first, per_txn.c.last).distinct()

    def storable(self, counted: Iterable[int], spans: Iterable[tuple[int, int]]) -> set[int]:
        """Of the days counted live now, those wholly inside the bounds and standing alone."""
        blocked: set[int] = set()
        for first, last in spans:
            blocked.update(range(int(first), int(last) + 1))
        return {
            day
            for day in counted
            if day not in blocked and day not in self.days and self.bounds.matured(day) is not None
        }

    def save(self, begin: Begin, rows_by_day: Mapping[int, Entry]) -> bool:
        """Write the new days' rows, drop the changed days' entries and move the mark to the
        cut, in one transaction; skipped (False) if another call moved the mark meanwhile, or
        if the ledger cannot be written now (locked, read-only: logged; the counts of this
        call are unaffected, the next call counts those days again)."""
        if not self._writable or (not rows_by_day and self._mark == self.through_id):
            return False
        try:
            return self._save(begin, rows_by_day)
        except sa.exc.OperationalError as error:
            _log.warning("count cache not saved (%s); the counts are unaffected", error)
            return False

    def _save(self, begin: Begin, rows_by_day: Mapping[int, Entry]) -> bool:
        key = (count_cache_marks.c.experiment == self.experiment) & (
            count_cache_marks.c.signature == self.signature
        )
        entry = (count_cache.c.experiment == self.experiment) & (
            count_cache.c.signature == self.signature
        )
        with begin() as conn:
            mark = conn.execute(sa.select(count_cache_marks.c.through_id).where(key)).scalar()
            if mark != self._mark:
                return False
            stale = self._dirty | set(rows_by_day)
            if stale:
                conn.execute(sa.delete(count_cache).where(entry, count_cache.c.day.in_(stale)))
            if rows_by_day:
                conn.execute(
                    sa.insert(count_cache),
                    [
                        {
                            "experiment": self.experiment,
                            "signature": self.signature,
                            "day": day,
                            "rows_json": orjson.dumps(rows).decode(),
                        }
                        for day, rows in sorted(rows_by_day.items())
                    ],
                )
            _set_mark(conn, self.experiment, self.signature, self.through_id)
        return True

    def units(self, begin: Begin) -> dict[str, int] | None:
        """Distinct routing keys per arm of the served decisions with ``event_time <= T`` (the
        SRM's units), from ``count_cache_units``: the (arm, key)s of the decisions since its
        mark upserted with their earliest event time and the mark moved, `_UNITS_CHUNK`
        decision ids per write transaction up to this cut, then the keys with ``first_time <=
        T`` counted in the last one. Counting them live sorts every served decision (about 7 s
        at 10 million); this reads the new ones and the table. None (count live) with a window
        (a key's first time does not say whether it has a decision inside one), when another
        call's mark is past this cut, and on PostgreSQL: it hashes the units in parallel
        (3.3 s at 10 million), while filling the table took 12.6 s (``INSERT ... SELECT`` runs
        without parallel workers). On SQLite the first fill of 10 million decisions took 15 s in
        100 write transactions of at most 1.1 s (before: one, 2.2 s at 2 million); a server's
        commits (``ledger.acknowledge: commit``, 2 s timeout by default) go in between."""
        if (
            self.backend != "sqlite"
            or self.bounds.since is not None
            or self.bounds.until is not None
        ):
            return None
        u = count_cache_units
        mine = (count_cache_marks.c.experiment == self.experiment) & (
            count_cache_marks.c.signature == UNITS_SIGNATURE
        )
        while True:
            with begin() as conn:
                mark = conn.execute(sa.select(count_cache_marks.c.through_id).where(mine)).scalar()
                if mark is not None and mark > self.through_id:
                    return None
                low = 0 if mark is None else int(mark)
                if low < self.through_id:
                    high = min(low + _UNITS_CHUNK, self.through_id)
                    conn.execute(self._units_upsert(low, high, first=mark is None))
                    _set_mark(conn, self.experiment, UNITS_SIGNATURE, high)
                    if high < self.through_id:
                        continue  # commit this chunk: the writers get their turn
                counts = (
                    sa.select(u.c.arm, sa.func.count())
                    .where(u.c.experiment == self.experiment, u.c.first_time <= self.bounds.as_of)
                    .group_by(u.c.arm)
                )
                return {str(arm): int(n) for arm, n in conn.execute(counts)}

    def _units_upsert(self, low: int, high: int, first: bool) -> Any:
        """The (arm, key)s of the served decisions ``low < id <= high`` into the units table,
        each with its earliest event time (kept if an earlier one is there; ``first``: the
        experiment has no row yet, a plain INSERT)."""
        u, d = count_cache_units, decisions
        columns = (d.c.experiment, d.c.arm, d.c.role, d.c.routing_key_hash, d.c.event_time)
        # by rowid range first (the LIMIT: as in _dirty_days)
        new = sa.select(*columns).where(d.c.id > low, d.c.id <= high).limit(high - low)
        picked = new.subquery("new")
        arm = sa.func.coalesce(picked.c.arm, "")
        firsts = (
            sa.select(
                sa.literal(self.experiment), arm, picked.c.routing_key_hash,
                sa.func.min(picked.c.event_time),
            )
            .where(
                picked.c.experiment == self.experiment,
                picked.c.role == "served",
                picked.c.routing_key_hash.is_not(None),
                picked.c.event_time.is_not(None),
            )
            .group_by(arm, picked.c.routing_key_hash)
        )  # fmt: skip
        insert = sqlite_insert(u).from_select(
            [u.c.experiment, u.c.arm, u.c.routing_key, u.c.first_time], firsts
        )
        if first:
            return insert
        return insert.on_conflict_do_update(
            index_elements=[u.c.experiment, u.c.arm, u.c.routing_key],
            set_={"first_time": sa.func.min(u.c.first_time, insert.excluded.first_time)},
        )


def _set_mark(conn: sa.Connection, experiment: str, signature: str, through_id: int) -> None:
    """Move (or make) the mark of (experiment, signature) to ``through_id``."""
    key = (count_cache_marks.c.experiment == experiment) & (
        count_cache_marks.c.signature == signature
    )
    values = {"through_id": through_id, "updated_at": time.time()}
    if conn.execute(sa.update(count_cache_marks).where(key).values(**values)).rowcount == 0:
        conn.execute(
            sa.insert(count_cache_marks).values(
                experiment=experiment, signature=signature, **values
            )
        )


def _live_ranges(cached: list[int]) -> list[tuple[float | None, float | None]]:
    """Event-time ranges [low, high) (None: unbounded) holding every day not in ``cached``
    (sorted), each a margin wider than its days."""
    ranges: list[tuple[float | None, float | None]] = []
    low: float | None = None  # where the current live range began
    for i, day in enumerate(cached):
        if i == 0 or day > cached[i - 1] + 1:  # a run of cached days starts: close the range
            ranges.append((low, day * SECONDS_PER_DAY + _MARGIN_S))
        if i == len(cached) - 1 or cached[i + 1] > day + 1:  # the run ends: a range begins
            low = (day + 1) * SECONDS_PER_DAY - _MARGIN_S
    ranges.append((low, None))
    return ranges


def decision_ids(conn: sa.Connection, backend: str) -> tuple[int | None, int | None]:
    """The smallest and the largest decision id, every decision up to the largest committed
    (the cut). SQLite: as read (its one writer commits ids in order). PostgreSQL: ``conn``
    must hold the cut lock exclusively -- every decision insert holds it shared (the ledger's
    `DecisionSink`), so no insert is in flight and every id a later one takes is larger."""
    d = decisions
    # two scalar subqueries: each an end of the id index (min and max in one SELECT would
    # scan the whole table on SQLite)
    ends = [sa.select(f(d.c.id)).scalar_subquery() for f in (sa.func.min, sa.func.max)]
    low, high = conn.execute(sa.select(*ends)).one()
    return (None, None) if high is None else (int(low), int(high))


def _dirty_days(
    conn: sa.Connection, backend: str, experiment: str, mark: int, cut: int
) -> set[int]:
    """Every day on which a transaction with a decision ``mark < id <= cut`` has a decision."""
    d = decisions
    # the new decisions by rowid range first (the LIMIT keeps SQLite from merging the
    # conditions, which could scan the experiment's index instead)
    new = sa.select(d.c.transaction_id, d.c.experiment).where(d.c.id > mark, d.c.id <= cut)
    new_rows = new.limit(cut - mark).subquery("new")
    touched = sa.select(new_rows.c.transaction_id).where(new_rows.c.experiment == experiment)
    days = (
        sa.select(sql_day(d.c.event_time, backend))
        .where(d.c.experiment == experiment, d.c.id <= cut, d.c.transaction_id.in_(touched))
        .distinct()
    )
    return {int(day) for day in conn.execute(days).scalars() if day is not None}
