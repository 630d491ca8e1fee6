"""Data and models for tests of the stages after ingestion (scoring, drift monitoring).

Tests build what those stages read the way the loop does, only smaller: feature partitions through
the real ingestion functions (or straight from the generator when validation is not the point), a
Feast registry, and a small real scikit-learn Pipeline registered in MLflow with alias ``champion``
and a reference sample, following the conventions in ``mlloop.registry``. Nothing here depends on
the training code.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from mlloop.features import build_features
from mlloop.ingestion import features_path, validate_landed_batch, validated_path, write_feature_partition
from mlloop.landing import generate, land_days
from mlloop.registry import (
    CHAMPION,
    PREDICTION_COLUMN,
    REFERENCE_ARTIFACT,
    ModelRef,
    mlflow_client,
    predict_scores,
    record_model_checksum,
)
from mlloop.spec import UseCaseSpec
from mlloop.storage import Storage
from mlloop.tags import registration

SMALL = {"rows_per_day": 300, "n_customers": 1500}


def ingest_days(storage: Storage, spec: UseCaseSpec, days: Iterable[dt.date], **overrides: Any) -> None:
    """Land, validate (Great Expectations) and build the features of each day, as the ingestion DAG does."""
    days = list(days)
    land_days(storage, spec, days, **overrides)
    for day in days:
        validate_landed_batch(storage, spec, "observations", day)
        validate_landed_batch(storage, spec, "labels", day)
        write_feature_partition(storage, spec, day)


def write_clean_features(storage: Storage, spec: UseCaseSpec, days: Iterable[dt.date], **overrides: Any) -> None:
    """Feature and label partitions straight from the generator without faults (no GX: fast)."""
    params = {"bad_row_share": 0.0, **overrides}
    for day in days:
        batch = generate(spec, day, **params)
        storage.write_frame(build_features(batch.observations, spec), features_path(storage, spec, day))
        storage.write_frame(batch.labels, validated_path(storage, spec, "labels", day))


def feature_frame(storage: Storage, spec: UseCaseSpec, days: Iterable[dt.date]) -> pd.DataFrame:
    return pd.concat([storage.read_frame(features_path(storage, spec, d)) for d in days], ignore_index=True)


def labelled_frame(storage: Storage, spec: UseCaseSpec, days: Iterable[dt.date]) -> pd.DataFrame:
    """Features of ``days`` joined with whatever labels for them have landed (any landing day)."""
    key, ts = spec.entity.join_key, spec.raw.timestamp_column
    features = feature_frame(storage, spec, days)
    labels = [
        storage.read_frame(path)
        for path in storage.glob(storage.path("features", spec.name, "labels", "date=*", "data.parquet"))
    ]
    label_frame = pd.concat(labels, ignore_index=True)
    for frame in (features, label_frame):
        frame[key] = frame[key].astype("int64")
        frame[ts] = pd.to_datetime(frame[ts], utc=True).astype("datetime64[ns, UTC]")
    return features.merge(label_frame, on=[key, ts], how="inner")


def model_input(frame: pd.DataFrame, spec: UseCaseSpec) -> pd.DataFrame:
    """Model features as Feast returns them: plain numpy dtypes, categoricals as strings."""
    out = frame[spec.model.features].copy()
    for col in spec.model.numeric_features:
        out[col] = pd.to_numeric(out[col]).astype("float64")
    for col in spec.model.categorical_features:
        out[col] = out[col].astype(object)
    return out


def lookup_fetcher(features: pd.DataFrame, spec: UseCaseSpec, *, drop: int = 0, duplicate: bool = False) -> Any:
    """A stand-in for Feast's point-in-time fetch: the entities' rows of ``features`` (matched on key
    + timestamp), shuffled as Feast reorders them, with the entity frame's extra columns (the scoring
    row id) passed through as Feast does; optionally with rows dropped or duplicated."""
    key, ts = spec.entity.join_key, spec.raw.timestamp_column
    table = pd.concat([features[[key, ts]], model_input(features, spec)], axis=1)  # numpy dtypes, as Feast
    table[key] = table[key].astype("int64")
    table[ts] = pd.to_datetime(table[ts], utc=True).astype("datetime64[ns, UTC]")

    def fetch(entities: pd.DataFrame) -> pd.DataFrame:
        found = entities.merge(table, on=[key, ts], how="inner").sample(frac=1.0, random_state=1)
        if duplicate:
            found = pd.concat([found, found.head(3)])
        return found.iloc[drop:]

    return fetch


def small_pipeline(spec: UseCaseSpec) -> Any:
    """A quick, real scikit-learn Pipeline over the spec's raw features (skops-safe types only)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    prep = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), spec.model.numeric_features),
            (
                "cat",
                make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")),
                spec.model.categorical_features,
            ),
        ]
    )
    return Pipeline([("prep", prep), ("model", LogisticRegression(max_iter=300))])


def train_small_model(spec: UseCaseSpec, frame: pd.DataFrame) -> Any:
    model = small_pipeline(spec)
    model.fit(model_input(frame, spec), frame[spec.labels.column].astype("int64"))
    return model


