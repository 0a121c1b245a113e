"""Promotion and rollback: which model is champion, where the aliases point, who gets traffic.

The mechanics shared by the server's admin API (``POST /admin/experiments/{name}/promote`` and
``.../rollback``, which `fraudgate promote` / `fraudgate rollback` and the rollout call) and by
the server's start-up. No I/O of its own beyond the `Registry` and `LedgerStore` it is handed.

What an act changes (serving names never change; a name keeps the MLflow version it was loaded
from, so ``fraud-v1-baseline`` answers with the same model before and after):

* promote: the challenger becomes the champion. Registry: ``@champion`` -> the challenger's
  version, ``@previous`` -> the old champion's, ``@challenger`` removed. Traffic: 100% to the new
  champion, 0% to the old one (which keeps scoring the shadow copies, if the experiment mirrors).
* rollback after a promotion: the exact reverse (``@champion`` back, ``@challenger`` -> the
  demoted model, ``@previous`` removed), 100% to the old champion.
* rollback before a promotion (a ramp stopped): aliases unchanged, 100% to the champion.

The act is recorded in the ledger (time, actor, reason, the evaluation it was based on, and
the `ServingState` it leaves) in one transaction with its weight change, so replicas sharing
the ledger move traffic at their next weight poll. Before acting, the registry, this server and
the ledger's last act must agree on what is live (`check_agreement`), else `PromotionConflict`
says what differs and what to do. A server starting later pins each configured name to the
version the last act left (`startup_models`), or refuses to start if the registry disagrees.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from fraudgate.config import ConfigError, FraudgateConfig, ModelConfig
from fraudgate.config.schema import AnalysisConfig
from fraudgate.registry import REGISTERED_MODEL

if TYPE_CHECKING:
    from fraudgate.experiments import ExperimentSpec
    from fraudgate.ledger import ExperimentAction, LedgerStore
    from fraudgate.registry import Registry

ALIAS_URI = f"models:/{REGISTERED_MODEL}@"
ACTS = ("promote", "rollback")


class PromotionConflict(RuntimeError):
    """The registry, the servers and the ledger disagree, or the act makes no sense now; the
    message says what differs and what to do."""


def champion_and_challenger(spec: ExperimentSpec, analysis: AnalysisConfig) -> tuple[str, str]:
    """The configured pair, else the experiment's default (or heaviest) candidate and the
    heaviest other one."""
    ranked = sorted(spec.candidates, key=lambda c: -c.weight)
    champion = analysis.champion or spec.default or ranked[0].name
    others = [c.name for c in ranked if c.name != champion]
    if spec.mirror is not None and spec.mirror.name is not None and spec.mirror.name != champion:
        others.append(spec.mirror.name)
    challenger = analysis.challenger or (others[0] if others else None)
    if challenger is None:
        raise ConfigError(
            f"analysis.challenger: expected a model other than the champion {champion!r} in "
            f"experiment {spec.name!r}, received none"
        )
    return champion, challenger


@dataclass(frozen=True, slots=True)
class ServingState:
    """What is live for an experiment: roles, the MLflow version behind each serving name, the
    registry aliases and the weights. ``promoted``: the champion got there by a promotion (so a
    rollback swaps back, and ``@previous`` names the model it replaced)."""

    champion: str
    challenger: str
    versions: Mapping[str, str] = field(hash=False)
    weights: Mapping[str, int] = field(hash=False)
    promoted: bool = False

    @property
    def aliases(self) -> dict[str, str]:
        """The aliases the registry holds in this state."""
        champion, other = self.versions[self.champion], self.versions[self.challenger]
        if self.promoted:
            return {"champion": champion, "previous": other}
        return {"champion": champion, "challenger": other}

    def to_json(self) -> dict[str, Any]:
        return {
            "champion": self.champion,
            "challenger": self.challenger,
            "versions": dict(self.versions),
            "aliases": self.aliases,
            "weights": dict(self.weights),
            "promoted": self.promoted,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ServingState:
        return cls(
            champion=str(data["champion"]),
            challenger=str(data["challenger"]),
            versions={str(k): str(v) for k, v in dict(data["versions"]).items()},
            weights={str(k): int(v) for k, v in dict(data["weights"]).items()},
            promoted=bool(data.get("promoted", False)),
        )


def initial_state(
    spec: ExperimentSpec, analysis: AnalysisConfig, versions: Mapping[str, str]
) -> ServingState:
    """The state before any act: the config's roles and weights, the served versions."""
    champion, challenger = champion_and_challenger(spec, analysis)
    return ServingState(champion, challenger, dict(versions), dict(spec.weights))


def last_act(store: LedgerStore, experiment: str) -> ExperimentAction | None:
    acts = store.experiment_actions(experiment, actions=ACTS, limit=1)
    return acts[-1] if acts else None


def recorded_state(act: ExperimentAction | None) -> ServingState | None:
    return None if act is None else ServingState.from_json(act.detail["state"])


def _since(act: ExperimentAction | None) -> str:
    if act is None:
        return "as configured (no promotion or rollback recorded)"
    from fraudgate.weights import iso_utc

    return f"as the last {act.action} left it ({iso_utc(act.at)}, by {act.actor})"


