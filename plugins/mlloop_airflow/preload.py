"""Import the heavy libraries once in the process that forks task processes.

With the LocalExecutor each task runs in a process forked (twice) from the scheduler, and with
Celery in a fork of the worker; a library the parent imported is free in every task. Importing
Feast, Great Expectations, MLflow, scikit-learn and Evidently costs 2-7 s each per task otherwise
(STACK.md), which dominates short tasks on a small machine.

Opt-in per deployment: ``$AIRFLOW_HOME/config/airflow_local_settings.py`` calls
:func:`preload_for_task_processes`, which imports ``MLLOOP_PRELOAD_MODULES`` (comma-separated) only
in the scheduler or a Celery worker, never in the API server, DAG processor or triggerer.
"""

from __future__ import annotations

import importlib
import logging
import sys
import time

from mlloop.settings import get_settings

log = logging.getLogger(__name__)

# Libraries only, never this project's own modules: a task must run the code on disk, and a module
# preloaded in the scheduler would stay as it was when the scheduler started.
# The modules after "evidently" are imported lazily on first use, so the top-level imports above do
# not bring them in. A profile of the embedded loop (py-spy, bench B8) found them in every task that
# needed them: the first point-in-time query (Feast/ibis, ~2 s together), opening MLflow's SQL store
# (0.5 s), loading a model (skops, 1.1 s), the first object-storage path (the S3 filesystem, 0.9 s).
DEFAULT_MODULES = ",".join(
    (
        "pandas",
        "pyarrow.parquet",
        "sklearn.ensemble",
        "mlflow.sklearn",
        "great_expectations",
        "feast",
        "evidently",
        "ibis.backends.duckdb",
        "feast.infra.data_sources.mlflow.mlflow_dataset_source",
        "mlflow.store.tracking.sqlalchemy_store",
        "mlflow.store.model_registry.sqlalchemy_store",
        "skops.io",
        "airflow.providers.amazon.aws.fs.s3",
    )
)
LOCAL_SETTINGS = '''"""Written by mlloop_cli.airflow_local: preload heavy libraries for task processes."""

from mlloop_airflow.preload import preload_for_task_processes

preload_for_task_processes()
'''


def _forks_task_processes(argv: list[str]) -> bool:
    args = [a for a in argv[1:] if not a.startswith("-")]
    return args[:1] == ["scheduler"] or args[:2] == ["celery", "worker"]


def preload_for_task_processes(argv: list[str] | None = None) -> list[str]:
    """Import the configured modules if this process forks task processes; return what it imported."""
    modules = [m.strip() for m in get_settings().preload_modules.split(",") if m.strip()]
    if not modules or not _forks_task_processes(argv if argv is not None else sys.argv):
        return []
    started = time.monotonic()
    done = []
    for name in modules:
        try:
            importlib.import_module(name)
            done.append(name)
        except Exception as exc:  # a missing optional library must not stop the scheduler
            log.warning("mlloop preload: could not import %s: %s", name, exc)
    log.info("mlloop preload: imported %s in %.1fs", ", ".join(done), time.monotonic() - started)
    return done
