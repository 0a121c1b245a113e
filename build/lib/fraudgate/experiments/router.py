"""Sticky, deterministic assignment of requests to arms, and the mirror decision.

The assignment of a keyed request is a pure function of (salt, routing key, weights), written
down precisely so any process, replica or language reproduces it:

1. ``h_arm = BLAKE2b(key_utf8, digest_size=8, key=salt_utf8, person=b"fraudgate.arm")``
   read as a big-endian unsigned 64-bit integer (``salt`` is the experiment's salt, default its
   name; ``key`` is the routing key, e.g. the card id).
2. ``point = (h_arm * total_weight) >> 64``, a point in ``[0, total_weight)``: the hash taken as a
   fraction ``u = h / 2**64`` of the weight line, with no modulo bias.
3. The arm is the first candidate (in spec order) whose cumulative weight exceeds ``point``.
4. Mirror: ``h_mirror`` as in (1) with ``person=b"fraudgate.mirror"`` (independent of the arm);
   the request is mirrored iff ``(h_mirror * 100) >> 64 < percent``.

Because a key's position ``u`` on the weight line never changes, a ramp (80/20 -> 50/50) moves
only the keys in the band that changes hands; a card that already saw the challenger keeps it.
Likewise, raising the mirror percent only adds keys.

Requests without a key draw ``h_arm`` and ``h_mirror`` from a ``random.Random(seed)`` behind a
lock (seedable, reproducible for a given sequence of calls, thread-safe) and go through the same
steps 2-4.
"""

from __future__ import annotations

import hashlib
import random
import threading
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from fraudgate.experiments.spec import ROUTING_HEADER, ExperimentSpec, split_versioned_name
from fraudgate.protocol.limits import MAX_ROUTING_KEY_CHARS, preview, text_problem

_ARM_PERSON = b"fraudgate.arm"
_MIRROR_PERSON = b"fraudgate.mirror"


class InvalidRoutingKey(ValueError):
    """The routing key in a request is not a string or an integer (maps to HTTP 400)."""


class RouteDecision(NamedTuple):
    """Where one request goes (a named tuple: built on every routed request, cheaply).

    ``model``: the candidate that serves the response. ``mirror``: the model that scores a copy
    off the response path, or None. ``key_hash``: 16 hex digits of the salted routing-key hash
    (a per-experiment pseudonym of the key, for the ledger), None for keyless requests.
    ``generation``: the weight table in force (0 = as configured, +1 per live change).
    """

    experiment: str
    model: str
    mirror: str | None
    key_hash: str | None
    generation: int

    @property
    def arm(self) -> str:
        return self.model


_new_decision = tuple.__new__


def key_hash(salt: str, routing_key: str, *, person: bytes = _ARM_PERSON) -> int:
    """The salted 64-bit hash of a routing key (step 1 of the module docstring)."""
    digest = hashlib.blake2b(
        routing_key.encode("utf-8"), digest_size=8, key=salt.encode("utf-8"), person=person
    ).digest()
    return int.from_bytes(digest, "big")


