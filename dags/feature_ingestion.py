"""Feature ingestion: one DAG per use case, ``<use_case>__feature_ingestion``.

Per daily interval: wait for the raw batch -> validate it with Great Expectations (bad rows to
quarantine with reasons; a bad batch is rejected whole) -> write the day's feature partition to
the offline store -> materialize exactly that day into the online store -> decide, in data time,
whether a training is due, and only then update the features Asset, which starts training.
"""

from __future__ import annotations

from mlloop.spec import load_specs
from mlloop_airflow.assets import features_asset
from mlloop_airflow.dag_defaults import (
    day_param,
    default_args,
    end_date,
    interval_timetable,
    mlloop_dag,
    on_call_doc,
    sensor_horizon,
    sensor_poke_seconds,
    start_date,
    tags,
)
from mlloop_airflow.operators.features import BuildFeaturesOperator
from mlloop_airflow.operators.materialize import FeastMaterializeOperator
from mlloop_airflow.operators.training_requests import FailRunIfIngestionFailed, RequestTrainingOperator
from mlloop_airflow.operators.validation import ValidateBatchOperator
from mlloop_airflow.sensors.storage import PartitionSensor

DOC = """
### {name} · feature ingestion

**What it does**, for one day (UTC):
1. `wait_for_raw_batch` waits for `landing/{name}/observations/date=<day>/batch.parquet`.
2. `validate_observations` / `validate_labels` check the batch against the contract in
   `include/use_cases/{name}.yaml` with Great Expectations. Bad rows go to
   `quarantine/{name}/<dataset>/date=<day>/rows.parquet` with the reasons per row; the summary is
   in the task log. More than {max_bad:.0%} bad rows, or wrong columns/types, rejects the batch.
3. `build_features` writes `features/{name}/{fv}/date=<day>/data.parquet` (Feast's offline source).
4. `materialize_online` loads that day into the online store.
5. `request_training` decides whether the day is due a training: the first one once the training window
   holds {min_rows} labelled rows, then one when the last training asked for is {retrain} data day(s) old
   (the ledger `staging/{name}/training_requests/`). Due: it updates the Asset `{name}.features`, which
   starts training with this day as cutoff. Not due: it is skipped (green; its log says why). It runs in
   day order (`depends_on_past`). A day whose ingestion failed for good (batch rejected, or never
   delivered) is a day with no new labels: its `request_training` is skipped, `fail_run_if_ingestion_failed`
   keeps the run red, and the next days still decide. Fixed later (clear the run), it decides then.

**Triggered by**: the `{schedule}` schedule, a backfill (`airflow backfill create --dag-id {dag_id} ...`),
or a manual trigger with the **Day** parameter set.

**Emits**: Asset `{name}.features` (only on days a training is due), which schedules `{name}__training`.

**When it fails**
- *wait_for_raw_batch timed out*: the upstream system did not deliver the day's batch. Ask them; then clear the task.
- *validate_… failed*: the batch was rejected; the log shows why, `quarantine/…/report.json` has the details.
  Nothing was written downstream. Get a corrected batch delivered, then clear the task.
- *build_features / materialize_online failed*: usually storage or online-store access; these retry by themselves.
  Every step replaces its partition, so clearing and rerunning is always safe.
"""

for spec in load_specs():
    with mlloop_dag(
        dag_id=spec.dag_id("feature_ingestion"),
        description=f"Validate {spec.name}'s daily raw batch and load its features into Feast",
        schedule=interval_timetable(spec.schedule.ingestion),
        start_date=start_date(spec),
        end_date=end_date(spec),
        catchup=False,
        max_active_runs=4,
        default_args=default_args(spec),
        params={"day": day_param(spec)},
        tags=tags(spec, "feature_ingestion"),
        doc_md=DOC.format(
            name=spec.name,
            dag_id=spec.dag_id("feature_ingestion"),
            fv=spec.features.feature_view,
            schedule=spec.schedule.ingestion,
            max_bad=spec.raw.max_bad_row_share,
            min_rows=spec.model.min_training_rows,
            retrain=spec.model.retrain_after_days,
        )
        + on_call_doc(
            "`validate_observations` and `validate_labels` each log one: rows in, valid and quarantined "
            "(share and limit), then every expectation that failed with its row count."
        ),
    ):
        common = {"use_case": spec.name, "day": "{{ params.day }}"}
        wait_for_raw_batch = PartitionSensor(
            task_id="wait_for_raw_batch",
            kind="landing_observations",
            mode="reschedule",
            poke_interval=sensor_poke_seconds(),
            timeout=spec.schedule.raw_batch_timeout_hours * 3600,
            **sensor_horizon(spec),
            **common,
        )
        validate_observations = ValidateBatchOperator(task_id="validate_observations", dataset="observations", **common)
        validate_labels = ValidateBatchOperator(task_id="validate_labels", dataset="labels", optional=True, **common)
        build_features = BuildFeaturesOperator(task_id="build_features", **common)
        materialize_online = FeastMaterializeOperator(task_id="materialize_online", **common)
        # Decisions in day order, whatever order the days' ingestion finishes in: day D's
        # decision reads the requests of the days before it. It runs once the day is done, even
        # failed (then it skips: a day with no new labels), so a dead day does not hold the next ones.
        request_training = RequestTrainingOperator(
            task_id="request_training",
            outlets=[features_asset(spec.name)],
            depends_on_past=True,
            trigger_rule="all_done",
            **common,
        )
        day_failed = FailRunIfIngestionFailed(task_id="fail_run_if_ingestion_failed")

        wait_for_raw_batch >> [validate_observations, validate_labels]
        validate_observations >> build_features
        [build_features, validate_labels] >> materialize_online >> request_training
        [wait_for_raw_batch, validate_observations, validate_labels, build_features, materialize_online] >> day_failed
