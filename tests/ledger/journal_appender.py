"""Child process for the journal tests: append decisions forever, print each acknowledged id.

Usage: python journal_appender.py JOURNAL_DIR LEDGER_ID [--spawn-shipper LEDGER_URL]

Each row is appended (one ``Journal.append``, as the server does per loop tick) and only then its
request id printed: the "200". The parent SIGKILLs this process mid-stream and checks that every
printed id reaches the ledger. With ``--spawn-shipper`` it first starts the child shipper exactly
as `fraudgate serve` does.
"""

from __future__ import annotations

import sys
import time

from fraudgate.ledger import Decision, DecisionBatch
from fraudgate.ledger.journal import Journal, spawn_shipper


def main() -> None:
    journal_dir, ledger_id = sys.argv[1], sys.argv[2]
    if len(sys.argv) > 4 and sys.argv[3] == "--spawn-shipper":
        spawn_shipper(sys.argv[4], journal_dir)
    journal = Journal(journal_dir, ledger_id, segment_bytes=256 << 10)  # rotates often
    out = sys.stdout
    i = 0
    while True:
        request_id = f"a{i}"
        row = Decision(
            request_id,
            f"t{i}",
            time.time(),
            "exp",
            "m1",
            "served",
            "m1",
            "1",
            0.5,
            0.5,
            True,
            0.2,
            12.5,
            "ab",
        )
        journal.append([DecisionBatch.of([row])])
        out.write(request_id + "\n")
        out.flush()
        i += 1


if __name__ == "__main__":
    main()
