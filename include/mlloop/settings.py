"""Deployment settings, read from the environment.

One set of environment variables selects embedded vs scaled; code never branches on which one it
is. Every variable has an embedded default rooted at ``MLLOOP_HOME`` so the project runs with no
configuration at all. ``.env.example`` documents them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


def _project_root() -> Path:
    """The project's folder (``dags/``, ``plugins/``, ``feature_repo/``, ``include/use_cases/``):
    ``MLLOOP_PROJECT`` if set, else the checkout this module lives in. Installed from a wheel (the
    image), this module lives in site-packages, which is not the project: the image sets it."""
    configured = os.environ.get("MLLOOP_PROJECT", "").strip()
    return Path(configured).resolve() if configured else Path(__file__).resolve().parents[2]


PROJECT_ROOT = _project_root()


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


REMOTE_REGISTRY_STORES = {"s3": "S3RegistryStore", "gs": "GCSRegistryStore"}
"""Feast's own store per URL scheme (what it picks when ``registry_store_type`` is unset)."""


def default_registry_store(registry: str) -> str:
    """Feast's store for a remote registry URL; for a local path, one that writes atomically
    (``mlloop.feast_registry_store``: Feast's own rewrites the file in place)."""
    scheme = registry.split("://", 1)[0] if "://" in registry else "file"
    return REMOTE_REGISTRY_STORES.get(scheme, "mlloop.feast_registry_store.AtomicFileRegistryStore")


