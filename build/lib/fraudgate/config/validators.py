"""Field validators: each checks one value and raises `ConfigError` naming where it is
(``models[0].batching.max_wait_ms``), what was expected and what was received."""

from __future__ import annotations

import math
from typing import Any

from fraudgate.config.schema import ConfigError


def describe(value: Any) -> str:
    """A received value for an error message: its repr and its type."""
    return f"{value!r} ({type(value).__name__})"


def mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping, received {describe(value)}")
    for key in value:
        if not isinstance(key, str):
            raise ConfigError(f"{where}: expected string keys, received key {describe(key)}")
    return value


def no_unknown(data: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    """A typo (``mirror.percentage``) is an error, never silently dropped."""
    unknown = [key for key in data if key not in allowed]
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(
            f"{prefix}{unknown[0]}: unknown key; expected one of {list(allowed)}, "
            f"received {unknown[0]!r}"
        )


def text(value: Any, where: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise ConfigError(f"{where}: expected a non-empty string, received {describe(value)}")
    return value


def integer(value: Any, where: str, *, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}: expected an integer, received {describe(value)}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise ConfigError(f"{where}: expected an integer {bound}, received {value}")
    return value


def number(value: Any, where: str, *, minimum: float, maximum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{where}: expected a number, received {describe(value)}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise ConfigError(f"{where}: expected a number {bound}, received {value}")
    return float(value)


def port(value: Any, where: str) -> int:
    return integer(value, where, minimum=0, maximum=65535)


def boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, received {describe(value)}")
    return value


def choice(value: Any, where: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(f"{where}: expected one of {list(allowed)}, received {describe(value)}")
    return value


def model_name(value: Any, where: str) -> str:
    """A served model's name, under the one rule the experiment spec shares
    (`fraudgate.protocol.limits.MODEL_NAME`; imported here, not at the top, because the
    protocol package loads numpy and the CLI reads this package for its ``--help``)."""
    from fraudgate.protocol.limits import MODEL_NAME_RULE, model_name_problem

    name = text(value, where)
    if model_name_problem(name) is not None:
        raise ConfigError(f"{where}: expected {MODEL_NAME_RULE}, received {name!r}")
    return name
