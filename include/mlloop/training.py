"""Train, evaluate and register one model version of a use case.

The steps of a training run around its training set (built and validated in :mod:`mlloop.training_set`):

1. :func:`decide_training`: whether to train at all (a reason was given, there is no model yet, or
   the newest version's data is ``model.retrain_after_days`` older than this cutoff; or no version
   became champion yet and newer data exists), and only with at least ``model.min_training_rows``
   labelled rows. Not training is a decision, not a failure.
2. :func:`fit_and_evaluate`: split by time (train on older rows, hold out the newest
   ``model.holdout_days`` days), fit the spec's estimator in a scikit-learn Pipeline (impute numeric;
   impute and one-hot categorical, unknown categories ignored), evaluate on the holdout.
3. :func:`log_and_register`: log params, ``holdout_<metric>`` metrics, lineage tags, the training-set
   fingerprint, the validation result, the drift reference sample and the model to MLflow; register
   a version and point alias ``challenger`` at it (conventions in :mod:`mlloop.registry`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import subprocess
import tempfile
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlloop import tags as tag_keys
from mlloop.compute import compute_threads
from mlloop.registry import (
    CHALLENGER,
    PREDICTION_COLUMN,
    REFERENCE_ARTIFACT,
    ModelRef,
    ensure_experiment,
    predict_scores,
    quiet_module_probing,
    record_model_checksum,
)
from mlloop.settings import PROJECT_ROOT, Settings, get_settings
from mlloop.spec import UseCaseSpec

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient

log = logging.getLogger(__name__)

# Tag keys: mlloop.tags.
VALIDATION_ARTIFACT = "validation/training_set_validation.json"
FINGERPRINT_ARTIFACT = "training_set/fingerprint.json"
MODEL_NAME = "model"


class TrainingDataError(ValueError):
    """The training set cannot train a model (a data fault: retrying will not help)."""


# --------------------------------------------------------------------------------------- decision
@dataclass(frozen=True)
class TrainingDecision:
    """Whether a run trains, and a sentence saying why, for the log and the run's lineage."""

    train: bool
    cutoff_day: dt.date
    reason: str
    explanation: str
    labelled_rows: int
    latest_version: str | None = None
    latest_cutoff: dt.date | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "train": self.train,
            "cutoff_day": self.cutoff_day.isoformat(),
            "reason": self.reason,
            "explanation": self.explanation,
            "labelled_rows": self.labelled_rows,
            "latest_version": self.latest_version,
            "latest_cutoff": self.latest_cutoff.isoformat() if self.latest_cutoff else None,
        }


