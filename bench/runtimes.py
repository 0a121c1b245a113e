"""Benchmark the scoring runtimes and the gradient-boosting libraries (not a timed test).

    .venv/bin/python bench/runtimes.py [--calls 20000] [--cpu 1] [--out bench/results/runtimes.json]

Part 1 registers a realistic LightGBM model (300 trees x 31 leaves, 30 features) in a temporary
MLflow store, then measures single-row and batch-32 latency of every fraudgate runtime, of the
MLflow pyfunc model (what MLServer's mlflow runtime calls), and of the plain library calls.
It also times TL2cgen compilation at each gcc optimisation level, and the cached restart.

Part 2 compares the model families for the "which gradient-boosting library" decision:
LightGBM vs XGBoost vs scikit-learn HistGradientBoostingClassifier, same data, 300 trees,
~31 leaves, each through its best plain single-row API (one thread), and each compiled with
TL2cgen through the same fraudgate row loop.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

N = 30
TREES = 300
LEAVES = 31


def _data(n: int = 20000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, N)).astype(np.float32)
    x[:, 0] = rng.lognormal(3.5, 1.2, size=n)  # an amount-like feature
    x[:, 5] = rng.integers(0, 2, size=n)  # a flag
    x[rng.random(x.shape) < 0.01] = np.nan
    z = np.nan_to_num(x)
    logit = 0.02 * z[:, 0] + z[:, 1] * z[:, 2] + np.sin(3 * z[:, 3]) + z[:, 5] - 3.0
    y = (logit + rng.logistic(size=n) > 0).astype(int)
    return x, y


def _time_calls(fn: Callable[[np.ndarray], object], inputs: list[np.ndarray], calls: int) -> dict:
    for x in inputs[:200]:  # warm up
        fn(x)
    times = np.empty(calls, dtype=np.int64)
    k = len(inputs)
    clock = time.perf_counter_ns
    for i in range(calls):
        x = inputs[i % k]
        t0 = clock()
        fn(x)
        times[i] = clock() - t0
    us = times / 1e3
    return {
        "calls": calls,
        "median_us": round(float(np.median(us)), 2),
        "p99_us": round(float(np.percentile(us, 99)), 2),
        "mean_us": round(float(us.mean()), 2),
    }


def _measure(fn, x: np.ndarray, calls: int, batch_calls: int | None = None) -> dict:
    singles = [np.ascontiguousarray(x[i : i + 1]) for i in range(1000)]
    batches = [np.ascontiguousarray(x[i : i + 32]) for i in range(0, len(x) - 31, 32)]
    return {
        "single": _time_calls(fn, singles, calls),
        "batch32": _time_calls(fn, batches, batch_calls or calls),
    }


def _register(booster, workdir: Path):
    from fraudgate.registry import Registry

    registry = Registry(f"sqlite:///{workdir / 'mlflow.db'}")
    registry.register(
        booster,
        serving_name="fraud-v1-baseline",
        alias="champion",
        threshold=0.5,
        params={"num_leaves": LEAVES, "rounds": TREES},
        metrics={},
    )
    return registry.load("models:/fraud-detection@champion")


def bench_runtimes(x: np.ndarray, y: np.ndarray, calls: int, workdir: Path) -> dict:
    import lightgbm as lgb
    import tl2cgen

    from fraudgate.serving import runtimes as rt

    params = {"objective": "binary", "num_leaves": LEAVES, "learning_rate": 0.05, "verbose": -1}
    booster = lgb.train(params, lgb.Dataset(x, y), num_boost_round=TREES)
    model = _register(booster, workdir)
    test = _data(4000, seed=1)[0]

    # compile time per optimisation level (fresh cache each), then the cached restart
    compile_rows = []
    libs: dict[str, Path] = {}
    for opt in ("-O0", "-O1", "-O2", "-O3"):
        cache = workdir / f"cache{opt}"
        rep = rt.compile_tl2cgen(model.booster, cache, opt=opt)
        lib_runtime = rt.Tl2cgenRuntime(rep.library, N)
        lat = _time_calls(lib_runtime.predict, [test[i : i + 1] for i in range(1000)], calls // 2)
        again = rt.compile_tl2cgen(model.booster, cache, opt=opt)
        compile_rows.append(
            {
                "opt": opt,
                "compile_s": round(rep.seconds, 2),
                "cached_restart_s": round(again.seconds, 3),
                "single_median_us": lat["median_us"],
                "single_p99_us": lat["p99_us"],
            }
        )
        libs[opt] = rep.library

    t0 = time.perf_counter()
    auto = rt.build_runtime(model, "auto", cache_dir=workdir / f"cache{rt.COMPILE_OPT}")
    auto_build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    fresh = rt.build_runtime(model, "auto", cache_dir=workdir / "cache-fresh")
    fresh_build_s = time.perf_counter() - t0
    del fresh

    native = rt.NativeRuntime(model.booster, N)
    compiled = rt.Tl2cgenRuntime(libs[rt.COMPILE_OPT], N)
    predictor = tl2cgen.Predictor(libs[rt.COMPILE_OPT], nthread=1)
    b = model.booster

    def tl2cgen_predictor(v: np.ndarray) -> np.ndarray:
        return predictor.predict(tl2cgen.DMatrix(v)).reshape(-1)

    few = max(2000, calls // 10)
    contenders: list[tuple[str, Callable, int]] = [
        (f"fraudgate tl2cgen (gcc {rt.COMPILE_OPT})", compiled.predict, calls),
        ("fraudgate native (LightGBM C API)", native.predict, calls),
        ("tl2cgen.Predictor + DMatrix, nthread=1", tl2cgen_predictor, calls),
        ("lightgbm Booster.predict, num_threads=1", lambda v: b.predict(v, num_threads=1), calls),
        ("lightgbm Booster.predict, default threads", b.predict, few),
        ("mlflow pyfunc.predict (MLServer's path)", model.pyfunc.predict, few),
    ]
    rows = []
    for name, fn, n_calls in contenders:
        t0 = time.perf_counter()
        rows.append({"runtime": name, **_measure(fn, test, n_calls)})
        print(f"  {name}: {time.perf_counter() - t0:.1f}s", file=sys.stderr, flush=True)
    return {
        "model": {"trees": b.num_trees(), "num_leaves": LEAVES, "features": N},
        "auto": {
            "chosen": auto.name,
            "single_row_seconds": auto.report.single_row_seconds,
            "build_s_cached": round(auto_build_s, 3),
            "build_s_uncached": round(fresh_build_s, 2),
            "max_abs_error": auto.report.max_abs_error,
        },
        "compile": compile_rows,
        "runtimes": rows,
    }


def bench_families(x: np.ndarray, y: np.ndarray, calls: int, workdir: Path) -> list[dict]:
    import lightgbm as lgb
    import treelite
    import xgboost as xgb
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    from fraudgate.serving import runtimes as rt

    test = _data(4000, seed=1)[0]
    out = []

    def add(family: str, api: str, fn, fit_s: float, compiled_from=None) -> None:
        t0 = time.perf_counter()
        entry = {"family": family, "api": api, "fit_s": round(fit_s, 1)}
        entry.update(_measure(fn, test, calls))
        print(f"  {family} {api}: {time.perf_counter() - t0:.1f}s", file=sys.stderr, flush=True)
        out.append(entry)
        if compiled_from is not None:
            lib = workdir / f"family-{family.split()[0].lower()}.so"
            t0 = time.perf_counter()
            rt.build_library(compiled_from, lib)
            compile_s = time.perf_counter() - t0
            runtime = rt.Tl2cgenRuntime(lib, N)
            diff = float(np.abs(runtime.predict(test[:500]) - fn(test[:500]).reshape(-1)).max())
            entry = {
                "family": family,
                "api": "compiled with TL2cgen (fraudgate row loop)",
                "fit_s": round(fit_s, 1),
                "compile_s": round(compile_s, 2),
                "max_abs_diff_vs_library": diff,
            }
            entry.update(_measure(runtime.predict, test, calls))
            out.append(entry)

    t0 = time.perf_counter()
    params = {
        "objective": "binary",
        "num_leaves": LEAVES,
        "learning_rate": 0.05,
        "verbose": -1,
        "num_threads": 2,
    }
    lgbm = lgb.train(params, lgb.Dataset(x, y), num_boost_round=TREES)
    add(
        "LightGBM",
        "Booster.predict(num_threads=1)",
        lambda v: lgbm.predict(v, num_threads=1),
        time.perf_counter() - t0,
        treelite.frontend.from_lightgbm(lgbm),
    )

    t0 = time.perf_counter()
    dtrain = xgb.DMatrix(x, label=y)
    xparams = {
        "objective": "binary:logistic",
        "tree_method": "hist",
        "grow_policy": "lossguide",
        "max_leaves": LEAVES,
        "max_depth": 0,
        "eta": 0.05,
        "nthread": 2,
    }
    xgbm = xgb.train(xparams, dtrain, num_boost_round=TREES)
    xgbm.set_param({"nthread": 1})
    add(
        "XGBoost",
        "Booster.inplace_predict (nthread=1)",
        lambda v: xgbm.inplace_predict(v),
        time.perf_counter() - t0,
        treelite.frontend.from_xgboost(xgbm),
    )

    t0 = time.perf_counter()
    hgb = HistGradientBoostingClassifier(
        max_iter=TREES, max_leaf_nodes=LEAVES, learning_rate=0.05, early_stopping=False
    ).fit(x, y)
    # sklearn predicts with an OpenMP pool sized to the machine; one thread like the others
    threadpool_limits(1, user_api="openmp")
    add(
        "sklearn HistGradientBoosting",
        "predict_proba(x)[:, 1], 1 OpenMP thread",
        lambda v: hgb.predict_proba(v)[:, 1],
        time.perf_counter() - t0,
        treelite.sklearn.import_model(hgb),
    )
    return out


def _print(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=150)
    r = result["runtimes"]
    t = Table(title=f"Runtimes, {r['model']['trees']} trees x {LEAVES} leaves, 30 features (µs)")
    for col in ("runtime", "1-row p50", "1-row p99", "32-row p50", "32-row p99", "vs pyfunc"):
        t.add_column(col, justify="left" if col == "runtime" else "right")
    base = next(x for x in r["runtimes"] if "pyfunc" in x["runtime"])["single"]["median_us"]
    for row in r["runtimes"]:
        s, b = row["single"], row["batch32"]
        t.add_row(
            row["runtime"],
            f"{s['median_us']:.1f}",
            f"{s['p99_us']:.1f}",
            f"{b['median_us']:.1f}",
            f"{b['p99_us']:.1f}",
            f"{base / s['median_us']:.0f}x",
        )
    console.print(t)

    c = Table(title="TL2cgen compile (gcc) and scoring by optimisation level")
    for col in ("opt", "compile s", "cached restart s", "1-row p50 µs", "1-row p99 µs"):
        c.add_column(col, justify="right")
    for row in r["compile"]:
        c.add_row(
            row["opt"],
            f"{row['compile_s']:.2f}",
            f"{row['cached_restart_s']:.3f}",
            f"{row['single_median_us']:.1f}",
            f"{row['single_p99_us']:.1f}",
        )
    console.print(c)
    a = r["auto"]
    console.print(
        f"auto picked [bold]{a['chosen']}[/]: "
        + ", ".join(f"{k} {v * 1e6:.1f} µs/row" for k, v in a["single_row_seconds"].items())
        + f"; build_runtime {a['build_s_uncached']:.1f}s uncached, {a['build_s_cached']:.2f}s"
        " cached"
    )

    f = Table(title="Gradient-boosting libraries, 300 trees x ~31 leaves, one thread (µs)")
    for col in ("library", "API", "1-row p50", "1-row p99", "32-row p50", "32-row p99"):
        f.add_column(col, justify="left" if col in ("library", "API") else "right")
    for row in result["families"]:
        s, b = row["single"], row["batch32"]
        f.add_row(
            row["family"],
            row["api"],
            f"{s['median_us']:.1f}",
            f"{s['p99_us']:.1f}",
            f"{b['median_us']:.1f}",
            f"{b['p99_us']:.1f}",
        )
    console.print(f)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--cpu", type=int, default=None, help="pin this process to one core")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "runtimes.json"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    x, y = _data()
    with tempfile.TemporaryDirectory(prefix="fraudgate-bench-") as tmp:
        workdir = Path(tmp)
        print("runtimes ...", file=sys.stderr, flush=True)
        runtimes = bench_runtimes(x, y, args.calls, workdir)
        print("model families ...", file=sys.stderr, flush=True)
        families = bench_families(x, y, args.calls, workdir)
    import lightgbm
    import sklearn
    import tl2cgen
    import treelite
    import xgboost

    result = {
        "machine": {
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "pinned_cpu": args.cpu,
            "processor": platform.processor() or platform.machine(),
        },
        "versions": {
            "lightgbm": lightgbm.__version__,
            "xgboost": xgboost.__version__,
            "sklearn": sklearn.__version__,
            "treelite": treelite.__version__,
            "tl2cgen": tl2cgen.__version__,
        },
        "runtimes": runtimes,
        "families": families,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    _print(result)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
