"""The ``pyfunc`` runtime: the MLflow model exactly as MLflow/MLServer serve it.

It is the reference every other runtime is verified against, and serves only when even the
native booster disagrees with it (a broken registration).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from fraudgate.runtimes.base import as_input

if TYPE_CHECKING:
    from mlflow.pyfunc import PyFuncModel

    from fraudgate.runtimes.build import BuildReport


class PyfuncRuntime:
    """``model.pyfunc.predict``: the reference every other runtime is verified against."""

    name = "pyfunc"
    report: BuildReport | None = None

    def __init__(self, pyfunc: PyFuncModel, n_features: int) -> None:
        self.pyfunc = pyfunc
        self.n_features = n_features
        self.detail = "mlflow.pyfunc.PyFuncModel.predict"

    def predict(self, x: np.ndarray) -> np.ndarray:
        x = as_input(x, self.n_features)
        return np.asarray(self.pyfunc.predict(x), dtype=np.float64).reshape(-1)
