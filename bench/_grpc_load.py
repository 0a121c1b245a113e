"""gRPC ModelInfer load generator (grpc.aio), run as its own process pinned to the load core.

Prints one JSON line. It reports its own CPU use: at ~100% of its core the client, not the
server, was the limit, and the result is a lower bound on the server's throughput.

    python bench/_grpc_load.py --target 127.0.0.1:8081 --model fraud-v1-baseline \
        --concurrency 32 --duration 10 --warmup 2 --row '[...30 floats...]'
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time

import grpc
import numpy as np
from tritonclient.grpc import service_pb2, service_pb2_grpc

MARK = "FRAUDGATE_BENCH "


def build_request(model: str, row: list[float]) -> service_pb2.ModelInferRequest:
    """The seed's [1, 30] FP32 request with content_type np, as typed `contents`."""
    request = service_pb2.ModelInferRequest(model_name=model)
    request.parameters["content_type"].string_param = "np"
    tensor = request.inputs.add()
    tensor.name = "fraud_features"
    tensor.datatype = "FP32"
    tensor.shape.extend([1, len(row)])
    tensor.parameters["content_type"].string_param = "np"
    tensor.contents.fp32_contents.extend(row)
    return request


def first_score(response: service_pb2.ModelInferResponse) -> float:
    if response.raw_output_contents:
        out = response.outputs[0]
        dtype = {"FP32": np.float32, "FP64": np.float64}[out.datatype]
        return float(np.frombuffer(response.raw_output_contents[0], dtype=dtype)[0])
    contents = response.outputs[0].contents
    values = list(contents.fp32_contents) or list(contents.fp64_contents)
    return float(values[0])


async def _worker(stub, request, stop_at, latencies, errors):
    while True:
        t0 = time.perf_counter_ns()
        if t0 >= stop_at:
            return
        try:
            await stub.ModelInfer(request, timeout=5)
        except grpc.aio.AioRpcError as exc:
            errors[exc.code().name] = errors.get(exc.code().name, 0) + 1
            continue
        latencies.append(time.perf_counter_ns() - t0)


async def _phase(stub, request, concurrency: int, seconds: float):
    latencies: list[int] = []
    errors: dict[str, int] = {}
    t0 = time.perf_counter_ns()
    stop_at = t0 + int(seconds * 1e9)
    await asyncio.gather(
        *(_worker(stub, request, stop_at, latencies, errors) for _ in range(concurrency))
    )
    return latencies, errors, (time.perf_counter_ns() - t0) / 1e9


async def main_async(args) -> dict:
    request = build_request(args.model, json.loads(args.row))
    options = [("grpc.max_receive_message_length", 64 << 20)]
    async with grpc.aio.insecure_channel(args.target, options=options) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        score = first_score(await stub.ModelInfer(request, timeout=30))
        await _phase(stub, request, args.concurrency, args.warmup)
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        latencies, errors, elapsed = await _phase(stub, request, args.concurrency, args.duration)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    lat = np.asarray(latencies, dtype=np.float64) / 1e6 if latencies else np.zeros(1)
    return {
        "score": score,
        "requests": len(latencies),
        "duration_s": elapsed,
        "rps": len(latencies) / elapsed,
        "p50_ms": float(np.percentile(lat, 50)),
        "p90_ms": float(np.percentile(lat, 90)),
        "p99_ms": float(np.percentile(lat, 99)),
        "p999_ms": float(np.percentile(lat, 99.9)),
        "mean_ms": float(lat.mean()),
        "max_ms": float(lat.max()),
        "errors": errors,
        "error_total": sum(errors.values()),
        "loadgen_cpu_s": cpu,
        "loadgen_cpu_util": cpu / elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--row", required=True, help="JSON list of 30 floats")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    print(MARK + json.dumps(asyncio.run(main_async(args))), flush=True)


if __name__ == "__main__":
    main()
