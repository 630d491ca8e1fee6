"""Promotion: one DAG per use case, ``<use_case>__promotion``.

Re-score the challenger and the champion on the same fresh labelled window, apply the spec's gate,
then either move alias ``champion`` (the old one stays addressable as ``previous-champion``) or
record on the version why it was rejected. Optionally a human approves before the move.
"""

from __future__ import annotations

import datetime as dt

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import DAG, Param

from mlloop.metrics import higher_is_better
from mlloop.spec import load_specs
from mlloop_airflow.assets import challenger_asset, champion_asset
from mlloop_airflow.dag_defaults import default_args, start_date, tags
from mlloop_airflow.operators.promotion import (
    EvaluateChallengerOperator,
    PromoteChallengerOperator,
    RejectChallengerOperator,
)

# An unanswered approval must not hold the DAG (max_active_runs=1) forever: it rejects after this.
APPROVAL_TIMEOUT = dt.timedelta(days=3)

DOC = """
### {name} · promotion (gated)

**What it does**
1. `evaluate_challenger` loads the challenger and the current champion of `{model}` and scores both
   on the same fresh window: the newest {days} day(s) of labelled observations newer than what
   either model was trained on. It applies the gate and writes the table to its log and every
   gate's numbers as `gate.*` tags on the version:
   - floor: {metric} {floor_op} {floor};
   - vs champion: no more than {max_reg} worse;
   - segments of `{segment}`: no slice with >= {min_rows} rows more than {max_seg} worse.
   With no champion, the floor alone decides.
{approval}3. Passed: `promote_challenger` points `champion` at the challenger, the old champion becomes
   `previous-champion`, the version is tagged `promotion.decision=promoted`. It refuses if the
   champion changed since the evaluation.
   Failed: `reject_challenger` tags the version `promotion.decision=rejected` with the reasons; the
   champion stays and the run is **green**: a rejection is a decision.

**Triggered by**: Asset `{name}.challenger` (each newly trained version), or by hand (**version**
empty = alias `challenger`).

**Emits**: Asset `{name}.champion` (only when the champion moved).

**When it fails**
- *evaluate_challenger: cannot evaluate*: there are no labels newer than both models' training data
  (or the metric is undefined on them). Clear the task after more labels are ingested.
- *promote_challenger: champion changed*: another promotion or a rollback moved the champion after
  the evaluation; nothing was overwritten. Clear `evaluate_challenger` to re-evaluate.
- MLflow or Feast unreachable: retries by itself; every step can be cleared and rerun safely.
"""

APPROVAL_DOC = """2. `approve_promotion` (this use case sets `promotion.require_approval`) waits for a human to
   approve the move in the Airflow UI (Required actions), showing the gate table. Reject, or no
   answer within {hours} h, skips the promotion; the champion stays.
"""


def promotion_params() -> dict[str, Param]:
    return {
        "version": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            title="Version",
            description=(
                "Model version to evaluate for promotion. Empty: the version of the challenger event that "
                "triggered the run, else the version alias 'challenger' points at."
            ),
        )
    }


for spec in load_specs():
    approval = spec.promotion.require_approval
    with DAG(
        dag_id=spec.dag_id("promotion"),
        description=f"Gate the {spec.name} challenger against the champion on fresh data and promote or reject it",
        schedule=[challenger_asset(spec.name)],
        start_date=start_date(spec),
        catchup=False,
        max_active_runs=1,
        default_args=default_args(spec),
        params=promotion_params(),
        render_template_as_native_obj=True,
        tags=tags(spec, "promotion"),
        doc_md=DOC.format(
            name=spec.name,
            model=spec.registered_model_name,
            days=spec.promotion.evaluation_days,
            metric=spec.model.primary_metric,
            floor_op=">=" if higher_is_better(spec.model.primary_metric) else "<=",
            floor=spec.promotion.min_primary_metric,
            max_reg=spec.promotion.max_regression,
            segment=spec.promotion.segment_column or "(none)",
            min_rows=spec.promotion.min_segment_rows,
            max_seg=spec.promotion.max_segment_regression,
            approval=APPROVAL_DOC.format(hours=int(APPROVAL_TIMEOUT.total_seconds() // 3600)) if approval else "",
        ),
    ):
        evaluate = EvaluateChallengerOperator(
            task_id="evaluate_challenger",
            use_case=spec.name,
            version="{{ params.version }}",
            promote_task_id="approve_promotion" if approval else "promote_challenger",
            reject_task_id="reject_challenger",
        )
        # A template, not evaluate.output: an XComArg would make promote a direct branch target of
        # evaluate, and branching to the approval would then skip it.
        pulled = "ti.xcom_pull(task_ids='evaluate_challenger')"
        evaluation = f"{{{{ {pulled} }}}}"
        promote = PromoteChallengerOperator(
            task_id="promote_challenger",
            use_case=spec.name,
            evaluation=evaluation,
            outlets=[champion_asset(spec.name)],
        )
        reject = RejectChallengerOperator(task_id="reject_challenger", use_case=spec.name, evaluation=evaluation)
        if approval:
            approve = ApprovalOperator(
                task_id="approve_promotion",
                subject=f"Promote {spec.registered_model_name} v{{{{ {pulled}['version'] }}}} to champion?",
                body=f"```\n{{{{ {pulled}['table'] }}}}\n```",
                defaults="Reject",
                response_timeout=APPROVAL_TIMEOUT,
            )
            evaluate >> [approve, reject]
            approve >> promote
        else:
            evaluate >> [promote, reject]
