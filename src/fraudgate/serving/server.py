"""Run REST (uvicorn + httptools) and gRPC (grpc.aio) in one process, on one uvloop event loop.

Start-up order: both listeners come up first (``/v2/health/live`` answers, ``/v2/health/ready``
says 503), then the configured models load from the MLflow registry one by one (in a worker
thread, so health checks keep answering) and get compiled to their fastest verified runtime;
then the server is ready. After a promotion or rollback (recorded in the ledger), each
configured name loads the MLflow version the last act left, so a restart serves what the live
replicas serve; if the registry's aliases disagree with the ledger the server refuses to start
(`fraudgate.promotion.startup_models`). A model that fails to load at start-up stops the server
with the reason (exit code 2); each model file is validated in a child process first
(`fraudgate.runtimes.check`), so a corrupt one is such a failure, never a crash of the server.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fraudgate.config import FraudgateConfig, ModelConfig, ServerConfig, load_config
from fraudgate.serving.connection_limits import (
    DEFAULT_MAX_CONNECTIONS,
    ConnectionLimits,
    FileLimitError,
    fit_file_limit,
)
from fraudgate.serving.dataplane import DataPlane, LoadedRuntime, ModelLoader
from fraudgate.serving.metrics import ServerMetrics

log = logging.getLogger("fraudgate.serving")


class StartupError(RuntimeError):
    """The server could not start (port in use, a model failed to load, ...)."""


def registry_loader(config: FraudgateConfig) -> ModelLoader:
    """Load models through the shared `fraudgate.runtimes.loader.RuntimeLoader`: each booster
    file is parsed and scored in a child process first (a corrupt one crashes LightGBM, and must
    not take this process down), then built into its fastest verified runtime."""
    from fraudgate.runtimes.loader import RuntimeLoader

    loader = RuntimeLoader(config.resolved_tracking_uri())

    def load(model: ModelConfig) -> LoadedRuntime:
        served = loader.load(model.uri, model.runtime)
        return LoadedRuntime(served.model, served.runtime)

    return load


@dataclass
class RunningServer:
    """Handles of a started server (used by `serve_forever` and tests)."""

    dataplane: DataPlane
    http: Any  # uvicorn.Server
    grpc: Any  # grpc.aio.Server
    http_port: int
    grpc_port: int
    http_task: asyncio.Task[None]


def _pin_threads() -> None:
    """Keep OpenMP from spinning threads next to the event loop (must precede lightgbm import)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("OMP_NUM_THREADS", "1")


async def start_servers(
    config: FraudgateConfig,
    *,
    host: str,
    http_port: int,
    grpc_port: int,
    loader: ModelLoader | None = None,
) -> RunningServer:
    from fraudgate.protocol.errors import InferenceError
    from fraudgate.serving.experiment import ExperimentPlane
    from fraudgate.serving.grpc_server import create_grpc_server
    from fraudgate.serving.rest import RestApp

    try:
        plane = await asyncio.to_thread(ExperimentPlane.from_config, config)
    except InferenceError as exc:
        raise StartupError(exc.message) from exc
    try:
        limits = ConnectionLimits.from_config(
            config.server, fit_file_limit(config.server.max_connections)
        )
    except FileLimitError as exc:
        raise StartupError(str(exc)) from None
    dataplane = DataPlane(config, loader or registry_loader(config), ServerMetrics(), plane)
    max_payload = config.server.max_payload_bytes
    http = http_server(RestApp(dataplane, max_payload), host, http_port, max_payload, limits)
    grpc_server, bound_grpc = create_grpc_server(dataplane, host, grpc_port, max_payload, limits)
    await grpc_server.start()
    http_task = asyncio.create_task(http.serve())
    while not http.started:
        if http_task.done():
            await grpc_server.stop(None)
            raise StartupError(f"HTTP server could not start on {host}:{http_port}")
        await asyncio.sleep(0.01)
    bound_http = http_port
    for server in getattr(http, "servers", []):
        for sock in server.sockets:
            bound_http = sock.getsockname()[1]
    return RunningServer(dataplane, http, grpc_server, bound_http, bound_grpc, http_task)


def http_server(
    app: Any, host: str, port: int, max_payload: int, limits: ConnectionLimits | None = None
) -> Any:
    """The uvicorn server for the REST app (httptools bounded by `limits`, the running loop, no
    access log); `limits` None: the config's defaults."""
    import uvicorn

    from fraudgate.serving.http_limits import limited_protocol

    if limits is None:
        limits = ConnectionLimits.from_config(ServerConfig(), DEFAULT_MAX_CONNECTIONS)
    return uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            http=limited_protocol(limits),
            ws="none",  # no WebSocket routes: an upgrade would leave the bounded protocol
            loop="none",
            lifespan="off",
            access_log=False,
            log_level="warning",
            server_header=False,
            date_header=False,
            h11_max_incomplete_event_size=max_payload,
            timeout_keep_alive=limits.idle_timeout_s,  # type: ignore[arg-type]
            backlog=4096,
        )
    )


