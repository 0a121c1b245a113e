"""Fast scoring runtimes for a registered LightGBM fraud model, and the one model loader.

A `Runtime` has a ``name`` and ``predict(x) -> P(fraud)``. Three kinds exist: ``tl2cgen`` (the
trees compiled to C, `compiled`), ``native`` (LightGBM's C API, `native`) and ``pyfunc`` (the MLflow
model itself, `pyfunc`). `build_runtime` (`build`) verifies every candidate against the MLflow
model (`verification`) before it serves and keeps the fastest; `RuntimeLoader` (`loader`) is what
the server and the shipper call: registry URI + kind -> the loaded model and its runtime, with the
model file checked in a child process first (`check`).

The names below load on first use, so ``import fraudgate.runtimes`` (the config reads `KINDS`)
imports neither MLflow nor LightGBM.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fraudgate.runtimes.base import KINDS, TOLERANCE, Runtime, RuntimeBuildError
    from fraudgate.runtimes.build import BuildReport, build_runtime
    from fraudgate.runtimes.check import ModelCheckFailed, check_model_file
    from fraudgate.runtimes.compiled import CompileReport, Tl2cgenRuntime, compile_tl2cgen
    from fraudgate.runtimes.loader import LoadedRuntime, RuntimeLoader, load_runtime
    from fraudgate.runtimes.native import NativeRuntime
    from fraudgate.runtimes.pyfunc import PyfuncRuntime
    from fraudgate.runtimes.verification import (
        Verification,
        single_row_latency,
        verification_rows,
        verify,
    )

_HOME = {
    "KINDS": "base",
    "TOLERANCE": "base",
    "Runtime": "base",
    "RuntimeBuildError": "base",
    "BuildReport": "build",
    "build_runtime": "build",
    "ModelCheckFailed": "check",
    "check_model_file": "check",
    "CompileReport": "compiled",
    "Tl2cgenRuntime": "compiled",
    "compile_tl2cgen": "compiled",
    "LoadedRuntime": "loader",
    "RuntimeLoader": "loader",
    "load_runtime": "loader",
    "NativeRuntime": "native",
    "PyfuncRuntime": "pyfunc",
    "Verification": "verification",
    "single_row_latency": "verification",
    "verification_rows": "verification",
    "verify": "verification",
}

__all__ = [
    "BuildReport",
    "CompileReport",
    "KINDS",
    "LoadedRuntime",
    "ModelCheckFailed",
    "NativeRuntime",
    "PyfuncRuntime",
    "Runtime",
    "RuntimeBuildError",
    "RuntimeLoader",
    "TOLERANCE",
    "Tl2cgenRuntime",
    "Verification",
    "build_runtime",
    "check_model_file",
    "compile_tl2cgen",
    "load_runtime",
    "single_row_latency",
    "verification_rows",
    "verify",
]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOME})
