"""The evaluation's counts (`LedgerStore.experiment_counts`), aggregated in SQL.

Rules (the store's docstring says them in full): one count per transaction and arm (served
decisions; retries collapse: flagged if any decision flagged it, earliest event time, largest
amount), and per transaction for the champion/challenger pair (served or mirrored); a label
counts if known by T; an unlabelled transaction is legitimate once its event time is older
than the maturity window, else pending.

Why the queries have this shape (`bench/README.md`, section ``report.py``): the cost is the
GROUP BY transaction over millions of decisions, and joining every grouped transaction to the
labels. So there is one such GROUP BY, and no grouped transaction meets a label here:

* **totals** group every transaction once, per arm (its served decisions) and for the pair
  (its champion and challenger decisions) together, by conditional aggregates, streaming over
  the covering index ``ix_decisions_experiment_transaction`` (schema migration 9) in
  transaction order -- no sort, no join -- then by (arm, pair states, event day, matured or
  not), without labels. A transaction's arm is read off all its decisions (a mirror copy
  carries the arm that served it); if any transaction has two arms (a retry re-routed) or
  none, the per-arm counts are grouped by (transaction, arm) in a second pass instead;
* **labelled** starts FROM the labels known by T (a small table) and reaches their decisions
  through the same index, grouped the same way plus the label's verdict;
* unlabelled = totals - labelled, per cell: exact for the counts; the amount sums differ from a
  direct sum only by floating-point rounding (none when amounts are exact in binary).

Only grouped rows (keys x days x a few cells) leave the database.

With a `DayCache` (`fraudgate.ledger.day_cache`), the totals and the latencies count
only the days it does not hold, read the others' rows from it and store the closed days they
counted; the units come from its table of first times; the labelled pass always runs whole.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.util import ClauseAdapter

from fraudgate.analysis.counts import (
    LATENCY_BUCKETS,
    ConfusionCounts,
    LatencyHistogram,
    PairedCounts,
    PairedTable,
    latency_bucket_edges,
)
from fraudgate.ledger.day_cache import Begin, DayCache, sql_day
from fraudgate.ledger.records import ArmCounts, DayCounts, PairedDay
from fraudgate.ledger.schema import decisions, labels

Key = tuple[Any, ...]
_log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Sums:
    """A cell being summed: transactions, their amounts and squared amounts."""

    n: int = 0
    amount: float = 0.0
    square: float = 0.0

    def add(self, n: int, amount: float, square: float, sign: int = 1) -> None:
        self.n += sign * n
        self.amount += sign * amount
        self.square += sign * square

    def final(self) -> tuple[int, float, float]:
        """(n, amount, square); an emptied cell's sums are exactly zero (no rounding residue
        of totals - labelled)."""
        if self.n == 0:
            return 0, 0.0, 0.0
        return self.n, self.amount, self.square


@dataclass(slots=True)
class _States:
    """One (key, day)'s transactions split by label state as of T."""

    fraud: _Sums = field(default_factory=_Sums)
    legit: _Sums = field(default_factory=_Sums)
    pending: _Sums = field(default_factory=_Sums)


@dataclass(frozen=True, slots=True)
class _View:
    """One way of counting a transaction: over its decisions that ``where`` selects, the
    per-transaction ``keys`` (aggregates), earliest event time and largest amount. Several
    views are computed in one GROUP BY transaction (conditional aggregates), then split.
    ``outer`` turns the keys (by name) into the few outer GROUP BY keys (default: the keys
    themselves): SQLite sorts every grouped transaction by them, so fewer, narrower is faster.
    """

    name: str
    keys: tuple[tuple[str, Any], ...]
    where: Any
    outer: Callable[[Callable[[str], Any]], tuple[Any, ...]] | None = None
    spans: bool = True  # each key's first and last event time wanted

    def column(self, what: str) -> str:
        return f"{self.name}_{what}"

    def outer_keys(self, per_txn: sa.Subquery) -> tuple[Any, ...]:
        def key(name: str) -> Any:
            return per_txn.c[self.column(name)]

        if self.outer is None:
            return tuple(key(name) for name, _ in self.keys)
        return self.outer(key)


@dataclass(slots=True)
class _Cells:
    """One view's cells by (key, day) split fraud / legit / pending, and each key's
    event-time span ``{key: (first, last)}``."""

    cells: dict[tuple[Key, int], _States] = field(default_factory=dict)
    spans: dict[Key, tuple[float, float]] = field(default_factory=dict)


