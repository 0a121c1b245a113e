"""The weight poll never undoes a newer local change with an older read of the ledger."""

from __future__ import annotations

import asyncio
import threading

from fraudgate.experiments import ExperimentSpec, ExperimentState
from fraudgate.ledger import LedgerStore, open_ledger
from fraudgate.serving.admin import ExperimentAdmin
from fraudgate.serving.routing import Routing

V1, V2 = "fraud-v1-baseline", "fraud-v2-candidate"
EXPERIMENT = "fraud-detection-ab-test"


class HeldReads:
    """The real ledger, whose weight-history reads return only once ``release`` is set: a slow
    database read, during which this replica makes a change of its own."""

    def __init__(self, store: LedgerStore) -> None:
        self.store = store
        self.read_done = threading.Event()
        self.release = threading.Event()

    def weight_history(self, experiment: str):  # type: ignore[no-untyped-def]
        history = self.store.weight_history(experiment)
        self.read_done.set()
        self.release.wait(10)
        return history

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.store, name)


def test_a_poll_that_read_before_a_local_change_does_not_revert_it(tmp_path) -> None:
    spec = ExperimentSpec.from_config(
        {
            "name": EXPERIMENT,
            "default": V1,
            "candidates": [{"name": V1, "weight": 80}, {"name": V2, "weight": 20}],
        }
    )
    store = open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    held = HeldReads(store)
    state = ExperimentState(spec)
    routing = Routing(state, held, poll_s=0.01)
    held.release.set()  # reconcile's own read is not held
    routing.reconcile()  # records the configured 80/20

    async def scenario() -> list[str]:
        held.release.clear()
        held.read_done.clear()
        routing.start_polling()
        await asyncio.to_thread(held.read_done.wait, 10)  # the poll has read 80/20 ...
        admin = ExperimentAdmin(routing, store)
        await admin.set_weights(EXPERIMENT, {"weights": {V1: 20, V2: 80}, "actor": "alice"})
        held.release.set()  # ... and now returns it, after the change
        await asyncio.sleep(0.2)  # many polls later
        routing.stop_polling()
        return [f"{change.actor}: {dict(change.new)}" for change in state.history]

    try:
        # the one change, never briefly reverted to 80/20 by the stale read
        assert asyncio.run(scenario()) == [f"alice: { {V1: 20, V2: 80} }"]
        assert store.weight_history(EXPERIMENT)[-1].actor == "alice"
    finally:
        store.close()