def register_champion(
    spec: UseCaseSpec,
    frame: pd.DataFrame,
    *,
    model: Any = None,
    holdout_metrics: dict[str, float] | None = None,
    feature_service: str | None = None,
    alias: str | None = CHAMPION,
    reference_size: int = 2000,
    seed: int = 0,
) -> ModelRef:
    """Train on ``frame`` (features + label), or take ``model``, and register it as the registry
    conventions say.

    The training run logs ``holdout_<metric>`` metrics and ``reference/reference.parquet`` (model
    features + label + ``prediction`` = score); the version gets tags use_case / feature_service /
    training_run_id and, by default, alias ``champion``.
    """
    import tempfile
    from pathlib import Path

    import mlflow
    import mlflow.sklearn

    from mlloop.registry import ensure_experiment, get_version

    model = model if model is not None else train_small_model(spec, frame)
    client = mlflow_client()
    experiment_id = ensure_experiment(client, spec)
    sample = frame.sample(n=min(reference_size, len(frame)), random_state=seed)
    reference = model_input(sample, spec)
    reference[spec.labels.column] = sample[spec.labels.column].astype("int64").to_numpy()
    reference[PREDICTION_COLUMN] = predict_scores(model, model_input(sample, spec), spec.model.task)
    metrics = holdout_metrics if holdout_metrics is not None else {f"holdout_{spec.model.primary_metric}": 0.8}
    with mlflow.start_run(experiment_id=experiment_id, run_name="test-training") as run:
        mlflow.log_metrics(metrics)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / Path(REFERENCE_ARTIFACT).name
            reference.to_parquet(path, index=False)
            mlflow.log_artifact(str(path), artifact_path=str(Path(REFERENCE_ARTIFACT).parent))
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name=spec.registered_model_name,
            pip_requirements=["scikit-learn"],
            skops_trusted_types=["numpy.dtype"],
        )
    version = str(info.registered_model_version)
    name = spec.registered_model_name
    tags = registration(spec.name, feature_service or spec.model.feature_service, run.info.run_id)
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    record_model_checksum(client, name, version)
    if alias:
        client.set_registered_model_alias(name, alias, version)
    return get_version(client, name, version)


def synthetic_features(spec: UseCaseSpec, rows: int, day: dt.date, seed: int = 0) -> pd.DataFrame:
    """A feature partition of any size without the generator's customer-pool limit (memory tests)."""
    rng = np.random.default_rng(seed)
    key, ts = spec.entity.join_key, spec.raw.timestamp_column
    start = pd.Timestamp(day, tz="UTC")
    frame = pd.DataFrame(
        {
            key: np.arange(rows, dtype="int64") + 1_000_000,
            ts: start + pd.to_timedelta(np.sort(rng.integers(0, 86_400, rows)), unit="s"),
        }
    )
    for name in spec.model.numeric_features:
        if spec.features.columns[name].dtype == "int64":
            frame[name] = rng.integers(0, 60, rows).astype("int64")
        else:
            frame[name] = rng.gamma(2.0, 1.0, rows)
    for name in spec.model.categorical_features:
        allowed = spec.features.columns[name].allowed or ["a", "b"]
        frame[name] = rng.choice(allowed, rows).astype(object)
    return frame


# ------------------------------------------------------------------------------ Airflow helpers
def run_dag(dag_id: str, day: dt.date) -> Any:
    """``dag.test()`` of one of the project's DAGs for ``day`` (as a manual run with the Day param)."""
    from pathlib import Path

    from airflow.dag_processing.dagbag import DagBag

    dags = Path(__file__).resolve().parents[1] / "dags"
    stage = dag_id.split("__", 1)[1]
    bag = DagBag(dag_folder=str(dags / f"{stage}.py"))
    assert not bag.import_errors, bag.import_errors
    return bag.dags[dag_id].test(run_conf={"day": day.isoformat()})


def task_states(dag_run: Any) -> dict[str, str]:
    """task_id -> final state (mapped tasks: the states of their instances, joined)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.query(TaskInstance).filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id).all()
        states: dict[str, list[str]] = {}
        for ti in sorted(tis, key=lambda t: (t.task_id, t.map_index)):
            states.setdefault(ti.task_id, []).append(str(ti.state))
    return {task: ",".join(values) for task, values in states.items()}


def dag_runs(dag_id: str) -> list[Any]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        runs = session.query(DagRun).filter_by(dag_id=dag_id).order_by(DagRun.id).all()
        session.expunge_all()
    return runs


def delete_dag_runs(dag_id: str) -> None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        for run in session.query(DagRun).filter_by(dag_id=dag_id).all():
            session.delete(run)


def ensure_dag_in_db(dag_id: str) -> None:
    """Make ``dag_id`` triggerable: if the dags folder does not define it (yet), a stand-in with no
    tasks of consequence is written to the metadata DB. Triggered runs are only queued in tests
    (``dag.test()`` has no scheduler), so what the DAG does is irrelevant."""
    import datetime as _dt

    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.models.dag import DagModel
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG

    if DagModel.get_current(dag_id) is not None:
        return
    from airflow.dag_processing.bundles.manager import DagBundlesManager

    DagBundlesManager().sync_bundles_to_db()
    with DAG(dag_id, schedule=None, start_date=_dt.datetime(2025, 1, 1, tzinfo=_dt.UTC)) as stand_in:
        EmptyOperator(task_id="noop")
    bag = DagBag(dag_folder="/dev/null", collect_dags=False)
    bag.bag_dag(stand_in)
    sync_bag_to_db(bag, "dags-folder", None)


def xcom_value(dag_run: Any, task_id: str, key: str = "return_value") -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id=task_id, key=key)
            .one_or_none()
        )
        return None if row is None else XComModel.deserialize_value(row)
