"""Extra links: buttons on a task instance that take the on-call to what the task produced.

* **MLflow run** / **MLflow model version**: the training or monitoring run, the registered
  version a task trained, evaluated, promoted, pinned or restored. They open MLflow's UI at
  ``MLLOOP_MLFLOW_UI_URL`` (default: the tracking server, or ``make mlflow-ui``'s address).
* **Drift report**: the Evidently HTML report, served over HTTP by the API server under
  ``/mlloop/reports/...`` (:mod:`mlloop_airflow.reports_app`): a browser does not open ``file://``
  or ``s3://`` links from a web page.

An operator records its targets while it runs (:meth:`LinkedOperatorMixin.link_to`); Airflow 3 calls
``get_link`` in the worker right after ``execute`` and stores the URL as an XCom the UI reads. A task
that failed before it knew its targets has no URL, and the UI greys the button out.
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

REPORTS_URL_PREFIX = "/mlloop"
"""Where the reports app is mounted in the API server (``mlloop_plugin.py``)."""

MLFLOW_RUN = "mlflow_run"
MODEL_VERSION = "model_version"
DRIFT_REPORT = "drift_report"


def mlflow_run_url(experiment_id: str, run_id: str, ui_url: str | None = None) -> str:
    base = ui_url if ui_url is not None else _mlflow_ui_url()
    return f"{base}/#/experiments/{quote(str(experiment_id))}/runs/{quote(run_id)}" if base and run_id else ""


def model_version_url(model_name: str, version: str, ui_url: str | None = None) -> str:
    base = ui_url if ui_url is not None else _mlflow_ui_url()
    return f"{base}/#/models/{quote(model_name)}/versions/{quote(str(version))}" if base and version else ""


def report_url(storage_url: str, storage_root: str, api_base_url: str | None = None) -> str:
    """The HTTP address of a file under ``<storage root>/reports/`` (or "" for any other file)."""
    prefix = storage_root.rstrip("/") + "/reports/"
    if not storage_url.startswith(prefix):
        return ""
    relative = posixpath.normpath(storage_url[len(prefix) :])
    if relative.startswith(("..", "/")):
        return ""
    base = (api_base_url if api_base_url is not None else _api_base_url()).rstrip("/")
    return f"{base}{REPORTS_URL_PREFIX}/reports/{quote(relative, safe='/=')}"


def _mlflow_ui_url() -> str:
    from mlloop.settings import get_settings

    return get_settings().mlflow_ui_url


def _api_base_url() -> str:
    """``[api] base_url``, as Airflow's own log links use it; empty gives a link relative to the UI."""
    from airflow.sdk.configuration import conf

    return str(conf.get("api", "base_url", fallback="") or "")


class LinkedOperatorMixin:
    """For operators whose tasks link to what they produced (see the module docstring)."""

    def link_to(self, kind: str, url: str) -> None:
        links: dict[str, str] = self.__dict__.setdefault("_mlloop_links", {})
        if url:
            links[kind] = url

    def link_to_model_version(self, name: str, version: Any) -> None:
        self.link_to(MODEL_VERSION, model_version_url(name, str(version)))

    def link_to_mlflow_run(self, experiment_id: str, run_id: str) -> None:
        self.link_to(MLFLOW_RUN, mlflow_run_url(experiment_id, run_id))

    def link_to_report(self, storage_url: str) -> None:
        from mlloop.settings import get_settings

        self.link_to(DRIFT_REPORT, report_url(storage_url, get_settings().storage_root))


class _RecordedLink(BaseOperatorLink):
    kind: ClassVar[str]

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        return str(getattr(operator, "_mlloop_links", {}).get(self.kind, ""))


class MlflowRunLink(_RecordedLink):
    """The MLflow run the task logged (training run, drift monitoring run)."""

    name = "MLflow run"
    kind = MLFLOW_RUN


class ModelVersionLink(_RecordedLink):
    """The registered model version the task trained, evaluated, promoted, pinned or restored."""

    name = "MLflow model version"
    kind = MODEL_VERSION


class DriftReportLink(_RecordedLink):
    """The Evidently HTML drift report, served by the API server."""

    name = "Drift report"
    kind = DRIFT_REPORT
