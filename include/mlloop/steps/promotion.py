"""Promotion steps: evaluate the challenger (the gate), promote it, reject it, roll the champion back.

The gate's policy is :func:`mlloop.promotion.decide`; the re-scoring is :mod:`mlloop.evaluation`;
alias moves are :mod:`mlloop.champion` (compare-and-set: they refuse a champion that changed since
the decision). This module owns the sequences and the race rule: a promotion whose champion moved
since the evaluation re-runs the gate against the current champion before moving anything.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlloop import tags as tag_keys
from mlloop.steps import LOG, RunInfo, StepFailed, StepLog, StepSkipped, as_mapping, is_set, parse_version

if TYPE_CHECKING:
    from mlloop.champion import AliasMove
    from mlloop.evaluation import Evaluation
    from mlloop.promotion import GateDecision
    from mlloop.registry import ModelRef
    from mlloop.services import Services
    from mlloop.shadow import ShadowEvidence
    from mlloop.spec import UseCaseSpec


# The promotion run's branches after the gate (GateOutcome.next_step); the DAG's tasks of the same names.
PROMOTE, REJECT, PENDING = "promote", "reject", "pending"


def run_gate(
    services: Services,
    spec: UseCaseSpec,
    run: RunInfo,
    challenger: ModelRef,
    champion: ModelRef | None,
    log: StepLog = LOG,
) -> Evaluation:
    """Re-score both versions on the same fresh window, log the gate table, record it as tags."""
    from mlloop.champion import record_gate
    from mlloop.evaluation import NotEvaluable, evaluate_for_promotion
    from mlloop.registry import ModelIntegrityError

    model, version = challenger.name, challenger.version
    try:
        evaluation = evaluate_for_promotion(services.storage, services.feature_store, spec, challenger, champion)
    except NotEvaluable as exc:
        raise StepFailed(
            f"cannot evaluate {model} v{version}: {exc}. The champion is unchanged. Clear this task once "
            "newer labels have been ingested (or trigger with another version)."
        ) from None
    except ModelIntegrityError as exc:
        raise StepFailed(f"refusing to evaluate {model} v{version}: {exc}") from None
    log.info("\n%s", evaluation.table(spec))
    record_gate(services.mlflow, model, version, gate_tags(evaluation, run))
    return evaluation


def gate_tags(evaluation: Evaluation, run: RunInfo) -> dict[str, str]:
    """The tags a gate decision leaves on the challenger: every check, the window, when and who."""
    return {
        **evaluation.decision.tags(),
        tag_keys.GATE_WINDOW: evaluation.window.describe(),
        tag_keys.GATE_EVALUATED_AT: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        **tag_keys.run_tags(tag_keys.GATE, run.dag_id, run.run_id),
    }


@dataclass(frozen=True)
class GateOutcome:
    """What :func:`evaluate_challenger` found: ``evaluation`` is None when there was nothing to decide.

    With ``promotion.shadow_days``, a pending version is judged by its ``shadow`` evidence instead
    (no decision yet while its shadow days are not labelled), and a challenger that passes the
    holdout gate against a champion goes ``to_pending``, not to promotion.
    """

    version: str | None
    champion: str | None
    evaluation: Evaluation | None = None
    reasons: list[str] = field(default_factory=list)
    shadow: ShadowEvidence | None = None
    shadow_table: str = ""
    to_pending: bool = False

    @property
    def decision(self) -> GateDecision | None:
        if self.shadow is not None:
            return self.shadow.decision
        return self.evaluation.decision if self.evaluation else None

    @property
    def passed(self) -> bool:
        return self.decision is not None and self.decision.passed

    @property
    def next_step(self) -> str | None:
        """Where the promotion run goes from here: :data:`PROMOTE`, :data:`REJECT`, :data:`PENDING`
        (passed the holdout gate against a champion, with shadow days), or None: nothing to decide
        (no challenger, already champion, a pending version still waiting for its shadow days)."""
        if self.decision is None:
            return None
        if not self.passed:
            return REJECT
        return PENDING if self.to_pending else PROMOTE

    def as_dict(self, spec: UseCaseSpec) -> dict[str, Any]:
        """The evaluate task's XCom (promote and reject read ``version``, ``champion``, ``reasons``)."""
        outcome: dict[str, Any] = {"version": self.version, "champion": self.champion}
        if self.shadow is not None:
            from mlloop.shadow import as_result

            shadowed = {**outcome, "table": self.shadow_table, "shadow": as_result(self.shadow)}
            if self.shadow.decision is None:
                return {**shadowed, "evaluated": False, "reasons": ["waiting for labelled shadow days"]}
            decision = self.shadow.decision
            return {
                **shadowed,
                "evaluated": True,
                "passed": decision.passed,
                "reasons": decision.reasons,
                "alerts": decision.alerts,
            }
        if self.evaluation is None:
            return {**outcome, "evaluated": False, "reasons": self.reasons}
        decision = self.evaluation.decision
        return {
            **outcome,
            "evaluated": True,
            "passed": decision.passed,
            "reasons": decision.reasons,
            "alerts": decision.alerts,
            "window": self.evaluation.window.as_dict(),
            "table": self.evaluation.table(spec),
        }


