"""The MLflow model registry as the loop uses it: one registered model per use case, and aliases.

Aliases (MLflow 3 has no stages):

* ``challenger``        the newest trained version, waiting for the promotion gate;
* ``champion``          the version batch scoring uses;
* ``previous-champion`` the champion before the last move, kept addressable for rollback.

Conventions every stage relies on (the training code writes them, scoring and drift read them):

* the model is a scikit-learn estimator (usually a Pipeline) logged with the sklearn flavour; it
  takes a DataFrame with the spec's ``model.features`` columns, raw values (categoricals as strings);
* the training run logs metrics ``holdout_<metric>`` and the artifact ``reference/reference.parquet``:
  a seeded sample of the training set with the model features, the label and a ``prediction`` column
  (the drift monitor's reference);
* every version carries tags ``use_case``, ``feature_service``, ``training_run_id``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlloop.settings import Settings, get_settings

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient

    from mlloop.spec import UseCaseSpec

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS_CHAMPION = "previous-champion"
REFERENCE_ARTIFACT = "reference/reference.parquet"
PREDICTION_COLUMN = "prediction"


class ModelNotFound(LookupError):
    """A model version or alias that was asked for does not exist."""


@dataclass(frozen=True)
class ModelRef:
    """A pinned model version: what scoring resolves once per run and uses throughout."""

    name: str
    version: str
    run_id: str
    source: str
    tags: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    @classmethod
    def from_model_version(cls, mv: Any) -> ModelRef:
        return cls(
            name=mv.name,
            version=str(mv.version),
            run_id=mv.run_id or "",
            source=mv.source or "",
            tags=dict(mv.tags or {}),
            aliases=tuple(getattr(mv, "aliases", None) or ()),
        )


def mlflow_client(settings: Settings | None = None) -> MlflowClient:
    """An MLflow client on the configured tracking/registry URI (also set as mlflow's default)."""
    import mlflow
    from mlflow import MlflowClient

    settings = settings or get_settings()
    uri = settings.mlflow_tracking_uri
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def ensure_experiment(client: MlflowClient, spec: UseCaseSpec, settings: Settings | None = None) -> str:
    """The use case's experiment id, created on first use (artifacts beside a local store)."""
    settings = settings or get_settings()
    experiment = client.get_experiment_by_name(spec.experiment_name)
    if experiment is not None:
        return str(experiment.experiment_id)
    location = f"{settings.mlflow_artifact_root}/{spec.name}" if settings.mlflow_artifact_root else None
    try:
        return str(
            client.create_experiment(spec.experiment_name, artifact_location=location, tags={"use_case": spec.name})
        )
    except Exception:
        # Another task created it between our lookup and create; use theirs.
        experiment = client.get_experiment_by_name(spec.experiment_name)
        if experiment is None:
            raise
        return str(experiment.experiment_id)


def _is_not_found(exc: Exception) -> bool:
    return getattr(exc, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND") or "not found" in str(exc).lower()


def get_alias(client: MlflowClient, model_name: str, alias: str) -> ModelRef | None:
    """The version an alias points at, or None if the alias (or the model) does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        mv = client.get_model_version_by_alias(model_name, alias)
    except MlflowException as exc:
        if _is_not_found(exc):
            return None
        raise
    return ModelRef.from_model_version(mv)


def get_version(client: MlflowClient, model_name: str, version: str | int) -> ModelRef:
    from mlflow.exceptions import MlflowException

    try:
        mv = client.get_model_version(model_name, str(version))
    except MlflowException as exc:
        if _is_not_found(exc):
            raise ModelNotFound(f"model '{model_name}' has no version {version}") from None
        raise
    return ModelRef.from_model_version(mv)


def aliases(client: MlflowClient, model_name: str) -> dict[str, str]:
    """alias -> version for the registered model ({} if it is not registered yet)."""
    from mlflow.exceptions import MlflowException

    try:
        return {k: str(v) for k, v in client.get_registered_model(model_name).aliases.items()}
    except MlflowException as exc:
        if _is_not_found(exc):
            return {}
        raise


@contextmanager
def quiet_module_probing() -> Iterator[None]:
    """Silence the warnings skops triggers while (de)serializing a model.

    skops (MLflow 3's sklearn format) finds scipy ufuncs by probing ``getattr(module, name)`` on
    every imported module; in an Airflow task those include Airflow's deprecated-import shims,
    each of which warns on access: 200+ identical warnings per model, drowning the task log.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"The `airflow\.[\w.]+` is deprecated")
        yield


def load_model(ref: ModelRef) -> Any:
    """Load the scikit-learn model of a pinned version."""
    import mlflow.sklearn

    with quiet_module_probing():
        return mlflow.sklearn.load_model(ref.uri)


def load_reference_sample(client: MlflowClient, ref: ModelRef) -> pd.DataFrame:
    """The training reference sample logged with the version's training run."""
    import tempfile

    import pandas as pd

    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = client.download_artifacts(ref.run_id, REFERENCE_ARTIFACT, tmp)
        except Exception as exc:
            raise ModelNotFound(
                f"{ref.name} v{ref.version}: training run {ref.run_id} has no {REFERENCE_ARTIFACT}"
            ) from exc
        return pd.read_parquet(local)


def predict_scores(model: Any, features: pd.DataFrame, task: str) -> Any:
    """Scores as the loop defines them: P(positive class) for classification, the value for regression."""
    if task == "classification":
        return model.predict_proba(features)[:, 1]
    return model.predict(features)
