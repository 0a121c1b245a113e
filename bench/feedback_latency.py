"""Inference latency while one large `POST /feedback` is in flight (issue 11, finding 10d).

Starts one `fraudgate serve` (demo config, SQLite ledger, two small registered models) on
127.0.0.1, warms it up, then sends one feedback batch of ``--labels`` rows (unknown ids) while
``--concurrency`` workers send inference requests until the feedback call has answered (at most
``--max-requests``). Reports the latencies of the inference requests that overlapped it, beside
a baseline of as many requests without feedback (sent afterwards), and the feedback answer's
size. Bounded in requests and time; stops the server it started.

    PYTHONPATH=src python bench/feedback_latency.py --labels 45000 [--max-labels 50000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import orjson
import yaml

TOKEN = "bench-feedback-token"
ROW = [0.1 * i for i in range(30)]


def _registry(root: Path) -> str:
    import lightgbm as lgb

    from fraudgate.registry import Registry

    uri = f"sqlite:///{root / 'mlflow.db'}"
    registry = Registry(uri)
    for seed, name, alias in ((1, "fraud-v1-baseline", "champion"), (2, "fraud-v2-candidate",
                              "challenger")):  # fmt: skip
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(400, 30)).astype(np.float32)
        y = (x[:, 0] + x[:, 1] > 1.0).astype(int)
        booster = lgb.train({"objective": "binary", "verbose": -1}, lgb.Dataset(x, y), 15)
        registry.register(
            booster, serving_name=name, alias=alias, threshold=0.5, params={}, metrics={}
        )
    return uri


def _infer_body(i: int) -> bytes:
    inputs = [{"name": "fraud_features", "shape": [1, 30], "datatype": "FP32", "data": ROW}]
    return orjson.dumps({"id": f"bench-{i}", "inputs": inputs, "parameters": {"card_id": f"c{i}"}})


async def _load(url: str, workers: int, until: asyncio.Task | None, cap: int) -> list[float]:
    latencies: list[float] = []
    counter = iter(range(cap))

    async def worker(client: httpx.AsyncClient) -> None:
        for i in counter:
            if until is not None and until.done():
                return
            start = time.perf_counter()
            response = await client.post(
                "/v2/models/fraud-v1-baseline/infer", content=_infer_body(i)
            )
            latencies.append((time.perf_counter() - start) * 1e3)
            response.raise_for_status()

    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        await asyncio.gather(*(worker(client) for _ in range(workers)))
    return latencies


def _stats(latencies: list[float]) -> dict[str, float | int]:
    values = np.array(latencies)
    return {
        "requests": len(latencies),
        "p50_ms": round(float(np.percentile(values, 50)), 1),
        "p99_ms": round(float(np.percentile(values, 99)), 1),
        "p999_ms": round(float(np.percentile(values, 99.9)), 1),
        "max_ms": round(float(values.max()), 1),
        "over_250ms": int((values > 250).sum()),
    }


async def _measure(url: str, args: argparse.Namespace) -> dict:
    await _load(url, args.concurrency, None, 200)  # warm-up
    labels = [
        {"transaction_id": f"fb-{i}", "is_fraud": i % 7 == 0, "label_time": 1.7e9 + i}
        for i in range(args.labels)
    ]
    body = orjson.dumps({"labels": labels})
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        started = time.perf_counter()
        feedback = asyncio.create_task(
            client.post("/feedback", content=body, headers={"authorization": f"Bearer {TOKEN}"})
        )
        await asyncio.sleep(0)
        during = await _load(url, args.concurrency, feedback, args.max_requests)
        answer = await feedback
        elapsed = time.perf_counter() - started
    # the same number of requests without feedback: as long a window for scheduling noise
    baseline = _stats(await _load(url, args.concurrency, None, max(len(during), 200)))
    return {
        "labels": args.labels,
        "concurrency": args.concurrency,
        "baseline": baseline,
        "during_feedback": _stats(during) if during else None,
        "feedback": {
            "status": answer.status_code,
            "seconds": round(elapsed, 2),
            "answer_bytes": len(answer.content),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=45_000)
    parser.add_argument("--max-labels", type=int, default=None, help="ledger.feedback_max_labels")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--max-requests", type=int, default=8000)
    args = parser.parse_args()

    from fraudgate.config import write_default_config
    from fraudgate.server_process import running_server

    with tempfile.TemporaryDirectory(prefix="fraudgate-bench-feedback-") as scratch:
        root = Path(scratch)
        config = root / "fraudgate.yaml"
        write_default_config(config, _registry(root), token=TOKEN)
        if args.max_labels is not None:
            data = yaml.safe_load(config.read_text())
            data["ledger"]["feedback_max_labels"] = args.max_labels
            config.write_text(yaml.safe_dump(data, sort_keys=False))
        with running_server(config, root / "server.log") as server:
            report = asyncio.run(_measure(server.url, args))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