def decide_training(
    spec: UseCaseSpec,
    *,
    cutoff_day: dt.date,
    labelled_rows: int,
    reason: str | None = None,
    force: bool = False,
    latest_version: str | None = None,
    latest_cutoff: dt.date | None = None,
    has_champion: bool = True,
    latest_described: str | None = None,
) -> TrainingDecision:
    """Decide whether to train (pure: everything it needs is passed in).

    ``labelled_rows`` counts the labels that can get features (their observation day was ingested).
    Beyond the spec's rules, a use case with versions but no champion (every one so far was
    rejected) retrains as soon as newer data exists instead of waiting ``retrain_after_days``:
    until a model passes the gate there is nothing to score with. ``latest_described`` names the
    newest training in the explanation when it is not a registered version (a ledger entry).
    """
    minimum = spec.model.min_training_rows
    common = dict(cutoff_day=cutoff_day, labelled_rows=labelled_rows, latest_version=latest_version)
    newest = latest_described or (f"the newest version v{latest_version}" if latest_version else "no version")
    if labelled_rows < minimum:
        return TrainingDecision(
            train=False,
            reason="not enough labelled data",
            explanation=(
                f"not enough labelled data yet: {labelled_rows} < {minimum} (model.min_training_rows) in the "
                f"training window up to {cutoff_day}; nothing to train. Training runs again when more labels land."
            ),
            latest_cutoff=latest_cutoff,
            **common,  # type: ignore[arg-type]
        )
    if force or reason:
        why = reason or "forced"
        return TrainingDecision(
            train=True,
            reason=why,
            explanation=f"training on request ({why}{', force' if force and reason else ''}); {newest} exists.",
            latest_cutoff=latest_cutoff,
            **common,  # type: ignore[arg-type]
        )
    if latest_version is None:
        return TrainingDecision(
            train=True,
            reason="no model version yet",
            explanation=f"the registered model has no version yet: training the first one on data up to {cutoff_day}.",
            latest_cutoff=latest_cutoff,
            **common,  # type: ignore[arg-type]
        )
    if not has_champion and latest_cutoff is not None and latest_cutoff < cutoff_day:
        return TrainingDecision(
            train=True,
            reason="no champion yet",
            explanation=(
                f"there is no champion yet ({newest}, trained on data up to {latest_cutoff}, was not promoted): "
                f"training on the newer data up to {cutoff_day}."
            ),
            latest_cutoff=latest_cutoff,
            **common,  # type: ignore[arg-type]
        )
    if latest_cutoff is None:
        return TrainingDecision(
            train=True,
            reason="newest version has no training cutoff",
            explanation=f"{newest} has no '{tag_keys.TRAINING_CUTOFF}' tag, so its data age is unknown: retraining.",
            latest_cutoff=latest_cutoff,
            **common,  # type: ignore[arg-type]
        )
    age = (cutoff_day - latest_cutoff).days
    limit = spec.model.retrain_after_days
    if age >= limit:
        return TrainingDecision(
            train=True,
            reason=f"model data is {age} days old",
            explanation=(
                f"{newest} was trained on data up to {latest_cutoff}, {age} day(s) before this cutoff "
                f"{cutoff_day} (>= model.retrain_after_days {limit}): retraining."
            ),
            latest_cutoff=latest_cutoff,
            **common,  # type: ignore[arg-type]
        )
    return TrainingDecision(
        train=False,
        reason="model is recent",
        explanation=(
            f"{newest} was trained on data up to {latest_cutoff}, only {age} day(s) before this cutoff "
            f"{cutoff_day} (< model.retrain_after_days {limit}): no retraining needed. Trigger with a "
            "'reason' or force=true to train anyway."
        ),
        latest_cutoff=latest_cutoff,
        **common,  # type: ignore[arg-type]
    )


def latest_version(client: MlflowClient, spec: UseCaseSpec) -> tuple[str | None, dt.date | None]:
    """The newest registered version of the use case's model and its training cutoff (tag)."""
    versions = client.search_model_versions(
        f"name = '{spec.registered_model_name}'", order_by=["version_number DESC"], max_results=1
    )
    if not versions:
        return None, None
    newest = versions[0]
    cutoff = (newest.tags or {}).get(tag_keys.TRAINING_CUTOFF)
    try:
        return str(newest.version), dt.date.fromisoformat(cutoff) if cutoff else None
    except ValueError:
        return str(newest.version), None


# ------------------------------------------------------------------------------ fit and evaluate
def model_input(frame: pd.DataFrame, spec: UseCaseSpec, columns: list[str] | None = None) -> pd.DataFrame:
    """The model's input: numeric features as floats (missing = NaN), categoricals as objects (missing = NaN).

    One representation for "missing" matters: scikit-learn's imputers treat ``None`` in an object
    column as a category of its own, not as missing.
    """
    import numpy as np
    import pandas as pd

    columns = columns or spec.model.features
    out = frame[columns].copy()
    categorical = set(spec.model.categorical_features)
    for name in columns:
        if name in categorical:
            out[name] = out[name].astype(object).where(out[name].notna(), np.nan)
        else:
            out[name] = pd.to_numeric(out[name], errors="coerce").astype("float64")
    return out


def build_pipeline(spec: UseCaseSpec) -> Any:
    """Preprocessing + the spec's estimator, from stock scikit-learn classes only (skops can load them)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    transformers: list[tuple[str, Any, list[str]]] = []
    if spec.model.numeric_features:
        numeric = SimpleImputer(strategy="median", keep_empty_features=True)
        transformers.append(("numeric", numeric, list(spec.model.numeric_features)))
    if spec.model.categorical_features:
        categorical = Pipeline(
            [
                ("impute", SimpleImputer(strategy="most_frequent", keep_empty_features=True)),
                ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
            ]
        )
        transformers.append(("categorical", categorical, list(spec.model.categorical_features)))
    estimator = spec.load_estimator_class()(**spec.model.params)
    return Pipeline([("features", ColumnTransformer(transformers, remainder="drop")), ("estimator", estimator)])


def split_by_time(frame: pd.DataFrame, spec: UseCaseSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, holdout): the holdout is every row of the newest ``model.holdout_days`` calendar days (UTC)."""
    import pandas as pd

    ts = spec.raw.timestamp_column
    times = pd.to_datetime(frame[ts], utc=True)
    if times.empty:
        raise TrainingDataError("the training set is empty")
    last_day = times.max().normalize()
    holdout_start = last_day - pd.Timedelta(days=spec.model.holdout_days - 1)
    is_holdout = times >= holdout_start
    train, holdout = frame[~is_holdout], frame[is_holdout]
    if train.empty:
        raise TrainingDataError(
            f"all {len(frame)} rows fall into the holdout (the newest {spec.model.holdout_days} day(s) from "
            f"{holdout_start.date()}): the training set needs labels from more days than model.holdout_days"
        )
    return train.reset_index(drop=True), holdout.reset_index(drop=True)


