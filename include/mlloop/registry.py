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
* every version carries tags ``use_case``, ``feature_service``, ``training_run_id``, and
  ``mlloop.model_sha256`` / ``mlloop.model_files``: the checksum of its model files taken at
  registration, which :func:`load_model` verifies before deserializing anything.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlloop import tags as tag_keys
from mlloop.settings import Settings, environment_restored, get_settings

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
    # MLflow draws a "Downloading artifacts" progress bar on stderr, which a task log shows as red
    # ERROR lines in a green task; a person can still switch it back on.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # mlflow.set_tracking_uri also exports MLFLOW_TRACKING_URI (and the registry's) into os.environ
    # "so that subprocesses inherit it". Settings read that variable first, so the export would pin
    # every later settings read of this process, and every process it starts (a local Airflow, a
    # test's scheduler), to this store whatever MLLOOP_HOME says. MLflow's own default is a module
    # global, checked before the variable: restoring the environment keeps the fluent API working.
    with environment_restored(("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")):
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
            client.create_experiment(
                spec.experiment_name, artifact_location=location, tags={tag_keys.USE_CASE: spec.name}
            )
        )
    except Exception:
        # Another task created it between our lookup and create; use theirs.
        experiment = client.get_experiment_by_name(spec.experiment_name)
        if experiment is None:
            raise
        return str(experiment.experiment_id)


def _is_not_found(exc: Exception) -> bool:
    return getattr(exc, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND") or "not found" in str(exc).lower()


def _model_is_missing(client: MlflowClient, exc: Exception, model_name: str) -> bool:
    """Whether ``exc`` says the registered model does not exist. MLflow's basic-auth app answers 403
    (PERMISSION_DENIED), not 404, for an alias or a version of a model that does not exist yet (it
    cannot resolve the model to check a permission on): then the model itself is looked up."""
    from mlflow.exceptions import MlflowException

    if _is_not_found(exc):
        return True
    if getattr(exc, "error_code", "") != "PERMISSION_DENIED":
        return False
    try:
        client.get_registered_model(model_name)
    except MlflowException as lookup:
        return _is_not_found(lookup)
    return False


def get_alias(client: MlflowClient, model_name: str, alias: str) -> ModelRef | None:
    """The version an alias points at, or None if the alias (or the model) does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        mv = client.get_model_version_by_alias(model_name, alias)
    except MlflowException as exc:
        if _model_is_missing(client, exc, model_name):
            return None
        raise
    return ModelRef.from_model_version(mv)


def get_version(client: MlflowClient, model_name: str, version: str | int) -> ModelRef:
    from mlflow.exceptions import MlflowException

    try:
        mv = client.get_model_version(model_name, str(version))
    except MlflowException as exc:
        if _model_is_missing(client, exc, model_name):
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
        warnings.filterwarnings("ignore", message=r"The `airflow\.[\w.]+`( attribute)? is deprecated")
        yield


# ------------------------------------------------------------------------- artifact integrity
class ModelIntegrityError(RuntimeError):
    """A version's artifacts differ from what was registered (or were never fingerprinted): refused.

    Loading an MLflow model deserializes it (skops, or pickle for other flavours), which can run
    code: a model is only loaded after its files match the checksum recorded at registration.
    """


def model_manifest(folder: str | Path) -> dict[str, str]:
    """sha256 of every file of a downloaded model, by its path relative to the model folder."""
    import hashlib

    root = Path(folder)
    manifest = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        manifest[path.relative_to(root).as_posix()] = digest.hexdigest()
    return manifest


def manifest_digest(manifest: dict[str, str]) -> str:
    """One sha256 over a manifest (file names and contents): the version's ``mlloop.model_sha256``."""
    import hashlib

    return hashlib.sha256("".join(f"{name}\t{sha}\n" for name, sha in sorted(manifest.items())).encode()).hexdigest()


def download_model(client: MlflowClient, name: str, version: str, folder: str) -> str:
    """The version's artifacts as stored (not the registry's generated metadata) into ``folder``."""
    import mlflow.artifacts

    uri = client.get_model_version_download_uri(name, version)
    return str(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=folder))


def record_model_checksum(client: MlflowClient, name: str, version: str) -> str:
    """Fingerprint a freshly registered version's files and store it as version tags (the anchor
    every later load is checked against). Returns the digest."""
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        manifest = model_manifest(download_model(client, name, version, tmp))
    digest = manifest_digest(manifest)
    client.set_model_version_tag(name, version, tag_keys.MODEL_FILES, json.dumps(manifest, sort_keys=True))
    client.set_model_version_tag(name, version, tag_keys.MODEL_SHA256, digest)
    return digest


def verify_model_files(ref: ModelRef, folder: str) -> None:
    """Raise :class:`ModelIntegrityError` unless the files in ``folder`` are those registered for ``ref``."""
    import json

    expected = ref.tags.get(tag_keys.MODEL_SHA256)
    if not expected:
        raise ModelIntegrityError(
            f"{ref.name} v{ref.version} has no '{tag_keys.MODEL_SHA256}' tag: its files were never fingerprinted, so "
            "they cannot be told apart from tampered ones and are not loaded. Retrain, or re-register it from "
            "a trusted training run (mlloop.registry.record_model_checksum)."
        )
    found = model_manifest(folder)
    if manifest_digest(found) == expected:
        return
    try:
        recorded: dict[str, str] = json.loads(ref.tags.get(tag_keys.MODEL_FILES, "{}"))
    except ValueError:
        recorded = {}
    changed = sorted(n for n in set(found) | set(recorded) if found.get(n) != recorded.get(n)) or ["(unknown)"]
    raise ModelIntegrityError(
        f"{ref.name} v{ref.version}: the model files in the artifact store do not match the checksum recorded at "
        f"registration (changed, added or missing: {', '.join(changed)}). The model was NOT loaded. Treat the "
        "artifact store as compromised: do not serve this version; roll the champion back to a verified "
        f"version ({ref.name}'s rollback DAG) and investigate who wrote {ref.source or 'its artifacts'}."
    )


def load_model(ref: ModelRef, client: MlflowClient | None = None) -> Any:
    """Load the scikit-learn model of a pinned version, after verifying its files' checksum.

    The files are downloaded once, verified, and loaded from that same local copy, so what is
    loaded is exactly what was checked.
    """
    import tempfile

    import mlflow.sklearn

    client = client or mlflow_client()
    with tempfile.TemporaryDirectory() as tmp:
        folder = download_model(client, ref.name, ref.version, tmp)
        verify_model_files(ref, folder)
        with quiet_module_probing():
            return mlflow.sklearn.load_model(folder)


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
