"""The MLflow tracking server and model registry of the project, opened once per task."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

if TYPE_CHECKING:
    from mlflow import MlflowClient


class MlflowHook(BaseHook):
    """An :class:`mlflow.MlflowClient` on ``MLFLOW_TRACKING_URI`` (SQLite under ``MLLOOP_HOME`` by default).

    The URI is also made MLflow's process default, so ``mlflow.start_run`` / ``log_model`` inside
    the same task write to the same store. MLflow is imported here, at execute time.
    """

    hook_name = "MLflow tracking and registry"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    @cached_property
    def client(self) -> MlflowClient:
        from mlloop.registry import mlflow_client

        return mlflow_client()

    def get_conn(self) -> MlflowClient:
        return self.client
