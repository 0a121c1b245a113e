"""The live experiment: the current spec, its router, and weight changes with their history.

One ``ExperimentState`` per experiment per process, owned by whoever builds the dataplane (no
module-level state). Reads are lock-free: :meth:`route` reads one reference to an immutable
routing table. :meth:`set_weights` validates, builds the new spec and table, and publishes both
with a single reference assignment under a writer lock, so a reader sees the old table or the
new one, never a mix, and the very next :meth:`route` call after ``set_weights`` returns uses
the new weights. The history lives in memory; the ledger persists it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fraudgate.experiments.router import RouteDecision, Router, RoutingTable, should_route
from fraudgate.experiments.spec import ExperimentConfigError, ExperimentSpec
from fraudgate.weights import WeightChange


@dataclass(frozen=True, slots=True)
class _Snapshot:
    spec: ExperimentSpec
    table: RoutingTable


class ExperimentState:
    """Holds the current spec; routes requests; changes weights live."""

    def __init__(self, spec: ExperimentSpec) -> None:
        self.router = Router(spec)
        self._snapshot = _Snapshot(spec, self.router.table)
        self._write_lock = threading.Lock()
        self._history: list[WeightChange] = []

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> ExperimentState:
        return cls(ExperimentSpec.from_config(section))

    @property
    def spec(self) -> ExperimentSpec:
        return self._snapshot.spec

    @property
    def generation(self) -> int:
        return self._snapshot.table.generation

    @property
    def history(self) -> tuple[WeightChange, ...]:
        with self._write_lock:
            return tuple(self._history)

    def route(self, routing_key: str | None) -> RouteDecision:
        """Assign one request (see :mod:`fraudgate.experiments.router` for the exact rule)."""
        return self.router.route(routing_key)

    def should_route(self, requested_name: str, explicit_version: bool) -> bool:
        return should_route(self.spec, requested_name, explicit_version)

    def set_weights(self, weights: Mapping[str, float], actor: str) -> WeightChange:
        """Replace all candidate weights at once; effective for the very next request.

        Raises :class:`ExperimentConfigError` (nothing changes) when a candidate is missing or
        unknown, a weight is not an int32 >= 0, all weights are zero, or ``actor`` is empty.
        """
        if not isinstance(actor, str) or not actor.strip():
            raise ExperimentConfigError("actor", "a non-empty name of who made the change", actor)
        with self._write_lock:
            old_spec = self._snapshot.spec
            new_spec = old_spec.with_weights(weights)
            generation = self._snapshot.table.generation + 1
            table = RoutingTable.from_spec(new_spec, generation)
            # Publish: the router's table first (what route() reads), then the spec view.
            self.router.publish(table)
            self._snapshot = _Snapshot(new_spec, table)
            change = WeightChange(
                experiment=new_spec.name,
                at=time.time(),
                actor=actor,
                old=old_spec.weights,
                new=new_spec.weights,
                generation=generation,
            )
            self._history.append(change)
            return change
