"""MLServer 1.7.1 + mlserver-mlflow (the seed's runtime) in its own venv, as the baseline."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from _procs import Server, free_port, start, wait_ready

BENCH_DIR = Path(__file__).resolve().parent
VENV = BENCH_DIR / ".venv-mlserver"
# mlserver's pins (fastapi, pydantic, protobuf, ...) clash with fraudgate's, hence its own venv.
# uvloop 0.22 breaks MLServer's parallel workers ("There is no current event loop"): pin it, and
# run with parallel_workers=0 anyway so the whole server sits on one pinned core like fraudgate.
REQUIREMENTS = [
    "mlserver==1.7.1",
    "mlserver-mlflow==1.7.1",
    "uvloop<0.22",
]


def _model_requirements() -> list[str]:
    """mlflow and lightgbm at the versions that wrote the model, so MLServer can load it."""
    from importlib.metadata import version

    return [f"mlflow=={version('mlflow')}", f"lightgbm=={version('lightgbm')}"]


def ensure_venv(log=print) -> Path:
    """Create bench/.venv-mlserver once (idempotent: a stamp records what was installed)."""
    wanted = "\n".join(REQUIREMENTS + _model_requirements())
    stamp = VENV / ".bench-installed"
    python = VENV / "bin" / "python"
    if stamp.exists() and stamp.read_text() == wanted and python.exists():
        return VENV
    log(f"creating MLServer venv {VENV} ({', '.join(wanted.splitlines())}) ...")
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv:
        cmd = [uv, "pip", "install", "--quiet", "--python", str(python), *wanted.splitlines()]
    else:
        cmd = [str(python), "-m", "pip", "install", "--quiet", *wanted.splitlines()]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(
            f"could not install MLServer into {VENV}:\n{proc.stdout}\n{proc.stderr}\n"
            f"Retry with: {' '.join(cmd)}"
        )
    stamp.write_text(wanted)
    return VENV


def versions() -> dict[str, str]:
    python = VENV / "bin" / "python"
    code = (
        "import json, importlib.metadata as m;"
        "print(json.dumps({p: m.version(p) for p in "
        "['mlserver','mlserver-mlflow','mlflow','lightgbm','numpy','uvloop','fastapi','uvicorn']}))"
    )
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def write_repository(root: Path, model_dir: Path, name: str) -> tuple[int, int]:
    """settings.json + <name>/model-settings.json; returns (http_port, grpc_port)."""
    http_port, grpc_port, metrics_port = free_port(), free_port(), free_port()
    root.mkdir(parents=True, exist_ok=True)
    settings = {
        "debug": False,
        "host": "127.0.0.1",
        "http_port": http_port,
        "grpc_port": grpc_port,
        "metrics_port": metrics_port,
        "parallel_workers": 0,
        "load_models_at_startup": True,
    }
    (root / "settings.json").write_text(json.dumps(settings, indent=2))
    model_root = root / name
    model_root.mkdir(exist_ok=True)
    model_settings = {
        "name": name,
        "implementation": "mlserver_mlflow.MLflowRuntime",
        "parameters": {"uri": str(model_dir)},
    }
    (model_root / "model-settings.json").write_text(json.dumps(model_settings, indent=2))
    return http_port, grpc_port


def launch(root: Path, model_dir: Path, name: str, logs: Path, timeout: float = 180) -> Server:
    http_port, grpc_port = write_repository(root, model_dir, name)
    server = start(
        "mlserver",
        [str(VENV / "bin" / "mlserver"), "start", str(root)],
        http_port=http_port,
        grpc_port=grpc_port,
        log_path=logs / "mlserver.log",
        # keep MLServer's OpenMP/BLAS to the one core it is pinned to, like fraudgate
        env={"OMP_NUM_THREADS": "1", "MLSERVER_PARALLEL_WORKERS": "0"},
        cwd=root,
    )
    server.extra["startup_s"] = wait_ready(server, f"/v2/models/{name}/ready", timeout)
    return server
