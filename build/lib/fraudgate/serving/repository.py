"""The model repository's load/unload parameters, validated once in the core for every transport.

REST hands over the JSON body's ``parameters`` object, gRPC the `ModelRepositoryParameter` values
(bool, int64, string or bytes: gRPC has no double, so a threshold arrives as a decimal string);
both call `load_parameters` / `unload_parameters` with those raw values, so a value is accepted
or refused the same way whichever transport carried it.

``parameters.uri`` may only name a model of the configured registry: ``models:/<name>@<alias>``
or ``models:/<name>/<version>``, resolved against the config's tracking URI. Never a filesystem
path, ``file:``, ``runs:``, ``http(s):``, ``s3:`` or a ``models://<profile>`` URI: loading an
MLflow model runs its code, so a caller must not choose where that code comes from.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fraudgate.protocol.errors import InvalidInput
from fraudgate.protocol.limits import check_actor, preview

ADMIN_API_ACTOR = "admin-api"  # the actor of a load/unload that names none
LOAD_PARAMETERS = ("uri", "threshold", "runtime", "actor")
# Triton's unload_dependents (tritonclient sends it): accepted, nothing here has dependents
UNLOAD_PARAMETERS = ("actor", "unload_dependents")
# a registered model name (MLflow's are free text; fraudgate's are like config model names), then
# an alias (letters, digits, '_' and '-') or a version number
_REGISTRY_URI = re.compile(
    r"models:/(?P<name>[A-Za-z0-9][A-Za-z0-9._-]{0,255})"
    r"(?:@(?P<alias>[A-Za-z0-9_-]{1,255})|/(?P<version>[1-9][0-9]{0,18}))"
)
_EXPECTED_URI = (
    "a model of the configured registry, models:/<registered-name>@<alias> or "
    "models:/<registered-name>/<version>"
)


@dataclass(frozen=True)
class LoadParameters:
    """A validated load request: what to load (None: the config's) and who asked."""

    uri: str | None = None
    threshold: float | None = None
    runtime: str | None = None
    actor: str = ADMIN_API_ACTOR


def registry_uri_problem(uri: Any) -> str | None:
    """Why ``uri`` is not a registry model URI (None when it is one)."""
    if isinstance(uri, str) and _REGISTRY_URI.fullmatch(uri):
        return None
    return f"expected {_EXPECTED_URI}, received {preview(uri)}"


def _mapping(parameters: Any, allowed: tuple[str, ...]) -> Mapping[str, Any]:
    if parameters is None:
        return {}
    if not isinstance(parameters, Mapping):
        raise InvalidInput(f"parameters: expected an object, received {preview(parameters)}")
    unknown = [key for key in parameters if key not in allowed]
    if unknown:
        raise InvalidInput(
            f"parameters: expected only {list(allowed)}, received the unknown parameter "
            f"{preview(unknown[0])}"
        )
    return parameters


def _actor(parameters: Mapping[str, Any]) -> str:
    actor = parameters.get("actor")
    if actor is None:
        return ADMIN_API_ACTOR
    return check_actor(actor, "parameters.actor")


def _threshold(value: Any) -> float | None:
    """A number in [0, 1]; a decimal string counts as one (gRPC parameters have no double)."""
    if value is None:
        return None
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str) and len(value) <= 64:
        try:
            number = float(value)
        except ValueError:
            number = None
    if number is None or not math.isfinite(number) or not 0.0 <= number <= 1.0:
        raise InvalidInput(
            "parameters.threshold: expected a number between 0 and 1 (a decimal string over "
            f"gRPC), received {preview(value)}"
        )
    return number


def _runtime(value: Any) -> str | None:
    if value is None:
        return None
    from fraudgate.runtimes import KINDS

    if value not in KINDS:
        raise InvalidInput(
            f"parameters.runtime: expected one of {list(KINDS)}, received {preview(value)}"
        )
    return str(value)


def load_parameters(parameters: Any) -> LoadParameters:
    """Validate a load request's raw ``parameters`` (None: load the config's model as it is)."""
    data = _mapping(parameters, LOAD_PARAMETERS)
    uri = data.get("uri")
    if uri is not None:
        problem = registry_uri_problem(uri)
        if problem is not None:
            raise InvalidInput(f"parameters.uri: {problem}")
    return LoadParameters(
        uri=uri,
        threshold=_threshold(data.get("threshold")),
        runtime=_runtime(data.get("runtime")),
        actor=_actor(data),
    )


def unload_parameters(parameters: Any) -> str:
    """Validate an unload request's raw ``parameters``; returns the actor."""
    data = _mapping(parameters, UNLOAD_PARAMETERS)
    dependents = data.get("unload_dependents")
    if dependents is not None and not isinstance(dependents, bool):
        raise InvalidInput(
            f"parameters.unload_dependents: expected true or false, received {preview(dependents)}"
        )
    return _actor(data)
