"""Experiment traffic weights as data: one `WeightChange` record for everyone who handles one.

The experiments (`fraudgate.experiments.ExperimentState`) make a change live, the ledger
(`fraudgate.ledger.LedgerStore`) records it and reads the history back, the server shows it
(`WeightChange.to_json`). Experiments and ledger are sibling layers that never import each other,
so the record they share lives here, below both: stdlib only, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# candidate name -> weight (ints in a spec; the ledger stores floats)
Weights = Mapping[str, float]


@dataclass(frozen=True, slots=True)
class WeightChange:
    """One live change of an experiment's traffic weights: when, who, before and after.

    ``at``: UTC epoch seconds. ``old`` is empty for an experiment's first recorded weights.
    ``generation``: the routing table's generation the change published, known to the process
    that made it live (None for a change read back from the ledger).
    """

    experiment: str
    at: float
    actor: str
    old: Weights = field(hash=False)
    new: Weights = field(hash=False)
    generation: int | None = None

    def to_json(self, *, with_generation: bool = True) -> dict[str, Any]:
        """The change as the admin API answers it: ``at`` as ISO-8601 UTC (``...Z``), weights
        as ints where whole; ``generation`` when known (and ``with_generation``)."""
        data: dict[str, Any] = {
            "at": iso_utc(self.at),
            "actor": self.actor,
            "old": whole_weights(self.old),
            "new": whole_weights(self.new),
        }
        if with_generation and self.generation is not None:
            data["generation"] = self.generation
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any], experiment: str) -> WeightChange:
        """A change as the admin API answered it (`to_json`) for ``experiment``; ValueError
        (naming the field) if it is malformed."""
        at = data.get("at")
        try:
            moment = datetime.fromisoformat(str(at).replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"at: expected an ISO-8601 time, received {at!r}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        weights = []
        for name in ("old", "new"):
            value = data.get(name)
            if not isinstance(value, Mapping):
                raise ValueError(f"{name}: expected an object of weights, received {value!r}")
            weights.append(dict(value))
        generation = data.get("generation")
        if generation is not None and type(generation) is not int:
            raise ValueError(f"generation: expected an int, received {generation!r}")
        return cls(
            experiment,
            moment.timestamp(),
            str(data.get("actor", "")),
            weights[0],
            weights[1],
            generation,
        )


def whole_weights(weights: Weights) -> dict[str, float]:
    """``weights`` with whole numbers as ints (the ledger stores floats; specs hold ints)."""
    return {name: int(w) if float(w).is_integer() else w for name, w in weights.items()}


def iso_utc(at: float) -> str:
    """Epoch seconds as ISO-8601 UTC with a ``Z``: ``2026-01-01T12:00:00.123456Z``."""
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")
