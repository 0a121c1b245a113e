"""`fraudgate --help` and every subcommand's ``--help`` load none of the heavy libraries.

Each help runs in a fresh interpreter (modules accumulate within one), the way a user's shell
runs it, and reports the top-level packages it loaded. The command tree is read from the app
itself, so a new command is covered without editing this file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("pandas", "scipy", "statsmodels", "sqlalchemy", "mlflow")
SRC = Path(__file__).resolve().parents[2] / "src"

# prints the top-level packages loaded after `fraudgate <args> --help`
_RUN_HELP = """
import json, sys
from fraudgate.cli import app
try:
    app(args=sys.argv[1:], prog_name="fraudgate")
except SystemExit as exit:
    code = exit.code
else:
    code = 0
print(json.dumps({"code": code, "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""

# prints every command path of the app (["experiment", "show"], ...)
_LIST_COMMANDS = """
import json
import typer
from fraudgate.cli import app

def walk(command, path):
    yield path
    for name, sub in (getattr(command, "commands", None) or {}).items():
        if not sub.hidden:
            yield from walk(sub, [*path, name])

print(json.dumps(list(walk(typer.main.get_command(app), []))))
"""


def _python(code: str, *args: str) -> str:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def _command_paths() -> list[list[str]]:
    return json.loads(_python(_LIST_COMMANDS))


def test_the_command_tree_is_what_we_audit() -> None:
    paths = {" ".join(p) for p in _command_paths()}
    expected = {"", "serve", "replay", "feedback", "simulate", "train", "demo", "experiment"}
    expected |= {"experiment show", "experiment set", "ledger", "ledger ship"}
    expected |= {"ledger quarantine", "ledger quarantine reship", "export", "export kubernetes"}
    assert expected <= paths, sorted(paths)


@pytest.mark.parametrize("path", _command_paths(), ids=lambda p: " ".join(["fraudgate", *p]))
def test_help_imports_no_heavy_library(path: list[str]) -> None:
    report = json.loads(_python(_RUN_HELP, *path, "--help"))
    assert report["code"] == 0
    loaded = sorted(set(HEAVY) & set(report["modules"]))
    assert loaded == [], f"`fraudgate {' '.join(path)} --help` imported {loaded}"
