"""`make bench`: run every benchmark in bench/ (a module with a main()), serving first.

Each main() returns an exit code (0 = ok); the run fails if any benchmark fails.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
FIRST = ("serving",)


def benchmarks() -> list[str]:
    names = sorted(
        p.stem for p in BENCH_DIR.glob("*.py") if not p.stem.startswith("_") and p.stem != "run_all"
    )
    return [n for n in FIRST if n in names] + [n for n in names if n not in FIRST]


def main() -> int:
    sys.path.insert(0, str(BENCH_DIR))
    failed = []
    for name in benchmarks():
        module = importlib.import_module(name)
        entry = getattr(module, "main", None)
        if not callable(entry):
            continue
        print(f"=== bench/{name}.py ===", flush=True)
        takes_argv = bool(inspect.signature(entry).parameters)
        code = entry([]) if takes_argv else entry()
        if code not in (None, 0):
            failed.append(name)
    if failed:
        print(f"benchmarks failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
