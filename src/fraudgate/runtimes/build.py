"""`build_runtime`: the fastest verified runtime for a registered model.

Candidates are built in order (``tl2cgen``, ``native``, ``pyfunc``), each verified against the
MLflow model on `verification_rows` plus any caller sample; one that fails to build or to verify
is dropped with a warning. ``auto`` times the verified ones on single rows and keeps the fastest;
an explicit kind keeps the first that verifies, so it falls back to ``native``, then ``pyfunc``.
The report's ``fallback`` says the model serves on a fallback: an explicit kind that is not the
one serving, or (``auto``) a candidate that failed to build or verify (the server exports it as
``fraudgate_model_runtime_fallback``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fraudgate.runtimes.base import KINDS, TOLERANCE, Runtime, RuntimeBuildError
from fraudgate.runtimes.compiled import CompileReport, Tl2cgenRuntime, compile_tl2cgen
from fraudgate.runtimes.native import NativeRuntime
from fraudgate.runtimes.pyfunc import PyfuncRuntime
from fraudgate.runtimes.verification import single_row_latency, verification_rows, verify

if TYPE_CHECKING:
    from fraudgate.registry import LoadedModel

log = logging.getLogger(__name__)


@dataclass(slots=True)
class BuildReport:
    """What `build_runtime` tried and why it chose what it did (the server may log it)."""

    chosen: str = ""
    notes: list[str] = field(default_factory=list)
    single_row_seconds: dict[str, float] = field(default_factory=dict)
    max_abs_error: dict[str, float] = field(default_factory=dict)
    compile: CompileReport | None = None
    failed: list[str] = field(default_factory=list)  # candidates that did not build or verify
    fallback: bool = False


def build_runtime(
    model: LoadedModel,
    kind: str = "auto",
    cache_dir: Path | None = None,
    verify_rows: int = 256,
    *,
    sample: np.ndarray | None = None,
    tolerance: float = TOLERANCE,
    toolchain: str = "gcc",
    n_features: int | None = None,
) -> Runtime:
    """Build the fastest verified runtime of `kind` for `model` (see the module docstring).

    ``kind``: ``auto`` (measure the verified candidates, keep the fastest single-row one),
    ``tl2cgen``, ``native`` or ``pyfunc``. A requested kind that fails to build or to verify
    falls back to ``native``, then ``pyfunc``, with a warning saying why. The returned runtime
    carries ``.name`` (what actually serves) and ``.report`` (a :class:`BuildReport`).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown runtime kind {kind!r}; expected one of {', '.join(KINDS)}")
    if n_features is None:
        from fraudgate.data.contract import N_FEATURES

        n_features = N_FEATURES
    booster = model.booster
    report = BuildReport()
    rows = verification_rows(booster, verify_rows, n_features)
    if sample is not None and len(sample):
        extra = np.ascontiguousarray(np.asarray(sample, dtype=np.float32).reshape(-1, n_features))
        rows = np.concatenate([rows, extra])
    reference = np.asarray(model.pyfunc.predict(rows), dtype=np.float64).reshape(-1)

    def make_tl2cgen() -> Runtime:
        comp = compile_tl2cgen(booster, cache_dir, toolchain=toolchain)
        report.compile = comp
        how = "cached" if comp.cached else f"compiled in {comp.seconds:.1f}s"
        report.notes.append(f"tl2cgen: {comp.trees} trees, gcc {comp.opt}, {how}")
        return Tl2cgenRuntime(comp.library, n_features, detail=f"gcc {comp.opt}, {how}")

    builders: dict[str, Callable[[], Runtime]] = {
        "tl2cgen": make_tl2cgen,
        "native": lambda: NativeRuntime(booster, n_features),
        "pyfunc": lambda: PyfuncRuntime(model.pyfunc, n_features),
    }
    order: Sequence[str] = {
        "auto": ("tl2cgen", "native", "pyfunc"),
        "tl2cgen": ("tl2cgen", "native", "pyfunc"),
        "native": ("native", "pyfunc"),
        "pyfunc": ("pyfunc",),
    }[kind]

    verified: list[Runtime] = []
    for name in order:
        if verified and (kind != "auto" or name == "pyfunc"):
            break  # an explicit kind stops at the first that works; auto never races pyfunc
        try:
            candidate = builders[name]()
        except Exception as exc:
            msg = f"{name} runtime unavailable for {model.uri}: {exc}"
            log.warning("%s; falling back", msg)
            report.notes.append(msg)
            report.failed.append(name)
            continue
        if name == "pyfunc":  # the reference itself
            verified.append(candidate)
            continue
        result = verify(candidate, rows, reference, tolerance)
        report.max_abs_error[name] = result.max_abs_error
        if not result.ok:
            msg = f"{name} runtime failed verification for {model.uri}: {result.reason}"
            log.warning("%s; falling back", msg)
            report.notes.append(msg)
            report.failed.append(name)
            continue
        verified.append(candidate)

    if not verified:  # pragma: no cover - pyfunc always verifies
        raise RuntimeBuildError(f"no runtime could serve {model.uri}: {report.notes}")
    if len(verified) > 1:
        for rt in verified:
            report.single_row_seconds[rt.name] = single_row_latency(rt, rows[:64])
        chosen = min(verified, key=lambda rt: report.single_row_seconds[rt.name])
    else:
        chosen = verified[0]
    report.chosen = chosen.name
    report.fallback = chosen.name != kind if kind != "auto" else bool(report.failed)
    if chosen.name == "pyfunc" and kind != "pyfunc":
        log.error("serving %s through the slow MLflow pyfunc path: %s", model.uri, report.notes)
    log.info(
        "runtime for %s: %s (%s)",
        model.uri,
        chosen.name,
        "; ".join(
            [f"{k} {v * 1e6:.1f}us/row" for k, v in report.single_row_seconds.items()]
            + report.notes
        ),
    )
    chosen.report = report
    return chosen