@dataclass(frozen=True, slots=True)
class RoutingTable:
    """An immutable snapshot of everything :meth:`decide` needs; swapped whole on a change."""

    experiment: str
    salt: str
    names: tuple[str, ...]
    cumulative: tuple[int, ...]  # running sums of the weights; last = total
    mirror_percent: int  # 0 when there is no mirror
    mirror_name: str | None  # None with mirror_percent > 0 means "the other arm"
    generation: int
    # Precomputed for route_key, the keyed hot path (same results as decide):
    # step 1's keyed BLAKE2b states, .copy()-ed per request (a keyed constructor costs ~twice a
    # copy); steps 2-3 as bounds on the hash itself: (h * total) >> 64 < cumulative[i] exactly
    # when h < ceil(cumulative[i] * 2**64 / total), so the arm is bisect_right(bounds, h); step 4
    # likewise (h_mirror < mirror bound), with each arm's mirror model looked up.
    _arm_hasher: Any = field(init=False, repr=False, compare=False)
    _mirror_hasher: Any = field(init=False, repr=False, compare=False)
    _arm_bounds: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _mirror_bound: int = field(init=False, repr=False, compare=False)
    _mirror_of: tuple[str | None, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        salt = self.salt.encode("utf-8")
        for attr, person in (("_arm_hasher", _ARM_PERSON), ("_mirror_hasher", _MIRROR_PERSON)):
            hasher = hashlib.blake2b(digest_size=8, key=salt, person=person)
            object.__setattr__(self, attr, hasher)
        total = self.total
        bounds = tuple(-(-(c << 64) // total) for c in self.cumulative)
        object.__setattr__(self, "_arm_bounds", bounds)
        object.__setattr__(self, "_mirror_bound", -(-(self.mirror_percent << 64) // 100))
        object.__setattr__(self, "_mirror_of", tuple(self._mirror_for(m) for m in self.names))

    @classmethod
    def from_spec(cls, spec: ExperimentSpec, generation: int = 0) -> RoutingTable:
        cumulative, running = [], 0
        for c in spec.candidates:
            running += c.weight
            cumulative.append(running)
        mirror = spec.mirror
        return cls(
            experiment=spec.name,
            salt=spec.effective_salt,
            names=spec.candidate_names,
            cumulative=tuple(cumulative),
            mirror_percent=mirror.percent if mirror else 0,
            mirror_name=mirror.name if mirror else None,
            generation=generation,
        )

    @property
    def total(self) -> int:
        return self.cumulative[-1]

    def _mirror_for(self, model: str) -> str | None:
        """The model that shadows requests served by ``model`` (when they are mirrored)."""
        if self.mirror_percent == 0:
            return None
        if self.mirror_name is not None:
            return self.mirror_name
        # shadow with the other arm (the spec guarantees exactly two candidates)
        return self.names[1] if model == self.names[0] else self.names[0]

    def decide(self, h_arm: int, h_mirror: int, key_hex: str | None) -> RouteDecision:
        """Steps 2-4 of the module docstring, spelled out (route_key computes the same)."""
        point = (h_arm * self.total) >> 64
        model = self.names[bisect_right(self.cumulative, point)]
        mirror = self._mirror_for(model) if (h_mirror * 100) >> 64 < self.mirror_percent else None
        # tuple.__new__ skips the named tuple's keyword-handling constructor (hot path)
        return _new_decision(
            RouteDecision, (self.experiment, model, mirror, key_hex, self.generation)
        )

    def route_key(self, routing_key: str) -> RouteDecision:
        data = routing_key.encode("utf-8")
        arm = self._arm_hasher.copy()
        arm.update(data)
        digest = arm.digest()
        index = bisect_right(self._arm_bounds, int.from_bytes(digest, "big"))
        mirror = self._mirror_of[index]
        if mirror is not None and self.mirror_percent != 100:  # a hash decides: partial mirror
            hasher = self._mirror_hasher.copy()
            hasher.update(data)
            if int.from_bytes(hasher.digest(), "big") >= self._mirror_bound:
                mirror = None
        return _new_decision(
            RouteDecision,
            (self.experiment, self.names[index], mirror, digest.hex(), self.generation),
        )


class Router:
    """Routes requests with one spec: keyed requests by hash, keyless by a seeded generator."""

    def __init__(self, spec: ExperimentSpec) -> None:
        # the current table: read it once per decision, which then uses one consistent snapshot
        self.table = RoutingTable.from_spec(spec)
        self._rng = random.Random(spec.seed)
        self._rng_lock = threading.Lock()

    def publish(self, table: RoutingTable) -> None:
        """Make ``table`` current. One reference assignment: a concurrent :meth:`route` uses the
        old table or the new one, never a mix. Callers serialise writers (ExperimentState)."""
        self.table = table

    def route(self, routing_key: str | None) -> RouteDecision:
        table = self.table
        if routing_key is not None:
            return table.route_key(routing_key)
        with self._rng_lock:
            h_arm = self._rng.getrandbits(64)
            h_mirror = self._rng.getrandbits(64)
        return table.decide(h_arm, h_mirror, None)


# --------------------------------------------------------------------------- request helpers


def extract_routing_key(
    spec: ExperimentSpec,
    parameters: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> str | None:
    """The routing key of a request, or None (keyless).

    ``source: parameter``: ``parameters[routing.key]``, else header ``routing.header``;
    ``source: header``: header ``routing.header``. Then, in both cases, header ``x-routing-key``.
    Header names are matched case-insensitively. Integers are accepted and turned into their
    decimal string (``card_id: 42`` and ``"42"`` route alike); an empty string counts as absent;
    anything else, or a string past `fraudgate.protocol.limits` (over ``MAX_ROUTING_KEY_CHARS``
    characters, control characters), raises :class:`InvalidRoutingKey`.
    """
    routing = spec.routing
    if routing.source == "parameter" and parameters:
        value = _key_value(parameters.get(routing.key), f"parameter {routing.key!r}")
        if value is not None:
            return value
    if headers:
        lowered = {k.lower(): v for k, v in headers.items()}
        for header in dict.fromkeys((routing.header, ROUTING_HEADER)):
            value = _key_value(lowered.get(header), f"header {header!r}")
            if value is not None:
                return value
    return None


def _key_value(value: Any, where: str) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        problem = text_problem(value, MAX_ROUTING_KEY_CHARS)
        if problem is not None:
            raise InvalidRoutingKey(f"routing key in {where}: {problem}")
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise InvalidRoutingKey(
        f"routing key in {where}: expected a string or an integer, "
        f"received {preview(value)} ({type(value).__name__})"
    )


def should_route(spec: ExperimentSpec, requested_name: str, explicit_version: bool) -> bool:
    """Whether a request addressed to ``requested_name`` goes through the experiment.

    Yes for the default model's name and the experiment's own name. No when the request names a
    version explicitly (``/v2/models/fraud-v1-baseline/versions/1/infer``, or the Seldon-style
    ``fraud-v1-baseline_1``): it reaches exactly that model. No for any other model name (e.g. a
    candidate addressed directly, as in Seldon, where only the default's endpoint is taken over).
    """
    if explicit_version:
        return False
    _, version = split_versioned_name(requested_name)
    if version is not None:
        return False
    return requested_name == spec.name or (
        spec.default is not None and requested_name == spec.default
    )
