"""`fraudgate rollout`: ramp the challenger through the configured steps, guarded at every look.

Every ``rollout.check_interval_s`` the controller evaluates the experiment from the ledger
(`fraudgate.evaluation.evaluate`, with the live weights) and re-judges it
(`fraudgate.analysis.decision.decide`) with the fast guardrails measured over the current step
alone: the traffic split (SRM on the step's served decisions per arm against the step's
weights; the whole window mixes the steps' splits), the challenger's error rate (the replicas'
5xx failures over requests, `fraudgate.rollout.signals`) and, with the shadow, the alert-rate
change on the step's paired transactions (its own confidence sequence per step; without a
shadow the evaluation's whole-window split one). Then:

* ROLLBACK (a guardrail breached, or the primary metric credibly worse): roll back at once
  (`fraudgate.rollout.acting`), wait until every replica routes all traffic to the champion;
* PROMOTE (the primary metric credibly better, no guardrail objecting): promote;
* otherwise hold the step until its minimum duration and sample are reached with no
  guardrail blocking, then advance; after the last step promote (``promote: at_end``) or hold
  until the primary metric says PROMOTE (``on_primary``; STOP ends the rollout, traffic back on
  the champion).

State lives in the ledger (`LedgerStore.start_rollout` / `advance_rollout`): a step is recorded
(compare-and-set on the step index) before its weights are applied, and its baseline counters
once every replica routes with them. A controller killed at any point and started again resumes
the recorded step (re-applying its weights if the kill came before, keeping its start time),
so no step is repeated or skipped; an act already done (its record newer than the rollout's
start) ends the rollout instead of being done twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from fraudgate.config import FraudgateConfig, RolloutStep
from fraudgate.promotion import champion_and_challenger, last_act, recorded_state
from fraudgate.protocol.limits import MAX_REASON_CHARS
from fraudgate.rollout.acting import act_on_server, evaluate_now, snapshot
from fraudgate.rollout.signals import ServingCounters, read_counters

if TYPE_CHECKING:
    from fraudgate.analysis.decision import Decision
    from fraudgate.client import FraudgateClient
    from fraudgate.evaluation import Evaluation
    from fraudgate.ledger import LedgerStore, RolloutRecord

ROLLOUT_ACTOR = "fraudgate-rollout"
MAX_REASON = MAX_REASON_CHARS  # what the ledger and the admin API accept
WEIGHTS_TIMEOUT_S = 30.0
_PAIRED_CELLS = ("both", "only_a", "only_b", "neither")


class RolloutError(RuntimeError):
    """The rollout cannot proceed (another plan running, replicas not following); says why."""


@dataclass(frozen=True, slots=True)
class StepCheck:
    """One look at the current step: the decision, the step's sample and error rate."""

    at: float
    step: int
    weights: dict[str, int]
    decision: Decision
    elapsed_s: float
    sample: int
    error_rate: float | None
    minimum_met: bool
    took_s: float = 0.0  # how long this look took (evaluation and scrapes)

    @property
    def blockers(self) -> list[str]:
        return [c.detail for c in self.decision.guardrails if c.blocks_promotion]


@dataclass(frozen=True, slots=True)
class RolloutEvent:
    """What the controller did or saw, for the CLI to show (``kind``: start | resume | step |
    hold | promote | rollback | end | dry-run)."""

    kind: str
    step: int
    message: str
    weights: dict[str, int] | None = None


@dataclass(frozen=True, slots=True)
class RolloutResult:
    status: str  # promoted | rolled_back | stopped
    rollout_id: int
    reason: str
    breach_detected_at: float | None = None
    champion_back_at: float | None = None


def _cut(text: str) -> str:
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


