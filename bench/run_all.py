"""`make bench`: run every benchmark in bench/ (a script with a top-level main()), serving first.

Each runs in its own process (``python bench/NAME.py``, default arguments); the run fails if any
of them exits non-zero, after all have run.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
FIRST = ("serving",)


def has_main(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return any(isinstance(node, ast.FunctionDef) and node.name == "main" for node in tree.body)


def benchmarks() -> list[Path]:
    paths = sorted(
        p for p in BENCH_DIR.glob("*.py") if not p.stem.startswith("_") and p.stem != "run_all"
    )
    paths = [p for p in paths if has_main(p)]
    return sorted(paths, key=lambda p: (p.stem not in FIRST, p.stem))


def main() -> int:
    failed = []
    for path in benchmarks():
        print(f"=== bench/{path.name} ===", flush=True)
        t0 = time.monotonic()
        code = subprocess.run([sys.executable, str(path)], cwd=BENCH_DIR.parent).returncode
        print(f"=== bench/{path.name}: exit {code} in {time.monotonic() - t0:.0f}s ===", flush=True)
        if code != 0:
            failed.append(path.name)
    if failed:
        print(f"benchmarks failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
