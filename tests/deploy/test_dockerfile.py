"""The Dockerfile: multi-stage, slim and pinned, non-root; and its install and start commands,
run here as written in a clean virtual environment (no Docker engine on this machine).

The install test follows the build stage: it copies what its COPY lines copy into a scratch
``/src``, runs the RUN after ``# install`` with the image's paths mapped to scratch ones (uv's
cache reused, so it takes seconds), then starts the server with the image's ENTRYPOINT and CMD
(the config path and the ports mapped) and waits for ``/v2/health/ready``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from fraudgate.config import write_default_config
from fraudgate.deploy.kubernetes.native import SERVE_ARGS
from fraudgate.deploy.kubernetes.objects import RUN_AS_USER
from fraudgate.server_process import free_port

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


@dataclass(frozen=True)
class Instruction:
    stage: str
    keyword: str
    argument: str
    comment: str  # the comment line just above it ("" if none)


def parse(text: str) -> list[Instruction]:
    """Instructions with their stage and the comment above them (continuations joined)."""
    out: list[Instruction] = []
    stage, comment, pending = "", "", ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and line.startswith("#"):
            comment = line.lstrip("# ").strip()
            continue
        if not line and not pending:
            comment = ""
            continue
        pending = f"{pending} {line}" if pending else line
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        keyword, _, argument = pending.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage = argument.split(" AS ")[-1].strip() if " AS " in argument else argument
        out.append(Instruction(stage, keyword, " ".join(argument.split()), comment))
        pending, comment = "", ""
    return out


INSTRUCTIONS = parse(DOCKERFILE.read_text(encoding="utf-8"))


def _only(keyword: str, *, stage: str | None = None, comment: str | None = None) -> Instruction:
    found = [
        i
        for i in INSTRUCTIONS
        if i.keyword == keyword
        and (stage is None or i.stage == stage)
        and (comment is None or i.comment == comment)
    ]
    assert len(found) == 1, f"{keyword} (stage {stage}, comment {comment}): {found}"
    return found[0]


def test_the_image_is_multi_stage_slim_pinned_and_unprivileged() -> None:
    stages = [i for i in INSTRUCTIONS if i.keyword == "FROM"]
    assert [s.stage for s in stages] == ["build", "runtime"]
    base = next(i for i in INSTRUCTIONS if i.keyword == "ARG" and i.argument.startswith("PYTHON"))
    name, _, image = base.argument.partition("=")
    repository, _, tag = image.partition(":")
    assert repository == "python" and "-slim-" in tag
    version = tag.split("-")[0].split(".")
    assert len(version) == 3 and all(part.isdigit() for part in version), f"not pinned: {tag}"
    assert all(s.argument.startswith(f"${{{name}}} AS ") for s in stages)
    # the runtime stage takes only the built environment, runs as the manifests' user
    copies = [i for i in INSTRUCTIONS if i.keyword == "COPY" and i.stage == "runtime"]
    assert [c.argument for c in copies] == ["--from=build /opt/fraudgate /opt/fraudgate"]
    users = [i for i in INSTRUCTIONS if i.keyword == "USER"]
    assert [u.stage for u in users] == ["runtime"]
    assert users[0].argument == f"{RUN_AS_USER}:{RUN_AS_USER}"
    assert INSTRUCTIONS[-1].keyword == "CMD" and INSTRUCTIONS[-2].keyword == "ENTRYPOINT"
    # what the Deployment runs is what the image starts
    assert json.loads(_only("ENTRYPOINT").argument) == ["fraudgate"]
    assert json.loads(_only("CMD").argument) == SERVE_ARGS


def test_dockerignore_keeps_the_context_to_what_the_build_copies() -> None:
    lines = [
        line
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert lines[0] == "*"  # everything out, then exactly what the COPY lines need back in
    allowed = {line.removeprefix("!").rstrip("/") for line in lines if line.startswith("!")}
    copied = {
        source.rstrip("/")
        for i in INSTRUCTIONS
        if i.keyword == "COPY" and i.stage == "build"
        for source in i.argument.split()[:-1]
    }
    assert copied == allowed == {"pyproject.toml", "README.md", "src"}


def _uv() -> str:
    beside = Path(sys.executable).with_name("uv")
    found = str(beside) if beside.exists() else shutil.which("uv")
    if found is None:
        pytest.skip("uv not installed (make install puts it in .venv)")
    return found


@pytest.mark.slow
def test_the_images_install_and_start_commands_work_in_a_clean_environment(
    tmp_path: Path, trained_registry, compile_cache: Path
) -> None:
    uv = _uv()
    src = tmp_path / "src"
    src.mkdir()
    for copy in (i for i in INSTRUCTIONS if i.keyword == "COPY" and i.stage == "build"):
        *sources, destination = copy.argument.split()
        for source in sources:
            target = src / destination.removeprefix("./")
            if (ROOT / source).is_dir():
                shutil.copytree(
                    ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__", "*.so")
                )
            else:
                shutil.copy2(ROOT / source, target if destination != "./" else src / source)
    venv = tmp_path / "opt-fraudgate"
    install = _only("RUN", stage="build", comment="install").argument
    command = install.replace("/opt/fraudgate", str(venv)).replace(" /src", f" {src}")
    command = command.replace("uv ", f"{uv} ")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["UV_PYTHON"] = sys.executable  # the interpreter under test stands for the image's
    started = time.monotonic()
    result = subprocess.run(
        ["bash", "-c", command], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr
    install_s = time.monotonic() - started
    # installed, not imported from the repository: the package lives in the new environment
    where = subprocess.run(
        [str(venv / "bin/python"), "-c", "import fraudgate; print(fraudgate.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert where.startswith(str(venv)), where

    config = write_default_config(
        tmp_path / "fraudgate.yaml", trained_registry.tracking_uri, experiment=False
    )
    entrypoint = json.loads(_only("ENTRYPOINT").argument)
    cmd = [arg.replace(SERVE_ARGS[-1], str(config)) for arg in json.loads(_only("CMD").argument)]
    http, grpc = free_port(), free_port()
    start = [str(venv / "bin" / entrypoint[0]), *entrypoint[1:], *cmd]
    start += ["--http-port", str(http), "--grpc-port", str(grpc)]
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(
        start,
        env={**env, "XDG_CACHE_HOME": str(compile_cache), "HOME": str(tmp_path)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        ready = False
        while time.monotonic() < deadline and server.poll() is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{http}/v2/health/ready").status_code == 200
            except httpx.HTTPError:
                ready = False
            if ready:
                break
            time.sleep(0.5)
        assert ready, (tmp_path / "server.log").read_text()[-3000:]
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    print(f"install {install_s:.1f} s, ready {time.monotonic() - started - install_s:.1f} s")
