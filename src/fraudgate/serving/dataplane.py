"""The transport-agnostic data plane: every behaviour REST and gRPC share lives here, once.

Health, server and model metadata, readiness, inference and the model repository (index, load,
unload). Transports translate their wire format into `fraudgate.protocol.types` and call these
methods; errors are the typed `fraudgate.protocol.errors`, mapped to statuses in one table.

Names and versions: a model is served under its config name (``fraud-v1-baseline``). Its serving
version is this server's deployment counter for that name, starting at 1 and incremented each
time the repository (re)loads it; it is not the MLflow version (both demo models are versions of
one registered model), which is reported in the metadata ``parameters`` instead. The
Seldon Core v2 style suffixed name ``fraud-v1-baseline_1`` and ``/versions/1`` resolve to the same
model as long as 1 is the version being served.

Model management (repository load/unload) is an admin action on every transport: it needs the
admin token (`fraudgate.serving.auth`), is refused when none is configured or when
``server.model_management: off``, loads only models of the configured registry
(`fraudgate.serving.repository`), and is recorded in the ledger before it takes effect. Names
outside the config are bounded by ``server.max_extra_models``; a failed load of one leaves no
entry. The index stays readable without a token.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

import fraudgate
from fraudgate.config import MODEL_NAME, BatchingConfig, FraudgateConfig, ModelConfig
from fraudgate.data.contract import FEATURE_VERSION, INPUT_NAME, N_FEATURES
from fraudgate.protocol.codecs import decode_features
from fraudgate.protocol.errors import (
    Forbidden,
    InferenceError,
    InvalidInput,
    LoadFailed,
    ModelNotFound,
    NotReady,
    Unavailable,
    http_status,
)
from fraudgate.protocol.limits import MAX_MODEL_NAME_CHARS, check_id, preview
from fraudgate.protocol.types import (
    InferenceRequest,
    InferenceResponse,
    RequestedOutput,
    ResponseOutput,
)
from fraudgate.serving.auth import AdminAuth
from fraudgate.serving.metrics import UNKNOWN_MODEL, ModelMetrics, ServerMetrics, observe_scores
from fraudgate.serving.monitoring import LiveSample, Monitor
from fraudgate.serving.parameters import ROW_PARAMETERS, ledger_fields, new_request_id
from fraudgate.serving.recording import NoRecorder
from fraudgate.serving.repository import load_parameters, unload_parameters
from fraudgate.serving.routing import HeadersFn, Routing
from fraudgate.serving.scheduler import Scheduler, Tasks

if TYPE_CHECKING:
    from fraudgate.serving.experiment import ExperimentPlane

log = logging.getLogger(__name__)
T = TypeVar("T")

SERVER_NAME = "fraudgate"
EXTENSIONS = ("model_repository", "binary_tensor_data", "metrics")
PROBABILITY_OUTPUT = "fraud_probability"
DECISION_OUTPUT = "fraud_decision"
OUTPUT_NAMES = (PROBABILITY_OUTPUT, DECISION_OUTPUT)
PLATFORM = "lightgbm"

READY, LOADING, UNAVAILABLE, FAILED = "READY", "LOADING", "UNAVAILABLE", "FAILED"


@dataclass(frozen=True)
class LoadedRuntime:
    """What a loader returns: the registry's model plus the runtime that scores it."""

    model: Any  # fraudgate.registry.LoadedModel (duck-typed: uri, version, threshold, ...)
    runtime: Any  # fraudgate.runtimes.Runtime: .name, .predict(x) -> [n] probabilities


# (config of the model to load) -> LoadedRuntime; blocking, run in a worker thread
ModelLoader = Callable[[ModelConfig], LoadedRuntime]