def resolve_challenger(
    services: Services, spec: UseCaseSpec, version: Any, event_versions: list[Any]
) -> tuple[str | None, str]:
    """(version to evaluate, where it came from): the parameter, else the newest triggering
    challenger event's, else (with ``promotion.shadow_days``) the pending version, else alias
    ``challenger``. With shadow days a predictions event (no version) checks only the pending version."""
    from mlloop.registry import CHALLENGER, get_alias

    if is_set(version):
        return parse_version(version, "version"), "the version parameter"
    events = [v for v in event_versions if is_set(v)]
    if events:
        return max((parse_version(v, "version in the asset event") for v in events), key=int), "the challenger event"
    if spec.promotion.shadow_days:
        from mlloop.shadow import pending_version

        pending = pending_version(services.mlflow, spec)
        if pending is not None:
            return pending.version, "alias pending"
        if event_versions:
            return None, "nowhere: a predictions event, and no version is pending"
    ref = get_alias(services.mlflow, spec.registered_model_name, CHALLENGER)
    return (ref.version, "alias challenger") if ref else (None, "nowhere: no alias challenger")


def evaluate_challenger(
    services: Services,
    spec: UseCaseSpec,
    run: RunInfo,
    version: Any = None,
    event_versions: list[Any] | None = None,
    log: StepLog = LOG,
) -> GateOutcome:
    """Re-score challenger and champion on the same fresh labelled window and apply the gate.

    No challenger, or a challenger that already is champion: nothing to decide (no evaluation).
    """
    from mlloop.registry import CHAMPION, ModelNotFound, get_alias, get_version

    client, model = services.mlflow, spec.registered_model_name
    version, source = resolve_challenger(services, spec, version, event_versions or [])
    champion = get_alias(client, model, CHAMPION)
    champion_version = champion.version if champion else None
    if version is None:
        log.info("Nothing to evaluate: %s has no challenger (version from %s).", model, source)
        return GateOutcome(version, champion_version, reasons=["no challenger"])
    if champion is not None and champion.version == version:
        log.info("%s v%s (from %s) already is the champion; nothing to decide.", model, version, source)
        return GateOutcome(version, champion_version, reasons=["already champion"])
    try:
        challenger = get_version(client, model, version)
    except ModelNotFound as exc:
        raise StepFailed(f"{exc} (version from {source})") from None
    if spec.promotion.shadow_days:
        from mlloop.shadow import is_pending

        if is_pending(challenger):
            return shadow_gate(services, spec, challenger, champion, log)
    log.info(
        "Evaluating %s v%s (from %s) against %s",
        model,
        version,
        source,
        f"champion v{champion.version}" if champion else "no champion (the floor alone decides)",
    )
    evaluation = run_gate(services, spec, run, challenger, champion, log)
    # Shadow days need a champion to compare with: the first model is promoted on the holdout gate alone.
    to_pending = bool(spec.promotion.shadow_days) and champion is not None
    return GateOutcome(version, champion_version, evaluation, to_pending=to_pending)


def shadow_gate(
    services: Services, spec: UseCaseSpec, challenger: ModelRef, champion: ModelRef | None, log: StepLog = LOG
) -> GateOutcome:
    """The pending version's second gate (:func:`mlloop.shadow.shadow_gate`): both evidences in the
    log and on the version; promote or reject once its shadow days are labelled, else wait."""
    from mlloop.champion import set_version_tags
    from mlloop.shadow import holdout_summary
    from mlloop.shadow import shadow_gate as judge_shadow

    model = challenger.name
    evidence = judge_shadow(services.storage, spec, challenger, champion)
    set_version_tags(services.mlflow, model, challenger.version, evidence.tags())
    table = f"{holdout_summary(challenger)}\n{evidence.table(spec)}"
    log.info("\n%s", table)
    if evidence.decision is None:
        log.info("%s v%s stays pending: %s", model, challenger.version, evidence.describe())
    return GateOutcome(challenger.version, champion.version if champion else None, shadow=evidence, shadow_table=table)


