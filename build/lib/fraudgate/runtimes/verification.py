"""Verifying a runtime against the MLflow model before it serves, and timing it.

`verification_rows` makes deterministic rows that exercise the model: spanning each feature's
training range, values at and on both sides of every split threshold, NaNs, zeros and extremes.
`verify` scores them one at a time, in batches of 32 and all at once; every score must match the
reference (``model.pyfunc.predict``) within the tolerance. `single_row_latency` is what ``auto``
compares to choose between verified runtimes.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fraudgate.runtimes.base import TOLERANCE, Runtime

if TYPE_CHECKING:
    import lightgbm

_RANGE = re.compile(r"^\[(-?[^:]+):(-?[^\]]+)\]$")


def _model_ranges_and_thresholds(
    model_text: str, n_features: int
) -> tuple[np.ndarray, np.ndarray, list[list[float]]]:
    """Per-feature [lo, hi] from `feature_infos`, and every numerical split threshold."""
    lo = np.full(n_features, -3.0)
    hi = np.full(n_features, 3.0)
    thresholds: list[list[float]] = [[] for _ in range(n_features)]
    split_features: list[int] = []
    for line in model_text.splitlines():
        if line.startswith("feature_infos="):
            for j, info in enumerate(line.removeprefix("feature_infos=").split()[:n_features]):
                m = _RANGE.match(info)
                if m:
                    lo[j], hi[j] = float(m.group(1)), float(m.group(2))
        elif line.startswith("split_feature="):
            split_features = [int(v) for v in line.removeprefix("split_feature=").split()]
        elif line.startswith("threshold=") and split_features:
            values = line.removeprefix("threshold=").split()
            for j, v in zip(split_features, values, strict=False):
                if j < n_features:
                    thresholds[j].append(float(v))
            split_features = []
        elif line.startswith("end of trees"):
            break
    return lo, hi, thresholds


def verification_rows(
    booster: lightgbm.Booster, n_rows: int = 256, n_features: int | None = None, seed: int = 7
) -> np.ndarray:
    """Deterministic rows that exercise the model: in-range, at split edges, NaN, extremes."""
    nf = n_features or booster.num_feature()
    rng = np.random.default_rng(seed)
    lo, hi, thresholds = _model_ranges_and_thresholds(booster.model_to_string(), nf)
    span = np.where(hi > lo, hi - lo, 1.0)
    x = rng.uniform(lo - 0.1 * span, hi + 0.1 * span, size=(n_rows, nf))
    # half the rows: put features right at, just below and just above a split threshold
    for i in range(0, n_rows, 2):
        for j in range(nf):
            if thresholds[j] and rng.random() < 0.5:
                t = np.float32(thresholds[j][rng.integers(len(thresholds[j]))])
                x[i, j] = (t, np.nextafter(t, np.float32(-np.inf)), np.nextafter(t, np.inf))[
                    rng.integers(3)
                ]
    x = x.astype(np.float32)
    x[rng.random(x.shape) < 0.05] = np.nan  # missing values
    specials = [
        np.zeros(nf),
        np.full(nf, np.nan),
        lo,
        hi,
        np.full(nf, -1e30),
        np.full(nf, 1e30),
        np.full(nf, -0.0),
    ]
    for k, row in enumerate(specials[: max(0, n_rows // 4)]):
        x[-(k + 1)] = np.asarray(row, dtype=np.float32)
    return np.ascontiguousarray(x)


@dataclass(slots=True)
class Verification:
    """Whether a runtime matched the reference, its worst error, and why it did not."""

    ok: bool
    max_abs_error: float
    reason: str = ""


def verify(
    runtime: Runtime, rows: np.ndarray, reference: np.ndarray, tolerance: float = TOLERANCE
) -> Verification:
    """Score `rows` one by one, in batches of 32 and all at once; compare with `reference`."""
    try:
        got_single = np.concatenate([runtime.predict(rows[i : i + 1]) for i in range(len(rows))])
        got_32 = np.concatenate(
            [runtime.predict(rows[i : i + 32]) for i in range(0, len(rows), 32)]
        )
        got_all = runtime.predict(rows)
    except Exception as exc:
        return Verification(False, float("inf"), f"{type(exc).__name__}: {exc}")
    worst = 0.0
    for label, got in (("single-row", got_single), ("batch-32", got_32), ("full-batch", got_all)):
        got = np.asarray(got, dtype=np.float64).reshape(-1)
        if got.shape != reference.shape:
            return Verification(False, float("inf"), f"{label} shape {got.shape}")
        err = np.abs(got - reference)
        if not np.all(np.isfinite(got)):
            return Verification(False, float("inf"), f"{label} produced non-finite scores")
        worst = max(worst, float(err.max(initial=0.0)))
        if worst > tolerance:
            i = int(err.argmax())
            return Verification(
                False,
                worst,
                f"{label} score {got[i]:.8f} vs MLflow model {reference[i]:.8f} on row {i} "
                f"(|diff| {worst:.2e} > {tolerance:g})",
            )
    return Verification(True, worst)


def single_row_latency(runtime: Runtime, rows: np.ndarray, repeats: int = 3) -> float:
    """Median seconds per single-row predict over `rows` (used by `auto`)."""
    singles = [rows[i : i + 1] for i in range(len(rows))]
    best = []
    for _ in range(repeats):
        times = []
        for r in singles:
            t0 = time.perf_counter()
            runtime.predict(r)
            times.append(time.perf_counter() - t0)
        best.append(float(np.median(times)))
    return min(best)
