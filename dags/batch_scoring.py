"""Batch scoring: one DAG per use case, ``<use_case>__batch_scoring``.

Per daily interval: pin the champion version -> wait for the day's features -> score the day's
entities through Feast in bounded memory, split into N mapped tasks (the ``partitions`` Param, else
the spec's ``scoring.partitions``) -> validate all parts and publish them as one prediction partition
-> update the predictions Asset.
"""

from __future__ import annotations

from mlloop.spec import load_specs
from mlloop_airflow.assets import predictions_asset
from mlloop_airflow.dag_defaults import (
    day_param,
    default_args,
    end_date,
    interval_timetable,
    mlloop_dag,
    model_policy_param,
    on_call_doc,
    partitions_param,
    sensor_horizon,
    sensor_poke_seconds,
    start_date,
    tags,
)
from mlloop_airflow.operators.champion import ResolveChampionOperator
from mlloop_airflow.operators.scoring import (
    CommitPredictionsOperator,
    PlanScoringPartsOperator,
    ScorePartitionOperator,
)
from mlloop_airflow.operators.shadow import ResolveShadowOperator
from mlloop_airflow.sensors.storage import PartitionSensor

DOC = """
### {name} · batch scoring

**What it does**, for one day (UTC):
1. `wait_for_features` waits for `features/{name}/{fv}/date=<day>/data.parquet`.
2. `resolve_champion` pins the model version once the day's features are there, by the **Model policy**
   parameter: `champion_at_day` (default) takes the version that was champion of `{model}` at the end
   of the day scored, in data time (a version trained with cutoff C serves from day C+1; the champion
   history is the registered model's tag `champion.history`), so a backfill scores each day with the
   model that served it; a day before the first champion serves uses the first champion, and says so.
   `current` takes the version alias `champion` points at now. The rest of the run uses that version,
   even if a promotion happens meanwhile. **No champion yet** (before the first promotion): the run is
   skipped, green, with the reason in this task's log.
3. `plan_parts` splits the day into N parts: the **Parts** parameter of a manual trigger, else the
   spec's `scoring.partitions` ({partitions}).
4. `score_partition` (N mapped tasks, spread over the workers) takes its share of the day's entities
   (key + timestamp of that partition, split by a stable hash of the key), gets their features from
   Feast (the version's feature service) and scores them in chunks of {chunk_rows:,} rows, so memory
   does not grow with the day's size.
5. `commit_predictions` checks the output (one row per entity, no missing key or score, scores in range,
   one model version) and only then publishes `predictions/{name}/date=<day>/data.parquet` in one step,
   replacing a previous run's partition.

{shadow}Every prediction row carries the entity key, event timestamp, the model's input features, `score`
(and `predicted_class`), `model_name`, `model_version` and `airflow_run_id`; `model.json` beside the
partition records the model policy and why that version was chosen.

**Triggered by**: the `{schedule}` schedule, a backfill, or a manual trigger with the **Day** parameter set
(and, optionally, **Parts**).

**Emits**: Asset `{name}.predictions`, with extra `day`, `model_version`, `model_policy` and `rows`.

**When it fails**
- *wait_for_features timed out*: the day's ingestion did not finish; see `{name}__feature_ingestion`.
- *score_partition failed without retrying*: Feast could not return features for some of the day's rows
  (the log lists examples); usually the Feast registry is not deployed. Fix, then clear the run.
- *commit_predictions failed*: the output broke a check (the log says which); nothing was published and the
  parts are kept under `staging/{name}/predictions/` for inspection.
Rerunning a day is always safe: it replaces that day's partition.
"""

SHADOW_DOC = """**Shadow scoring** (`promotion.shadow_days`): `resolve_shadow` pins the pending challenger (else
the challenger) when it is not the champion and the day is one it has not learned from, and draws the
day's shadow sample (a day of more than `promotion.shadow_max_rows` rows: that many, chosen by a hash of
entity key + event timestamp, the same in every run and part); every part then also scores its rows of
the sample with it, from the same features, and `commit_predictions` publishes those rows to
`shadow/<use_case>/date=<day>/` (never read as predictions). A shadow that fails its checks is a warning.

"""

for spec in load_specs():
    with mlloop_dag(
        dag_id=spec.dag_id("batch_scoring"),
        description=f"Score {spec.name}'s daily entities with the pinned champion into one prediction partition",
        schedule=interval_timetable(spec.schedule.scoring),
        start_date=start_date(spec),
        end_date=end_date(spec),
        catchup=False,
        max_active_runs=4,
        default_args=default_args(spec),
        params={"day": day_param(spec), "partitions": partitions_param(spec), "model_policy": model_policy_param()},
        tags=tags(spec, "batch_scoring"),
        doc_md=DOC.format(
            name=spec.name,
            model=spec.registered_model_name,
            fv=spec.features.feature_view,
            partitions=spec.scoring.partitions,
            chunk_rows=spec.scoring.chunk_rows,
            schedule=spec.schedule.scoring,
            shadow=SHADOW_DOC if spec.promotion.shadow_days else "",
        )
        + on_call_doc(
            "`commit_predictions` logs what it published: rows (one per entity of the day), model version, "
            "score range.",
            "`resolve_champion` opens the pinned model version in MLflow.",
        ),
    ):
        common = {"use_case": spec.name, "day": "{{ params.day }}"}
        resolve_champion = ResolveChampionOperator(
            task_id="resolve_champion", purpose="score the day", model_policy="{{ params.model_policy }}", **common
        )
        wait_for_features = PartitionSensor(
            task_id="wait_for_features",
            kind="features",
            mode="reschedule",
            poke_interval=sensor_poke_seconds(),
            timeout=spec.schedule.raw_batch_timeout_hours * 3600,
            **sensor_horizon(spec),
            **common,
        )
        plan_parts = PlanScoringPartsOperator(task_id="plan_parts", partitions="{{ params.partitions }}", **common)
        # promotion.shadow_days: the pending challenger is scored too, into the shadow area only.
        shadow = (
            ResolveShadowOperator(task_id="resolve_shadow", champion=resolve_champion.output, **common).output
            if spec.promotion.shadow_days
            else None
        )
        score_partition = ScorePartitionOperator.partial(
            task_id="score_partition",
            champion=resolve_champion.output,
            shadow=shadow,
            **common,
        ).expand_kwargs(plan_parts.output)
        commit_predictions = CommitPredictionsOperator(
            task_id="commit_predictions",
            champion=resolve_champion.output,
            parts=score_partition.output,
            shadow=shadow,
            outlets=[predictions_asset(spec.name)],
            **common,
        )

        # Pin the champion when the data is there, not when the run was created: a run waiting
        # hours for its features must score with the champion of that moment.
        wait_for_features >> resolve_champion >> plan_parts >> score_partition >> commit_predictions
