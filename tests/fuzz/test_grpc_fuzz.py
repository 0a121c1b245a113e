"""Hypothesis drives every gRPC method of a real server with the demo's experiment and ledger.

Thousands of generated calls: model names (served, versioned, the experiment's, random, 100 KB),
versions, ids, parameters of every type, tensors with random names, datatypes, shapes and
contents (typed, raw, both, neither, mismatched sizes, NaN), requested outputs, random metadata
(routing keys, tokens, binary); plus the health, metadata and repository methods. The checks
are the ones that matter for users: never INTERNAL or UNKNOWN (a bad request is the caller's
fault, with a clear code), no call left hanging, the process alive and its memory bounded.
"""

from __future__ import annotations

import collections
import math
import time

import grpc
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from processes import rss_kib

from fraudgate.config import DEMO_EXPERIMENT, write_default_config
from fraudgate.data.contract import FEATURE_NAMES, INPUT_NAME
from fraudgate.protocol.datatypes import ALL_DATATYPES
from fraudgate.protocol.grpc_gen import inference_pb2 as pb
from fraudgate.protocol.grpc_gen import inference_pb2_grpc as pb_grpc

pytestmark = pytest.mark.slow

TOKEN = "fuzz-test-token"
V1, V2 = "fraud-v1-baseline", "fraud-v2-candidate"
EXAMPLES = 250  # lists of calls: about 10 calls each
FORBIDDEN = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DEADLINE_EXCEEDED}
RSS_GROWTH_BOUND_KIB = 300 * 1024
COUNTS: collections.Counter[str] = collections.Counter()


@pytest.fixture(scope="module")
def fuzz_server(trained_registry, module_launch, tmp_path_factory):
    root = tmp_path_factory.mktemp("grpc-fuzz")
    config = write_default_config(
        root / "fraudgate.yaml", trained_registry.tracking_uri, token=TOKEN
    )  # the demo's: experiment 80/20 with a 100% mirror, SQLite ledger, admin token
    return module_launch(config)


# -- strategies ----------------------------------------------------------------------------------

short_text = st.text(max_size=40)
valid_names = st.sampled_from([V1, V2, DEMO_EXPERIMENT, f"{V1}_1", f"{V2}_1"])
names = st.one_of(
    *[valid_names] * 4,
    st.sampled_from([f"{V1}_7", "", "_1", f"{DEMO_EXPERIMENT}_1"]),
    short_text,
    st.sampled_from(["m" * 200, "m" * 5000, "m" * 100_000]),
)
versions = st.one_of(*[st.just("")] * 4, st.sampled_from(["1", "2", "0", "-1"]), short_text)
ids = st.one_of(st.just(""), st.text(max_size=260), st.sampled_from(["\x00", "a\nb"]))
int64s = st.integers(-(2**63), 2**63 - 1)
floats = st.floats(allow_nan=True, allow_infinity=True)


PARAMETER_KEYS = st.one_of(
    st.sampled_from(
        [
            "content_type",
            "card_id",
            "transaction_id",
            "amount",
            "binary_data",
            "binary_data_output",
            "classification",
        ]
    ),
    short_text,
)
PARAMETER_VALUES = st.one_of(
    st.tuples(st.just("bool_param"), st.booleans()),
    st.tuples(st.just("int64_param"), int64s),
    st.tuples(st.just("uint64_param"), st.integers(0, 2**64 - 1)),
    st.tuples(st.just("double_param"), floats),
    st.tuples(st.just("string_param"), st.sampled_from(["np", "pd", "", "card-1", "x" * 300])),
    st.tuples(st.just("string_param"), short_text),
    st.tuples(st.just(None), st.none()),  # a parameter with no value set
)
PARAMETERS = st.dictionaries(PARAMETER_KEYS, PARAMETER_VALUES, max_size=4)
FEW_PARAMETERS = st.one_of(st.just({}), st.just({}), PARAMETERS)  # of tensors and outputs


def set_parameters(target, drawn: dict) -> None:
    for key, (kind, value) in drawn.items():
        if kind is None:
            target[key].SetInParent()
        else:
            setattr(target[key], kind, value)