def target(frame: pd.DataFrame, spec: UseCaseSpec) -> Any:
    """The label as a numpy array: integers for classification, floats for regression."""
    import numpy as np

    return np.asarray(frame[spec.labels.column], dtype="int64" if spec.model.task == "classification" else "float64")


@dataclass
class TrainedModel:
    """A fitted pipeline and what is known about how it was fitted and how it did on the holdout."""

    pipeline: Any
    metrics: dict[str, float]
    train_rows: int
    holdout_rows: int
    train_start: str
    train_end: str
    holdout_start: str
    holdout_end: str
    params: dict[str, Any] = field(default_factory=dict)

    def describe(self, spec: UseCaseSpec) -> str:
        shown = ", ".join(f"{k}={v:.4f}" for k, v in self.metrics.items())
        return (
            f"trained {spec.model.estimator} on {self.train_rows} rows ({self.train_start} .. {self.train_end}); "
            f"holdout {self.holdout_rows} rows ({self.holdout_start} .. {self.holdout_end}): {shown}"
        )


def fit_and_evaluate(spec: UseCaseSpec, frame: pd.DataFrame) -> TrainedModel:
    """Fit the spec's pipeline on the older rows and score it on the newest ``holdout_days`` days."""
    import pandas as pd

    from mlloop.metrics import compute_metrics

    ts, label = spec.raw.timestamp_column, spec.labels.column
    train, holdout = split_by_time(frame, spec)
    y_train, y_holdout = target(train, spec), target(holdout, spec)
    if spec.model.task == "classification" and len(set(y_train.tolist())) < 2:
        raise TrainingDataError(f"the training split has only one class of '{label}': nothing to learn")
    pipeline = build_pipeline(spec)
    with compute_threads():
        pipeline.fit(model_input(train, spec), y_train)
        scores = predict_scores(pipeline, model_input(holdout, spec), spec.model.task)
    metrics = compute_metrics(spec.model.metrics, y_holdout, scores)
    train_times, holdout_times = pd.to_datetime(train[ts], utc=True), pd.to_datetime(holdout[ts], utc=True)
    return TrainedModel(
        pipeline=pipeline,
        metrics=metrics,
        train_rows=len(train),
        holdout_rows=len(holdout),
        train_start=train_times.min().isoformat(),
        train_end=train_times.max().isoformat(),
        holdout_start=holdout_times.min().isoformat(),
        holdout_end=holdout_times.max().isoformat(),
        params=dict(spec.model.params),
    )


def reference_sample(spec: UseCaseSpec, frame: pd.DataFrame, pipeline: Any, seed: int = 0) -> pd.DataFrame:
    """A seeded sample of the training set: model features, label and the model's ``prediction``.

    This is the drift monitor's reference for what inputs and predictions looked like in training.
    """
    n = min(spec.model.reference_sample_size, len(frame))
    sample = frame.sample(n=n, random_state=seed) if n < len(frame) else frame
    sample = sample.sort_values(spec.raw.timestamp_column, kind="stable")
    out = sample[[*spec.model.features, spec.labels.column]].reset_index(drop=True)
    with compute_threads():
        out[PREDICTION_COLUMN] = predict_scores(pipeline, model_input(sample, spec), spec.model.task)
    return out


# ------------------------------------------------------------------------------- log and register
def git_commit() -> str:
    """The project's git commit: ``MLLOOP_GIT_COMMIT`` if set, else ``git rev-parse HEAD``, else "unknown"."""
    override = get_settings().git_commit
    if override:
        return override
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


