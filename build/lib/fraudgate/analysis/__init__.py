"""Statistics over counts, no I/O: the ledger produces counts, these turn them into results.

Modules, each one concern (importing this package imports none of them):

- ``counts``: the sufficient statistics (stdlib only): ConfusionCounts, PairedTable,
  PairedCounts, LatencyHistogram; frozen, they add with ``+`` across replicas and windows.
- ``latency``: p50/p95/p99 from a LatencyHistogram (stdlib only).
- ``proportions``: one arm's precision, recall, F1, alert rate, value detection rate.
- ``compare``: split design, independent arms (Newcombe, z-test or Fisher, relative lift).
- ``paired``: shadow design, same transactions (McNemar, Newcombe's paired interval).
- ``sequential``: always-valid confidence sequences for the primary metric's difference.
- ``srm``: sample ratio mismatch on randomisation units.
- ``power``: frauds and days needed, split against paired.
- ``cost``: value and cost per day and year with intervals.
- ``decision``: PROMOTE / CONTINUE / ROLLBACK / STOP with the reasons.
- ``classification``: offline evaluation on scored rows (ranking metrics, bootstrap).
"""
