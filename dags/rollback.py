"""Rollback: one DAG per use case, ``<use_case>__rollback``, run by hand.

Point alias ``champion`` back at the previous champion (or a chosen version) and update the
champion Asset, so batch scoring uses it from its next run.
"""

from __future__ import annotations

from airflow.sdk import Param

from mlloop.spec import load_specs
from mlloop_airflow.assets import champion_asset
from mlloop_airflow.dag_defaults import MAX_MODEL_VERSION, default_args, mlloop_dag, on_call_doc, start_date, tags
from mlloop_airflow.operators.promotion import RollbackChampionOperator

DOC = """
### {name} · rollback

**What it does**: `rollback_champion` points alias `champion` of `{model}` at the version in
**Version**, or, if empty, at the version alias `previous-champion` points at. The version must
exist and must not have been rejected by the promotion gate. The replaced champion becomes
`previous-champion`, so running this DAG again with an empty **Version** undoes the rollback.
The restored version gets `rollback.*` tags (with the **Reason**). In data time it serves from the
day after the newest ingested day: scoring days already published keep their predictions, and a
backfill of an earlier day still uses the version that was champion at that day's end.

**Triggered by**: hand only (Trigger, fill in the form). Batch scoring picks the restored champion
up at the start of its next run.

**Emits**: Asset `{name}.champion`.

**When it fails**: the log says why the rollback was refused (no such version, a rejected version,
no `previous-champion` yet, or the champion moved during the rollback). Nothing was changed; fix
the **Version** and trigger again. MLflow being unreachable retries by itself.
"""

for spec in load_specs():
    with mlloop_dag(
        dag_id=spec.dag_id("rollback"),
        description=f"Point {spec.name}'s champion back at the previous (or a chosen) model version",
        schedule=None,
        start_date=start_date(spec),
        catchup=False,
        max_active_runs=1,
        default_args=default_args(spec),
        params={
            "version": Param(
                None,
                type=["null", "integer"],
                minimum=1,
                maximum=MAX_MODEL_VERSION,
                title="Version",
                description="Model version to make champion again. Empty: the previous champion.",
            ),
            "reason": Param(
                None,
                type=["null", "string"],
                maxLength=1000,
                title="Reason",
                description="Why you roll back (recorded as a tag on the restored version).",
            ),
        },
        render_template_as_native_obj=True,
        tags=tags(spec, "rollback"),
        doc_md=DOC.format(name=spec.name, model=spec.registered_model_name)
        + on_call_doc(
            "`rollback_champion` logs the alias move (ROLLED BACK: champion vX -> vY) or why it was refused.",
            "`rollback_champion` opens the restored model version in MLflow.",
        ),
    ):
        RollbackChampionOperator(
            task_id="rollback_champion",
            use_case=spec.name,
            version="{{ params.version }}",
            reason="{{ params.reason }}",
            outlets=[champion_asset(spec.name)],
        )
