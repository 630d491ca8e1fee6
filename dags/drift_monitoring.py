"""Drift monitoring: one DAG per use case, ``<use_case>__drift_monitoring``.

Per daily interval: pin the champion -> wait for the day's predictions -> Evidently report of the
recent window vs the champion's training reference (HTML + JSON + MLflow monitoring run) -> decide
with the spec's policy, debounced -> trigger ``<use_case>__training`` when it says so.
"""

from __future__ import annotations

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import XComArg

from mlloop.spec import load_specs
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
from mlloop_airflow.operators.champion import ResolveChampionOperator
from mlloop_airflow.operators.drift import DriftReportOperator, RecordRetrainTriggerOperator, RetrainDecisionOperator
from mlloop_airflow.sensors.storage import PartitionSensor

DOC = """
### {name} · drift monitoring

**What it does**, for one day (UTC):
1. `wait_for_predictions` waits for `predictions/{name}/date=<day>/data.parquet`.
2. `resolve_champion` pins the version that was champion at the end of the day checked (data time: the
   one whose predictions the window holds); **no champion yet**: the run is skipped (green).
3. `compute_drift` compares the predictions of the last {window} day(s) (sampled to {sample:,} rows, seed
   {seed}; missing older days are reported) with the champion's training reference sample, with
   Evidently (`{method}`, threshold `{threshold}`): drift per model feature, share of drifted features,
   prediction drift, and `{metric}` on the labels that landed in the window (they label the
   predictions of {delay} day(s) earlier; only the champion's own) vs the champion's holdout.
   It writes `reports/{name}/drift/date=<day>/report.html` and `report.json` and an MLflow
   `monitoring` run in experiment `{experiment}`.
4. `decide_retrain` applies the policy: drift if >= {share:.0%} of the features drifted, or any of
   {keys} drifted, or `{metric}` is worse than on the holdout by more than {drop}. It logs one summary of
   the verdict and its numbers. A retrain starts only if no `{training}` run is queued or running and the last
   drift-triggered one is more than {cooldown:g} h old in data time (the day checked vs the day whose check
   triggered it: a replay of history debounces as the same days did live).
5. `trigger_training` starts `{training}` with conf `reason`, `cutoff_day`, `drift`, `drift_report`;
   `record_trigger` remembers it in `reports/{name}/drift/last_trigger.json` (the cooldown).

No drift, or a debounced trigger, is a green run with `trigger_training` skipped; the reason is in
`decide_retrain`'s log. To reset the cooldown, delete `last_trigger.json`. If `{training}` is paused,
the triggered run waits, queued, and later drift runs are debounced until it has run.

**Triggered by**: the `{schedule}` schedule, a backfill, or a manual trigger with the **Day** parameter set.

**Emits**: the report files and MLflow run above; on drift, a `{training}` run.

**When it fails**
- *wait_for_predictions timed out*: `{name}__batch_scoring` did not publish the day.
- *compute_drift failed without retrying*: the inputs are unusable (the log says which: e.g. the
  champion's training run has no reference sample). MLflow or storage errors retry by themselves.
"""

for spec in load_specs():
    training_dag_id = spec.dag_id("training")
    with mlloop_dag(
        dag_id=spec.dag_id("drift_monitoring"),
        description=f"Compare {spec.name}'s recent scoring with the champion's training data; retrain on drift",
        schedule=interval_timetable(spec.schedule.drift),
        start_date=start_date(spec),
        end_date=end_date(spec),
        catchup=False,
        max_active_runs=1,
        default_args=default_args(spec),
        params={"day": day_param(spec)},
        tags=tags(spec, "drift_monitoring"),
        doc_md=DOC.format(
            name=spec.name,
            window=spec.drift.window_days,
            sample=spec.drift.sample_size,
            seed=spec.drift.seed,
            method=spec.drift.method or "auto",
            threshold=spec.drift.threshold if spec.drift.threshold is not None else "default",
            metric=spec.model.primary_metric,
            delay=spec.labels.delay_days,
            experiment=spec.experiment_name,
            share=spec.drift.drifted_share,
            keys=", ".join(f"`{k}`" for k in spec.drift.key_features) or "(no key features)",
            drop=spec.drift.max_quality_drop,
            training=training_dag_id,
            cooldown=spec.drift.cooldown_hours,
            schedule=spec.schedule.drift,
        )
        + on_call_doc(
            "`decide_retrain` logs the verdict, why, the features closest to (or past) their threshold, "
            "prediction drift, quality on labels, rows compared, the retrain decision and the report's address.",
            "`compute_drift` opens the Evidently report, its MLflow monitoring run and the champion version; "
            "`decide_retrain` the report.",
        ),
    ):
        common = {"use_case": spec.name, "day": "{{ params.day }}"}
        # The model whose predictions are checked: the one that served the day (data time).
        resolve_champion = ResolveChampionOperator(
            task_id="resolve_champion", purpose="monitor", model_policy="champion_at_day", **common
        )
        wait_for_predictions = PartitionSensor(
            task_id="wait_for_predictions",
            kind="predictions",
            mode="reschedule",
            poke_interval=sensor_poke_seconds(),
            timeout=spec.schedule.raw_batch_timeout_hours * 3600,
            **sensor_horizon(spec),
            **common,
        )
        compute_drift = DriftReportOperator(task_id="compute_drift", champion=resolve_champion.output, **common)
        decide_retrain = RetrainDecisionOperator(
            task_id="decide_retrain",
            report=compute_drift.output,
            training_dag_id=training_dag_id,
            trigger_task_id="trigger_training",
            **common,
        )
        trigger_training = TriggerDagRunOperator(
            task_id="trigger_training",
            trigger_dag_id=training_dag_id,
            conf=XComArg(decide_retrain, key="retrain_conf"),
            wait_for_completion=False,  # the training DAG reports itself; waiting would hold a slot for hours
            openlineage_inject_parent_info=False,  # the training DAG accepts exactly the keys we send
        )
        record_trigger = RecordRetrainTriggerOperator(
            task_id="record_trigger",
            conf=XComArg(decide_retrain, key="retrain_conf"),
            training_dag_id=training_dag_id,
            training_run_id=XComArg(trigger_training, key="trigger_run_id"),
            **common,
        )

        wait_for_predictions >> resolve_champion >> compute_drift >> decide_retrain
        decide_retrain >> trigger_training >> record_trigger
