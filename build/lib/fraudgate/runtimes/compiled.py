"""The ``tl2cgen`` runtime: the trees compiled to C by Treelite/TL2cgen, built with gcc.

`compile_tl2cgen` generates C for a booster and builds it into a shared library, cached in
``cache_dir`` under a hash of the model text, the row loop, the compiler options and the library
versions (a restart loads it in milliseconds). `Tl2cgenRuntime` calls the generated per-row
``predict`` through a ten-line C loop compiled into the same library: one ctypes call per batch.
``tl2cgen.Predictor`` is *not* used on the hot path: it builds a ``DMatrix`` and goes through
TL2cgen's threaded batch runtime on every call, which costs more than the trees themselves for one
row (see ``bench/runtimes.py``).
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fraudgate.runtimes.base import SMALL_BATCH, RuntimeBuildError, Scratch, as_input

if TYPE_CHECKING:
    import lightgbm
    import treelite

    from fraudgate.runtimes.build import BuildReport

# gcc optimisation level for the generated trees: -O1 compiles much faster than -O3 and scores
# as fast (the code is branches, nothing to vectorise); figures in bench/results/runtimes.json
COMPILE_OPT = "-O1"
TREES_PER_UNIT = 40  # TL2cgen parallel_comp: one C translation unit per ~40 trees
# TL2cgen code generation. quantize: each row's features are mapped once to the index of the
# thresholds they fall between, and the trees compare small integers: exact (same splits) and
# faster per row (bench/runtimes.py measures it).
CODEGEN_PARAMS = {"quantize": 1}

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


@dataclass(slots=True)
class CompileReport:
    """Where the compiled library is, whether it came from the cache, and what it took."""

    library: Path
    cached: bool
    seconds: float
    trees: int
    opt: str


def build_library(
    model: treelite.Model, library: Path, *, opt: str = COMPILE_OPT, toolchain: str = "gcc"
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


def _predict_rows(lib: ctypes.CDLL) -> Callable[[int, int, int, int], int]:
    rows = lib.fraudgate_predict_rows
    rows.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
    rows.restype = ctypes.c_int32
    return rows


class Tl2cgenRuntime:
    """The compiled trees, called directly through ``fraudgate_predict_rows``."""

    name = "tl2cgen"
    report: BuildReport | None = None

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
        self._scratch = Scratch(SMALL_BATCH, n_features)

    def predict(self, x: np.ndarray) -> np.ndarray:
        x = as_input(x, self.n_features)
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