@dataclass(frozen=True)
class Lineage:
    """Where a training run came from: the orchestrator run, the data cut and the code."""

    cutoff_day: dt.date
    trigger_reason: str
    dag_id: str = ""
    dag_run_id: str = ""
    data_interval_start: str | None = None
    data_interval_end: str | None = None
    git_commit: str = "unknown"
    extra: dict[str, str] = field(default_factory=dict)

    def tags(self) -> dict[str, str]:
        return {
            **{f"{tag_keys.LINEAGE_PREFIX}{k}": v for k, v in self.extra.items()},
            tag_keys.LINEAGE_DAG_ID: self.dag_id,
            tag_keys.DAG_RUN_ID: self.dag_run_id,
            tag_keys.LINEAGE_DATA_INTERVAL_START: self.data_interval_start or "",
            tag_keys.LINEAGE_DATA_INTERVAL_END: self.data_interval_end or "",
            tag_keys.LINEAGE_CUTOFF_DAY: self.cutoff_day.isoformat(),
            tag_keys.TRIGGER_REASON: self.trigger_reason,
            tag_keys.LINEAGE_GIT_COMMIT: self.git_commit,
            # MLflow's own keys, so its UI shows the commit and the source.
            "mlflow.source.git.commit": self.git_commit,
            "mlflow.source.name": self.dag_id or "mlloop",
        }


def _pinned(package: str) -> str:
    try:
        return f"{package}=={version(package)}"
    except PackageNotFoundError:
        return package


def pip_requirements() -> list[str]:
    """Given explicitly: MLflow would otherwise spend ~10 s inferring them (and guess wrong)."""
    return [_pinned(p) for p in ("mlflow", "scikit-learn", "skops", "pandas", "numpy", "scipy")]


def skops_trusted_types(pipeline: Any) -> list[str]:
    """The types skops must trust to load this model: only scikit-learn's and numpy's are accepted.

    skops refuses, by default, some stock types too (HistGradientBoosting's tree predictor); we
    trust what our own pipeline of stock classes needs, and nothing from other packages.
    """
    import skops.io as sio

    untrusted = list(sio.get_untrusted_types(data=sio.dumps(pipeline)))
    foreign = [t for t in untrusted if not t.startswith(("sklearn.", "numpy."))]
    if foreign:
        raise TrainingDataError(
            f"the model contains types outside scikit-learn/numpy that skops will not load: {foreign}; "
            "use a scikit-learn estimator in model.estimator"
        )
    return untrusted


def version_of_run(client: MlflowClient, spec: UseCaseSpec, dag_run_id: str) -> ModelRef | None:
    """The version an Airflow run of the training DAG registered already, if any."""
    quoted = dag_run_id.replace("'", "\\'")
    found = client.search_model_versions(
        f"name = '{spec.registered_model_name}' and tags.`{tag_keys.DAG_RUN_ID}` = '{quoted}'",
        order_by=["version_number DESC"],
        max_results=1,
    )
    return ModelRef.from_model_version(found[0]) if found else None


