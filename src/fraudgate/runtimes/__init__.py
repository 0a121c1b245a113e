"""Fast scoring runtimes for a registered LightGBM fraud model.

``build_runtime(model)`` turns a :class:`fraudgate.registry.LoadedModel` into a :class:`Runtime`:
an object with a ``name`` and ``predict(x) -> P(fraud)``. Three kinds exist:

``tl2cgen``
    The trees compiled to C by Treelite/TL2cgen and built with gcc into a shared library, cached
    in ``cache_dir`` under a hash of the model text (a restart loads it in milliseconds). We call
    the generated per-row ``predict`` through a ten-line C loop compiled into the same library,
    one ctypes call per batch. ``tl2cgen.Predictor`` is *not* used on the hot path: it builds a
    ``DMatrix`` and goes through TL2cgen's threaded batch runtime on every call, which costs more
    than the trees themselves for one row (see ``bench/runtimes.py``).
``native``
    LightGBM's own C API on the booster's handle: ``LGBM_BoosterPredictForMatSingleRowFast``
    (configured once by ``...FastInit``) row by row for small batches, and
    ``LGBM_BoosterPredictForMat`` for large ones. It cannot be wrong about LightGBM semantics,
    so it is the fallback.
``pyfunc``
    ``model.pyfunc.predict``, the MLflow model exactly as MLflow/MLServer serve it. Only used
    when even the native booster disagrees with the MLflow model (a broken registration).

Every candidate is verified before it serves: on ``verify_rows`` deterministic synthetic rows
(spanning each feature's training range, values on both sides of every split threshold, NaNs,
zeros and extremes) plus any caller sample, each row scored one at a time *and* in batches must
match ``model.pyfunc.predict`` within 1e-5 absolute, or the candidate is dropped with a warning.

Threads: every path runs on the calling thread. LightGBM gets ``num_threads=1``; the compiled
trees contain no OpenMP at all. A single row takes a few microseconds, while waking an OpenMP
team costs about as much and, with GNU libgomp's default spin-wait, leaves idle workers burning
CPU that the event loop and the other requests need (this machine has two cores). Throughput
comes from batching requests and from server processes, not from threads inside one predict.

Runtimes are safe to call from several threads: the small-batch paths copy into per-runtime
scratch buffers under a lock (ctypes-call overhead is dominated by taking an array's address,
~1 us, so the buffers' addresses are taken once). Small batches (up to ``SMALL_BATCH`` rows, a few
to a few hundred microseconds) keep the GIL (``PyDLL``): releasing it for a call that short
invites any other thread that wants the GIL (the ledger's writer thread) to take it, and the
event loop then waits to get it back -- on a busy single core, long after the call returned.
Larger batches release it (``CDLL``), so a worker thread scoring one does not stall the loop.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    import lightgbm

    from fraudgate.registry import LoadedModel

log = logging.getLogger(__name__)

KINDS = ("auto", "tl2cgen", "native", "pyfunc")
TOLERANCE = 1e-5
# rows per call up to which the input goes through the preallocated scratch buffer (copying is
# cheaper than taking a new array's address); larger batches are passed in place
SMALL_BATCH = 64
# gcc optimisation level for the generated trees; see bench/results/runtimes.json: -O1 compiles
# ~2.5x faster than -O3 and scores just as fast (the code is branches, nothing to vectorise)
COMPILE_OPT = "-O1"
TREES_PER_UNIT = 40  # TL2cgen parallel_comp: one C translation unit per ~40 trees
# TL2cgen code generation. quantize: each row's features are mapped once to the index of the
# thresholds they fall between, and the trees compare small integers: exact (same splits). On the
# demo's champion with 32 real feature rows: 1.9 -> 0.8 us per row; on bench/runtimes.py's
# stand-in with random rows: 5.3 -> 4.7 us per row.
CODEGEN_PARAMS = {"quantize": 1}

_F32 = np.dtype(np.float32)


@runtime_checkable
class Runtime(Protocol):
    """Scores fraud probability for a ``[n, n_features]`` float32 C-contiguous matrix."""

    name: str

    def predict(self, x: np.ndarray) -> np.ndarray: ...


class RuntimeBuildError(RuntimeError):
    """A runtime could not be built (compiler missing, unsupported model, ...)."""


def _as_input(x: np.ndarray, n_features: int) -> np.ndarray:
    if x.dtype is not _F32 or not x.flags.c_contiguous:
        x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != n_features:
        raise ValueError(f"expected a [n, {n_features}] matrix, got shape {list(x.shape)}")
    return x


class _Scratch:
    """Preallocated input/output buffers whose addresses are taken once."""

    def __init__(self, rows: int, n_features: int) -> None:
        self.x = np.zeros((rows, n_features), dtype=np.float32)
        self.out = np.zeros(rows, dtype=np.float64)
        self.x_ptr = self.x.ctypes.data
        self.out_ptr = self.out.ctypes.data
        self.row_ptrs = [self.x_ptr + i * n_features * 4 for i in range(rows)]
        self.out_ptrs = [self.out_ptr + i * 8 for i in range(rows)]
        self.lock = threading.Lock()


# -- tl2cgen ----------------------------------------------------------------------------------

# Compiled into the same library as the generated trees. NaN is "missing" for LightGBM models;
# a float32 widened to double has its low 29 mantissa bits zero, so it can never alias the
# `missing == -1` marker that TL2cgen's union Entry uses. LightGBM drops |x| <= kZeroThreshold
# (1e-35f) from a row before traversing the trees, i.e. scores such values as exactly 0; its
# own splits sit at +-1e-35f, so without the same rule a value of 1e-35 lands on the other side
# (verification caught this on the synthetic edge rows).
_ROWS_C = r"""
#include "header.h"

