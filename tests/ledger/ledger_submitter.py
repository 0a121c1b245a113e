"""Child process for the durability test: submit decisions forever, print each acknowledged id.

Usage: python ledger_submitter.py LEDGER_URL [CONCURRENCY]

32 asyncio tasks (like a server's request handlers) each loop: build a decision, ``await
writer.submit(decision)``, then print its request id (the "200"). Mirror decisions go through
the fire-and-forget path as well. The parent SIGKILLs this process mid-stream and checks that
every printed id is in the ledger.
"""

from __future__ import annotations

import asyncio
import sys
import time

from fraudgate.ledger import Decision, DecisionWriter, open_ledger


async def worker(writer: DecisionWriter, worker_id: int) -> None:
    out = sys.stdout
    i = 0
    while True:
        request_id = f"w{worker_id}-{i}"
        now = time.time()
        served = Decision(
            request_id=request_id,
            transaction_id=f"tx-{request_id}",
            decided_at=now,
            experiment="durability",
            arm="fraud-v1-baseline",
            role="served",
            model_name="fraud-v1-baseline",
            model_version="1",
            score=0.1,
            threshold=0.5,
            is_fraud_decision=False,
            latency_ms=0.5,
            amount=10.0,
            routing_key_hash=None,
        )
        writer.record_mirror(
            Decision(
                **{
                    **{f: getattr(served, f) for f in Decision.__slots__},
                    "role": "mirror",
                    "arm": None,
                    "model_name": "fraud-v2-candidate",
                }
            )
        )
        await writer.submit(served)
        out.write(request_id + "\n")
        out.flush()
        i += 1


async def main(url: str, concurrency: int) -> None:
    store = open_ledger(url)
    writer = DecisionWriter(store)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    await asyncio.gather(*(worker(writer, w) for w in range(concurrency)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 32))
