"""Training: one DAG per use case, ``<use_case>__training``.

Decide whether to train -> build the point-in-time training set from Feast -> validate it with
Great Expectations -> train, evaluate on the newest days, log to MLflow, register a version with
alias ``challenger`` -> update the challenger Asset, which starts promotion.
"""

from __future__ import annotations

from airflow.sdk import Param

from mlloop.spec import UseCaseSpec, load_specs
from mlloop.training_conf import param_schemas
from mlloop_airflow.assets import challenger_asset, features_asset
from mlloop_airflow.dag_defaults import day_pattern, default_args, mlloop_dag, on_call_doc, start_date, tags
from mlloop_airflow.operators.training import (
    BuildTrainingSetOperator,
    TrainingDecisionOperator,
    TrainModelOperator,
    ValidateTrainingSetOperator,
)

DOC = """
### {name} · training

**What it does**
1. `decide_training` decides whether to train, and says why in its log. It trains when a **reason**
   is given or **force** is on, when `{model}` has no version yet, or when the newest version's data
   is at least {retrain} day(s) older than the cutoff; never with fewer than {min_rows} labelled rows.
   Otherwise the rest of the run is skipped and the run stays **green**: that is a decision.
   The cutoff is the **Cutoff day** parameter, else the day of the training request (features event)
   that started the run, else the newest ingested day (data time, never today's date). A run started
   by a training request trains (ingestion already decided it is due); a drift or manual training
   is written to the ledger `staging/{name}/training_requests/`, so the next scheduled one is due
   {retrain} data day(s) after its cutoff.
2. `build_training_set` joins the label events of the last {window} landing days up to the cutoff with
   the features of Feast service `{service}` as of each label's time (no later value can leak in),
   and writes `staging/{name}/training_set/date=<cutoff>/data.parquet`. The log counts rows Feast
   dropped or found no features for.
3. `validate_training_set` checks it with Great Expectations: columns and types, at least {min_rows}
   rows, the label present and {label_rule}, feature ranges.
4. `train_and_register` trains `{estimator}` on all but the newest {holdout} day(s), evaluates on those,
   logs params, `holdout_<metric>` metrics, lineage tags, the training-set fingerprint, the validation
   report and the drift reference sample to MLflow experiment `{experiment}`, registers a version of
   `{model}` and points alias `challenger` at it.

**Triggered by**: Asset `{name}.features` (a day ingestion found a training due), the drift monitor (conf with a
`reason` and the drift numbers), or by hand (set **reason** or **force** to train regardless).

**Emits**: Asset `{name}.challenger` with extra `{{"version": ...}}`, which schedules `{name}__promotion`.

**When it fails**
- *validate_training_set*: the training set broke a rule (the log has the table; the report is beside
  the training set). Nothing was trained or registered. Look at the label/feature partitions of the
  window and at ingestion's quarantine, fix the data or the spec, then clear `build_training_set`.
- *build_training_set*: no label partitions in the window, or Feast's registry lacks the service
  (`make feast-apply`). Storage or registry hiccups retry by themselves.
- *train_and_register*: a data fault (one class only, every row in the holdout) fails at once with the
  reason; MLflow being unreachable retries. Clearing and rerunning is safe: a rerun of the same run
  finishes the version that run registered instead of registering a duplicate.
"""


def training_params(spec: UseCaseSpec) -> dict[str, Param]:
    """One Param per field of :class:`mlloop.training_conf.TrainingConf`, with that field's JSON schema
    (the cutoff day bounded to the use case's years); that a drift report lies under *this* storage
    root is checked by decide_training (the root is deployment configuration, not something a schema
    can know)."""
    return {
        name: Param(schema.pop("default", None), **schema) for name, schema in param_schemas(day_pattern(spec)).items()
    }


for spec in load_specs():
    with mlloop_dag(
        dag_id=spec.dag_id("training"),
        description=f"Train a new {spec.name} model version on point-in-time features and register it as challenger",
        schedule=[features_asset(spec.name)],
        start_date=start_date(spec),
        catchup=False,
        max_active_runs=1,
        default_args=default_args(spec),
        params=training_params(spec),
        render_template_as_native_obj=True,
        tags=tags(spec, "training"),
        doc_md=DOC.format(
            name=spec.name,
            model=spec.registered_model_name,
            retrain=spec.model.retrain_after_days,
            min_rows=spec.model.min_training_rows,
            window=spec.model.training_window_days or "all",
            service=spec.model.feature_service,
            label_rule=(
                f"balanced (each class >= {spec.labels.min_class_share:.0%})"
                if spec.model.task == "classification"
                else "varying (a constant target teaches nothing)"
            ),
            estimator=spec.model.estimator,
            holdout=spec.model.holdout_days,
            experiment=spec.experiment_name,
        )
        + on_call_doc(
            "`decide_training` logs its decision in one line (TRAIN or NO TRAINING, and why); "
            "`validate_training_set` the validation table; `train_and_register` the holdout metrics.",
            "`train_and_register` opens its MLflow run and the model version it registered.",
        ),
    ):
        decide = TrainingDecisionOperator(
            task_id="decide_training",
            use_case=spec.name,
            cutoff_day="{{ params.cutoff_day }}",
            reason="{{ params.reason }}",
            force="{{ params.force }}",
            drift_report="{{ params.drift_report }}",
        )
        build = BuildTrainingSetOperator(
            task_id="build_training_set", use_case=spec.name, cutoff_day=decide.output["cutoff_day"]
        )
        validate = ValidateTrainingSetOperator(
            task_id="validate_training_set", use_case=spec.name, training_set=build.output["path"]
        )
        train = TrainModelOperator(
            task_id="train_and_register",
            use_case=spec.name,
            training_set=build.output["path"],
            cutoff_day=decide.output["cutoff_day"],
            trigger_reason=decide.output["reason"],
            validation=validate.output,
            training_set_info=build.output["join"],
            drift="{{ params.drift }}",
            drift_report="{{ params.drift_report }}",
            outlets=[challenger_asset(spec.name)],
        )
        decide >> build >> validate >> train