class DeployedModel:
    """One loaded, servable version of a named model: its runtime calls and its outputs."""

    def __init__(
        self,
        config: ModelConfig,
        version: int,
        loaded: LoadedRuntime,
        metrics: ServerMetrics,
        sample: LiveSample | None = None,
    ) -> None:
        self.name = config.name
        self.config = config
        self.version = str(version)
        self.model = loaded.model
        self.runtime = loaded.runtime
        self.runtime_name = str(getattr(loaded.runtime, "name", type(loaded.runtime).__name__))
        threshold = config.threshold if config.threshold is not None else loaded.model.threshold
        self.threshold = float(threshold)
        self.threshold32 = np.float32(self.threshold)  # a row is flagged iff its FP32 score >= it
        self.metrics: ModelMetrics = metrics.for_model(self.name, self.version)
        # how the scheduler batches this model's requests
        self.max_batch_size = max(1, int(config.batching.max_batch_size))
        self.max_wait_s = max(0.0, float(config.batching.max_wait_ms)) / 1000.0
        report = getattr(loaded.runtime, "report", None)
        self.metrics.fallback.set(bool(getattr(report, "fallback", False)))
        self._predict = loaded.runtime.predict
        self._observe_batch = self.metrics.batch_size.observe
        # the recent scored rows drift is computed on (None: no drift reference in the registry)
        self.sample = sample
        self._keep = None if sample is None else sample.keep
        self._executor: ThreadPoolExecutor | None = None  # for huge batches, made on first use
        self.metadata = self._metadata()

    def call(self, x: np.ndarray) -> np.ndarray:
        """One runtime call, now, on the calling thread (counted in the batch metrics)."""
        out = self._predict(x)
        self._observe_batch(x.shape[0])
        if self._keep is not None:
            self._keep(x, out)
        return out

    async def call_offloaded(self, x: np.ndarray) -> np.ndarray:
        """`call` on this model's worker thread (a huge batch must not stall the event loop)."""
        return await self.offload(self.call, x)

    async def offload(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on this model's single worker thread (the runtimes release the GIL)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="fraudgate-large-batch")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _metadata(self) -> dict[str, Any]:
        model = self.model
        feature_version = getattr(model, "feature_version", "") or FEATURE_VERSION
        return {
            "name": self.name,
            "versions": [self.version],
            "platform": PLATFORM,
            "inputs": [{"name": INPUT_NAME, "datatype": "FP32", "shape": [-1, N_FEATURES]}],
            "outputs": [
                {"name": PROBABILITY_OUTPUT, "datatype": "FP32", "shape": [-1, 1]},
                {"name": DECISION_OUTPUT, "datatype": "BOOL", "shape": [-1, 1]},
            ],
            "parameters": {
                "content_type": "np",
                "threshold": self.threshold,
                "feature_version": feature_version,
                "runtime": self.runtime_name,
                "mlflow_model_uri": str(getattr(model, "uri", self.config.uri)),
                "mlflow_registered_model": str(getattr(model, "registered_name", "")),
                "mlflow_model_version": str(getattr(model, "version", "")),
                "max_batch_size": self.config.batching.max_batch_size,
                "max_wait_ms": self.config.batching.max_wait_ms,
            },
        }

    def decide(self, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The FP32 scores ([n, 1]) the response carries and their decisions at the threshold."""
        scores = probabilities.astype(np.float32, copy=False).reshape(-1, 1)
        return scores, scores >= self.threshold32

    def outputs_of(
        self, scores: np.ndarray, decisions: np.ndarray, requested: list[RequestedOutput] | None
    ) -> list[ResponseOutput]:
        """The response outputs of `decide`'s scores and decisions (or rows of them); the
        ``requested`` outputs were checked (`check_requested_outputs`) before scoring."""
        n = scores.shape[0]
        observe_scores(self.metrics, scores.reshape(-1), decisions)
        if requested is None:
            return [
                ResponseOutput(PROBABILITY_OUTPUT, "FP32", [n, 1], scores),
                ResponseOutput(DECISION_OUTPUT, "BOOL", [n, 1], decisions),
            ]
        return [
            ResponseOutput(PROBABILITY_OUTPUT, "FP32", [n, 1], scores)
            if output.name == PROBABILITY_OUTPUT
            else ResponseOutput(DECISION_OUTPUT, "BOOL", [n, 1], decisions)
            for output in requested
        ]

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


@dataclass
class RepositoryEntry:
    """A name the repository knows (from the config or a load request) and its state."""

    config: ModelConfig
    version: int = 0  # deployment counter: the version of the last successful load
    state: str = UNAVAILABLE
    reason: str = ""
    deployed: DeployedModel | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def check_new_model_name(name: str) -> None:
    """InvalidInput unless a name outside the config follows the config's model-name rule."""
    if not MODEL_NAME.fullmatch(name):
        raise InvalidInput(
            "model name: expected letters, digits, '.', '_' or '-' (at most 128, starting with "
            f"a letter or digit) for a model outside the config, received {preview(name)}"
        )


def check_requested_outputs(requested: list[RequestedOutput]) -> None:
    """InvalidInput unless every requested output is one this server produces."""
    for i, output in enumerate(requested):
        if output.name not in OUTPUT_NAMES:
            raise InvalidInput(
                f"outputs[{i}].name: expected one of {list(OUTPUT_NAMES)}, "
                f"received {preview(output.name)}"
            )


class DataPlane:
    """Everything REST and gRPC share; ``experiment``: routing, ledger, mirror and admin (None:
    no experiment and no ledger configured, plain serving: nothing to route, nothing to record).
    """

    def __init__(
        self,
        config: FraudgateConfig,
        loader: ModelLoader,
        metrics: ServerMetrics | None = None,
        experiment: ExperimentPlane | None = None,
    ) -> None:
        self.config = config
        self.loader = loader
        self.metrics = metrics or ServerMetrics()
        self.experiment = experiment
        # the admin token, one object for every transport and for the experiment plane
        self.auth = AdminAuth.from_config(config.auth)
        self.auth_inference = config.auth.inference  # inference needs the token too
        self.routing: Routing | None = None
        self._route_headers: dict[tuple[str, str], bytes] | None = None
        if experiment is not None:
            experiment.auth = self.auth
            self.scheduler = experiment.bind(self.resolve)
            self.routing = experiment.routing
            self._route_headers = {}  # x-seldon-route values, one per deployed model
            self.metrics.registry.register(experiment)  # its collect(): ledger, mirror, weights
        else:
            self.scheduler = Scheduler(NoRecorder(), None, Tasks())
        # with an experiment plane, requests get ids and ledger fields (checked, recorded)
        self._identified = experiment is not None
        self.entries: dict[str, RepositoryEntry] = {
            m.name: RepositoryEntry(config=m) for m in config.models
        }
        self._configured = frozenset(self.entries)  # names of the config (never dropped)
        self.started = False
        self.monitor = Monitor(
            config,
            self.metrics,
            self.deployed_models,
            state=experiment.state if experiment is not None else None,
            store=experiment.store if experiment is not None else None,
        )
        if config.monitoring.enabled:  # its collect(): the background gauges
            self.metrics.registry.register(self.monitor)
            if experiment is not None:  # the dashboard's estimate and drift panels
                experiment.monitor = self.monitor

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> list[str]:
        """Load every configured model (one at a time); return the error messages, if any."""
        self.monitor.start()
        errors = []
        for name in list(self.entries):
            try:
                await self.load(name)
            except InferenceError as exc:
                errors.append(exc.message)
        self.started = True
        return errors

    def close(self) -> None:
        self.monitor.stop()
        for entry in self.entries.values():
            if entry.deployed is not None:
                entry.deployed.close()

    def deployed_models(self) -> list[DeployedModel]:
        """The models serving now (the monitor's view)."""
        return [e.deployed for e in list(self.entries.values()) if e.deployed is not None]

    # -- health and metadata ------------------------------------------------------------------
    def live(self) -> bool:
        return True

    def ready(self) -> bool:
        return (
            self.started
            and any(e.state == READY for e in self.entries.values())
            and self.unready_reason() is None
        )

    def unready_reason(self) -> str | None:
        """Why the ledger makes the server unready (None: it does not), see `LedgerHealth`."""
        return None if self.experiment is None else self.experiment.unready_reason()

    def server_metadata(self) -> dict[str, Any]:
        return {
            "name": SERVER_NAME,
            "version": fraudgate.__version__,
            "extensions": list(EXTENSIONS),
        }

    def _entry(self, name: str, version: str | None) -> tuple[RepositoryEntry, str | None]:
        entry = self.entries.get(name)
        if entry is not None:
            return entry, version or None
        if len(name) > MAX_MODEL_NAME_CHARS + 21:  # longer than any name and _<version>
            raise ModelNotFound(
                f"model {preview(name)}: unknown model name; expected at most "
                f"{MAX_MODEL_NAME_CHARS} characters, one of {sorted(self.entries)}"
            )
        base, sep, suffix = name.rpartition("_")
        if sep and suffix.isdigit() and base in self.entries:
            if version and version != suffix:
                raise ModelNotFound(
                    f"model {preview(name)} names version {suffix} but version "
                    f"{preview(version)} was requested; use one or the other"
                )
            return self.entries[base], suffix
        raise ModelNotFound(
            f"model {preview(name)}: unknown model name; expected one of {sorted(self.entries)} "
            f"(optionally with a _<version> suffix)"
        )

    def resolve(self, name: str, version: str | None = None) -> DeployedModel:
        """The deployed model serving `name` (and `version`), or ModelNotFound / NotReady."""
        entry, version = self._entry(name, version)
        deployed = entry.deployed
        if deployed is None:
            reason = f": {entry.reason}" if entry.reason else ""
            raise NotReady(
                f"model {entry.config.name!r} is not ready (state {entry.state}{reason})"
            )
        if version is not None and version != deployed.version:
            raise ModelNotFound(
                f"model {entry.config.name!r} version {preview(version)}: unknown version; "
                f"expected {deployed.version!r} (the version being served)"
            )
        return deployed

    def model_ready(self, name: str, version: str | None = None) -> bool:
        try:
            self.resolve(name, version)
        except NotReady:
            return False
        return True

    def model_metadata(self, name: str, version: str | None = None) -> dict[str, Any]:
        return self.resolve(name, version).metadata

    # -- inference ----------------------------------------------------------------------------
    def authorize_inference(self, authorization: str | None) -> None:
        """Unauthorized unless inference is open (``auth.inference: false``) or
        ``authorization`` (the transport's header or metadata) is ``Bearer <the token>``."""
        if self.auth_inference:
            self.auth.check(authorization)

    async def infer(
        self,
        name: str,
        version: str | None,
        decode: Callable[[], InferenceRequest],
        protocol: str,
        headers: HeadersFn | None = None,
    ) -> tuple[InferenceRequest, InferenceResponse]:
        """Route, decode, score and build the response; records metrics for success and failure.

        A request addressed to the experiment (its name or the default model's, no explicit
        version) is routed (`fraudgate.serving.routing`; ``headers`` lazily gives the
        transport's headers or metadata for the routing key); any other reaches the model it
        names. The scheduler scores it with its tick's other requests and answers once its
        decisions are durable (`fraudgate.serving.scheduler`); the response names the model that
        answered. Plain serving is this path with nothing to route and nothing to record.
        """
        start = time.perf_counter()
        model: DeployedModel | None = None
        route = None
        routing = self.routing
        try:
            if routing is not None and routing.routes(name, version):
                request = decode()
                route = routing.route(request.parameters, headers)
                model = self.resolve(route.model)
            else:
                model = self.resolve(name, version)
                request = decode()
            x = decode_features(request)
            requested = request.outputs
            if requested is not None:
                check_requested_outputs(requested)  # before a decision is recorded
            request_id = request.id
            transaction = amount = event = None
            if self._identified:
                # a caller's id goes into the ledger: bounded like every id
                request_id = check_id(request_id, "id") if request_id else new_request_id()
                parameters = request.parameters
                n = x.shape[0]
                if n == 1 and ROW_PARAMETERS.isdisjoint(parameters):
                    transaction = request_id  # the common case: nothing to parse
                else:
                    transaction, amount, event = ledger_fields(parameters, request_id, n)
            scored = await self.scheduler.submit(
                model, x, request_id, transaction, amount, route, start, event
            )
            outputs = model.outputs_of(scored.scores, scored.decisions, requested)
            if route is not None:  # served by an arm of the experiment (traffic share)
                model.metrics.served.value += x.shape[0]
        except Exception as exc:
            code = http_status(exc) if isinstance(exc, InferenceError) else 500
            self._record_failure(name, model, protocol, code)
            raise
        self._record_success(model, protocol, start)
        response = InferenceResponse(model.name, model.version, outputs, request_id)
        if routing is not None:
            response.parameters = routing.response_parameters(route)
        return request, response

    def route_header(self, response: InferenceResponse) -> bytes | None:
        """Seldon's ``x-seldon-route`` value of a response (``:fraud-v2-candidate_1:``, the
        model that answered), or None when the server has no experiment plane."""
        cache = self._route_headers
        if cache is None:
            return None
        key = (response.model_name, response.model_version)
        value = cache.get(key)
        if value is None:
            value = f":{key[0]}_{key[1]}:".encode()
            if len(cache) < 1024:  # names and versions the server deployed
                cache[key] = value
        return value

    @staticmethod
    def _record_success(model: DeployedModel, protocol: str, start: float) -> None:
        model.metrics.requests[protocol].inc()
        model.metrics.latency[protocol].observe(time.perf_counter() - start)

    def _record_failure(
        self, name: str, model: DeployedModel | None, protocol: str, code: int
    ) -> None:
        if model is not None:
            label, version = model.name, model.version
        else:
            entry = self.entries.get(name)
            if entry is None:
                base = name.rpartition("_")[0]
                entry = self.entries.get(base)
            label = entry.config.name if entry is not None else UNKNOWN_MODEL
            version = str(entry.version) if entry is not None and entry.version else ""
        self.metrics.request(label, version, protocol)
        self.metrics.failure(label, version, protocol, code)

    def record_transport_failure(self, name: str, protocol: str, code: int) -> None:
        """A request that failed before reaching `infer` (e.g. too large, bad encoding)."""
        self._record_failure(name, None, protocol, code)

    # -- model repository ---------------------------------------------------------------------
    def authorize_management(self, authorization: str | None) -> None:
        """Forbidden when model management is off or no token is configured, else the token.

        A load runs the model's code in this process and replaces what scores the traffic; an
        unload stops a model serving: both are admin actions on every transport.
        """
        if self.config.server.model_management == "off":
            raise Forbidden(
                "model management is switched off (server.model_management: off): models load "
                "from the config at start-up only; set server.model_management: admin to allow "
                "authenticated repository load/unload"
            )
        self.auth.require(authorization, "model management (repository load/unload)")

    async def load_model(
        self, name: str, parameters: Any, authorization: str | None
    ) -> DeployedModel:
        """A repository load request from either transport, with its raw ``parameters``."""
        self.authorize_management(authorization)
        request = load_parameters(parameters)
        return await self.load(
            name,
            uri=request.uri,
            threshold=request.threshold,
            runtime=request.runtime,
            actor=request.actor,
        )

    async def unload_model(self, name: str, parameters: Any, authorization: str | None) -> None:
        """A repository unload request from either transport, with its raw ``parameters``."""
        self.authorize_management(authorization)
        await self.unload(name, actor=unload_parameters(parameters))

    def repository_index(self, ready_only: bool = False) -> list[dict[str, Any]]:
        items = []
        for name, entry in self.entries.items():
            if ready_only and entry.state != READY:
                continue
            item: dict[str, Any] = {"name": name, "state": entry.state, "reason": entry.reason}
            if entry.version:
                item["version"] = str(entry.version)
            items.append(item)
        return items

    async def load(
        self,
        name: str,
        *,
        uri: str | None = None,
        threshold: float | None = None,
        runtime: str | None = None,
        actor: str | None = None,
    ) -> DeployedModel:
        """(Re)load `name`; a new deployment gets the next serving version.

        A name from the config needs no arguments; a new name needs ``uri``. While a reload
        runs, the previous version keeps serving; if it fails, the previous version stays.
        With an ``actor`` (a repository request, not the start-up) the load is an audited admin
        action: recorded in the ledger before it serves, refused (503) if it cannot be.
        """
        entry = self.entries.get(name)
        if entry is None:
            if not uri:
                raise ModelNotFound(
                    f"model {name!r}: not in the config; expected one of {sorted(self.entries)}, "
                    "or pass parameters.uri (models:/<registered-name>@<alias> or "
                    "models:/<registered-name>/<version>) to load a new model"
                )
            check_new_model_name(name)
            self._make_room(name)
            entry = RepositoryEntry(config=ModelConfig(name=name, uri=uri))
            self.entries[name] = entry
        overrides: dict[str, Any] = {}
        if uri:
            overrides["uri"] = uri
        if threshold is not None:
            overrides["threshold"] = threshold
        if runtime:
            overrides["runtime"] = runtime
        config = entry.config
        if overrides:
            current = entry.config
            config = ModelConfig(
                name=current.name,
                uri=overrides.get("uri", current.uri),
                threshold=overrides.get("threshold", current.threshold),
                runtime=overrides.get("runtime", current.runtime),
                batching=current.batching or BatchingConfig(),
            )
        async with entry.lock:
            if self.entries.get(name) is not entry:  # a failed load of this new name dropped it
                self._make_room(name)
                self.entries[name] = entry
            if entry.deployed is None:
                entry.state, entry.reason = LOADING, ""
            began = time.perf_counter()
            try:
                loaded = await asyncio.to_thread(self.loader, config)
                reference = getattr(loaded.model, "drift_reference", None)
                deployed = DeployedModel(
                    config,
                    entry.version + 1,
                    loaded,
                    self.metrics,
                    self.monitor.sample_for(reference),
                )
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}"
                if entry.deployed is None:
                    entry.state, entry.reason = FAILED, reason
                    if name not in self._configured and self.entries.get(name) is entry:
                        del self.entries[name]  # a failed new name leaves no entry behind
                log.error("loading %s from %s failed: %s", name, config.uri, reason)
                raise LoadFailed(
                    f"model {name!r}: loading {config.uri!r} failed: {reason}"
                ) from exc
            previous = entry.deployed
            if actor is not None:
                detail = {
                    "uri": config.uri,
                    "runtime": deployed.runtime_name,
                    "mlflow_version": deployed.metadata["parameters"]["mlflow_model_version"],
                    "threshold": {
                        "old": None if previous is None else previous.threshold,
                        "new": deployed.threshold,
                    },
                    "version": {
                        "old": None if previous is None else previous.version,
                        "new": deployed.version,
                    },
                }
                try:
                    await self._audit("load", name, actor, detail)
                except Unavailable:
                    deployed.close()
                    if previous is None:  # as if the load had failed
                        entry.state, entry.reason = UNAVAILABLE, "the load could not be recorded"
                        if name not in self._configured and self.entries.get(name) is entry:
                            del self.entries[name]
                    raise
            entry.config = config
            entry.version += 1
            entry.deployed = deployed
            entry.state, entry.reason = READY, ""
            deployed.metrics.ready.set(1)
            if previous is not None:
                previous.metrics.ready.set(0)
                previous.close()
            log.info(
                "serving %s version %s (%s, runtime %s, threshold %.4f) loaded in %.2fs",
                name,
                deployed.version,
                config.uri,
                deployed.runtime_name,
                deployed.threshold,
                time.perf_counter() - began,
            )
            return deployed

    def _make_room(self, name: str) -> None:
        """Bound the names outside the config: drop an unloaded one, or refuse ``name``."""
        limit = self.config.server.max_extra_models
        extra = [n for n in self.entries if n not in self._configured]
        if len(extra) < limit:
            return
        for other in extra:
            entry = self.entries[other]
            if entry.deployed is None and not entry.lock.locked():
                del self.entries[other]  # unloaded: nothing serves under it
                return
        raise LoadFailed(
            f"model {name!r}: the repository already holds {len(extra)} models outside the "
            f"config (server.max_extra_models: {limit}), all loaded: unload one of "
            f"{sorted(extra)} first, or add {name!r} to the config's models"
        )

    async def _audit(self, action: str, name: str, actor: str, detail: dict[str, Any]) -> None:
        """Record an admin action in the ledger (logged only without one); Unavailable if not."""
        log.info("admin action %s of %s by %s: %s", action, name, actor, detail)
        store = self.experiment.store if self.experiment is not None else None
        if store is None:
            return
        try:
            await asyncio.to_thread(store.record_admin_action, action, name, actor, detail)
        except Exception as exc:
            log.error("recording the %s of %s failed: %s", action, name, exc)
            raise Unavailable(
                f"model {name!r}: the {action} could not be recorded in the ledger, so it was "
                f"not done (retry later): {type(exc).__name__}: {str(exc)[:300]}"
            ) from exc

    async def unload(self, name: str, actor: str | None = None) -> None:
        """Stop serving `name`; with an ``actor``, an admin action audited first (see `load`)."""
        entry = self.entries.get(name)
        if entry is None:
            raise ModelNotFound(
                f"model {name!r}: unknown model name; expected one of {sorted(self.entries)}"
            )
        async with entry.lock:
            previous = entry.deployed
            if actor is not None:
                detail = {
                    "uri": entry.config.uri,
                    "version": None if previous is None else previous.version,
                    "threshold": None if previous is None else previous.threshold,
                }
                await self._audit("unload", name, actor, detail)
            entry.deployed = None
            entry.state, entry.reason = UNAVAILABLE, "unloaded"
            if previous is not None:
                previous.metrics.ready.set(0)
                previous.close()

    # -- admin requests from the transports ---------------------------------------------------
    def experiment_admin(self, authorization: str | None) -> ExperimentPlane:
        """The experiment plane for an admin request (feedback, experiment view, weights).

        Unavailable when no experiment or ledger is configured, else Unauthorized unless the
        caller holds the admin token: checked here, before the transport reads the request body.
        """
        plane = self.experiment
        if plane is None:
            raise Unavailable(
                "no experiment or ledger is configured; add `experiment:`/`ledger:` sections "
                "to the config"
            )
        plane.check_token(authorization)
        return plane

    def repository_index_request(self, ready: Any) -> list[dict[str, Any]]:
        """A repository index request from either transport, with its raw ``ready`` flag."""
        if not isinstance(ready, bool):
            raise InvalidInput(f"ready: expected a boolean, received {preview(ready)}")
        return self.repository_index(ready_only=ready)