int32_t fraudgate_predict_rows(const float* x, int64_t n, int64_t ncol, double* out) {
  const int32_t nf = get_num_feature();
  if (ncol < nf) return -1;
  union Entry row[nf > 0 ? nf : 1];
  for (int64_t i = 0; i < n; ++i) {
    const float* xi = x + i * ncol;
    for (int32_t j = 0; j < nf; ++j) {
      if (isnan(xi[j])) { row[j].fvalue = 0; row[j].missing = -1; }
      else { row[j].fvalue = fabs((double)xi[j]) <= (double)1e-35f ? 0.0 : (double)xi[j]; }
    }
    double r[N_TARGET * MAX_N_CLASS] = {0};
    predict(row, 0, r);
    out[i] = r[0];
  }
  return 0;
}
"""


def _model_key(model_text: str, opt: str) -> str:
    import tl2cgen
    import treelite

    h = hashlib.sha256()
    parts = (model_text, _ROWS_C, opt, repr(sorted(CODEGEN_PARAMS.items())))
    for part in (*parts, treelite.__version__, tl2cgen.__version__):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:24]


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fraudgate" / "runtimes"


@dataclass
class CompileReport:
    library: Path
    cached: bool
    seconds: float
    trees: int
    opt: str


def build_library(
    model: Any, library: Path, *, opt: str = COMPILE_OPT, toolchain: str = "gcc"
) -> None:
    """Generate C for a ``treelite.Model`` and build ``library`` (with the row loop) from it."""
    import tl2cgen

    with tempfile.TemporaryDirectory(prefix="fraudgate-tl2cgen-") as tmp:
        src = Path(tmp) / "src"
        trees = int(model.num_tree)
        units = max(1, min(os.cpu_count() or 1, 8) * 2, trees // TREES_PER_UNIT)
        tl2cgen.generate_c_code(model, src, {"parallel_comp": units, **CODEGEN_PARAMS})
        (src / "fraudgate_rows.c").write_text(_ROWS_C)
        recipe_path = src / "recipe.json"
        recipe = json.loads(recipe_path.read_text())
        recipe["sources"].append({"name": "fraudgate_rows", "length": 1})
        recipe_path.write_text(json.dumps(recipe))
        built = tl2cgen.create_shared(
            toolchain, src, nthread=os.cpu_count(), options=[opt], long_build_time_warning=False
        )
        # atomic publish: concurrent server starts never load a half-written library
        staged = library.with_name(f".{library.name}.{os.getpid()}.tmp")
        shutil.copyfile(built, staged)
        os.replace(staged, library)


def compile_tl2cgen(
    booster: lightgbm.Booster,
    cache_dir: Path | None = None,
    *,
    opt: str = COMPILE_OPT,
    toolchain: str = "gcc",
) -> CompileReport:
    """Compile `booster` to a shared library, or reuse the cached one for the same model text."""
    t0 = time.perf_counter()
    try:
        import tl2cgen  # noqa: F401 - fail here, before hashing, if it is missing
        import treelite
    except ImportError as exc:  # pragma: no cover - both are dependencies
        raise RuntimeBuildError(f"treelite/tl2cgen not importable: {exc}") from exc
    model_text = booster.model_to_string()
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    library = cache_dir / f"fraudgate-tl2cgen-{_model_key(model_text, opt)}.so"
    trees = booster.num_trees()
    if library.is_file():
        return CompileReport(library, True, time.perf_counter() - t0, trees, opt)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        build_library(
            treelite.frontend.from_lightgbm(booster), library, opt=opt, toolchain=toolchain
        )
    except Exception as exc:
        raise RuntimeBuildError(f"TL2cgen compilation with {toolchain!r} failed: {exc}") from exc
    return CompileReport(library, False, time.perf_counter() - t0, trees, opt)


def _predict_rows(lib: ctypes.CDLL) -> Any:
    rows = lib.fraudgate_predict_rows
    rows.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
    rows.restype = ctypes.c_int32
    return rows


class Tl2cgenRuntime:
    """The compiled trees, called directly through ``fraudgate_predict_rows``."""

    name = "tl2cgen"

    def __init__(self, library: Path, n_features: int, *, detail: str = "") -> None:
        self.library = Path(library)
        self.n_features = n_features
        self.detail = detail
        lib = ctypes.CDLL(str(self.library))  # releases the GIL: large batches
        self._rows = _predict_rows(lib)
        self._rows_held = _predict_rows(ctypes.PyDLL(str(self.library)))  # keeps it: small ones
        nf = lib.get_num_feature
        nf.restype = ctypes.c_int32
        if nf() > n_features:
            raise RuntimeBuildError(f"model uses {nf()} features, input has {n_features}")
        self._scratch = _Scratch(SMALL_BATCH, n_features)

    def predict(self, x: np.ndarray) -> np.ndarray:
        x = _as_input(x, self.n_features)
        n = x.shape[0]
        if n <= SMALL_BATCH:
            s = self._scratch
            with s.lock:
                s.x[:n] = x
                self._rows_held(s.x_ptr, n, self.n_features, s.out_ptr)
                return s.out[:n].copy()
        out = np.empty(n, dtype=np.float64)
        self._rows(x.ctypes.data, n, self.n_features, out.ctypes.data)
        return out


# -- native LightGBM ----------------------------------------------------------------------------

_C_API_DTYPE_FLOAT32 = 0
_C_API_PREDICT_NORMAL = 0
_THREADS_PARAM = b"num_threads=1"


class NativeRuntime:
    """LightGBM's C API on the booster handle, one thread, no per-call Python wrapper work."""

    name = "native"

    def __init__(self, booster: lightgbm.Booster, n_features: int) -> None:
        from lightgbm.basic import _LIB

        self.booster = booster  # keeps the handle alive
        self.n_features = n_features
        self.detail = "LightGBM C API, SingleRowFast, num_threads=1"
        self._handle = booster._handle
        # best_iteration as lightgbm.Booster.predict uses it (<= 0 means all trees)
        self._num_iteration = int(getattr(booster, "best_iteration", -1) or -1)
        path = _LIB._name
        lib = ctypes.CDLL(path)  # own function objects: never touch lightgbm's argtypes
        self._last_error = lib.LGBM_GetLastError
        self._last_error.restype = ctypes.c_char_p

        init = lib.LGBM_BoosterPredictForMatSingleRowFastInit
        init.argtypes = [
            ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int,
            ctypes.c_int32, ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p),
        ]  # fmt: skip
        self._free = lib.LGBM_FastConfigFree
        self._free.argtypes = [ctypes.c_void_p]
        self._config = ctypes.c_void_p()
        self._check(
            init(
                self._handle,
                _C_API_PREDICT_NORMAL,
                0,
                self._num_iteration,
                _C_API_DTYPE_FLOAT32,
                n_features,
                _THREADS_PARAM,
                ctypes.byref(self._config),
            )  # fmt: skip
        )
        # single rows keep the GIL (see the module docstring); full matrices release it
        self._single = ctypes.PyDLL(path).LGBM_BoosterPredictForMatSingleRowFast
        self._single.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        self._single.restype = ctypes.c_int
        self._mat = lib.LGBM_BoosterPredictForMat
        self._mat.argtypes = [
            ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int32, ctypes.c_int32,
            ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_char_p,
            ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        self._mat.restype = ctypes.c_int
        self._out_len = ctypes.c_int64()
        self._out_len_ptr = ctypes.addressof(self._out_len)
        self._config_ptr = self._config.value
        self._scratch = _Scratch(SMALL_BATCH, n_features)

    def _check(self, rc: int) -> None:
        if rc != 0:
            raise RuntimeError(f"LightGBM: {self._last_error().decode(errors='replace')}")

    def __del__(self) -> None:
        config = getattr(self, "_config", None)
        if config is not None and config.value:
            self._free(config)
            config.value = None

    def predict(self, x: np.ndarray) -> np.ndarray:
        x = _as_input(x, self.n_features)
        n = x.shape[0]
        if n <= SMALL_BATCH:
            s = self._scratch
            single, cfg, out_len = self._single, self._config_ptr, self._out_len_ptr
            with s.lock:
                s.x[:n] = x
                for i in range(n):
                    if single(cfg, s.row_ptrs[i], out_len, s.out_ptrs[i]):
                        self._check(1)
                return s.out[:n].copy()
        out = np.empty(n, dtype=np.float64)
        rc = self._mat(
            self._handle, x.ctypes.data, _C_API_DTYPE_FLOAT32, n, self.n_features, 1,
            _C_API_PREDICT_NORMAL, 0, self._num_iteration, _THREADS_PARAM,
            ctypes.byref(ctypes.c_int64()), out.ctypes.data,
        )  # fmt: skip
        self._check(rc)
        return out


# -- the MLflow model itself --------------------------------------------------------------------


class PyfuncRuntime:
    """``model.pyfunc.predict``: the reference every other runtime is verified against."""

    name = "pyfunc"

    def __init__(self, pyfunc: Any, n_features: int) -> None:
        self.pyfunc = pyfunc
        self.n_features = n_features
        self.detail = "mlflow.pyfunc.PyFuncModel.predict"

    def predict(self, x: np.ndarray) -> np.ndarray:
        x = _as_input(x, self.n_features)
        return np.asarray(self.pyfunc.predict(x), dtype=np.float64).reshape(-1)


# -- verification -------------------------------------------------------------------------------

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


@dataclass
class Verification:
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


# -- the entry point ----------------------------------------------------------------------------


@dataclass
class BuildReport:
    """What `build_runtime` tried and why it chose what it did (the server may log it)."""

    chosen: str = ""
    notes: list[str] = field(default_factory=list)
    single_row_seconds: dict[str, float] = field(default_factory=dict)
    max_abs_error: dict[str, float] = field(default_factory=dict)
    compile: CompileReport | None = None


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
    chosen.report = report  # type: ignore[attr-defined]
    return chosen
