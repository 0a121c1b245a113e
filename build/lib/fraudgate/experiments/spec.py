"""The experiment spec: the ``experiment:`` section of the fraudgate YAML config, validated.

Field names and meaning follow the Seldon Core v2 ``Experiment`` resource
(``mlops.seldon.io/v1alpha1``): ``name``, ``default``, ``candidates: [{name, weight}]`` and
``mirror: {name, percent}``. fraudgate adds:

- ``routing: {key, source, header}``: where the sticky routing key is read from
  (request parameter ``card_id`` by default; the ``x-routing-key`` header always works too);
- ``salt``: mixed into the routing-key hash (default: the experiment name), so two experiments
  split the same cards independently;
- ``seed``: seeds the generator used for requests without a routing key;
- ``mirror`` without ``name`` ("shadow the other arm"): the candidate that did *not* answer
  scores a copy of the request, so both models score every mirrored transaction. It needs
  exactly two candidates. Seldon's Experiment only mirrors to one fixed model; see
  :mod:`fraudgate.experiments.seldon` for how it is exported.

Rules (each violation raises :class:`ExperimentConfigError` naming the field, the expected
value and the received one):

- names (experiment, candidates, mirror) follow the one model-name rule of
  :data:`fraudgate.protocol.limits.MODEL_NAME` (the config's: letters, digits, ``.``, ``_``,
  ``-``), but never end in a version suffix: ``fraud-v1-baseline``, not ``fraud-v1-baseline_1``
  (that is how a request addresses one version explicitly). The Seldon export additionally
  needs Kubernetes DNS-1123 labels (:mod:`fraudgate.experiments.seldon` checks that);
- candidate names are unique; weights are integers in ``[0, 2**31-1]`` (int32, as in the CRD)
  and at least one is positive;
- ``default``, when given, is one of the candidates (Seldon: ``ExperimentDefaultNotFound``);
- a named mirror is not a candidate (Seldon rejects it too, ``ExperimentNoDuplicates``): it
  would score its own served share twice;
- the experiment name differs from every model name: requests addressed to it are routed, and
  requests addressed to a model name go to that model (or, for the default, are routed);
- ``mirror.percent`` is an integer in ``[0, 100]``;
- unknown keys are errors (a typo such as ``mirror.percentage`` must not be silently dropped,
  which is what Kubernetes does to undeclared fields).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from fraudgate.protocol.limits import MODEL_NAME_RULE, model_name_problem, split_versioned_name

INT32_MAX = 2**31 - 1
DEFAULT_ROUTING_PARAMETER = "card_id"
ROUTING_HEADER = "x-routing-key"
MAX_SALT_BYTES = 64  # BLAKE2b key length limit

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")  # Kubernetes resource names
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9a-z-]+$")


class ExperimentConfigError(ValueError):
    """An invalid ``experiment:`` section: names the field, the expected and received value."""

    def __init__(self, field: str, expected: str, received: Any) -> None:
        self.field = field
        self.expected = expected
        self.received = received
        super().__init__(f"{field}: expected {expected}, received {_show(received)}")


def _show(value: Any) -> str:
    if value is _MISSING:
        return "nothing (the field is missing)"
    return f"{value!r} ({type(value).__name__})"


_MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class Candidate:
    """One arm of the split: a model name (a Seldon ``Model`` resource) and its integer weight."""

    name: str
    weight: int


@dataclass(frozen=True, slots=True)
class Mirror:
    """Shadow scoring: ``percent`` % of requests are also scored by the mirror, never returned.

    ``name=None`` is the fraudgate extension "shadow the other arm": the candidate that did not
    answer scores the copy.
    """

    name: str | None
    percent: int

    @property
    def shadows_other_arm(self) -> bool:
        return self.name is None


@dataclass(frozen=True, slots=True)
class RoutingConfig:
    """Where the sticky routing key comes from.

    ``source="parameter"``: the request parameter ``key`` (e.g. ``"parameters": {"card_id": ...}``),
    else the header ``header``. ``source="header"``: the header ``header``. In both cases the
    ``x-routing-key`` header is accepted as a last resort.
    """

    key: str = DEFAULT_ROUTING_PARAMETER
    source: Literal["parameter", "header"] = "parameter"
    header: str = ROUTING_HEADER


@dataclass(frozen=True, slots=True)
class ExperimentSpec:
    """A validated experiment, immutable: a weight change makes a new one (:meth:`with_weights`)."""

    name: str
    candidates: tuple[Candidate, ...]
    default: str | None = None
    mirror: Mirror | None = None
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    salt: str = ""  # "" means: use the experiment name (see effective_salt)
    seed: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.candidates, list):  # keep the spec hashable and immutable
            object.__setattr__(self, "candidates", tuple(self.candidates))
        _validate(self)

    # ------------------------------------------------------------------ views
    @property
    def effective_salt(self) -> str:
        return self.salt or self.name

    @property
    def candidate_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.candidates)

    @property
    def weights(self) -> dict[str, int]:
        return {c.name: c.weight for c in self.candidates}

    @property
    def total_weight(self) -> int:
        return sum(c.weight for c in self.candidates)

    @property
    def model_names(self) -> tuple[str, ...]:
        """Every model the experiment sends traffic to (candidates, then a named mirror)."""
        names = self.candidate_names
        if self.mirror is not None and self.mirror.name is not None:
            names += (self.mirror.name,)
        return names

    # ------------------------------------------------------------ constructors
    @classmethod
    def from_config(cls, section: Mapping[str, Any], *, path: str = "experiment") -> ExperimentSpec:
        """Build from the ``experiment:`` mapping of the YAML config (already parsed to a dict)."""
        return _parse(section, path)

    def to_config(self) -> dict[str, Any]:
        """The inverse of :meth:`from_config` (explicit values; round-trips exactly)."""
        out: dict[str, Any] = {"name": self.name}
        if self.default is not None:
            out["default"] = self.default
        out["candidates"] = [{"name": c.name, "weight": c.weight} for c in self.candidates]
        if self.mirror is not None:
            mirror: dict[str, Any] = {"percent": self.mirror.percent}
            if self.mirror.name is not None:
                mirror = {"name": self.mirror.name, **mirror}
            out["mirror"] = mirror
        out["routing"] = {
            "key": self.routing.key,
            "source": self.routing.source,
            "header": self.routing.header,
        }
        if self.salt:
            out["salt"] = self.salt
        if self.seed is not None:
            out["seed"] = self.seed
        return out

    def with_weights(self, weights: Mapping[str, Any], *, path: str = "weights") -> ExperimentSpec:
        """A copy with new weights. ``weights`` must name every candidate exactly once."""
        known = self.candidate_names
        if not isinstance(weights, Mapping):
            raise ExperimentConfigError(path, "a mapping of candidate name to weight", weights)
        unknown = [n for n in weights if n not in known]
        if unknown:
            raise ExperimentConfigError(
                path, f"weights only for the candidates {list(known)}", sorted(map(str, unknown))
            )
        missing = [n for n in known if n not in weights]
        if missing:
            raise ExperimentConfigError(
                path,
                f"a weight for every candidate {list(known)} (missing {missing})",
                dict(weights),
            )
        for name in known:
            _check_weight(weights[name], f"{path}.{name}")
        if not any(weights[n] > 0 for n in known):
            raise ExperimentConfigError(path, "at least one positive weight", dict(weights))
        return replace(self, candidates=tuple(Candidate(n, weights[n]) for n in known))


# --------------------------------------------------------------------------- parsing

_TOP_FIELDS = ("name", "default", "candidates", "mirror", "routing", "salt", "seed")
_CANDIDATE_FIELDS = ("name", "weight")
_MIRROR_FIELDS = ("name", "percent")
_ROUTING_FIELDS = ("key", "source", "header")


def _reject_unknown(section: Mapping[str, Any], allowed: tuple[str, ...], path: str) -> None:
    for key in section:
        if key not in allowed:
            raise ExperimentConfigError(
                f"{path}.{key}", f"no such field (allowed: {', '.join(allowed)})", section[key]
            )


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ExperimentConfigError(path, "a mapping", value)
    return value


def _parse(section: Any, path: str) -> ExperimentSpec:
    section = _mapping(section, path)
    _reject_unknown(section, _TOP_FIELDS, path)
    name = section.get("name", _MISSING)
    check_model_name(name, f"{path}.name")

    raw_candidates = section.get("candidates", _MISSING)
    if not isinstance(raw_candidates, list | tuple) or not raw_candidates:
        raise ExperimentConfigError(
            f"{path}.candidates", "a non-empty list of {name, weight}", raw_candidates
        )
    candidates = []
    for i, raw in enumerate(raw_candidates):
        cpath = f"{path}.candidates[{i}]"
        raw = _mapping(raw, cpath)
        _reject_unknown(raw, _CANDIDATE_FIELDS, cpath)
        cname = raw.get("name", _MISSING)
        weight = raw.get("weight", _MISSING)
        check_model_name(cname, f"{cpath}.name")
        _check_weight(weight, f"{cpath}.weight")
        candidates.append(Candidate(cname, weight))

    mirror = None
    if section.get("mirror") is not None:
        mpath = f"{path}.mirror"
        raw = _mapping(section["mirror"], mpath)
        _reject_unknown(raw, _MIRROR_FIELDS, mpath)
        mname = raw.get("name")
        if mname is not None:
            check_model_name(mname, f"{mpath}.name")
        mirror = Mirror(mname, raw.get("percent", _MISSING))

    routing = RoutingConfig()
    if section.get("routing") is not None:
        rpath = f"{path}.routing"
        raw = _mapping(section["routing"], rpath)
        _reject_unknown(raw, _ROUTING_FIELDS, rpath)
        header = raw.get("header", ROUTING_HEADER)
        if isinstance(header, str):
            header = header.lower()
        routing = RoutingConfig(
            key=raw.get("key", DEFAULT_ROUTING_PARAMETER),
            source=raw.get("source", "parameter"),
            header=header,
        )

    salt = section.get("salt", "")
    if salt is None:
        salt = ""
    return _build(name, candidates, section, mirror, routing, salt, path)


def _build(
    name: str,
    candidates: list[Candidate],
    section: Mapping[str, Any],
    mirror: Mirror | None,
    routing: RoutingConfig,
    salt: str,
    path: str,
) -> ExperimentSpec:
    """Construct (which runs the cross-field checks), reporting fields under ``path``."""
    try:
        return ExperimentSpec(
            name=name,
            candidates=tuple(candidates),
            default=section.get("default"),
            mirror=mirror,
            routing=routing,
            salt=salt,
            seed=section.get("seed"),
        )
    except ExperimentConfigError as err:
        if path != "experiment" and err.field.startswith("experiment"):
            raise ExperimentConfigError(
                path + err.field[len("experiment") :], err.expected, err.received
            ) from None
        raise


# --------------------------------------------------------------------------- validation


def check_model_name(value: Any, path: str) -> None:
    """The shared model-name rule, and no version suffix (a name in an experiment is a route)."""
    if model_name_problem(value) is not None:
        raise ExperimentConfigError(path, f"a model name: {MODEL_NAME_RULE}", value)
    base, version = split_versioned_name(value)
    if version is not None:
        raise ExperimentConfigError(
            path,
            f"a model name without a version suffix ({base!r}; "
            f"{value!r} addresses version {version} explicitly)",
            value,
        )


def _check_weight(value: Any, path: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= INT32_MAX:
        raise ExperimentConfigError(path, f"an integer between 0 and {INT32_MAX}", value)


def _validate(spec: ExperimentSpec) -> None:
    p = "experiment"
    check_model_name(spec.name, f"{p}.name")
    if not spec.candidates:
        raise ExperimentConfigError(f"{p}.candidates", "at least one candidate", [])
    seen: set[str] = set()
    for i, c in enumerate(spec.candidates):
        check_model_name(c.name, f"{p}.candidates[{i}].name")
        _check_weight(c.weight, f"{p}.candidates[{i}].weight")
        if c.name in seen:
            raise ExperimentConfigError(
                f"{p}.candidates[{i}].name", "a name not already used by another candidate", c.name
            )
        seen.add(c.name)
    if spec.total_weight <= 0:
        raise ExperimentConfigError(
            f"{p}.candidates", "at least one candidate with a positive weight", spec.weights
        )
    if spec.name in seen:
        raise ExperimentConfigError(
            f"{p}.name", f"a name different from every model name {sorted(seen)}", spec.name
        )
    if spec.default is not None and spec.default not in seen:
        raise ExperimentConfigError(
            f"{p}.default", f"one of the candidates {list(spec.candidate_names)}", spec.default
        )
    if spec.mirror is not None:
        m = spec.mirror
        pct = m.percent
        if isinstance(pct, bool) or not isinstance(pct, int) or not 0 <= pct <= 100:
            raise ExperimentConfigError(f"{p}.mirror.percent", "an integer between 0 and 100", pct)
        if m.name is None:
            if len(spec.candidates) != 2:
                raise ExperimentConfigError(
                    f"{p}.mirror.name",
                    "a mirror model name: shadowing 'the other arm' (no name) needs exactly two "
                    f"candidates, there are {len(spec.candidates)}",
                    None,
                )
        else:
            check_model_name(m.name, f"{p}.mirror.name")
            if m.name in seen:
                raise ExperimentConfigError(
                    f"{p}.mirror.name",
                    "a model that is not a candidate (or omit the name to shadow the other arm)",
                    m.name,
                )
            if m.name == spec.name:
                raise ExperimentConfigError(
                    f"{p}.mirror.name", "a model name different from the experiment name", m.name
                )
    r = spec.routing
    if not isinstance(r.key, str) or not r.key:
        raise ExperimentConfigError(f"{p}.routing.key", "a non-empty request parameter name", r.key)
    if r.source not in ("parameter", "header"):
        raise ExperimentConfigError(f"{p}.routing.source", "'parameter' or 'header'", r.source)
    if not isinstance(r.header, str) or not _HEADER_NAME.match(r.header):
        raise ExperimentConfigError(
            f"{p}.routing.header", "a lower-case HTTP header name such as 'x-routing-key'", r.header
        )
    if not isinstance(spec.salt, str) or len(spec.salt.encode()) > MAX_SALT_BYTES:
        raise ExperimentConfigError(
            f"{p}.salt", f"a string of at most {MAX_SALT_BYTES} UTF-8 bytes", spec.salt
        )
    if spec.seed is not None and (
        isinstance(spec.seed, bool) or not isinstance(spec.seed, int) or spec.seed < 0
    ):
        raise ExperimentConfigError(f"{p}.seed", "a non-negative integer (or nothing)", spec.seed)