class RolloutController:
    """Runs one rollout of ``config``'s experiment (see the module docstring)."""

    def __init__(
        self,
        config: FraudgateConfig,
        store: LedgerStore,
        client: FraudgateClient,
        *,
        token: str | None,
        actor: str = ROLLOUT_ACTOR,
        on_event: Callable[[RolloutEvent], None] = lambda event: None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        spec = config.experiment_spec
        if spec is None:
            raise RolloutError("experiment: expected an experiment section to roll out")
        self.config, self.store, self.client = config, store, client
        self.spec = spec
        self.plan = config.rollout
        self.token = token
        self.actor = actor
        self.on_event = on_event
        self.clock, self.sleep = clock, sleep
        self.should_stop = should_stop
        self.servers: Sequence[str] = self.plan.servers or (config.server.client_url,)
        state = recorded_state(last_act(store, spec.name))
        if state is not None and state.promoted:
            raise RolloutError(
                f"{state.champion} was promoted already: there is no challenger to roll out "
                f"(roll back first to ramp {state.challenger} again)"
            )
        if state is not None:
            self.champion, self.challenger = state.champion, state.challenger
        else:
            self.champion, self.challenger = champion_and_challenger(spec, config.analysis)

    # -- the plan -------------------------------------------------------------------------------
    def weights_of(self, step: RolloutStep) -> dict[str, int]:
        return {self.champion: 100 - step.weight, self.challenger: step.weight}

    def describe(self) -> list[RolloutEvent]:
        """The dry run: each step, its weights and what lets it advance; the decision now."""
        events = []
        steps = self.plan.steps
        for i, step in enumerate(steps):
            last = i == len(steps) - 1
            then = (
                "then promote"
                if last and self.plan.promote == "at_end"
                else "then hold until the primary metric says PROMOTE"
                if last
                else "then advance"
            )
            events.append(
                RolloutEvent(
                    "dry-run",
                    i,
                    f"step {i}: {self.challenger} {step.weight}% for at least "
                    f"{step.min_duration_s:g} s and {step.min_sample} decisions with no guardrail "
                    f"blocking, {then}; roll back at the first breached guardrail",
                    self.weights_of(step),
                )
            )
        record = self.store.running_rollout(self.spec.name)
        current = record.step if record is not None and record.step >= 0 else 0
        evaluation = evaluate_now(self.config, self.store, self.weights_of(steps[current]))
        decision = evaluation.decision
        verb = {
            "ROLLBACK": "roll back now",
            "PROMOTE": "promote now",
            "STOP": "stop",
            "CONTINUE": "begin step 0" if record is None else f"continue step {current}",
        }[decision.outcome.value]
        events.append(
            RolloutEvent(
                "dry-run",
                current,
                f"now: the evaluation says {decision.outcome.value}, so it would {verb}: "
                + "; ".join(decision.reasons),
            )
        )
        return events

    # -- the loop -------------------------------------------------------------------------------
    def run(self) -> RolloutResult:
        name = self.spec.name
        plan = self.plan.to_json()
        record = self.store.running_rollout(name)
        if record is None:
            try:
                record = self.store.start_rollout(name, self.actor, plan, {})
            except ValueError as exc:
                raise RolloutError(str(exc)) from None
            self._emit("start", -1, f"rollout {record.id} of {self.challenger} begins")
        elif record.plan != plan:
            raise RolloutError(
                f"rollout {record.id} of {name} is running with another plan "
                f"({record.plan}); run it with its own config, or end it first"
            )
        else:
            self._emit("resume", record.step, f"resuming rollout {record.id} at step {record.step}")
        done = self._already_acted(record)
        if done is not None:
            return done
        if record.step < 0:
            record = self._enter(record, 0, "rollout begins")
        while True:
            record = self._settle(record)
            check = self._check(record)
            outcome = check.decision.outcome.value
            reasons = "; ".join(check.decision.reasons)
            if outcome == "ROLLBACK":
                return self._rollback(record, check, reasons)
            if outcome == "PROMOTE":
                return self._promote(record, check, f"the evaluation says PROMOTE: {reasons}")
            last = record.step == len(self.plan.steps) - 1
            if outcome == "STOP" and last:
                return self._rollback(
                    record, check, f"no detectable difference: {reasons}", "stopped"
                )
            if check.minimum_met and not check.blockers:
                if not last:
                    why = (
                        f"step {record.step} passed: {check.elapsed_s:.0f} s, {check.sample} "
                        f"decisions, no guardrail objecting"
                    )
                    record = self._enter(record, record.step + 1, why)
                    continue
                if self.plan.promote == "at_end":
                    why = f"the last step passed with no guardrail objecting ({reasons})"
                    return self._promote(record, check, why)
            held = "; ".join(check.blockers) or (
                "minimum not reached" if not check.minimum_met else reasons
            )
            self._emit(
                "hold",
                record.step,
                f"holding step {record.step} ({check.elapsed_s:.0f} s, {check.sample} "
                f"decisions; looked in {check.took_s:.2f} s): {held}",
            )
            if self.should_stop():
                raise RolloutError(
                    f"rollout {record.id} stopped by the caller at step {record.step}; it stays "
                    "recorded: `fraudgate rollout` with the same config resumes it"
                )
            self.sleep(self.plan.check_interval_s)

    # -- steps ----------------------------------------------------------------------------------
    def _enter(self, record: RolloutRecord, index: int, why: str) -> RolloutRecord:
        """Record step ``index`` (compare-and-set), then apply its weights and wait for the
        replicas (`_settle`)."""
        weights = self.weights_of(self.plan.steps[index])
        moved = self.store.advance_rollout(
            record,
            step=index,
            status="running",
            baseline={},
            action="rollout_step",
            reason=_cut(f"step {index}: {self.challenger} {weights[self.challenger]}% ({why})"),
            detail={"weights": weights},
        )
        if moved is None:
            raise RolloutError(
                f"rollout {record.id}: the ledger's rollout moved on meanwhile (another "
                "controller is running it?); nothing done"
            )
        self._emit("step", index, f"step {index}: {why}", weights)
        return moved

    def _settle(self, record: RolloutRecord) -> RolloutRecord:
        """Make the step's weights live on every replica (again, after a kill), then take the
        step's baseline counters once (recorded: a resumed step keeps measuring from it)."""
        if record.baseline.get("ready"):
            return record
        weights = self.weights_of(self.plan.steps[record.step])
        if self.client.get_experiment(self.spec.name).weights != weights:
            self.client.set_weights(self.spec.name, weights, self.actor)
        self.wait_for_weights(weights)
        evaluation = evaluate_now(self.config, self.store, weights)
        paired = evaluation.counts.paired.transactions
        baseline = {
            "ready": True,
            "served": {n: evaluation.counts.arm(n).counts.total for n in weights},
            "paired": {cell: getattr(paired, cell) for cell in _PAIRED_CELLS},
            "counters": read_counters(self.servers, self.token).to_json(),
        }
        moved = self.store.advance_rollout(
            record,
            step=record.step,
            status="running",
            baseline=baseline,
            action="rollout_live",
            reason=f"step {record.step}: every replica routes {weights}",
            detail={"weights": weights},
        )
        if moved is None:
            raise RolloutError(f"rollout {record.id}: the ledger's rollout moved on meanwhile")
        return moved

    def wait_for_weights(self, weights: dict[str, int]) -> float:
        """Block until every replica reports ``weights``; the time they all did."""
        from fraudgate.client import FraudgateClient, FraudgateError

        deadline = self.clock() + WEIGHTS_TIMEOUT_S
        pending = list(self.servers)
        while pending:
            still = []
            for url in pending:
                try:
                    with FraudgateClient(url, token=self.token, timeout=5.0) as client:
                        live = client.get_experiment(self.spec.name).weights
                except FraudgateError:
                    live = None
                if live != weights:
                    still.append(url)
            pending = still
            if pending:
                if self.clock() > deadline:
                    raise RolloutError(
                        f"replicas {pending} did not route with {weights} within "
                        f"{WEIGHTS_TIMEOUT_S:g} s; check they share the ledger (weights_poll_s)"
                    )
                self.sleep(0.05)
        return self.clock()

    def _check(self, record: RolloutRecord) -> StepCheck:
        from fraudgate.analysis.decision import decide
        from fraudgate.analysis.srm import ArmUnits, sample_ratio_mismatch

        began = self.clock()
        step = self.plan.steps[record.step]
        weights = self.weights_of(step)
        evaluation = evaluate_now(self.config, self.store, weights)
        self._last_evaluation = evaluation
        served = record.baseline.get("served", {})
        deltas = {
            n: max(evaluation.counts.arm(n).counts.total - int(served.get(n, 0)), 0)
            for n in weights
        }
        analysis = self.config.analysis
        srm = sample_ratio_mismatch(
            [ArmUnits(n, deltas[n], float(w)) for n, w in weights.items()],
            analysis.guardrails.srm_p,
        )
        counters = read_counters(self.servers, self.token)
        baseline = ServingCounters.from_json(record.baseline.get("counters"))
        requests, failures = counters.since(baseline, self.challenger)
        error_rate = failures / requests if requests > 0 else None
        evidence = replace(evaluation.evidence, srm=srm, error_rate=error_rate)
        evidence = self._step_alert_rate(evidence, evaluation, record.baseline.get("paired"))
        decision = decide(evidence, analysis.decision_policy())
        now = self.clock()
        sample = sum(deltas.values())
        elapsed = now - record.step_started_at
        return StepCheck(
            at=now,
            step=record.step,
            weights=weights,
            decision=decision,
            elapsed_s=elapsed,
            sample=sample,
            error_rate=error_rate,
            minimum_met=elapsed >= step.min_duration_s and sample >= step.min_sample,
            took_s=now - began,
        )

    def _step_alert_rate(self, evidence: Any, evaluation: Evaluation, start: Any) -> Any:
        """With the shadow (paired design), the alert-rate change over the step's transactions
        alone: a challenger that turns bad is not diluted by the good window before it."""
        from fraudgate.analysis.counts import PairedTable
        from fraudgate.analysis.sequential import SequentialPlan, paired_confidence_sequence

        if evaluation.design != "paired" or not start:
            return evidence
        now = evaluation.counts.paired.transactions
        delta = PairedTable(
            **{cell: max(getattr(now, cell) - int(start.get(cell, 0)), 0) for cell in _PAIRED_CELLS}
        )
        if delta.total == 0:
            return evidence
        analysis = self.config.analysis
        plan = SequentialPlan(float(analysis.planned_transactions), analysis.alpha)
        return replace(
            evidence,
            alert_rate=paired_confidence_sequence(delta, plan),
            champion_alert_rate=delta.flagged_a / delta.total,
        )

    # -- endings --------------------------------------------------------------------------------
    def _act(self, action: str, reason: str) -> None:
        evaluation: Evaluation | None = getattr(self, "_last_evaluation", None)
        act_on_server(
            self.client,
            self.config,
            self.store,
            action,
            experiment=self.spec.name,
            reason=_cut(reason),
            actor=self.actor,
            force=True,  # the controller's own decision rule decided
            evaluation=evaluation,
        )

    def _rollback(
        self, record: RolloutRecord, check: StepCheck, reason: str, status: str = "rolled_back"
    ) -> RolloutResult:
        self._emit("rollback", record.step, f"rolling back at step {record.step}: {reason}")
        self._act("rollback", reason)
        back = self.wait_for_weights({self.champion: 100, self.challenger: 0})
        detail = {"breach_detected_at": check.at, "champion_back_at": back}
        self._end(record, status, reason, detail)
        return RolloutResult(status, record.id, reason, check.at, back)

    def _promote(self, record: RolloutRecord, check: StepCheck, reason: str) -> RolloutResult:
        self._emit("promote", record.step, f"promoting {self.challenger}: {reason}")
        self._act("promote", reason)
        self.wait_for_weights({self.challenger: 100, self.champion: 0})
        self._end(record, "promoted", reason, {})
        return RolloutResult("promoted", record.id, reason)

    def _end(self, record: RolloutRecord, status: str, reason: str, detail: dict[str, Any]) -> None:
        self.store.advance_rollout(
            record,
            step=record.step,
            status=status,
            baseline=record.baseline,
            action="rollout_end",
            reason=_cut(f"rollout {record.id} {status.replace('_', ' ')}: {reason}"),
            detail=detail,
        )
        self._emit("end", record.step, f"rollout {record.id} {status.replace('_', ' ')}")

    def _already_acted(self, record: RolloutRecord) -> RolloutResult | None:
        """A promote/rollback recorded after the rollout began (the controller was killed
        after acting): end the rollout with it instead of acting twice."""
        act = last_act(self.store, self.spec.name)
        if act is None or act.at < record.started_at:
            return None
        status = "promoted" if act.action == "promote" else "rolled_back"
        self._end(record, status, act.reason, {"act_at": act.at})
        return RolloutResult(status, record.id, act.reason)

    def _emit(self, kind: str, step: int, message: str, weights: dict[str, int] | None = None):
        self.on_event(RolloutEvent(kind, step, message, weights))


__all__ = [
    "ROLLOUT_ACTOR",
    "RolloutController",
    "RolloutError",
    "RolloutEvent",
    "RolloutResult",
    "StepCheck",
    "snapshot",
]