def _registered_model(client: MlflowClient, spec: UseCaseSpec) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(spec.registered_model_name)
        return
    except MlflowException as exc:
        if getattr(exc, "error_code", "") not in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
            raise
    try:
        client.create_registered_model(
            spec.registered_model_name, tags={tag_keys.USE_CASE: spec.name}, description=spec.description
        )
    except MlflowException as exc:
        if getattr(exc, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
            raise


def log_and_register(
    client: MlflowClient,
    spec: UseCaseSpec,
    trained: TrainedModel,
    frame: pd.DataFrame,
    *,
    lineage: Lineage,
    validation: dict[str, Any] | None = None,
    training_set: dict[str, Any] | None = None,
    settings: Settings | None = None,
) -> ModelRef:
    """Log the run to MLflow, register a new version and point alias ``challenger`` at it.

    ``frame`` is the whole training set (train + holdout) the model came from; ``training_set``
    may carry extra facts about it (how the join went) to log beside its fingerprint.
    """
    import mlflow
    import mlflow.sklearn
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.models import infer_signature

    from mlloop.training_set import fingerprint

    settings = settings or get_settings()
    if lineage.dag_run_id:
        earlier = version_of_run(client, spec, lineage.dag_run_id)
        if earlier is not None:
            # A retry after a fault past registration (an MLflow outage, a killed worker): finish that
            # version instead of registering the same model twice.
            log.info("Run %s already registered %s v%s: reusing it", lineage.dag_run_id, earlier.name, earlier.version)
            if tag_keys.MODEL_SHA256 not in earlier.tags:
                record_model_checksum(client, spec.registered_model_name, earlier.version)
            client.set_registered_model_alias(spec.registered_model_name, CHALLENGER, earlier.version)
            return ModelRef.from_model_version(client.get_model_version(earlier.name, earlier.version))
    experiment_id = ensure_experiment(client, spec, settings)
    prints = fingerprint(frame, spec)
    run_name = f"{spec.name}-{lineage.cutoff_day.isoformat()}"
    run = client.create_run(
        experiment_id, run_name=run_name, tags={**lineage.tags(), tag_keys.LINEAGE_USE_CASE: spec.name}
    )
    run_id = run.info.run_id
    now_ms = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    params = {
        "estimator": spec.model.estimator,
        **{f"model.{k}": v for k, v in trained.params.items()},
        "feature_service": spec.model.feature_service,
        "features": ",".join(spec.model.features),
        "holdout_days": spec.model.holdout_days,
        "training_window_days": spec.model.training_window_days,
        "cutoff_day": lineage.cutoff_day.isoformat(),
        "train_rows": trained.train_rows,
        "holdout_rows": trained.holdout_rows,
        "train_start": trained.train_start,
        "train_end": trained.train_end,
        "holdout_start": trained.holdout_start,
        "holdout_end": trained.holdout_end,
        "training_set.sha256": prints["sha256"],
        "training_set.rows": prints["rows"],
        "training_set.start": prints["start"],
        "training_set.end": prints["end"],
    }
    tags = {
        tag_keys.LINEAGE_TRAINING_SET_SHA256: prints["sha256"],
        tag_keys.LINEAGE_FEATURE_SERVICE: spec.model.feature_service,
    }
    with mlflow.start_run(run_id=run_id):
        client.log_batch(
            run_id,
            metrics=[Metric(f"holdout_{k}", float(v), now_ms, 0) for k, v in trained.metrics.items()],
            params=[Param(k, str(v)) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        reference = reference_sample(spec, frame, trained.pipeline, seed=spec.drift.seed)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "reference").mkdir()
            reference.to_parquet(folder / REFERENCE_ARTIFACT, index=False)
            client.log_artifact(run_id, str(folder / REFERENCE_ARTIFACT), artifact_path="reference")
            (folder / "training_set").mkdir()
            (folder / FINGERPRINT_ARTIFACT).write_text(json.dumps({**prints, **(training_set or {})}, indent=2))
            client.log_artifact(run_id, str(folder / FINGERPRINT_ARTIFACT), artifact_path="training_set")
            if validation is not None:
                (folder / "validation").mkdir()
                (folder / VALIDATION_ARTIFACT).write_text(json.dumps(validation, indent=2, default=str))
                client.log_artifact(run_id, str(folder / VALIDATION_ARTIFACT), artifact_path="validation")
        example = model_input(frame.head(5), spec)
        signature = infer_signature(model_input(reference, spec), reference[PREDICTION_COLUMN].to_numpy())
        with compute_threads(), quiet_module_probing():  # log_model scores the input example
            info = mlflow.sklearn.log_model(
                trained.pipeline,
                name=MODEL_NAME,
                signature=signature,
                input_example=example,
                pip_requirements=pip_requirements(),
                skops_trusted_types=skops_trusted_types(trained.pipeline),
            )

    _registered_model(client, spec)
    mv = client.create_model_version(
        spec.registered_model_name,
        source=info.model_uri,
        run_id=run_id,
        # A tracking server accepts a ``models:/m-...`` source only with the model id that holds it.
        model_id=info.model_id,
        tags={
            **tag_keys.registration(spec.name, spec.model.feature_service, run_id),
            tag_keys.DAG_RUN_ID: lineage.dag_run_id,
            tag_keys.TRAINING_CUTOFF: lineage.cutoff_day.isoformat(),
            tag_keys.TRAIN_END: trained.train_end,
            tag_keys.GIT_COMMIT: lineage.git_commit,
            **{f"holdout_{k}": f"{v:.6g}" for k, v in trained.metrics.items()},
        },
        description=f"Trained on data up to {lineage.cutoff_day} ({lineage.trigger_reason}).",
    )
    record_model_checksum(client, spec.registered_model_name, str(mv.version))
    client.set_registered_model_alias(spec.registered_model_name, CHALLENGER, mv.version)
    log.info("Registered %s v%s (run %s) and pointed alias %s at it", mv.name, mv.version, run_id, CHALLENGER)
    return ModelRef.from_model_version(client.get_model_version(mv.name, mv.version))
