"""The ``native`` runtime: LightGBM's own C API on the booster's handle.

``LGBM_BoosterPredictForMatSingleRowFast`` (configured once by ``...FastInit``) scores small
batches row by row, ``LGBM_BoosterPredictForMat`` large ones. It cannot be wrong about LightGBM
semantics, so it is the fallback when the compiled trees fail to build or to verify.
"""

from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING

import numpy as np

from fraudgate.runtimes.base import SMALL_BATCH, Scratch, as_input

if TYPE_CHECKING:
    import lightgbm

    from fraudgate.runtimes.build import BuildReport

_C_API_DTYPE_FLOAT32 = 0
_C_API_PREDICT_NORMAL = 0
_THREADS_PARAM = b"num_threads=1"


class NativeRuntime:
    """LightGBM's C API on the booster handle, one thread, no per-call Python wrapper work."""

    name = "native"
    report: BuildReport | None = None

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
        self._scratch = Scratch(SMALL_BATCH, n_features)

    def _check(self, rc: int) -> None:
        if rc != 0:
            raise RuntimeError(f"LightGBM: {self._last_error().decode(errors='replace')}")

    def __del__(self) -> None:
        config = getattr(self, "_config", None)
        if config is not None and config.value:
            self._free(config)
            config.value = None

    def predict(self, x: np.ndarray) -> np.ndarray:
        x = as_input(x, self.n_features)
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