@dataclass(frozen=True)
class Settings:
    """Resolved settings for one process."""

    home: Path
    storage_root: str
    storage_conn_id: str | None
    mlflow_tracking_uri: str
    mlflow_artifact_root: str | None
    feast_repo_path: Path
    feast_registry: str
    feast_registry_store: str
    """Feast's registry store class (``registry_store_type``): atomic file writes for a local path."""
    feast_online_store: str
    feast_offline_store: str
    use_cases_dir: Path
    mlflow_ui_url: str = ""
    """Where people open MLflow's UI; the Airflow tasks' extra links point there."""
    storage_root_configured: bool = False
    """``MLLOOP_STORAGE_ROOT`` is set: a mount or bucket that must exist, never created by a task."""
    home_configured: bool = False
    """``MLLOOP_HOME`` is set (the scaled topology's processes default to another folder otherwise)."""
    # Tuning and tooling knobs. Every ``MLLOOP_*`` variable is read here and nowhere else.
    temporary_max_age_seconds: float | None = None
    """``MLLOOP_TEMPORARY_MAX_AGE_SECONDS``: age after which a temporary file is another host's leftover
    (``Storage.sweep_temporary``; ``None``: its own default)."""
    training_threads: int = 1
    """``MLLOOP_TRAINING_THREADS``: OpenMP/BLAS threads of fitting and predicting."""
    git_commit: str = ""
    """``MLLOOP_GIT_COMMIT``: the code version recorded with a run (empty: ask git)."""
    task_retries: int = 2
    retry_delay_seconds: float = 30.0
    sensor_poke_seconds: float = 60.0
    sensor_deferrable: bool = True
    """``MLLOOP_SENSOR_DEFERRABLE``: partition sensors wait in the triggerer (``0``: reschedule mode)."""
    sensor_check_seconds: float = 5.0
    """``MLLOOP_SENSOR_CHECK_SECONDS``: how often the triggerer checks for a deferred sensor's partition."""
    worker_hostname: str = ""
    """``MLLOOP_WORKER_HOSTNAME``: the name a worker's task instances record (empty: the FQDN)."""
    preload_modules: str = ""
    """``MLLOOP_PRELOAD_MODULES``: comma-separated modules the scheduler imports for its task processes."""
    mlflow_conn_id: str = ""
    """``MLLOOP_MLFLOW_CONN_ID``: the Airflow connection holding the MLflow login (empty: none)."""
    alert_conn_id: str = ""
    """``MLLOOP_ALERT_CONN_ID``: the webhook connection failure alerts go to (empty: alerts off)."""
    alert_format: str = ""
    """``MLLOOP_ALERT_FORMAT``: ``json`` or ``slack`` (empty: the notifier's default)."""
    test_hooks: str = ""
    """``MLLOOP_TEST_HOOKS``: a module a *test deployment* names to install its seams (e.g. fault
    injection, ``mlloop.testing_hooks``); empty in every real deployment."""
    faults_dir: str = ""
    """``MLLOOP_FAULTS_DIR``: where armed faults wait (read by the test seam only)."""
    airflow_port: int = 8080
    """``MLLOOP_AIRFLOW_PORT``: the embedded Airflow's API server and UI port (the ``mlloop`` tooling)."""
    services_postgres_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    services_redis_url: str = "redis://127.0.0.1:6379"
    """``MLLOOP_SERVICES_POSTGRES_URL`` / ``_REDIS_URL``: the machine's services the scaled topology uses."""

    @classmethod
    def from_env(cls) -> Settings:
        home = Path(_env("MLLOOP_HOME", str(PROJECT_ROOT / ".mlloop"))).resolve()
        artifact_root = os.environ.get("MLLOOP_MLFLOW_ARTIFACT_ROOT", "").strip()
        tracking_uri = _env("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow' / 'mlflow.db'}")
        if not artifact_root and tracking_uri.startswith("sqlite:"):
            # A local tracking store keeps its artifacts beside it; a tracking server decides itself.
            artifact_root = (home / "mlflow" / "artifacts").as_uri()
        return cls(
            home=home,
            storage_root=_env("MLLOOP_STORAGE_ROOT", str(home / "storage")).rstrip("/"),
            storage_conn_id=os.environ.get("MLLOOP_STORAGE_CONN_ID", "").strip() or None,
            mlflow_tracking_uri=tracking_uri,
            mlflow_artifact_root=artifact_root or None,
            feast_repo_path=Path(_env("MLLOOP_FEAST_REPO", str(PROJECT_ROOT / "feature_repo"))),
            feast_registry=(registry := _env("MLLOOP_FEAST_REGISTRY", str(home / "feast" / "registry.db"))),
            feast_registry_store=_env("MLLOOP_FEAST_REGISTRY_STORE", default_registry_store(registry)),
            feast_online_store=_env(
                "MLLOOP_FEAST_ONLINE_STORE",
                json.dumps({"type": "sqlite", "path": str(home / "feast" / "online_store.db")}),
            ),
            feast_offline_store=_env(
                "MLLOOP_FEAST_OFFLINE_STORE",
                json.dumps({"type": "mlloop.feast_offline_store.AsOfDuckDBOfflineStore"}),
            ),
            use_cases_dir=Path(_env("MLLOOP_USE_CASES_DIR", str(PROJECT_ROOT / "include" / "use_cases"))),
            # A tracking server is also the UI; a local store is browsed with `make mlflow-ui`.
            mlflow_ui_url=_env(
                "MLLOOP_MLFLOW_UI_URL",
                tracking_uri if tracking_uri.startswith(("http://", "https://")) else "http://127.0.0.1:5000",
            ).rstrip("/"),
            storage_root_configured=bool(os.environ.get("MLLOOP_STORAGE_ROOT", "").strip()),
            home_configured=bool(os.environ.get("MLLOOP_HOME", "").strip()),
            temporary_max_age_seconds=(
                float(max_age) if (max_age := _env("MLLOOP_TEMPORARY_MAX_AGE_SECONDS", "")) else None
            ),
            training_threads=int(_env("MLLOOP_TRAINING_THREADS", "1")),
            git_commit=_env("MLLOOP_GIT_COMMIT", ""),
            task_retries=int(_env("MLLOOP_TASK_RETRIES", "2")),
            retry_delay_seconds=float(_env("MLLOOP_RETRY_DELAY_SECONDS", "30")),
            sensor_poke_seconds=float(_env("MLLOOP_SENSOR_POKE_SECONDS", "60")),
            sensor_deferrable=_env("MLLOOP_SENSOR_DEFERRABLE", "1").lower() not in ("0", "false", "no", "off"),
            sensor_check_seconds=float(_env("MLLOOP_SENSOR_CHECK_SECONDS", "5")),
            worker_hostname=_env("MLLOOP_WORKER_HOSTNAME", ""),
            preload_modules=os.environ.get("MLLOOP_PRELOAD_MODULES", ""),
            mlflow_conn_id=_env("MLLOOP_MLFLOW_CONN_ID", ""),
            alert_conn_id=_env("MLLOOP_ALERT_CONN_ID", ""),
            alert_format=_env("MLLOOP_ALERT_FORMAT", ""),
            test_hooks=_env("MLLOOP_TEST_HOOKS", ""),
            faults_dir=_env("MLLOOP_FAULTS_DIR", ""),
            airflow_port=int(_env("MLLOOP_AIRFLOW_PORT", "8080")),
            services_postgres_url=_env("MLLOOP_SERVICES_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
            services_redis_url=_env("MLLOOP_SERVICES_REDIS_URL", "redis://127.0.0.1:6379"),
        )

    def feast_environment(self) -> dict[str, str]:
        """The variables ``feature_repo/feature_store.yaml`` and the definitions read."""
        return {
            "MLLOOP_STORAGE_ROOT": self.storage_root,
            "MLLOOP_FEAST_REGISTRY": self.feast_registry,
            "MLLOOP_FEAST_REGISTRY_STORE": self.feast_registry_store,
            "MLLOOP_FEAST_ONLINE_STORE": self.feast_online_store,
            "MLLOOP_FEAST_OFFLINE_STORE": self.feast_offline_store,
            # The definitions are generated from the specs (feature_repo/use_cases.py); absolute, since
            # Feast runs from the repo folder and a relative folder would be read from there.
            "MLLOOP_USE_CASES_DIR": str(self.use_cases_dir.resolve()),
        }

    def prepare_local_paths(self) -> None:
        """Create the local folders the embedded defaults write into (no-op for remote URLs, and for a
        configured storage root: a missing mount must stay missing, not be replaced by an empty folder)."""
        if self.storage_root.startswith("/") and not self.storage_root_configured:
            Path(self.storage_root).mkdir(parents=True, exist_ok=True)
        for path in (self.feast_registry, json.loads(self.feast_online_store).get("path", "")):
            if path.startswith("/"):
                Path(path).parent.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def feast_environment_applied(self) -> Iterator[None]:
        """Expose :meth:`feast_environment` while Feast reads ``feature_store.yaml``, then restore.

        Feast expands ``${VAR}`` only when it loads the file, so the variables are needed just
        for that moment; leaving them in ``os.environ`` would leak one deployment's paths into
        every process started later from this one.
        """
        self.prepare_local_paths()
        env = self.feast_environment()
        with environment_restored(env):
            os.environ.update(env)
            yield


@contextmanager
def environment_restored(names: Iterable[str]) -> Iterator[None]:
    """Put the variables ``names`` back as they were (set or unset) when the block ends, whatever
    the block or the libraries it calls wrote into ``os.environ``."""
    saved = {name: os.environ.get(name) for name in names}
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def get_settings() -> Settings:
    return Settings.from_env()
