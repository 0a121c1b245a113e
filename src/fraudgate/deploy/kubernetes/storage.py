"""Where Seldon and KServe load each model from: its ``storageUri``.

``kubernetes.storage_uris.<model>`` when set; otherwise the registry's artifact location of the
version the model's ``uri`` names (``models:/fraud-detection@champion`` -> ``s3://...``), asked
of the registry once at export time. A location on this machine (the embedded store's
``file://``) is refused: a cluster cannot read it.
"""

from __future__ import annotations

from fraudgate.config import FraudgateConfig
from fraudgate.config.kubernetes import KubernetesConfig, is_local_location
from fraudgate.deploy.kubernetes.incluster import refuse_credentials
from fraudgate.deploy.kubernetes.objects import ExportError


def storage_uris(config: FraudgateConfig, k8s: KubernetesConfig) -> dict[str, str]:
    """Model name -> the storage URI its Seldon Model / KServe InferenceService loads."""
    out = dict(k8s.storage_uris)
    missing = [model for model in config.models if model.name not in out]
    if not missing:
        return out
    from fraudgate.registry import Registry, RegistryError

    tracking_uri = config.resolved_tracking_uri()
    try:
        registry = Registry(tracking_uri)
        for model in missing:
            out[model.name] = registry.artifact_location(model.uri)
    except RegistryError as exc:
        raise ExportError(
            f"kubernetes.storage_uris.{missing[0].name}: expected a storage URI, or a registry "
            f"that knows {missing[0].uri!r}; received nothing, and the registry said: {exc}"
        ) from exc
    for model in missing:
        location = out[model.name]
        field = f"kubernetes.storage_uris.{model.name}"
        if is_local_location(location):
            raise ExportError(
                f"{field}: expected an object-store URI the cluster can read (s3://, gs://); the "
                f"registry {tracking_uri!r} keeps {model.uri} at {location!r}, on this machine: "
                f"set {field} (or use a registry with a remote artifact store)"
            )
        refuse_credentials(location, field)
    return out
