"""The one model loader: a registry URI and a runtime kind become a verified runtime.

The server (at start-up and on a model-management load) and the shipper (to score mirror
copies) load models the same way: download the registered version, check its LightGBM file in a
child process (`check_model_file`: a corrupt file crashes LightGBM, and must not take the loading
process down), load the booster and the pyfunc model, and build the fastest verified runtime.
Loads are serialized process-wide: MLflow's tracking URI is process state, and MLflow is not built
for concurrent loads (loads are rare, so nothing waits long).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fraudgate.runtimes.base import Runtime
from fraudgate.runtimes.check import check_model_file

if TYPE_CHECKING:
    from fraudgate.registry import LoadedModel, Registry

# (the downloaded LightGBM model file) -> None, or raises: why it must not be parsed here
ModelFileCheck = Callable[[Path], None]

_LOADS = threading.Lock()


@dataclass(frozen=True, slots=True)
class LoadedRuntime:
    """A registered model as the registry loaded it, and the runtime that scores it."""

    model: LoadedModel
    runtime: Runtime


class RuntimeLoader:
    """Loads models from one MLflow registry (opened at the first load) into runtimes."""

    def __init__(
        self,
        tracking_uri: str,
        *,
        check: ModelFileCheck | None = check_model_file,
        cache_dir: Path | None = None,
    ) -> None:
        self.tracking_uri = tracking_uri
        self._check = check
        self._cache_dir = cache_dir
        self._registry: Registry | None = None

    def load(self, uri: str, kind: str = "auto") -> LoadedRuntime:
        """Load ``uri`` (``models:/name@alias`` or ``models:/name/version``) and build its
        runtime of ``kind`` (see `build_runtime`); RegistryError if the model cannot load."""
        from fraudgate.registry import Registry
        from fraudgate.runtimes.build import build_runtime

        with _LOADS:
            if self._registry is None:
                self._registry = Registry(self.tracking_uri)
            loaded = self._registry.load(uri, check=self._check)
            runtime = build_runtime(loaded, kind=kind, cache_dir=self._cache_dir)
        return LoadedRuntime(loaded, runtime)


def load_runtime(tracking_uri: str, uri: str, kind: str = "auto") -> LoadedRuntime:
    """One load from the registry at ``tracking_uri`` (see `RuntimeLoader.load`)."""
    return RuntimeLoader(tracking_uri).load(uri, kind)
