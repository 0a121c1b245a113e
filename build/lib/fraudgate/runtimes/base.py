"""What every runtime is: the `Runtime` protocol, the kinds, the build error, input handling.

A runtime scores fraud probability for a ``[n, n_features]`` matrix. Every path runs on the
calling thread: LightGBM gets ``num_threads=1`` and the compiled trees contain no OpenMP. A single
row takes microseconds, while waking an OpenMP team costs about as much and, with GNU libgomp's
default spin-wait, leaves idle workers burning CPU that the event loop and the other requests
need. Throughput comes from batching requests and from server processes, not from threads inside
one predict.

Runtimes are safe to call from several threads: the small-batch paths copy into per-runtime
scratch buffers (`Scratch`) under a lock, because taking a new array's address costs more than
copying a few rows, so the buffers' addresses are taken once. Small batches (up to
``SMALL_BATCH`` rows) keep the GIL (``ctypes.PyDLL``): releasing it for a call that short invites
any other thread that wants the GIL (the ledger's writer thread) to take it, and the event loop
then waits to get it back, on a busy core long after the call returned. Larger batches release
it (``ctypes.CDLL``), so a worker thread scoring one does not stall the loop.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from fraudgate.runtimes.build import BuildReport

KINDS = ("auto", "tl2cgen", "native", "pyfunc")
TOLERANCE = 1e-5
# rows per call up to which the input goes through the preallocated scratch buffer (copying is
# cheaper than taking a new array's address); larger batches are passed in place
SMALL_BATCH = 64

_F32 = np.dtype(np.float32)


@runtime_checkable
class Runtime(Protocol):
    """Scores fraud probability for a ``[n, n_features]`` float32 C-contiguous matrix.

    ``name`` is the kind that serves (``tl2cgen``, ``native``, ``pyfunc``), ``detail`` says how,
    and ``report`` is what `build_runtime` tried before choosing it (None until it has)."""

    name: str
    detail: str
    report: BuildReport | None

    def predict(self, x: np.ndarray) -> np.ndarray: ...


class RuntimeBuildError(RuntimeError):
    """A runtime could not be built (compiler missing, unsupported model, ...)."""


def as_input(x: np.ndarray, n_features: int) -> np.ndarray:
    """``x`` as a C-contiguous float32 ``[n, n_features]`` matrix (copied only if it is not)."""
    if x.dtype is not _F32 or not x.flags.c_contiguous:
        x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != n_features:
        raise ValueError(f"expected a [n, {n_features}] matrix, got shape {list(x.shape)}")
    return x


class Scratch:
    """Preallocated input/output buffers whose addresses are taken once."""

    def __init__(self, rows: int, n_features: int) -> None:
        self.x = np.zeros((rows, n_features), dtype=np.float32)
        self.out = np.zeros(rows, dtype=np.float64)
        self.x_ptr: int = self.x.ctypes.data
        self.out_ptr: int = self.out.ctypes.data
        self.row_ptrs = [self.x_ptr + i * n_features * 4 for i in range(rows)]
        self.out_ptrs = [self.out_ptr + i * 8 for i in range(rows)]
        self.lock = threading.Lock()