# typed contents: a field and values from a seeded generator (cheaper than drawing each one)
CONTENT_FIELDS = {
    "bool_contents": lambda rng, n: (rng.random(n) < 0.5).tolist(),
    "int_contents": lambda rng, n: rng.integers(-(2**31), 2**31 - 1, n).tolist(),
    "int64_contents": lambda rng, n: rng.integers(-(2**63), 2**63 - 1, n).tolist(),
    "uint_contents": lambda rng, n: rng.integers(0, 2**32 - 1, n).tolist(),
    "uint64_contents": lambda rng, n: rng.integers(0, 2**63, n).tolist(),
    "fp32_contents": lambda rng, n: rng.normal(size=n).tolist(),
    "fp64_contents": lambda rng, n: (rng.normal(size=n) * 1e300).tolist(),
    "bytes_contents": lambda rng, n: [bytes(rng.integers(0, 255, 8, dtype=np.uint8))] * n,
}
CONTENTS = st.lists(
    st.tuples(st.sampled_from(sorted(CONTENT_FIELDS)), st.integers(0, 90)), max_size=2
)
SHAPES = st.lists(st.one_of(st.integers(-2, 64), int64s), max_size=4)
SEEDS = st.integers(0, 2**32 - 1)
RAW_SIZES = st.one_of(st.integers(0, 300), st.sampled_from([120, 240, 4 * 1024 * 1024 + 1]))
PLAUSIBLE = st.tuples(
    st.integers(0, 4),  # rows
    st.sampled_from(["FP32", "FP32", "FP64"]),
    st.sampled_from(["rows,30", "rows,30", "flat", "rows,29", "-1,30"]),
    st.sampled_from([0, 0, 0, 0, 1, -1]),  # values more or fewer than the shape holds
    st.sampled_from([None] * 8 + [math.nan, math.inf, 1e39]),
    st.sampled_from(["typed", "typed", "typed", "raw", "both", "none"]),
    SEEDS,
)
ANYTHING = st.tuples(
    st.one_of(st.sampled_from([INPUT_NAME, *FEATURE_NAMES[:3]]), short_text),
    st.one_of(st.sampled_from(list(ALL_DATATYPES)), short_text),
    SHAPES,
    CONTENTS,
    st.one_of(st.none(), st.none(), st.none(), RAW_SIZES),
    SEEDS,
)
TENSORS = st.tuples(st.one_of(PLAUSIBLE, PLAUSIBLE, ANYTHING), FEW_PARAMETERS)


def add_tensor(request: pb.ModelInferRequest, drawn: tuple) -> None:
    """One input tensor, often well-formed (so the ledger path runs), often not."""
    spec, parameters = drawn
    tensor = request.inputs.add()
    set_parameters(tensor.parameters, parameters)
    if len(spec) == 7:  # a plausible fraud_features tensor
        rows, datatype, shape, off, poison, how, seed = spec
        tensor.name, tensor.datatype = INPUT_NAME, datatype
        tensor.shape.extend(
            {"rows,30": [rows, 30], "flat": [rows * 30], "rows,29": [rows, 29], "-1,30": [-1, 30]}[
                shape
            ]
        )
        values = np.random.default_rng(seed).normal(size=max(rows * 30 + off, 0))
        if poison is not None and values.size:
            values[0] = poison
        dtype = np.float64 if datatype == "FP64" else np.float32
        if how in ("typed", "both"):
            field = "fp64_contents" if datatype == "FP64" else "fp32_contents"
            getattr(tensor.contents, field).extend(values.astype(dtype).tolist())
        if how in ("raw", "both"):
            request.raw_input_contents.append(values.astype(dtype).tobytes())
        return
    name, datatype, shape, contents, raw_size, seed = spec
    tensor.name, tensor.datatype = name, datatype
    tensor.shape.extend(shape)
    rng = np.random.default_rng(seed)
    for field, count in contents:
        getattr(tensor.contents, field).extend(CONTENT_FIELDS[field](rng, count))
    if raw_size is not None:
        request.raw_input_contents.append(b"\x01" * raw_size)


OUTPUTS = st.lists(
    st.tuples(
        st.one_of(st.sampled_from(["probability", "is_fraud", "label"]), short_text),
        FEW_PARAMETERS,
    ),
    max_size=3,
)


@st.composite
def infer_requests(draw):
    request = pb.ModelInferRequest(
        model_name=draw(names), model_version=draw(versions), id=draw(ids)
    )
    set_parameters(request.parameters, draw(PARAMETERS))
    for tensor in draw(st.lists(TENSORS, min_size=0, max_size=3)):
        add_tensor(request, tensor)
    for name, parameters in draw(OUTPUTS):
        set_parameters(request.outputs.add(name=name).parameters, parameters)
    return request