class _MixedArms(Exception):
    """A transaction's served decisions are in more than one arm (one count per arm each)."""


# Decisions drawn at random (by id) to place the grouped pass's transaction-id cuts: enough for
# parts within about 2% of each other, in about 0.1 s at 10 million decisions (rowid look-ups).
_SAMPLE_ROWS = 4096

_Range = tuple[str | None, str | None]  # transaction ids [low, high); None: unbounded
_Job = Callable[[sa.Connection], Any]


@dataclass(frozen=True, slots=True)
class Parallelism:
    """How ``experiment_counts`` spreads its statements over ``workers`` connections in
    threads (SQLite runs a statement on one core; the drivers let go of the GIL while a
    statement runs), the grouped pass split into ``parts`` transaction-id ranges (0: one a
    worker); only for ledgers of at least ``min_decisions`` decisions (below, the threads and
    the sampling cost more than they save). On PostgreSQL only under the count cache's cut,
    with the server's own parallel workers off (the connections are the workers: at 10 million
    decisions 14.8 s against 24.1 s on one connection with them, bench/README.md)."""

    workers: int = field(default_factory=lambda: min(os.cpu_count() or 1, 4))
    min_decisions: int = 200_000
    parts: int = 0

    def __post_init__(self) -> None:
        for name, low in (("workers", 1), ("min_decisions", 0), ("parts", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name}: expected an integer >= {low}, received {value!r}")


SEQUENTIAL = Parallelism(workers=1)


class ExperimentQueries:
    """The queries of one ``experiment_counts`` call: on one connection (one snapshot), or,
    given ``connect`` and a ledger big enough for ``parallelism`` (PostgreSQL: under the count
    cache's cut), spread over several connections, each its own snapshot, made one consistent
    cut so:

    * decisions: every statement reads only ``decisions.id <= W``, W the largest id when the
      call began (decisions are append-only and their ids grow with each commit under SQLite's
      one writer, so every snapshot taken after holds exactly the same rows up to W; on
      PostgreSQL W is the cache's cut, read while no insert is in flight; the id is in every
      index, so the covering index still streams);
    * labels: read by one statement only (the labelled pass), as of its own snapshot -- a label
      written meanwhile counts there or not at all, never half. Totals read no labels.

    The grouped pass is split by transaction-id range: a transaction's decisions all fall in
    one range, and the parts' grouped rows add up cell by cell (mergeable counts)."""

    def __init__(
        self,
        conn: sa.Connection,
        backend: str,
        where: Sequence[Any],
        t: float,
        maturity_s: float,
        *,
        connect: Callable[[], AbstractContextManager[sa.Connection]] | None = None,
        parallelism: Parallelism = SEQUENTIAL,
        cache: DayCache | None = None,
        begin: Begin | None = None,
    ) -> None:
        self._conn = conn
        self._backend = backend
        self._where = tuple(where)
        self._t = t
        self._maturity_s = maturity_s
        self._connect = connect
        self._parallelism = parallelism
        if cache is not None and begin is None:
            raise ValueError("cache: expected begin, the write transaction it stores through")
        self._cache = cache
        self._begin = begin
        if self._cache is not None:  # one cut for every statement, the cache's
            self._where += (decisions.c.id <= self._cache.through_id,)
        self.ranges: tuple[_Range, ...] = ((None, None),)  # the grouped pass's parts
        self._parallel = False

    def counts(
        self, champion: str, challenger: str
    ) -> tuple[tuple[ArmCounts, ...], PairedCounts, tuple[PairedDay, ...]]:
        """Per arm and paired: one grouped pass over the decisions (plus one over the labels
        known by T) for both, then the distinct routing keys and the latency histogram."""
        d = decisions
        served = d.c.role == "served"
        flag = d.c.is_fraud_decision == sa.true()

        def state(cond: Any) -> Any:  # 0: no decision meets cond, 1: some, 2: one flagged
            return sa.func.max(sa.case((sa.and_(cond, flag), 2), (cond, 1), else_=0))

        # The arm over all the transaction's decisions (a mirror copy carries the arm that
        # served it): one non-empty arm is the served decisions' arm; anything else (two
        # arms, NULL or '') falls back to grouping by (transaction, arm).
        arm = sa.func.coalesce(d.c.arm, "")
        arm_view = _View(
            "s",
            (
                ("arm_low", sa.func.min(arm)),
                ("arm_high", sa.func.max(arm)),
                ("state", state(served)),
            ),
            served,
            # the one arm, else NULL (two arms)
            lambda key: (
                sa.case((key("arm_low") == key("arm_high"), key("arm_low"))),
                key("state"),
            ),
        )
        pair_view = _View(
            "p",
            (("a", state(d.c.model_name == champion)), ("b", state(d.c.model_name == challenger))),
            d.c.model_name.in_((champion, challenger)),
            lambda key: (key("a") + 3 * key("b"),),
            spans=False,
        )
        self._plan()
        views = (arm_view, pair_view)
        cache = self._cache
        # the totals and the latencies count the days the cache does not hold
        live = cache.where(d.c.event_time) if cache is not None else []
        grouped, finish = self._states_jobs(views, live=live)
        totals, labelled = grouped[:-1], grouped[-1]
        jobs: dict[str, _Job] = {f"totals{i}": job for i, job in enumerate(totals)}
        units = self._units if cache is None else self._cached_units(cache)
        jobs |= {"latency": self._latency(live), "units": units, "labelled": labelled}
        if cache is not None:
            jobs["spans"] = _fetch(cache.spans())
        # longest first, as a free worker takes the next job: the grouped parts, the latency
        # histogram, the units, the labelled pass (bench/README.md, report.py); the units
        # first when the cache holds days (the one statement over every day)
        order = sorted(jobs, key=lambda name: name != "units") if cache and cache.days else [*jobs]
        results = dict(zip(order, self._run([jobs[name] for name in order]), strict=True))
        total_rows = [row for name in jobs if name.startswith("totals") for row in results[name]]
        latency_rows = results["latency"]
        if cache is not None:
            total_rows, latency_rows = self._with_cache(
                cache, views, total_rows, latency_rows, results["spans"]
            )
        both = finish([total_rows, results["labelled"]])
        histograms, units = _histograms(latency_rows), results["units"]
        try:
            found = _single_arm(both["s"])
        except _MixedArms:  # rare: group by (transaction, arm), one count per arm
            fallback = _View("s", (("arm", d.c.arm), ("state", state(served))), served)
            grouped, finish = self._states_jobs((fallback,), by=(d.c.arm,))
            found = finish(self._run(grouped))["s"]
        arms = self._arm_counts(found, units, histograms)
        paired, paired_days = _paired_counts(both["p"])
        return arms, paired, paired_days

    def _with_cache(
        self,
        cache: DayCache,
        views: Sequence[_View],
        total_rows: list[dict[str, Any]],
        latency_rows: list[dict[str, Any]],
        spans: Sequence[dict[str, Any]],
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The live rows plus the cached days' (their matured bit set from this T), and the
        days counted now that may be stored saved (`fraudgate.ledger.day_cache`)."""
        day_columns = [view.column("day") for view in views]

        def day_of(row: dict[str, Any]) -> int:  # 2 day + matured, in any view that has it
            return int(next(row[c] for c in day_columns if row[c] is not None)) // 2

        new: dict[int, dict[str, list[dict[str, Any]]]] = {}
        for kind, rows in (("totals", total_rows), ("latency", latency_rows)):
            for row in rows:
                day = day_of(row) if kind == "totals" else int(row["day"])
                new.setdefault(day, {"totals": [], "latency": []})[kind].append(row)
        storable = cache.storable(new, ((row["first"], row["last"]) for row in spans))
        assert self._begin is not None
        cache.save(self._begin, {day: new[day] for day in storable})
        for day, entry in cache.days.items():
            matured = cache.bounds.matured(day)
            assert matured is not None  # DayCache.open keeps only days wholly inside
            for row in entry["totals"]:
                for column in day_columns:
                    if row[column] is not None:
                        row[column] = 2 * day + matured
                total_rows.append(row)
            latency_rows += entry["latency"]
        return total_rows, latency_rows

    # -- the shared machinery ---------------------------------------------------------------

    def _plan(self) -> None:
        """Parallel or not; if so, the consistent cut (``id <= W``) and the transaction-id
        ranges of the grouped pass, cut at quantiles of a random sample of decisions."""
        p = self._parallelism
        # PostgreSQL: only under the count cache's cut, whose ids are all committed (there ids
        # are taken at insert, so without it two snapshots could hold different decisions)
        cut = self._backend == "sqlite" or self._cache is not None
        if not cut or self._connect is None or p.workers < 2:
            return
        d = decisions
        # two scalar subqueries: each an end of the rowid B-tree (min and max in one SELECT
        # scan the whole table)
        ends = [sa.select(f(d.c.id)).scalar_subquery() for f in (sa.func.min, sa.func.max)]
        low, high = self._conn.execute(sa.select(*ends)).one()
        if high is None or high - low + 1 < p.min_decisions:
            return
        span = high - low + 1
        where = (*self._where, d.c.id <= high)
        if span <= _SAMPLE_ROWS:
            picked, drawn = d.c.id.between(low, high), span
        else:
            ids = random.Random(high).sample(range(low, high + 1), _SAMPLE_ROWS)
            picked, drawn = d.c.id.in_(ids), _SAMPLE_ROWS
        # by rowid look-ups: the drawn rows first (their LIMIT keeps SQLite from merging the
        # conditions into one query, which could scan the experiment's index instead)
        drawn_rows = sa.select(d).where(picked).limit(drawn).subquery("drawn")
        adapt = ClauseAdapter(drawn_rows)
        query = (
            sa.select(drawn_rows.c.transaction_id)
            .where(*(adapt.traverse(condition) for condition in where))
            .order_by(drawn_rows.c.transaction_id)
        )
        # in the database's own order (PostgreSQL's collation may not be Python's), so the
        # ranges its comparisons make are disjoint and cover every transaction
        sample = list(self._conn.execute(query).scalars())
        # too few of the experiment's decisions (estimated) for the parallel path
        if not sample or len(sample) * span < p.min_decisions * drawn:
            return
        parts = p.parts or p.workers
        cuts = sorted({sample[len(sample) * k // parts] for k in range(1, parts)})
        bounds: list[str | None] = [None, *cuts, None]
        self.ranges = tuple(zip(bounds, bounds[1:], strict=False))
        self._where = where
        self._parallel = True

    def _run(self, jobs: Sequence[_Job]) -> list[Any]:
        """The jobs' results, in order: on this connection, or each on a pooled connection
        of its own, ``workers`` at a time."""
        if not self._parallel:
            return [job(self._conn) for job in jobs]
        connect = self._connect
        assert connect is not None

        def run(job: _Job) -> Any:
            with connect() as conn:
                if self._backend == "postgresql":  # the workers are the connections here
                    conn.exec_driver_sql("SET LOCAL max_parallel_workers_per_gather = 0")
                return job(conn)

        with ThreadPoolExecutor(self._parallelism.workers, "experiment-counts") as pool:
            return list(pool.map(run, jobs))

    def _day(self, event_time: Any) -> Any:
        return sql_day(event_time, self._backend)

    def _per_transaction(
        self,
        views: Sequence[_View],
        by: Sequence[Any],
        labelled: bool,
        part: _Range,
        live: Sequence[Any] = (),
    ) -> sa.Subquery:
        """One row per grouped transaction (of the range ``part``): each view's keys, earliest
        event time and largest amount (NULL time: no decision in the view); ``labelled``: only
        transactions with a label known by T, and that label."""
        d = decisions
        columns = []
        for view in views:
            columns += [expr.label(view.column(name)) for name, expr in view.keys]
            columns += [
                sa.func.min(sa.case((view.where, d.c.event_time))).label(view.column("time")),
                sa.func.max(sa.case((view.where, d.c.amount))).label(view.column("amount")),
            ]
        where = [*self._where, sa.or_(*(view.where for view in views))]
        low, high = part
        if low is not None:
            where.append(d.c.transaction_id >= low)
        if high is not None:
            where.append(d.c.transaction_id < high)
        group_by = [d.c.transaction_id, *by]
        if labelled:
            columns += [labels.c.is_fraud.label("is_fraud"), labels.c.amount.label("label_amount")]
            group_by += [labels.c.is_fraud, labels.c.amount]
            # From the labels to their decisions: `IN (labels known by T)` makes both planners
            # look the decisions up by index per label (not probe the labels per decision).
            known = sa.select(labels.c.transaction_id).where(labels.c.label_time <= self._t)
            query = (
                sa.select(*columns)
                .select_from(d.join(labels, labels.c.transaction_id == d.c.transaction_id))
                .where(d.c.transaction_id.in_(known), *where)
            )
        else:
            # SQLite's planner streams the GROUP BY over the covering index in its order
            # (schema.TRANSACTION_COUNTS_INDEX; SQLAlchemy renders no SQLite FROM hint to force it)
            query = sa.select(*columns).where(*where, *live)
        return query.group_by(*group_by).subquery("per_txn")

    def _grouped(
        self,
        views: Sequence[_View],
        by: Sequence[Any],
        labelled: bool,
        part: _Range,
        live: Sequence[Any] = (),
    ) -> tuple[sa.Select[Any], dict[str, int]]:
        """The outer grouped query of all transactions (totals: of the ``live`` days) or the
        labelled ones, and each view's number of outer keys."""
        per_txn = self._per_transaction(views, by, labelled, part, live)
        columns: list[Any] = [sa.func.count().label("n")]
        group_by: list[Any] = []
        widths: dict[str, int] = {}  # outer keys per view
        for view in views:
            keys = [
                expr.label(view.column(f"key{i}"))
                for i, expr in enumerate(view.outer_keys(per_txn))
            ]
            widths[view.name] = len(keys)
            event_time = per_txn.c[view.column("time")]
            amount = per_txn.c[view.column("amount")]
            # one key for the day and whether it matured: 2 * day + matured
            matured = sa.case((event_time + self._maturity_s <= self._t, 1), else_=0)
            day = (self._day(event_time) * 2 + matured).label(view.column("day"))
            plain = sa.func.coalesce(amount, 0.0)
            columns += [
                *keys,
                day,
                sa.func.sum(plain).label(view.column("total")),
                sa.func.sum(plain * plain).label(view.column("squares")),
            ]
            group_by += [*keys, day]
            if labelled:
                given = sa.func.coalesce(amount, per_txn.c.label_amount, 0.0)
                columns += [
                    sa.func.sum(given).label(view.column("labelled_total")),
                    sa.func.sum(given * given).label(view.column("labelled_squares")),
                ]
            elif view.spans:
                columns += [
                    sa.func.min(event_time).label(view.column("first")),
                    sa.func.max(event_time).label(view.column("last")),
                ]
        if labelled:
            verdict = sa.case((per_txn.c.is_fraud == sa.true(), 1), else_=0).label("fraud")
            columns.append(verdict)
            group_by.append(verdict)
        return sa.select(*columns).group_by(*group_by), widths

    def _states_jobs(
        self, views: Sequence[_View], by: Sequence[Any] = (), live: Sequence[Any] = ()
    ) -> tuple[list[_Job], Callable[[Sequence[Any]], dict[str, _Cells]]]:
        """Each view's cells, from grouped queries: all transactions (totals, one query a
        range; only the ``live`` days') and the labelled ones; unlabelled = totals -
        labelled, per cell. Returns the jobs and what turns their results, in order (the
        totals' rows in any number of lists, the labelled rows last), into the cells."""
        jobs: list[_Job] = []
        widths: dict[str, int] = {}
        for labelled, parts in ((False, self.ranges), (True, ((None, None),))):
            for part in parts:
                query, widths = self._grouped(views, by, labelled, part, () if labelled else live)
                jobs.append(_fetch(query))

        def finish(results: Sequence[Any]) -> dict[str, _Cells]:
            out = {view.name: _Cells() for view in views}
            for index, rows in enumerate(results):
                labelled = index == len(results) - 1
                for values in rows:
                    for view in views:
                        if values[view.column("day")] is None:  # none of its decisions in it
                            continue
                        _add(out[view.name], view, values, labelled, widths[view.name])
            return out

        return jobs, finish

    # -- per arm ----------------------------------------------------------------------------

    def _arm_counts(
        self, found: _Cells, units: dict[str, int], histograms: dict[str, LatencyHistogram]
    ) -> tuple[ArmCounts, ...]:
        """ArmCounts from the cells keyed (arm, state: 2 flagged), with units and latencies."""
        days: dict[str, dict[int, ConfusionCounts]] = {}
        for ((arm, served), day), states in found.cells.items():
            name = "" if arm is None else arm
            f = served == 2
            fraud, legit, pending = (
                s.final() for s in (states.fraud, states.legit, states.pending)
            )
            cell = ConfusionCounts(
                tp=fraud[0] if f else 0,
                fn=0 if f else fraud[0],
                fp=legit[0] if f else 0,
                tn=0 if f else legit[0],
                unlabelled=pending[0],
                unlabelled_flagged=pending[0] if f else 0,
                tp_amount=fraud[1] if f else 0.0,
                fn_amount=0.0 if f else fraud[1],
                fp_amount=legit[1] if f else 0.0,
                tn_amount=0.0 if f else legit[1],
                tp_amount_sq=fraud[2] if f else 0.0,
                fn_amount_sq=0.0 if f else fraud[2],
                fp_amount_sq=legit[2] if f else 0.0,
                tn_amount_sq=0.0 if f else legit[2],
            )
            by_day = days.setdefault(name, {})
            by_day[day] = by_day[day] + cell if day in by_day else cell
        span: dict[str, tuple[float, float]] = {}
        for (arm, _flagged), (first, last) in found.spans.items():
            name = "" if arm is None else arm
            low, high = span.get(name, (first, last))
            span[name] = (min(low, first), max(high, last))
        result = []
        for name in sorted(days):
            arm_days = tuple(DayCounts(day, days[name][day]) for day in sorted(days[name]))
            total = ConfusionCounts()
            for item in arm_days:
                total = total + item.counts
            result.append(
                ArmCounts(
                    name,
                    total,
                    units.get(name, 0),
                    histograms.get(name, LatencyHistogram()),
                    arm_days,
                    *span[name],
                )
            )
        return tuple(result)

    def _served(self) -> list[Any]:
        return [*self._where, decisions.c.role == "served"]

    def _units(self, conn: sa.Connection) -> dict[str, int]:
        """Distinct routing keys per arm (the SRM's randomisation units): GROUP BY (arm, key)
        then count the keys, not ``count(DISTINCT)`` (which sorts every served decision by
        arm first; this hashes on PostgreSQL and sorts once on SQLite, then streams)."""
        d = decisions
        keys = (
            sa.select(d.c.arm, d.c.routing_key_hash)
            .where(*self._served())
            .group_by(d.c.arm, d.c.routing_key_hash)
            .subquery("keys")
        )
        query = sa.select(keys.c.arm, sa.func.count(keys.c.routing_key_hash)).group_by(keys.c.arm)
        return {("" if arm is None else arm): int(n) for arm, n in conn.execute(query)}

    def _cached_units(self, cache: DayCache) -> _Job:
        """A job: the units from the cache's table (`DayCache.units`), else counted live."""

        def job(conn: sa.Connection) -> dict[str, int]:
            assert self._begin is not None
            try:
                found = cache.units(self._begin)
            except sa.exc.OperationalError as error:  # locked or read-only: count live
                _log.warning("count cache of the units not used (%s)", error)
                found = None
            return self._units(conn) if found is None else found

        return job

    def _latency(self, live: Sequence[Any]) -> _Job:
        """A job: the served decisions' latencies (of the ``live`` days), bucketed in SQL, per
        arm and event day (`_histograms` adds the days up)."""
        d = decisions
        bucket = _latency_bucket(d.c.latency_ms).label("bucket")
        day = self._day(d.c.event_time).label("day")
        query = (
            sa.select(
                d.c.arm,
                day,
                bucket,
                sa.func.count().label("n"),
                sa.func.sum(d.c.latency_ms).label("total"),
                sa.func.max(d.c.latency_ms).label("worst"),
            )
            .where(*self._served(), *live)
            .group_by(d.c.arm, day, bucket)
        )
        return _fetch(query)


def _histograms(rows: Sequence[dict[str, Any]]) -> dict[str, LatencyHistogram]:
    """The latency rows (arm, day, bucket) added up per arm."""
    histograms: dict[str, tuple[list[int], float, float]] = {}
    for row in rows:
        name = "" if row["arm"] is None else row["arm"]
        buckets, total, worst = histograms.setdefault(name, ([0] * LATENCY_BUCKETS, 0, 0))
        buckets[int(row["bucket"])] += int(row["n"])
        histograms[name] = (buckets, total + float(row["total"]), max(worst, float(row["worst"])))
    return {
        name: LatencyHistogram(tuple(buckets), float(total), float(worst))
        for name, (buckets, total, worst) in histograms.items()
    }


def _fetch(query: sa.Select[Any]) -> _Job:
    """A job: the query's rows as dicts with plain str keys (orjson stores them; it takes no
    str subclass) -- a grouped pass's few hundred."""

    def job(conn: sa.Connection) -> Any:
        result = conn.execute(query)
        names = [str(name) for name in result.keys()]  # noqa: SIM118 (a Result, not a dict)
        return [dict(zip(names, row, strict=True)) for row in result]

    return job


def _add(found: _Cells, view: _View, values: Any, labelled: bool, keys: int) -> None:
    """One grouped row into a view's cells: totals into the unlabelled state (legit once
    matured, else pending); labelled rows move their transactions from it to fraud / legit."""
    key = tuple(values[view.column(f"key{i}")] for i in range(keys))
    day, matured = divmod(int(values[view.column("day")]), 2)
    states = found.cells.setdefault((key, day), _States())
    unlabelled = states.legit if matured else states.pending
    n = int(values["n"])
    total, squares = float(values[view.column("total")]), float(values[view.column("squares")])
    if not labelled:
        unlabelled.add(n, total, squares)
        if not view.spans:
            return
        first, last = float(values[view.column("first")]), float(values[view.column("last")])
        low, high = found.spans.get(key, (first, last))
        found.spans[key] = (min(low, first), max(high, last))
        return
    unlabelled.add(n, total, squares, sign=-1)
    target = states.fraud if values["fraud"] else states.legit
    labelled_total = float(values[view.column("labelled_total")])
    target.add(n, labelled_total, float(values[view.column("labelled_squares")]))


def _single_arm(found: _Cells) -> _Cells:
    """The arm view's cells, keyed (arm, state); raises _MixedArms if a transaction had no
    single non-empty arm (key NULL or '')."""
    for arm, _state in found.spans:
        if arm is None or arm == "":
            raise _MixedArms(arm)
    return found


def _paired_counts(found: _Cells) -> tuple[PairedCounts, tuple[PairedDay, ...]]:
    """Paired tables per day from the pair view's cells keyed a + 3 b, a and b each model's
    state (0: no decision, 1: scored, 2: flagged): only transactions both models scored."""
    tables: dict[int, dict[str, dict[str, tuple[int, float, float]]]] = {}
    for ((ab,), day), states in found.cells.items():
        b, a = divmod(int(ab), 3)
        if not (a and b):  # one model only: not paired
            continue
        cell = _PAIRED_CELLS[2 * (a == 2) + (b == 2)]
        by_state = tables.setdefault(day, {"fraud": {}, "legit": {}, "pending": {}})
        by_state["fraud"][cell] = states.fraud.final()
        by_state["legit"][cell] = states.legit.final()
        by_state["pending"][cell] = states.pending.final()
    by_day = tuple(
        PairedDay(day, PairedCounts(*(_paired_table(tables[day][s]) for s in _STATES)))
        for day in sorted(tables)
    )
    total = PairedCounts()
    for item in by_day:
        total = total + item.counts
    return total, by_day


_STATES = ("fraud", "legit", "pending")
# PairedTable cell of (flag_a, flag_b) at index 2 * flag_a + flag_b
_PAIRED_CELLS = ("neither", "only_b", "only_a", "both")
_TABLE_CELLS = ("both", "only_a", "only_b", "neither")  # PairedTable's field order


def _paired_table(cells: dict[str, tuple[int, float, float]]) -> PairedTable:
    """A PairedTable from {cell: (count, amount sum, squared-amount sum)}."""
    values = [cells.get(name, (0, 0.0, 0.0)) for name in _TABLE_CELLS]
    return PairedTable(
        *(int(v[0]) for v in values), *(float(v[1]) for v in values), *(v[2] for v in values)
    )


def _latency_bucket(value: Any) -> Any:
    """LatencyHistogram's bucket index in SQL: a binary search over its bucket edges as
    nested CASEs (about 8 comparisons a row; the same on both backends, and exact: the edges
    are the floats `latency_bucket` compares with)."""
    edges = [latency_bucket_edges(i)[0] for i in range(1, LATENCY_BUCKETS)]

    def search(low: int, high: int) -> Any:  # buckets low..high
        if low == high:
            return sa.literal(low, sa.Integer)
        mid = (low + high + 1) // 2  # bucket mid starts at edges[mid - 1]
        return sa.case(
            (value < sa.literal_column(repr(edges[mid - 1])), search(low, mid - 1)),
            else_=search(mid, high),
        )

    return search(0, LATENCY_BUCKETS - 1)
