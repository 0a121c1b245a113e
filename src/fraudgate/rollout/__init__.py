"""Acting on the evaluation: promote, roll back, and ramp the challenger step by step.

* `fraudgate.rollout.acting`: one promote / rollback through a running server's admin API,
  with the evaluation it is based on (what `fraudgate promote` / `fraudgate rollback` run);
* `fraudgate.rollout.signals`: the replicas' request and failure counters (the error rate the
  ledger cannot see: failed requests record no decision);
* `fraudgate.rollout.controller`: `fraudgate rollout`, the ramp through the config's
  ``rollout.steps`` with the guardrails checked at every look, its state in the ledger.

Above the evaluation and the client, below the CLI and the demo. Nothing here is imported by
``fraudgate --help``.
"""
