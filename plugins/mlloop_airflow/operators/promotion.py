"""Promotion and rollback operators: gate the challenger, move alias ``champion``, or move it back.

The gate's policy is the pure :func:`mlloop.promotion.decide`; the re-scoring of both models is
:mod:`mlloop.evaluation`; alias moves are :mod:`mlloop.champion` (they refuse to overwrite a champion
that changed since the decision). A rejected challenger is a decision: the run stays green and the
log shows the gate table.
"""

from __future__ import annotations

import ast
import datetime as dt
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from mlloop_airflow.hooks.feature_store import FeastHook
from mlloop_airflow.hooks.mlflow import MlflowHook
from mlloop_airflow.links import LinkedOperatorMixin, ModelVersionLink
from mlloop_airflow.operators.base import UseCaseOperator
from mlloop_airflow.operators.branching import BranchWithResultMixIn
from mlloop_airflow.pools import CHAMPION_POOL

if TYPE_CHECKING:
    from airflow.sdk import Context

    from mlloop.evaluation import Evaluation
    from mlloop.promotion import GateDecision
    from mlloop.registry import ModelRef


def _is_set(value: Any) -> bool:
    return value not in (None, "", "None", "null")


def as_mapping(value: Any, what: str) -> dict[str, Any]:
    """A dict from a templated field: a dict with native rendering, else its rendered text."""
    if isinstance(value, dict):
        return value
    try:
        parsed = ast.literal_eval(str(value))
    except (ValueError, SyntaxError):
        parsed = None
    if not isinstance(parsed, dict):
        raise AirflowFailException(f"'{what}' must be a mapping, got {str(value)[:200]!r}")
    return parsed


def _version(value: Any, what: str) -> str:
    try:
        number = int(str(value))
    except ValueError:
        raise AirflowFailException(f"'{what}' must be a model version number, got {value!r}") from None
    if number < 1:
        raise AirflowFailException(f"'{what}' must be a model version number >= 1, got {value!r}")
    return str(number)


class _RegistryOperator(LinkedOperatorMixin, UseCaseOperator):
    operator_extra_links = (ModelVersionLink(),)

    @cached_property
    def mlflow_hook(self) -> MlflowHook:
        return MlflowHook()

    def run_tags(self, context: Context, prefix: str) -> dict[str, str]:
        return {f"{prefix}.dag_id": context["dag"].dag_id, f"{prefix}.dag_run_id": context["run_id"]}

    @cached_property
    def feast_hook(self) -> FeastHook:
        return FeastHook()

    def run_gate(self, context: Context, challenger: ModelRef, champion: ModelRef | None) -> Evaluation:
        """Re-score both versions on the same fresh window, log the gate table, record it as tags."""
        from mlloop.champion import record_gate
        from mlloop.evaluation import NotEvaluable, evaluate_for_promotion
        from mlloop.registry import ModelIntegrityError

        model, version = challenger.name, challenger.version
        try:
            evaluation = evaluate_for_promotion(
                self.storage_hook.storage, self.feast_hook.store, self.spec, challenger, champion
            )
        except NotEvaluable as exc:
            raise AirflowFailException(
                f"cannot evaluate {model} v{version}: {exc}. The champion is unchanged. Clear this task once "
                "newer labels have been ingested (or trigger with another version)."
            ) from None
        except ModelIntegrityError as exc:
            raise AirflowFailException(f"refusing to evaluate {model} v{version}: {exc}") from None
        self.log.info("\n%s", evaluation.table(self.spec))
        record_gate(
            self.mlflow_hook.client,
            model,
            version,
            {
                **evaluation.decision.tags(),
                "gate.window": evaluation.window.describe(),
                "gate.evaluated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                **self.run_tags(context, "gate"),
            },
        )
        return evaluation