def promote_challenger(
    services: Services,
    spec: UseCaseSpec,
    run: RunInfo,
    evaluated: Any,
    serialized_by: str,
    log: StepLog = LOG,
) -> AliasMove:
    """Move alias ``champion`` to the evaluated challenger (``evaluated``: the evaluate step's result).

    The race rule: if the champion moved since the evaluation (another promotion or a rollback held
    ``serialized_by`` first), the gate is re-run against the current champion; failed, the rejection
    is recorded and :class:`StepSkipped` says so.
    """
    from mlloop.champion import ChampionChanged, current_champion, promote, reject, serving_day
    from mlloop.registry import CHAMPION, get_alias, get_version
    from mlloop.shadow import PROMOTED, REJECTED, conclude

    evaluation = as_mapping(evaluated, "evaluation")
    version, evaluated_against = str(evaluation["version"]), evaluation.get("champion")
    expected = str(evaluated_against) if evaluated_against else None
    client, model = services.mlflow, spec.registered_model_name
    decided_by = tag_keys.run_tags(tag_keys.PROMOTION, run.dag_id, run.run_id)
    current = current_champion(client, model)
    if current not in (expected, version):
        log.warning(
            "The champion moved from %s to v%s since v%s was evaluated (another promotion or a rollback "
            "held %s first): re-running the gate against the current champion.",
            f"v{expected}" if expected else "none",
            current,
            version,
            serialized_by,
        )
        again = run_gate(services, spec, run, get_version(client, model, version), get_alias(client, model, CHAMPION))
        if not again.decision.passed:
            reject(client, spec, version, again.decision.reasons, tags=decided_by)
            conclude(client, spec, version, REJECTED, "; ".join(again.decision.reasons))
            raise StepSkipped(
                f"REJECTED on re-evaluation (a decision, not a failure): {model} v{version} does not beat the "
                f"current champion v{current}: {'; '.join(again.decision.reasons)}. Champion stays v{current}."
            )
        expected = current
    log.info("Promoting %s v%s (gate passed against %s)", model, version, f"v{expected}" if expected else "none")
    serves_from = serving_day(get_version(client, model, version).tags.get(tag_keys.TRAINING_CUTOFF))
    try:
        move = promote(client, spec, version, expected_champion=expected, tags=decided_by, serves_from=serves_from)
    except ChampionChanged as exc:
        raise StepFailed(
            f"{exc} Something outside {serialized_by} moves aliases (a script, another Airflow "
            f"deployment on the same registry?): stop it, then clear task evaluate_challenger."
        ) from None
    if conclude(client, spec, version, PROMOTED, "promoted after its shadow days"):
        log.info("v%s's pending state ends: the shadow gate passed", version)
    log.info(
        "PROMOTED: %s; serves scoring days from %s on (data time: the day after its training cutoff)",
        move.describe(),
        serves_from or "unknown (no training cutoff tag)",
    )
    return move


def reject_challenger(
    services: Services, spec: UseCaseSpec, run: RunInfo, evaluated: Any, log: StepLog = LOG
) -> dict[str, Any]:
    """Record on the version that the gate rejected it, with the reasons; the champion stays."""
    from mlloop.champion import reject

    evaluation = as_mapping(evaluated, "evaluation")
    version, champion = str(evaluation["version"]), evaluation.get("champion")
    reasons = list(evaluation.get("reasons") or ["the promotion gate failed"])
    decided_by = tag_keys.run_tags(tag_keys.PROMOTION, run.dag_id, run.run_id)
    reject(services.mlflow, spec, version, reasons, tags=decided_by)
    from mlloop.shadow import REJECTED, conclude

    conclude(services.mlflow, spec, version, REJECTED, "; ".join(reasons))
    log.info(
        "REJECTED (a decision, not a failure): %s v%s stays out of service; champion remains %s. Why: %s",
        spec.registered_model_name,
        version,
        f"v{champion}" if champion else "unset",
        "; ".join(reasons),
    )
    return {"version": version, "champion": champion, "reasons": reasons}


APPROVED, REJECTED_BY_HUMAN, NO_ANSWER = "approved", "rejected", "no answer"


