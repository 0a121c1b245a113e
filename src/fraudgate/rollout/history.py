"""An experiment's history from the ledger: weight changes and acts, merged by time."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fraudgate.report.experiment import HistoryEntry, weights_text

if TYPE_CHECKING:
    from fraudgate.ledger import ExperimentAction, LedgerStore


def _what(act: ExperimentAction) -> str:
    detail = act.detail
    state = detail.get("state")
    if isinstance(state, dict):
        aliases = ", ".join(f"@{a}=v{v}" for a, v in sorted(state.get("aliases", {}).items()))
        return f"champion {state.get('champion')}; {aliases}; {weights_text(state['weights'])}"
    if "weights" in detail:
        return f"step {detail.get('step')}: {weights_text(detail['weights'])}"
    if "breach_detected_at" in detail:
        took = detail["champion_back_at"] - detail["breach_detected_at"]
        return f"traffic back on the champion {took:.2f} s after the breach was seen"
    return f"rollout {detail.get('rollout', '')}".strip()


def experiment_history(store: LedgerStore, experiment: str, limit: int) -> list[HistoryEntry]:
    """The latest ``limit`` entries, oldest first (a weight change an act made is shown once,
    as the act)."""
    acts = store.experiment_actions(experiment, limit=limit)
    entries = [HistoryEntry(a.at, a.action, a.actor, _what(a), a.reason) for a in acts]
    acted_at = {a.at for a in acts}
    for change in store.weight_history(experiment)[-limit:]:
        if change.at in acted_at:
            continue
        entries.append(
            HistoryEntry(
                change.at,
                "weights",
                change.actor,
                f"{weights_text(change.old)} -> {weights_text(change.new)}",
                "",
            )
        )
    entries.sort(key=lambda e: e.at)
    return entries[-limit:]