def check_agreement(
    state: ServingState,
    served: Mapping[str, str],
    aliases: Mapping[str, str],
    act: ExperimentAction | None,
) -> None:
    """PromotionConflict unless this server serves ``state``'s versions and the registry holds
    its aliases (``served``: serving name -> MLflow version; ``aliases``: the registry's)."""
    since = _since(act)
    for name in (state.champion, state.challenger):
        live, expected = served.get(name), state.versions.get(name)
        if live != expected:
            raise PromotionConflict(
                f"{name}: this server serves MLflow version {live} but the experiment expects "
                f"version {expected} {since}; reload it (POST /v2/repository/models/{name}/load "
                f'with {{"parameters": {{"uri": "models:/{REGISTERED_MODEL}/{expected}"}}}}) '
                "on every replica, or restart them, then retry"
            )
    for alias, expected in state.aliases.items():
        actual = aliases.get(alias)
        if actual != expected:
            role = state.champion if alias == "champion" else state.challenger
            raise PromotionConflict(
                f"registry: @{alias} of {REGISTERED_MODEL!r} is version {actual} but the "
                f"servers serve {role} at version {expected} {since}; someone moved the alias "
                f"outside fraudgate: point @{alias} back at version {expected} (MlflowClient()"
                f".set_registered_model_alias({REGISTERED_MODEL!r}, {alias!r}, {expected!r})), "
                "or serve the registry's version by reloading the model on every replica, "
                "then retry"
            )


def plan(action: str, state: ServingState, act: ExperimentAction | None) -> ServingState:
    """The state ``action`` (promote | rollback) leaves; PromotionConflict when it makes no
    sense (promoting what is already promoted)."""
    if action == "promote":
        if state.promoted:
            raise PromotionConflict(
                f"{state.champion} is already the champion {_since(act)}; there is no "
                f"challenger to promote (roll back to return to {state.challenger})"
            )
        return ServingState(
            champion=state.challenger,
            challenger=state.champion,
            versions=state.versions,
            weights={state.challenger: 100, state.champion: 0},
            promoted=True,
        )
    if action != "rollback":
        raise ValueError(f"action: expected one of {list(ACTS)}, received {action!r}")
    if state.promoted:  # undo the promotion
        return ServingState(
            champion=state.challenger,
            challenger=state.champion,
            versions=state.versions,
            weights={state.challenger: 100, state.champion: 0},
            promoted=False,
        )
    return replace(state, weights={state.champion: 100, state.challenger: 0})


def alias_moves(before: ServingState, after: ServingState) -> dict[str, str | None]:
    """Alias -> version (None: removed) taking the registry from ``before`` to ``after``."""
    old, new = before.aliases, after.aliases
    moves: dict[str, str | None] = {a: v for a, v in new.items() if old.get(a) != v}
    moves.update({a: None for a in old if a not in new})
    return moves


def act(
    action: str,
    before: ServingState,
    after: ServingState,
    *,
    experiment: str,
    registry: Registry,
    store: LedgerStore,
    actor: str,
    reason: str,
    evaluation: Mapping[str, Any] | None,
    aliases: Mapping[str, str],
) -> ExperimentAction:
    """Move the aliases, then record the act with its weights; if the record fails, the
    aliases are put back (``aliases``: the registry's before), so the two never diverge."""
    moves = alias_moves(before, after)
    undo: dict[str, str | None] = {alias: aliases.get(alias) for alias in moves}
    try:
        registry.set_aliases(moves)
        detail = {
            "state": after.to_json(),
            "before": before.to_json(),
            "alias_moves": moves,
            "evaluation": dict(evaluation) if evaluation is not None else None,
        }
        return store.record_experiment_action(
            experiment, action, actor, reason, detail, weights=dict(after.weights)
        )
    except BaseException:
        registry.set_aliases(undo)
        raise


def startup_models(
    config: FraudgateConfig, state: ServingState, aliases: Mapping[str, str], act_: Any
) -> tuple[ModelConfig, ...]:
    """The config's models with each name the last act covers pinned to the MLflow version it
    left (``models:/fraud-detection/<version>``), so a restarted server serves what the live
    ones serve. PromotionConflict if the registry's aliases or a pinned config disagree."""
    since = _since(act_)
    served = {m.name for m in config.models}
    missing = [n for n in (state.champion, state.challenger) if n not in served]
    if missing:
        raise PromotionConflict(
            f"models: the experiment's {missing} are not in the config, but the ledger holds "
            f"them {since}; add them back to models[]"
        )
    for alias, expected in state.aliases.items():
        if aliases.get(alias) != expected:
            raise PromotionConflict(
                f"registry: @{alias} of {REGISTERED_MODEL!r} is version {aliases.get(alias)} "
                f"but the ledger says version {expected} {since}; starting would serve the "
                f"wrong model. Point @{alias} back at version {expected}, or run `fraudgate "
                "promote`/`fraudgate rollback` against a running replica to record the change"
            )
    pinned = []
    for model in config.models:
        version = state.versions.get(model.name)
        if version is None:
            pinned.append(model)
            continue
        uri = f"models:/{REGISTERED_MODEL}/{version}"
        if model.uri.startswith(ALIAS_URI) or model.uri == uri:
            pinned.append(replace(model, uri=uri))
            continue
        raise PromotionConflict(
            f"models[{model.name}].uri: expected an alias of {REGISTERED_MODEL!r} or {uri!r} "
            f"(the version the live servers serve {since}), received {model.uri!r}"
        )
    return tuple(pinned)


__all__ = [
    "ACTS",
    "PromotionConflict",
    "ServingState",
    "act",
    "alias_moves",
    "champion_and_challenger",
    "check_agreement",
    "initial_state",
    "last_act",
    "plan",
    "recorded_state",
    "startup_models",
]
