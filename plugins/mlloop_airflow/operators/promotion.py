"""Promotion and rollback operators: gate the challenger, move alias ``champion``, or move it back.

The work is :mod:`mlloop.steps.promotion` (the gate, the race rule, the alias moves); these
operators read their templated inputs, branch, alert and link. A rejected challenger is a
decision: the run stays green and the log shows the gate table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import ApprovalOperator

from mlloop_airflow.links import LinkedOperatorMixin, ModelVersionLink
from mlloop_airflow.operators.base import UseCaseOperator
from mlloop_airflow.operators.branching import BranchWithResultMixIn
from mlloop_airflow.pools import CHAMPION_POOL

if TYPE_CHECKING:
    from airflow.sdk import Context

    from mlloop.promotion import GateDecision


class _RegistryOperator(LinkedOperatorMixin, UseCaseOperator):
    operator_extra_links = (ModelVersionLink(),)


class EvaluateChallengerOperator(_RegistryOperator, BranchWithResultMixIn):
    """Re-score challenger and champion on the same fresh labelled window and apply the gate.

    The version comes from ``version`` if set, else from the triggering challenger Asset event, else
    from alias ``challenger``. The gate's numbers are written as tags on the version and as a table
    in the log. Continues with ``promote_task_id`` if the gate passed, else with ``reject_task_id``;
    with no challenger, or a challenger that already is champion, it skips both (green).

    :param version: model version to evaluate; empty: the triggering event's, else alias challenger. (templated)
    :param promote_task_id: task to run when the gate passes (promotion, or an approval before it).
    :param reject_task_id: task to run when the gate fails.
    :param pending_task_id: with ``promotion.shadow_days``: task to run when the holdout gate passes
        against a champion (the version becomes pending; its shadow days decide later).
    """

    template_fields: Sequence[str] = (*UseCaseOperator.template_fields, "version")
    inherits_from_skipmixin = True
    ui_color = "#fdf3d8"

    def __init__(
        self,
        *,
        version: int | str | None = None,
        promote_task_id: str = "promote_challenger",
        reject_task_id: str = "reject_challenger",
        pending_task_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.version = version
        self.promote_task_id = promote_task_id
        self.reject_task_id = reject_task_id
        self.pending_task_id = pending_task_id

    def execute(self, context: Context) -> dict[str, Any]:
        from mlloop.steps import promotion

        events = [e.get("version") for e in self.triggering_asset_extras(context)]
        outcome = promotion.evaluate_challenger(
            self.services, self.spec, self.run_info(context), self.version, events, self.log
        )
        result = outcome.as_dict(self.spec)
        if outcome.decision is None:
            return self.branch_with_result(context, None, result)
        self.link_to_model_version(self.spec.registered_model_name, str(outcome.version))
        if outcome.decision.alerts:
            self.raise_alerts(context, outcome.decision)
        branches = {
            promotion.PROMOTE: self.promote_task_id,
            promotion.REJECT: self.reject_task_id,
            promotion.PENDING: self.pending_task_id or self.promote_task_id,
        }
        return self.branch_with_result(context, branches[str(outcome.next_step)], result)

    def raise_alerts(self, context: Context, decision: GateDecision) -> None:
        """The champion fails the floor: a WARNING in this log, and (unless the spec says ``keep``) an
        alert through the failure-alert channel. A decision, not a fault: the task stays green."""
        from mlloop.promotion import KEEP
        from mlloop_airflow.notifiers.gate import GateAlert, send_gate_alert

        model = self.spec.registered_model_name
        outcome = (
            f"v{decision.challenger_version} is promoted over it"
            if decision.passed
            else f"champion v{decision.champion_version} stays; v{decision.challenger_version} is rejected"
        )
        for alert in decision.alerts:
            self.log.warning("ALERT: %s: %s. Decision: %s.", model, alert, outcome)
        mode = self.spec.promotion.when_champion_fails_floor
        if mode == KEEP:
            self.log.info("No alert sent: promotion.when_champion_fails_floor is '%s'.", KEEP)
            return
        ti: Any = context.get("ti")
        send_gate_alert(
            GateAlert(
                dag_id=context["dag"].dag_id,
                task_id=self.task_id,
                run_id=str(context["run_id"]),
                model=model,
                champion_version=decision.champion_version,
                challenger_version=decision.challenger_version,
                outcome=outcome,
                alerts=tuple(decision.alerts),
                log_url=str(getattr(ti, "log_url", "") or ""),
            ),
            self.log,
        )


class PromoteChallengerOperator(_RegistryOperator):
    """Move alias ``champion`` to the evaluated challenger; the old champion becomes ``previous-champion``.

    Runs in pool ``mlloop_champion_moves`` (one slot, shared with every alias-moving task of every
    use case), so no other promotion or rollback moves the alias between this task's re-reading of
    the champion and its move. If the champion moved since the evaluation (another promotion or a
    rollback got the slot first), the gate is re-run here, against the current champion: passed, the
    challenger is promoted over it; failed, the rejection is recorded and this task is skipped (a
    decision: green, no champion event). The outlet Asset event carries ``{"version": ...}``.

    :param evaluation: the evaluate task's result (``version``, ``champion``). (templated)
    """

    template_fields: Sequence[str] = (*UseCaseOperator.template_fields, "evaluation")
    ui_color = "#d9f4e1"

    def __init__(self, *, evaluation: dict[str, Any] | str, **kwargs: Any) -> None:
        super().__init__(**{"pool": CHAMPION_POOL, **kwargs})
        self.evaluation = evaluation

    def execute(self, context: Context) -> dict[str, Any]:
        from mlloop.steps import promotion

        move = promotion.promote_challenger(
            self.services, self.spec, self.run_info(context), self.evaluation, f"pool {CHAMPION_POOL}", self.log
        )
        self.link_to_model_version(self.spec.registered_model_name, move.champion)
        self.set_outlet_extra(context, {"version": move.champion, "previous_champion": move.previous_champion})
        return move.as_dict()


class RejectChallengerOperator(_RegistryOperator):
    """Record on the version that the gate rejected it, with the reasons; the champion stays.

    :param evaluation: the evaluate task's result (``version``, ``reasons``). (templated)
    """

    template_fields: Sequence[str] = (*UseCaseOperator.template_fields, "evaluation")
    ui_color = "#f4e3d9"

    def __init__(self, *, evaluation: dict[str, Any] | str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.evaluation = evaluation

    def execute(self, context: Context) -> dict[str, Any]:
        from mlloop.steps import promotion

        result = promotion.reject_challenger(
            self.services, self.spec, self.run_info(context), self.evaluation, self.log
        )
        self.link_to_model_version(self.spec.registered_model_name, result["version"])
        return result


class ApprovePromotionOperator(ApprovalOperator, UseCaseOperator):
    """Airflow's approval (Required actions: Approve / Reject), with the answer recorded on the version.

    Approve: the promotion goes on. Reject by a person: the version is rejected for good
    (:func:`mlloop.steps.promotion.record_approval`), so a pending version is not proposed again on
    the next scored day. No answer before ``response_timeout``: the promotion is skipped, nothing is
    decided. Either way the downstream promotion is skipped, as Airflow's ApprovalOperator does.

    :param evaluation: the evaluate task's result (``version``, ``champion``). (templated)
    """

    template_fields: Sequence[str] = (*ApprovalOperator.template_fields, *UseCaseOperator.template_fields, "evaluation")

    def __init__(self, *, evaluation: dict[str, Any] | str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.evaluation = evaluation

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        from mlloop.steps import promotion

        if "error" not in event:  # a timeout with defaults arrives as an answer with no responder
            responder = event.get("responded_by_user") or {}
            at = event.get("responded_at")
            promotion.record_approval(
                self.services,
                self.spec,
                self.run_info(context),
                self.evaluation,
                approved=list(event.get("chosen_options") or []) == [self.APPROVE],
                responder=str(responder.get("name") or responder.get("id") or "") or None,
                answered_at=str(getattr(at, "isoformat", lambda: at or "")()),
                log=self.log,
            )
        return super().execute_complete(context, event)


class RollbackChampionOperator(_RegistryOperator):
    """Point alias ``champion`` back at an earlier version (default: ``previous-champion``).

    The version must exist and must not have been rejected by the gate. The replaced champion
    becomes ``previous-champion``, so a second rollback undoes the first. Emits the champion Asset.
    Runs in pool ``mlloop_champion_moves`` with promotion, so the two never move the alias at once.

    :param version: version to restore; empty means alias previous-champion. (templated)
    :param reason: why, recorded as a tag on the restored version. (templated)
    """

    template_fields: Sequence[str] = (*UseCaseOperator.template_fields, "version", "reason")
    ui_color = "#f4d9d9"

    def __init__(self, *, version: int | str | None = None, reason: str | None = None, **kwargs: Any) -> None:
        super().__init__(**{"pool": CHAMPION_POOL, **kwargs})
        self.version = version
        self.reason = reason

    def execute(self, context: Context) -> dict[str, Any]:
        from mlloop.steps import promotion

        run = self.run_info(context)
        move = promotion.rollback_champion(self.services, self.spec, run, self.version, self.reason, self.log)
        self.link_to_model_version(self.spec.registered_model_name, move.champion)
        extra = {"version": move.champion, "previous_champion": move.previous_champion, "rollback": True}
        self.set_outlet_extra(context, extra)
        return move.as_dict()


class MarkPendingOperator(_RegistryOperator):
    """The challenger passed the holdout gate; with ``promotion.shadow_days`` set it becomes pending
    (alias ``pending``, tag ``shadow.state=pending``) instead of champion (:func:`mlloop.steps.promotion.mark_pending`).

    :param evaluation: the evaluate task's result (``version``). (templated)
    """

    template_fields: Sequence[str] = (*UseCaseOperator.template_fields, "evaluation")
    ui_color = "#efe3f7"

    def __init__(self, *, evaluation: dict[str, Any] | str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.evaluation = evaluation

    def execute(self, context: Context) -> dict[str, Any]:
        from mlloop.steps import promotion

        result = promotion.mark_pending(self.services, self.spec, self.run_info(context), self.evaluation, self.log)
        self.link_to_model_version(self.spec.registered_model_name, result["version"])
        return result
