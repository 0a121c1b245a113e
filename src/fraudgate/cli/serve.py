"""`fraudgate serve`: the typer command, registered in `fraudgate.cli`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fraudgate.config import ConfigError


def serve(
    config: Annotated[
        Path,
        typer.Option(
            "--config",
            "-c",
            help="fraudgate YAML config (models, registry, server); `fraudgate demo` writes one "
            "as fraudgate.yaml in its work directory.",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ],
    host: Annotated[
        str | None,
        typer.Option(help="Interface to bind, overriding server.host (default 127.0.0.1)."),
    ] = None,
    http_port: Annotated[
        int | None,
        typer.Option(
            "--http-port", help="REST port, overriding server.http_port (default 8080).", min=0
        ),
    ] = None,
    grpc_port: Annotated[
        int | None,
        typer.Option(
            "--grpc-port", help="gRPC port, overriding server.grpc_port (default 8081).", min=0
        ),
    ] = None,
    ready_file: Annotated[
        Path | None,
        typer.Option(
            "--ready-file",
            help="Once serving, write the bound ports as JSON here (with port 0: the ports the "
            "system chose), for supervisors and tests.",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    from fraudgate.serving.server import StartupError, run_server

    try:
        run_server(
            config, host=host, http_port=http_port, grpc_port=grpc_port, ready_file=ready_file
        )
    except (ConfigError, StartupError) as exc:
        typer.secho(f"fraudgate serve: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2) from None
    except KeyboardInterrupt:
        pass


serve.__doc__ = (
    "Serve the config's models over the Open Inference Protocol (REST + gRPC, one process).\n\n"
    "Loads each model from the MLflow registry (e.g. models:/fraud-detection@champion), "
    "compiles it to the fastest runtime whose scores match the MLflow model, and serves it at "
    "/v2/models/<name>/infer (REST) and inference.GRPCInferenceService/ModelInfer (gRPC), with "
    "/metrics (Prometheus) and /openapi.json. Stop with Ctrl-C."
)
