"""The only module that talks to MLflow: log training runs, register versions, load models back.

One registered model (``fraud-detection``) holds a version per trained model; aliases say which is
``champion`` and which is ``challenger``. Each version carries the serving name, the decision
threshold and the feature-contract version as tags, so a server needs nothing but the model URI.
A version may also carry its drift reference (``drift_reference.json``, next to the booster:
`fraudgate.analysis.drift.DriftReference`), which the server loads with the model.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import numpy as np

from fraudgate.analysis.drift import DriftReference, DriftReferenceError
from fraudgate.data.contract import FEATURE_VERSION, INPUT_NAME, N_FEATURES

if TYPE_CHECKING:  # heavy imports stay out of module import time
    import lightgbm
    from matplotlib.figure import Figure
    from mlflow.pyfunc import PyFuncModel

REGISTERED_MODEL = "fraud-detection"
TRAINING_EXPERIMENT = "fraud-detection-training"
OUTPUT_NAME = "fraud_probability"
BOOSTER_FILE = "booster.txt"
DRIFT_REFERENCE_FILE = "drift_reference.json"
MAX_DRIFT_REFERENCE_BYTES = 16 * 1024 * 1024  # 31 columns of <= 10,000 sample values
MODEL_CODE = Path(__file__).with_name("mlflow_model.py")
_MLFLOW_URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


class RegistryError(RuntimeError):
    """A model or alias could not be found or loaded; the message says what to do."""


def resolve_tracking_uri(uri: str | None, workdir: Path) -> str:
    """`--registry` wins, then ``MLFLOW_TRACKING_URI``, then an embedded SQLite store in workdir."""
    if uri:
        return uri
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{(Path(workdir) / 'mlflow.db').resolve()}"


def _quiet_mlflow() -> None:
    for name in ("mlflow", "alembic", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="mlflow")
    # MLflow nags about type hints on predict(); hints would switch on its own input coercion
    warnings.filterwarnings("ignore", message=".*Add type hints to the `predict` method")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")


@dataclass(frozen=True)
class LoadedModel:
    uri: str
    registered_name: str
    version: str
    serving_name: str
    threshold: float
    feature_version: str
    booster: lightgbm.Booster
    pyfunc: PyFuncModel
    local_path: str
    drift_reference: DriftReference | None = None  # None: registered without one


class Registry:
    def __init__(self, tracking_uri: str) -> None:
        _quiet_mlflow()
        import mlflow

        self.tracking_uri = tracking_uri
        self._mlflow = mlflow
        self._client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        self._activate()

    def _activate(self) -> None:
        """Point MLflow's process-wide URIs (used by start_run, log_model) at this registry.

        MLflow also exports them as environment variables; those are put back, so a later
        `resolve_tracking_uri` or a child process sees what the user set, not our last store.
        """
        saved = {name: os.environ.get(name) for name in _MLFLOW_URI_VARIABLES}
        self._mlflow.set_tracking_uri(self.tracking_uri)
        self._mlflow.set_registry_uri(self.tracking_uri)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    # -- writing -----------------------------------------------------------------------------
    def _experiment_id(self) -> str:
        existing = self._client.get_experiment_by_name(TRAINING_EXPERIMENT)
        if existing is not None:
            return existing.experiment_id
        artifact_location = None
        parsed = urlparse(self.tracking_uri)
        if parsed.scheme == "sqlite":
            # keep artefacts next to the embedded store, not in the caller's working directory
            db_path = Path(self.tracking_uri.removeprefix("sqlite:///"))
            artifact_location = (db_path.parent / "artifacts").resolve().as_uri()
        return self._client.create_experiment(
            TRAINING_EXPERIMENT, artifact_location=artifact_location
        )

    def register(
        self,
        booster: lightgbm.Booster,
        *,
        serving_name: str,
        alias: str,
        threshold: float,
        params: dict[str, Any],
        metrics: dict[str, float],
        figures: dict[str, Figure] | None = None,
        sample: np.ndarray | None = None,
        feature_version: str = FEATURE_VERSION,
        drift_reference: DriftReference | None = None,
    ) -> str:
        """Log a training run with the model, register it as a new version, point `alias` at it.

        ``drift_reference``: the training window's reference, stored with the version (the
        server computes its drift gauges against it)."""
        import lightgbm
        import mlflow.pyfunc
        from mlflow.models import ModelSignature
        from mlflow.types import Schema, TensorSpec

        signature = ModelSignature(
            inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, N_FEATURES), INPUT_NAME)]),
            outputs=Schema([TensorSpec(np.dtype(np.float64), (-1,), OUTPUT_NAME)]),
        )
        tags = {
            "serving_name": serving_name,
            "threshold": repr(float(threshold)),
            "feature_version": feature_version,
        }
        mlflow = self._mlflow
        self._activate()
        with mlflow.start_run(
            experiment_id=self._experiment_id(), run_name=serving_name, tags=tags
        ) as run:
            mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
            mlflow.log_metrics({k: float(v) for k, v in metrics.items() if np.isfinite(v)})
            for name, figure in (figures or {}).items():
                mlflow.log_figure(figure, f"{name}.png")
            with tempfile.TemporaryDirectory() as tmp:
                booster_file = Path(tmp) / BOOSTER_FILE
                booster.save_model(booster_file)
                artifacts = {"booster": str(booster_file)}
                if drift_reference is not None:
                    reference_file = Path(tmp) / DRIFT_REFERENCE_FILE
                    reference_file.write_text(json.dumps(drift_reference.as_dict()))
                    artifacts["drift_reference"] = str(reference_file)
                info = mlflow.pyfunc.log_model(
                    name="model",
                    python_model=str(MODEL_CODE),
                    artifacts=artifacts,
                    signature=signature,
                    input_example=None if sample is None else sample[:2].astype(np.float32),
                    pip_requirements=[f"lightgbm=={lightgbm.__version__}", "numpy"],
                    metadata=tags,
                )
            del run
        version = mlflow.register_model(info.model_uri, REGISTERED_MODEL, tags=tags)
        self._client.set_registered_model_alias(REGISTERED_MODEL, alias, version.version)
        return str(version.version)

    # -- reading -----------------------------------------------------------------------------
    def _version_for(self, model_uri: str):  # -> ModelVersion | None
        if not model_uri.startswith("models:/"):
            return None
        ref = model_uri.removeprefix("models:/")
        try:
            if "@" in ref:
                name, alias = ref.split("@", 1)
                return self._client.get_model_version_by_alias(name, alias)
            name, _, version = ref.partition("/")
            return self._client.get_model_version(name, version)
        except Exception as exc:  # MLflow raises its own RestException / MlflowException
            raise RegistryError(
                f"model {model_uri!r} not found in registry {self.tracking_uri!r}: {exc}. "
                "Run `fraudgate train` (or `fraudgate demo`) first, or pass --registry."
            ) from exc

    def load(self, model_uri: str, check: Callable[[Path], None] | None = None) -> LoadedModel:
        """Load the native booster and the MLflow pyfunc model from one local copy.

        ``check(booster_file)`` runs on the downloaded LightGBM file before anything parses it
        in this process (the server validates it in a child process: a corrupt file can crash
        LightGBM); its exception becomes the RegistryError.
        """
        import lightgbm
        import mlflow.artifacts
        import mlflow.pyfunc

        self._activate()
        version = self._version_for(model_uri)
        try:
            local_path = mlflow.artifacts.download_artifacts(
                artifact_uri=model_uri, tracking_uri=self.tracking_uri
            )
            if check is not None:
                check(Path(local_path) / "artifacts" / BOOSTER_FILE)
            pyfunc = mlflow.pyfunc.load_model(local_path)
            booster = lightgbm.Booster(
                model_file=str(Path(local_path) / "artifacts" / BOOSTER_FILE)
            )
        except Exception as exc:
            raise RegistryError(f"could not load {model_uri!r}: {exc}") from exc
        reference = _drift_reference(Path(local_path) / "artifacts" / DRIFT_REFERENCE_FILE)
        tags = dict(version.tags) if version is not None else {}
        metadata = pyfunc.metadata.metadata or {}
        tags = {**metadata, **tags}
        if "threshold" not in tags:
            raise RegistryError(
                f"{model_uri!r} has no 'threshold' tag; register it with fraudgate or set "
                "`threshold:` for this model in the config"
            )
        return LoadedModel(
            uri=model_uri,
            registered_name=version.name if version is not None else "",
            version=str(version.version) if version is not None else "",
            serving_name=tags.get("serving_name", ""),
            threshold=float(tags["threshold"]),
            feature_version=tags.get("feature_version", ""),
            booster=booster,
            pyfunc=pyfunc,
            local_path=str(local_path),
            drift_reference=reference,
        )

    def drift_reference(self, model_uri: str) -> tuple[str, DriftReference | None]:
        """(registry version, its drift reference or None) of ``model_uri``, downloading only
        ``drift_reference.json`` (the report compares the ledger's scores with it; loading the
        booster and the pyfunc model would cost seconds for nothing). RegistryError if the
        version is unknown or its reference malformed."""
        import mlflow.artifacts

        self._activate()
        version = self._version_for(model_uri)
        if version is None:
            raise RegistryError(
                f"{model_uri!r} is not a registry model URI; expected models:/<name>@<alias> or "
                "models:/<name>/<version>"
            )
        location = self._client.get_model_version_download_uri(version.name, version.version)
        with tempfile.TemporaryDirectory() as tmp:
            try:
                path = mlflow.artifacts.download_artifacts(
                    artifact_uri=f"{str(location).rstrip('/')}/artifacts/{DRIFT_REFERENCE_FILE}",
                    dst_path=tmp,
                    tracking_uri=self.tracking_uri,
                )
            except Exception:  # MLflow's own exceptions: the version has no reference
                return str(version.version), None
            return str(version.version), _drift_reference(Path(path))

    def artifact_location(self, model_uri: str) -> str:
        """Where the registry stores the model version's files (its download URI: ``s3://...``
        on a remote store, ``file://...`` on the embedded one): what a Seldon Model or KServe
        InferenceService loads as its ``storageUri``."""
        version = self._version_for(model_uri)
        if version is None:
            raise RegistryError(
                f"{model_uri!r} is not a registry model URI; expected models:/<name>@<alias> or "
                "models:/<name>/<version>"
            )
        return str(self._client.get_model_version_download_uri(version.name, version.version))

    def aliases(self) -> dict[str, str]:
        """Alias -> version of the registered model (empty when it does not exist yet)."""
        try:
            model = self._client.get_registered_model(REGISTERED_MODEL)
        except Exception:
            return {}
        return {alias: str(version) for alias, version in model.aliases.items()}

    def set_aliases(self, aliases: dict[str, str | None]) -> None:
        """Point each alias at its version (None: delete the alias), one call per alias.

        MLflow has no transaction over aliases: a caller that must keep them consistent with
        a record elsewhere (promotion, `fraudgate.promotion`) puts the old ones back on failure.
        """
        for alias, version in aliases.items():
            try:
                if version is None:
                    if alias in self.aliases():
                        self._client.delete_registered_model_alias(REGISTERED_MODEL, alias)
                else:
                    self._client.set_registered_model_alias(REGISTERED_MODEL, alias, version)
            except Exception as exc:
                raise RegistryError(
                    f"could not set alias @{alias} of {REGISTERED_MODEL!r} to {version!r} in "
                    f"{self.tracking_uri!r}: {exc}"
                ) from exc

    def latest_by_serving_name(self) -> dict[str, str]:
        """Serving name -> the newest version tagged with it (the demo resets aliases by it)."""
        try:
            found = self._client.search_model_versions(f"name='{REGISTERED_MODEL}'")
        except Exception:
            return {}
        latest: dict[str, str] = {}
        for version in found:
            name = (version.tags or {}).get("serving_name")
            if name and int(version.version) > int(latest.get(name, 0)):
                latest[name] = str(version.version)
        return latest


def _drift_reference(path: Path) -> DriftReference | None:
    """The version's drift reference (None when it has none); RegistryError if malformed."""
    if not path.exists():
        return None
    size = path.stat().st_size
    if size > MAX_DRIFT_REFERENCE_BYTES:
        raise RegistryError(
            f"{path.name}: expected at most {MAX_DRIFT_REFERENCE_BYTES} bytes, found {size}"
        )
    try:
        return DriftReference.from_dict(json.loads(path.read_bytes()), N_FEATURES)
    except (ValueError, DriftReferenceError) as exc:
        raise RegistryError(f"{path.name} of the model version is malformed: {exc}") from exc