def record_approval(
    services: Services,
    spec: UseCaseSpec,
    run: RunInfo,
    evaluated: Any,
    approved: bool,
    responder: str | None,
    answered_at: str,
    log: StepLog = LOG,
) -> str:
    """Record the approver's answer on the version; a human's Reject is final for that version.

    Rejected by a person: the version is rejected as the gate would reject it (``promotion.*``
    tags, reason "rejected at approval by <who>") and a pending version stops being pending, so
    neither the shadow gate (which re-checks the pending version on every scored day) nor shadow
    scoring proposes it again. No answer before the timeout (``responder`` None) is not a decision:
    the champion stays, and a pending version stays pending and is asked about again on the next
    scored day. Returns the answer recorded (:data:`APPROVED`, :data:`REJECTED_BY_HUMAN`, :data:`NO_ANSWER`).
    """
    from mlloop.champion import set_version_tags

    evaluation = as_mapping(evaluated, "evaluation")
    version = str(evaluation["version"])
    answer = APPROVED if approved else (REJECTED_BY_HUMAN if responder else NO_ANSWER)
    set_version_tags(
        services.mlflow,
        spec.registered_model_name,
        version,
        {tag_keys.APPROVAL_ANSWER: answer, tag_keys.APPROVAL_BY: responder or "", tag_keys.APPROVAL_AT: answered_at},
    )
    if answer == REJECTED_BY_HUMAN:
        reasons = [f"rejected at approval by {responder} ({answered_at}); final for this version"]
        reject_challenger(services, spec, run, {**evaluation, "reasons": reasons}, log)
    elif answer == NO_ANSWER:
        log.info(
            "No answer to the approval of %s v%s before its timeout: not promoted now, not rejected; "
            "a pending version is asked about again on the next scored day.",
            spec.registered_model_name,
            version,
        )
    return answer


def rollback_champion(
    services: Services,
    spec: UseCaseSpec,
    run: RunInfo,
    version: Any = None,
    reason: Any = None,
    log: StepLog = LOG,
) -> AliasMove:
    """Point alias ``champion`` back at ``version`` (empty: alias ``previous-champion``); it serves
    from the day after the newest ingested features day."""
    from mlloop.champion import ChampionChanged, RollbackRefused, rollback
    from mlloop.training_set import feature_days

    target = parse_version(version, "version") if is_set(version) else None
    log.info("Rolling %s back to %s", spec.registered_model_name, f"v{target}" if target else "alias previous-champion")
    decided_by = tag_keys.run_tags(tag_keys.ROLLBACK, run.dag_id, run.run_id)
    if is_set(reason):
        decided_by[tag_keys.ROLLBACK_REASON] = str(reason)
    ingested = feature_days(services.storage, spec)
    serves_from = max(ingested) + dt.timedelta(days=1) if ingested else None
    try:
        move = rollback(services.mlflow, spec, target, tags=decided_by, serves_from=serves_from)
    except (RollbackRefused, ChampionChanged) as exc:
        raise StepFailed(f"rollback refused: {exc}") from None
    log.info("ROLLED BACK: %s", move.describe())
    return move


def mark_pending(
    services: Services, spec: UseCaseSpec, run: RunInfo, evaluated: Any, log: StepLog = LOG
) -> dict[str, Any]:
    """The challenger passed the holdout gate; with ``promotion.shadow_days`` it becomes pending
    (alias ``pending``, tag ``shadow.state=pending``) instead of champion, and never serves meanwhile:
    batch scoring shadow-scores it, and the promotion DAG decides once its shadow days are labelled."""
    from mlloop.shadow import mark_pending as make_pending

    version = str(as_mapping(evaluated, "evaluation")["version"])
    model = spec.registered_model_name
    decided_by = tag_keys.run_tags(tag_keys.SHADOW, run.dag_id, run.run_id)
    superseded = make_pending(services.mlflow, spec, version, decided_by)
    log.info(
        "PENDING: %s v%s passed the holdout gate and waits for %d labelled shadow day(s) before the shadow "
        "gate decides (promotion.shadow_days); it does not serve meanwhile.%s",
        model,
        version,
        spec.promotion.shadow_days,
        f" It supersedes pending v{superseded}." if superseded else "",
    )
    return {"version": version, "superseded": superseded}


def run_promotion(
    services: Services,
    spec: UseCaseSpec,
    run: RunInfo,
    version: Any = None,
    event_versions: list[Any] | None = None,
    serialized_by: str = "this process",
    log: StepLog = LOG,
) -> tuple[GateOutcome, str | None]:
    """A whole promotion run without a scheduler (bench's plain loop, tests): evaluate, then the
    branch :attr:`GateOutcome.next_step` names, through the same steps the DAG's tasks call (no
    approval step: that is a human's, in the DAG). Returns the outcome and the branch taken."""
    outcome = evaluate_challenger(services, spec, run, version, event_versions, log)
    step = outcome.next_step
    evaluated = outcome.as_dict(spec)
    if step == PROMOTE:
        promote_challenger(services, spec, run, evaluated, serialized_by, log)
    elif step == REJECT:
        reject_challenger(services, spec, run, evaluated, log)
    elif step == PENDING:
        mark_pending(services, spec, run, evaluated, log)
    return outcome, step