METADATA_KEYS = st.one_of(
    st.sampled_from(["x-routing-key", "card-id", "authorization", "x-seldon-route", "k-bin"]),
    st.text("abcdefghijklmnopqrstuvwxyz0123456789-_.", min_size=1, max_size=30),
)
METADATA_VALUES = st.one_of(
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=200),
    st.sampled_from([f"Bearer {TOKEN}", "Bearer x", "card-7"]),
)
METADATA = st.dictionaries(
    METADATA_KEYS, st.tuples(METADATA_VALUES, st.binary(max_size=50)), max_size=3
)
RESERVED = ("grpc-", "te", "content-type", "user-agent")  # grpcio refuses to send them


def metadata_pairs(drawn: dict) -> list[tuple[str, str | bytes]]:
    pairs: list[tuple[str, str | bytes]] = []
    for key, (text, data) in drawn.items():
        if key.startswith(RESERVED) or key[0] in "-_.":
            continue
        pairs.append((key, data) if key.endswith("-bin") else (key, text.strip() or "v"))
    return pairs


REPOSITORY_PARAMETERS = st.dictionaries(
    st.sampled_from(["threshold", "runtime", "x"]),
    st.one_of(
        st.tuples(st.just("bool_param"), st.booleans()),
        st.tuples(st.just("int64_param"), int64s),
        st.tuples(st.just("string_param"), st.sampled_from(["0.5", "2", "nan", "native", ""])),
        st.tuples(st.just("string_param"), short_text),
        st.tuples(st.just("bytes_param"), st.binary(max_size=20)),
    ),
    max_size=2,
)


@st.composite
def calls(draw):
    """(method name, request) for one call; model management only on unknown names."""
    method = draw(
        st.sampled_from(
            ["ModelInfer"] * 10
            + [
                "ServerLive",
                "ServerReady",
                "ServerMetadata",
                "ModelReady",
                "ModelMetadata",
                "RepositoryIndex",
                "RepositoryModelLoad",
                "RepositoryModelUnload",
            ]
        )
    )
    if method == "ModelInfer":
        return method, draw(infer_requests())
    if method in ("ServerLive", "ServerReady", "ServerMetadata"):
        return method, getattr(pb, f"{method}Request")()
    if method in ("ModelReady", "ModelMetadata"):
        return method, getattr(pb, f"{method}Request")(name=draw(names), version=draw(versions))
    if method == "RepositoryIndex":
        return method, pb.RepositoryIndexRequest(
            repository_name=draw(short_text), ready=draw(st.booleans())
        )
    # unloading or reloading a served model is legal and tested elsewhere; here: other names
    name = draw(names.filter(lambda n: n not in (V1, V2)))
    request = getattr(pb, f"{method}Request")(repository_name=draw(short_text), model_name=name)
    for key, (kind, value) in draw(REPOSITORY_PARAMETERS).items():
        setattr(request.parameters[key], kind, value)
    return method, request


# -- the run -------------------------------------------------------------------------------------


def test_generated_grpc_calls_never_fail_the_server(fuzz_server):
    pid = fuzz_server.proc.pid
    channel = grpc.insecure_channel(
        fuzz_server.grpc_address, options=[("grpc.max_receive_message_length", 64 << 20)]
    )
    stub = pb_grpc.GRPCInferenceServiceStub(channel)
    before = rss_kib(pid)
    failures: list[str] = []
    start = time.monotonic()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(st.tuples(calls(), METADATA), min_size=5, max_size=15))
    def run(batch):
        for (method, request), drawn in batch:
            meta = metadata_pairs(drawn)
            COUNTS["sent"] += 1
            try:
                getattr(stub, method)(request, metadata=meta, timeout=10)
                COUNTS["OK"] += 1
            except grpc.RpcError as exc:
                code = exc.code()
                COUNTS[code.name] += 1
                if code in FORBIDDEN:
                    failures.append(f"{method} -> {code.name}: {exc.details()[:300]}")
            assert fuzz_server.proc.poll() is None, "the server died"

    run()
    elapsed = time.monotonic() - start
    after = rss_kib(pid)
    # still serving afterwards: a plain, valid request is answered
    request = pb.ModelInferRequest(model_name=V1)
    tensor = request.inputs.add(name=INPUT_NAME, datatype="FP32", shape=[1, 30])
    tensor.contents.fp32_contents.extend([0.1] * 30)
    assert stub.ModelInfer(request, timeout=10).model_name in (V1, V2)
    channel.close()
    summary = ", ".join(f"{k} {v}" for k, v in COUNTS.most_common())
    print(
        f"\ngRPC fuzz: {COUNTS['sent']} calls in {elapsed:.1f}s ({summary}); "
        f"RSS {before} -> {after} KiB"
    )
    assert not failures, failures[:10]
    assert COUNTS["sent"] >= 2000
    assert after - before < RSS_GROWTH_BOUND_KIB, f"RSS grew by {after - before} KiB"