class EvaluateChallengerOperator(_RegistryOperator, BranchWithResultMixIn):
    """Re-score challenger and champion on the same fresh labelled window and apply the gate.

    The version comes from ``version`` if set, else from the triggering challenger Asset event, else
    from alias ``challenger``. The gate's numbers are written as tags on the version and as a table
    in the log. Continues with ``promote_task_id`` if the gate passed, else with ``reject_task_id``;
    with no challenger, or a challenger that already is champion, it skips both (green).

    :param version: model version to evaluate; empty: the triggering event's, else alias challenger. (templated)
    :param promote_task_id: task to run when the gate passes (promotion, or an approval before it).
    :param reject_task_id: task to run when the gate fails.
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

    def resolve_version(self, context: Context) -> tuple[str | None, str]:
        """(version, where it came from)."""
        from mlloop.registry import CHALLENGER, get_alias

        if _is_set(self.version):
            return _version(self.version, "version"), "the version parameter"
        extras = self.triggering_asset_extras(context)
        events = [e["version"] for e in extras if _is_set(e.get("version"))]
        if events:
            return max((_version(v, "version in the asset event") for v in events), key=int), "the challenger event"
        if self.pending_task_id:  # shadow gate: a predictions event (or a manual run) checks the pending version
            from mlloop.shadow import pending_version

            pending = pending_version(self.mlflow_hook.client, self.spec)
            if pending is not None:
                return pending.version, "alias pending"
            if extras:
                return None, "nowhere: a predictions event, and no version is pending"
        ref = get_alias(self.mlflow_hook.client, self.spec.registered_model_name, CHALLENGER)
        return (ref.version, "alias challenger") if ref else (None, "nowhere: no alias challenger")

    def execute(self, context: Context) -> dict[str, Any]:
        from mlloop.registry import CHAMPION, ModelNotFound, get_alias, get_version
        from mlloop.shadow import is_pending

        client, model = self.mlflow_hook.client, self.spec.registered_model_name
        version, source = self.resolve_version(context)
        champion = get_alias(client, model, CHAMPION)
        outcome: dict[str, Any] = {"version": version, "champion": champion.version if champion else None}
        if version is None:
            self.log.info("Nothing to evaluate: %s has no challenger (version from %s).", model, source)
            return self.branch_with_result(context, None, {**outcome, "evaluated": False, "reasons": ["no challenger"]})
        if champion is not None and champion.version == version:
            self.log.info("%s v%s (from %s) already is the champion; nothing to decide.", model, version, source)
            return self.branch_with_result(
                context, None, {**outcome, "evaluated": False, "reasons": ["already champion"]}
            )
        try:
            challenger = get_version(client, model, version)
        except ModelNotFound as exc:
            raise AirflowFailException(f"{exc} (version from {source})") from None
        self.link_to_model_version(model, version)
        if self.pending_task_id and is_pending(challenger):
            return self.run_shadow_gate(context, challenger, champion, outcome)

        self.log.info(
            "Evaluating %s v%s (from %s) against %s",
            model,
            version,
            source,
            f"champion v{champion.version}" if champion else "no champion (the floor alone decides)",
        )
        evaluation = self.run_gate(context, challenger, champion)
        decision = evaluation.decision
        table = evaluation.table(self.spec)
        result = {
            **outcome,
            "evaluated": True,
            "passed": decision.passed,
            "reasons": decision.reasons,
            "alerts": decision.alerts,
            "window": evaluation.window.as_dict(),
            "table": table,
        }
        if decision.alerts:
            self.raise_alerts(context, decision)
        # Shadow days need a champion to compare with: the first model is promoted on the floor alone.
        passed_to = self.pending_task_id if self.pending_task_id and champion else self.promote_task_id
        return self.branch_with_result(context, passed_to if decision.passed else self.reject_task_id, result)

    def run_shadow_gate(
        self, context: Context, challenger: ModelRef, champion: ModelRef | None, outcome: dict[str, Any]
    ) -> dict[str, Any]:
        """The pending version's second gate (:func:`mlloop.shadow.shadow_gate`): both evidences in
        the log and the result; promote or reject once its shadow days are labelled, else wait (green)."""
        from mlloop.champion import set_version_tags
        from mlloop.shadow import as_result, holdout_summary, shadow_gate

        model = challenger.name
        evidence = shadow_gate(self.storage_hook.storage, self.spec, challenger, champion)
        set_version_tags(self.mlflow_hook.client, model, challenger.version, evidence.tags())
        table = f"{holdout_summary(challenger)}\n{evidence.table(self.spec)}"
        self.log.info("\n%s", table)
        result = {**outcome, "table": table, "shadow": as_result(evidence)}
        if evidence.decision is None:
            self.log.info("%s v%s stays pending: %s", model, challenger.version, evidence.describe())
            return self.branch_with_result(
                context, None, {**result, "evaluated": False, "reasons": ["waiting for labelled shadow days"]}
            )
        decision = evidence.decision
        result.update(evaluated=True, passed=decision.passed, reasons=decision.reasons, alerts=decision.alerts)
        return self.branch_with_result(
            context, self.promote_task_id if decision.passed else self.reject_task_id, result
        )

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
        from mlloop.champion import ChampionChanged, current_champion, promote, reject, serving_day
        from mlloop.registry import CHAMPION, get_alias, get_version
        from mlloop.training import TAG_TRAINING_CUTOFF

        evaluation = as_mapping(self.evaluation, "evaluation")
        version, evaluated_against = str(evaluation["version"]), evaluation.get("champion")
        expected = str(evaluated_against) if evaluated_against else None
        client, model = self.mlflow_hook.client, self.spec.registered_model_name
        current = current_champion(client, model)
        if current not in (expected, version):
            self.log.warning(
                "The champion moved from %s to v%s since v%s was evaluated (another promotion or a rollback "
                "held pool %s first): re-running the gate against the current champion.",
                f"v{expected}" if expected else "none",
                current,
                version,
                CHAMPION_POOL,
            )
            again = self.run_gate(context, get_version(client, model, version), get_alias(client, model, CHAMPION))
            if not again.decision.passed:
                reject(client, self.spec, version, again.decision.reasons, tags=self.run_tags(context, "promotion"))
                from mlloop.shadow import REJECTED, conclude

                conclude(client, self.spec, version, REJECTED, "; ".join(again.decision.reasons))
                raise AirflowSkipException(
                    f"REJECTED on re-evaluation (a decision, not a failure): {model} v{version} does not beat the "
                    f"current champion v{current}: {'; '.join(again.decision.reasons)}. Champion stays v{current}."
                )
            expected = current
        self.log.info(
            "Promoting %s v%s (gate passed against %s)", model, version, f"v{expected}" if expected else "none"
        )
        serves_from = serving_day(get_version(client, model, version).tags.get(TAG_TRAINING_CUTOFF))
        try:
            move = promote(
                client,
                self.spec,
                version,
                expected_champion=expected,
                tags=self.run_tags(context, "promotion"),
                serves_from=serves_from,
            )
        except ChampionChanged as exc:
            raise AirflowFailException(
                f"{exc} Something outside pool {CHAMPION_POOL} moves aliases (a script, another Airflow "
                f"deployment on the same registry?): stop it, then clear task evaluate_challenger."
            ) from None
        self.link_to_model_version(model, move.champion)
        from mlloop.shadow import PROMOTED, conclude

        if conclude(client, self.spec, version, PROMOTED, "promoted after its shadow days"):
            self.log.info("v%s's pending state ends: the shadow gate passed", version)
        self.log.info(
            "PROMOTED: %s; serves scoring days from %s on (data time: the day after its training cutoff)",
            move.describe(),
            serves_from or "unknown (no training cutoff tag)",
        )
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
        from mlloop.champion import reject

        evaluation = as_mapping(self.evaluation, "evaluation")
        version, champion = str(evaluation["version"]), evaluation.get("champion")
        reasons = list(evaluation.get("reasons") or ["the promotion gate failed"])
        reject(self.mlflow_hook.client, self.spec, version, reasons, tags=self.run_tags(context, "promotion"))
        from mlloop.shadow import REJECTED, conclude

        conclude(self.mlflow_hook.client, self.spec, version, REJECTED, "; ".join(reasons))
        self.link_to_model_version(self.spec.registered_model_name, version)
        self.log.info(
            "REJECTED (a decision, not a failure): %s v%s stays out of service; champion remains %s. Why: %s",
            self.spec.registered_model_name,
            version,
            f"v{champion}" if champion else "unset",
            "; ".join(reasons),
        )
        return {"version": version, "champion": champion, "reasons": reasons}


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
        from mlloop.champion import ChampionChanged, RollbackRefused, rollback

        version = _version(self.version, "version") if _is_set(self.version) else None
        model = self.spec.registered_model_name
        self.log.info("Rolling %s back to %s", model, f"v{version}" if version else "alias previous-champion")
        tags = self.run_tags(context, "rollback")
        if _is_set(self.reason):
            tags["rollback.reason"] = str(self.reason)
        from mlloop.training_set import feature_days

        ingested = feature_days(self.storage_hook.storage, self.spec)
        serves_from = max(ingested) + dt.timedelta(days=1) if ingested else None
        try:
            move = rollback(self.mlflow_hook.client, self.spec, version, tags=tags, serves_from=serves_from)
        except (RollbackRefused, ChampionChanged) as exc:
            raise AirflowFailException(f"rollback refused: {exc}") from None
        self.link_to_model_version(model, move.champion)
        self.log.info("ROLLED BACK: %s", move.describe())
        self.set_outlet_extra(
            context, {"version": move.champion, "previous_champion": move.previous_champion, "rollback": True}
        )
        return move.as_dict()