def _startup_table(running: RunningServer, host: str) -> Any:
    from rich.table import Table

    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    table = Table(title="fraudgate serving", title_justify="left")
    for column in ("model", "version", "runtime", "threshold", "MLflow model", "infer URL"):
        table.add_column(column)
    for name, entry in running.dataplane.entries.items():
        deployed = entry.deployed
        if deployed is None:
            table.add_row(name, "-", "-", "-", entry.config.uri, f"{entry.state}: {entry.reason}")
            continue
        params = deployed.metadata["parameters"]
        mlflow = f"{entry.config.uri} (v{params['mlflow_model_version']})"
        table.add_row(
            name,
            deployed.version,
            deployed.runtime_name,
            f"{deployed.threshold:.4f}",
            mlflow,
            f"http://{shown}:{running.http_port}/v2/models/{name}/infer",
        )
    table.caption = (
        f"REST http://{shown}:{running.http_port}  gRPC {shown}:{running.grpc_port}  "
        f"metrics http://{shown}:{running.http_port}/metrics  "
        f"OpenAPI http://{shown}:{running.http_port}/openapi.json"
    )
    dataplane = running.dataplane
    if dataplane.config.server.model_management == "off":
        management = "off (server.model_management)"
    elif dataplane.auth.configured:
        management = "bearer token"
    else:
        management = "refused (no auth token configured)"
    table.caption += f"\nmodel management /v2/repository/models/<name>/load|unload: {management}"
    plane = running.dataplane.experiment
    if plane is not None:
        lines = []
        if plane.state is not None:
            spec = plane.state.spec
            split = " / ".join(f"{n} {w}" for n, w in spec.weights.items())
            mirror = ""
            if spec.mirror is not None and spec.mirror.percent:
                target = spec.mirror.name or "the other arm"
                mirror = f", mirror {spec.mirror.percent}% to {target}"
            lines.append(
                f"experiment {spec.name}: {split}{mirror}, sticky by {spec.routing.source} "
                f"{spec.routing.key!r}; infer http://{shown}:{running.http_port}"
                f"/v2/models/{spec.default or spec.name}/infer"
            )
        if plane.store is not None:
            lines.append(f"ledger {plane.store.url}")
        auth = "bearer token" if plane.token else "OPEN (no auth token configured)"
        lines.append(f"feedback POST /feedback, admin /admin/experiments/<name>: {auth}")
        table.caption += "\n" + "\n".join(lines)
    table.caption_justify = "left"
    return table


async def serve_async(
    config: FraudgateConfig,
    *,
    host: str,
    http_port: int,
    grpc_port: int,
    loader: ModelLoader | None = None,
    on_ready: Callable[[RunningServer], None] | None = None,
) -> None:
    running = await start_servers(
        config, host=host, http_port=http_port, grpc_port=grpc_port, loader=loader
    )
    plane = running.dataplane.experiment
    try:
        if plane is not None:
            try:
                await asyncio.to_thread(plane.start)
            except Exception as exc:
                raise StartupError(
                    f"ledger: reconciling the experiment weights failed: {exc}"
                ) from exc
            from fraudgate.promotion import PromotionConflict

            try:
                pinned = await asyncio.to_thread(plane.pinned_models)
            except PromotionConflict as exc:
                raise StartupError(f"refusing to start: {exc}") from None
            for model in pinned or ():
                running.dataplane.entries[model.name].config = model
            plane.start_polling()
        errors = await running.dataplane.start()
        if errors:
            raise StartupError("model loading failed:\n  " + "\n  ".join(errors))
        gc.collect()
        gc.freeze()  # loaded models are long-lived: keep them out of every GC pass
        if on_ready is not None:
            on_ready(running)
        await running.http_task  # returns on SIGINT/SIGTERM (uvicorn handles the signals)
    finally:
        running.http.should_exit = True
        if not running.http_task.done():
            await running.http_task
        await running.grpc.stop(0.5)
        if plane is not None:
            await plane.aclose()  # flushes queued mirror decisions to the ledger
        running.dataplane.close()


def write_ready_file(path: Path, running: RunningServer) -> None:
    """The bound ports as JSON, renamed into place so a reader never sees half a file."""
    ports = {"http_port": running.http_port, "grpc_port": running.grpc_port, "pid": os.getpid()}
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(ports))
    partial.replace(path)


def run_server(
    config_path: str | Path,
    host: str | None = None,
    http_port: int | None = None,
    grpc_port: int | None = None,
    ready_file: Path | None = None,
) -> None:
    """Serve the models of `config_path` over REST and gRPC until interrupted.

    Command-line values override the config's ``server`` section; once serving, `ready_file` (if
    given) receives the bound ports as JSON, so a caller can ask for port 0 without a race.
    Raises `ConfigError` for a bad config and `StartupError` when a model cannot be loaded or a
    port cannot be bound.
    """
    _pin_threads()
    config = load_config(config_path)
    host = host or config.server.host
    http_port = config.server.http_port if http_port is None else http_port
    grpc_port = config.server.grpc_port if grpc_port is None else grpc_port
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("mlflow", "alembic", "urllib3", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    def ready(running: RunningServer) -> None:
        from rich.console import Console

        console = Console()
        if not console.is_terminal:  # logs and CI: do not squeeze the table into 80 columns
            console = Console(width=200)
        console.print(_startup_table(running, host))
        sys.stdout.flush()
        if ready_file is not None:
            write_ready_file(ready_file, running)

    coro = serve_async(config, host=host, http_port=http_port, grpc_port=grpc_port, on_ready=ready)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        asyncio.run(coro)
    else:
        uvloop.run(coro)
