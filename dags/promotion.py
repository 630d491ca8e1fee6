"""Promotion: one DAG per use case, ``<use_case>__promotion``.

Re-score the challenger and the champion on the same fresh labelled window, apply the spec's gate,
then either move alias ``champion`` (the old one stays addressable as ``previous-champion``) or
record on the version why it was rejected. Optionally a human approves before the move.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Param

from mlloop.metrics import higher_is_better
from mlloop.spec import load_specs
from mlloop_airflow.assets import challenger_asset, champion_asset, predictions_asset
from mlloop_airflow.dag_defaults import MAX_MODEL_VERSION, default_args, mlloop_dag, on_call_doc, start_date, tags
from mlloop_airflow.operators.promotion import (
    ApprovePromotionOperator,
    EvaluateChallengerOperator,
    MarkPendingOperator,
    PromoteChallengerOperator,
    RejectChallengerOperator,
)
from mlloop_airflow.pools import CHAMPION_POOL

# An unanswered approval must not wait forever: it skips the promotion after this (not a decision).
APPROVAL_TIMEOUT = dt.timedelta(days=3)
# Runs may overlap (a slow evaluation or a pending approval does not hold newer challengers back);
# the alias moves themselves are serialized by pool CHAMPION_POOL, with a re-evaluation if needed.
MAX_ACTIVE_RUNS = 3

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
   The champion is held to the floor too: if it misses it, the table ends with an `ALERT` line, the
   log has a WARNING and the alert goes to the failure webhook (unless the spec says `keep`); with
   `when_champion_fails_floor: {when_fails}`{when_fails_note}.
{approval}{decided}. Passed: `promote_challenger` points `champion` at the challenger, the old champion becomes
   `previous-champion`, the version is tagged `promotion.decision=promoted`. It runs in pool
   `{pool}` (one slot, shared with rollback), so no two alias moves interleave. If the champion
   changed since the evaluation (another run or a rollback got there first), it re-runs the gate
   against the current champion and promotes only if the challenger still passes; otherwise it
   records the rejection and is **skipped** (green).
   Failed: `reject_challenger` tags the version `promotion.decision=rejected` with the reasons; the
   champion stays and the run is **green**: a rejection is a decision.

{shadow}**Triggered by**: Asset `{name}.challenger` (each newly trained version), or by hand (**version**
empty = alias `challenger`).

**Emits**: Asset `{name}.champion` (only when the champion moved).

**When it fails**
- *evaluate_challenger: cannot evaluate*: there are no labels newer than both models' training data
  (or the metric is undefined on them). Clear the task after more labels are ingested.
- *promote_challenger waits in "scheduled"*: another alias move holds pool `{pool}`; if it waits
  forever, the pool does not exist in this deployment: `airflow pools set {pool} 1 "..."`.
- *promote_challenger: champion changed*: something outside the pool (a script, another deployment)
  moved the champion; nothing was overwritten. Stop it, then clear `evaluate_challenger`.
- MLflow or Feast unreachable: retries by itself; every step can be cleared and rerun safely.
"""

APPROVAL_DOC = """2. `approve_promotion` (this use case sets `promotion.require_approval`) waits for a human to
   approve the move in the Airflow UI (Required actions), showing the gate table. Reject, or no
   answer within {hours} h, skips the promotion; the champion stays. A person's Reject is final for
   that version (recorded on it: `promotion.decision=rejected`, `approval.*`; a pending version stops
   being pending); no answer decides nothing (a pending version is asked about again on the next
   scored day).
"""


SHADOW_DOC = """
**Shadow gate** (`promotion.shadow_days: {days}`): a challenger that passes the gate above does not
become champion: `mark_pending` sets alias `pending` (tag `shadow.state=pending`) and it never serves
(with no champion yet there is nothing to compare with: the first model is promoted as before).
Batch scoring shadow-scores it beside the champion into `shadow/{name}/` (on a day of more than
`promotion.shadow_max_rows` rows, a fixed sample of that many). Each scored day
(Asset `{name}.predictions`) runs this DAG again: `evaluate_challenger` then compares the pending
version with the served predictions **on the rows both scored whose labels have landed**, on the
first {days} labelled shadow day(s), with the same floor, relative and segment rules, logs both
evidences (holdout re-score and shadow) and promotes or rejects; with fewer days it waits (green).
A newer challenger that passes the holdout gate supersedes the pending one.

"""


def promotion_params() -> dict[str, Param]:
    return {
        "version": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            maximum=MAX_MODEL_VERSION,
            title="Version",
            description=(
                "Model version to evaluate for promotion. Empty: the version of the challenger event that "
                "triggered the run, else the version alias 'challenger' points at."
            ),
        )
    }


for spec in load_specs():
    approval = spec.promotion.require_approval
    shadow = spec.promotion.shadow_days > 0
    with mlloop_dag(
        dag_id=spec.dag_id("promotion"),
        description=f"Gate the {spec.name} challenger against the champion on fresh data and promote or reject it",
        # With shadow days, each scored day also re-checks the pending version's shadow evidence.
        schedule=(challenger_asset(spec.name) | predictions_asset(spec.name))
        if shadow
        else [challenger_asset(spec.name)],
        start_date=start_date(spec),
        catchup=False,
        max_active_runs=MAX_ACTIVE_RUNS,
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
            pool=CHAMPION_POOL,
            approval=APPROVAL_DOC.format(hours=int(APPROVAL_TIMEOUT.total_seconds() // 3600)) if approval else "",
            decided=3 if approval else 2,
            shadow=SHADOW_DOC.format(days=spec.promotion.shadow_days, name=spec.name) if shadow else "",
            when_fails=spec.promotion.when_champion_fails_floor,
            when_fails_note=(
                ", a challenger that strictly beats it (and passes the segment gate) is promoted even below the floor"
                if spec.promotion.when_champion_fails_floor == "promote_better"
                else ", it stays until a challenger reaches the floor"
            ),
        )
        + on_call_doc(
            "`evaluate_challenger` logs the gate table: every gate with both models' numbers, the limit, the "
            "result and the decision.",
            "`evaluate_challenger`, `promote_challenger` and `reject_challenger` open the model version in MLflow "
            "(its `gate.*` and `promotion.*` tags say why).",
        ),
    ):
        evaluate = EvaluateChallengerOperator(
            task_id="evaluate_challenger",
            use_case=spec.name,
            version="{{ params.version }}",
            promote_task_id="approve_promotion" if approval else "promote_challenger",
            reject_task_id="reject_challenger",
            pending_task_id="mark_pending" if shadow else None,
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
        if shadow:
            evaluate >> MarkPendingOperator(task_id="mark_pending", use_case=spec.name, evaluation=evaluation)
        if approval:
            approve = ApprovePromotionOperator(
                task_id="approve_promotion",
                use_case=spec.name,
                evaluation=evaluation,
                subject=f"Promote {spec.registered_model_name} v{{{{ {pulled}['version'] }}}} to champion?",
                body=f"```\n{{{{ {pulled}['table'] }}}}\n```",
                defaults="Reject",
                response_timeout=APPROVAL_TIMEOUT,
            )
            evaluate >> [approve, reject]
            approve >> promote
        else:
            evaluate >> [promote, reject]
