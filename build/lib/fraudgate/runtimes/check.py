"""Validate a LightGBM model file in a child process before the server loads it.

LightGBM aborts or segfaults the whole process on some corrupt model files (a truncated booster
text: ``terminate called without an active exception``, SIGABRT/SIGSEGV), so a server that
parses one itself dies: at start-up with exit code 134/139 and no message, while serving with
every connection. `check_model_file` first runs ``python -m fraudgate.runtimes.check FILE``:
the child parses the file with the same LightGBM C loader the server uses
(``LGBM_BoosterCreateFromModelfile``, what ``lightgbm.Booster(model_file=...)`` calls) and scores
a few rows; only if it exits 0 does the server load the model. A child killed by a signal, or
failing, becomes `ModelCheckFailed` naming the file and the signal.

Cost: the child loads only ``lib_lightgbm`` through ctypes (found by LightGBM's own
``libpath.py``, without importing the ``lightgbm`` package, which pulls in scikit-learn and pandas
for seconds); tens of milliseconds per model.
"""

from __future__ import annotations

import ctypes
import importlib.util
import math
import signal
import subprocess
import sys
from pathlib import Path

CHECK_TIMEOUT_S = 120.0
CHECK_ROWS = 8
_C_API_DTYPE_FLOAT32 = 0
_C_API_PREDICT_NORMAL = 0


class ModelCheckFailed(RuntimeError):
    """The model file failed its check in the child process (corrupt, unreadable, ...)."""


def check_model_file(path: str | Path, timeout_s: float = CHECK_TIMEOUT_S) -> None:
    """Parse and score ``path`` in a child process; ModelCheckFailed unless that succeeds."""
    command = [sys.executable, "-m", "fraudgate.runtimes.check", str(path)]
    try:
        # LightGBM logs raw bytes from a corrupt file (not UTF-8): decoding must not fail
        done = subprocess.run(
            command,
            capture_output=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        raise ModelCheckFailed(
            f"checking the LightGBM model file {str(path)!r} took more than {timeout_s:.0f}s"
        ) from None
    if done.returncode == 0:
        return
    detail = _last_lines(done.stderr)
    if done.returncode < 0:
        try:
            name = signal.Signals(-done.returncode).name
        except ValueError:
            name = f"signal {-done.returncode}"
        raise ModelCheckFailed(
            f"the LightGBM model file {str(path)!r} crashed the process checking it ({name}: "
            f"the model file is corrupt?){detail}"
        )
    raise ModelCheckFailed(f"the LightGBM model file {str(path)!r} is not loadable{detail}")


def _last_lines(text: str, limit: int = 400) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    if not lines:
        return ""
    tail = " / ".join(lines[-3:])
    return f": {tail[-limit:]}"


# -- the child ----------------------------------------------------------------------------------


def _lightgbm_library() -> ctypes.CDLL:
    """``lib_lightgbm`` as LightGBM's own ``libpath.py`` finds it, without importing lightgbm."""
    spec = importlib.util.find_spec("lightgbm")
    if spec is None or not spec.submodule_search_locations:
        raise ModelCheckFailed("LightGBM is not installed")
    libpath = Path(next(iter(spec.submodule_search_locations))) / "libpath.py"
    loader_spec = importlib.util.spec_from_file_location("_fraudgate_lightgbm_libpath", libpath)
    assert loader_spec is not None and loader_spec.loader is not None
    module = importlib.util.module_from_spec(loader_spec)
    loader_spec.loader.exec_module(module)
    return module._LIB


def _rows(n_features: int) -> list[float]:
    """CHECK_ROWS deterministic rows: zeros, NaNs, +-1, extremes and a spread of values."""
    rows: list[list[float]] = [
        [0.0] * n_features,
        [math.nan] * n_features,
        [1.0] * n_features,
        [-1.0] * n_features,
        [1e30] * n_features,
        [-1e30] * n_features,
    ]
    while len(rows) < CHECK_ROWS:
        k = len(rows)
        rows.append([math.sin(k * 7.0 + j) * 3.0 for j in range(n_features)])
    return [value for row in rows for value in row]


def check_in_this_process(path: str) -> str:
    """Load ``path`` with LightGBM's C API and score a few rows (may crash: run in a child)."""
    lib = _lightgbm_library()
    lib.LGBM_GetLastError.restype = ctypes.c_char_p

    def ok(rc: int, what: str) -> None:
        if rc != 0:
            raise ModelCheckFailed(f"{what}: {lib.LGBM_GetLastError().decode(errors='replace')}")

    handle = ctypes.c_void_p()
    iterations = ctypes.c_int()
    ok(
        lib.LGBM_BoosterCreateFromModelfile(
            str(path).encode(), ctypes.byref(iterations), ctypes.byref(handle)
        ),
        "loading the model file",
    )
    n_features = ctypes.c_int()
    ok(lib.LGBM_BoosterGetNumFeature(handle, ctypes.byref(n_features)), "reading its features")
    n_classes = ctypes.c_int()
    ok(lib.LGBM_BoosterGetNumClasses(handle, ctypes.byref(n_classes)), "reading its classes")
    nf = n_features.value
    data = (ctypes.c_float * (CHECK_ROWS * nf))(*_rows(nf))
    out = (ctypes.c_double * (CHECK_ROWS * max(n_classes.value, 1)))()
    out_len = ctypes.c_int64()
    ok(
        lib.LGBM_BoosterPredictForMat(
            handle,
            data,
            _C_API_DTYPE_FLOAT32,
            ctypes.c_int32(CHECK_ROWS),
            ctypes.c_int32(nf),
            1,  # row major
            _C_API_PREDICT_NORMAL,
            0,  # start iteration
            -1,  # all iterations
            b"num_threads=1",
            ctypes.byref(out_len),
            out,
        ),
        "scoring rows",
    )
    scores = list(out)[: out_len.value]
    if len(scores) != CHECK_ROWS * max(n_classes.value, 1) or not all(map(math.isfinite, scores)):
        raise ModelCheckFailed(f"scoring rows gave {len(scores)} scores, not all finite")
    lib.LGBM_BoosterFree(handle)
    return f"ok: {iterations.value} iterations, {nf} features, {CHECK_ROWS} rows scored"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m fraudgate.runtimes.check MODEL_FILE", file=sys.stderr)
        return 2
    try:
        print(check_in_this_process(argv[0]))
    except ModelCheckFailed as exc:
        print(str(exc), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
