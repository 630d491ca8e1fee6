"""The services a step talks to (storage, MLflow, Feast), built from ``settings`` and opened lazily.

The project's one I/O model: the core owns its I/O. A step (:mod:`mlloop.steps`) takes one
:class:`Services` and opens only what it uses, once: Feast's import alone costs seconds, and a
promotion that is skipped never opens it. Airflow, bench and tests build the same object; the
Airflow layer contributes only what needs Airflow (the filesystem of a storage root reached through
an Airflow connection, see ``mlloop_airflow.operators.base``) by passing ``open_storage``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from feast import FeatureStore
    from mlflow import MlflowClient

    from mlloop.settings import Settings
    from mlloop.storage import Storage


def open_configured_storage(settings: Settings | None = None) -> Storage:
    """The storage root of ``settings``, checked to be listable (an outage is never "not landed yet").

    The embedded default root (under ``MLLOOP_HOME``) creates its own folder; a configured one (a
    mount, a bucket) is never created behind anyone's back.
    """
    from mlloop.settings import get_settings
    from mlloop.storage import Storage

    settings = settings or get_settings()
    if not settings.storage_root_configured:
        settings.prepare_local_paths()
    storage = Storage.from_url(settings.storage_root)
    storage.check_available()
    return storage


def _open_mlflow() -> MlflowClient:
    from mlloop.registry import mlflow_client

    return mlflow_client()


def _open_feature_store() -> FeatureStore:
    from mlloop.feature_store import open_store

    return open_store()


@dataclass
class Services:
    """Storage, the MLflow client and the Feast store of one deployment, each opened on first use."""

    open_storage: Callable[[], Storage] = field(default=open_configured_storage)
    open_mlflow: Callable[[], MlflowClient] = field(default=_open_mlflow)
    open_feature_store: Callable[[], FeatureStore] = field(default=_open_feature_store)

    @classmethod
    def of(
        cls,
        storage: Storage | None = None,
        mlflow: MlflowClient | None = None,
        feature_store: FeatureStore | None = None,
    ) -> Services:
        """Services around objects already open (tests, bench); the others open from settings."""
        services = cls()
        if storage is not None:
            services.__dict__["storage"] = storage
        if mlflow is not None:
            services.__dict__["mlflow"] = mlflow
        if feature_store is not None:
            services.__dict__["feature_store"] = feature_store
        return services

    @cached_property
    def storage(self) -> Storage:
        return self.open_storage()

    @cached_property
    def mlflow(self) -> MlflowClient:
        return self.open_mlflow()

    @cached_property
    def feature_store(self) -> FeatureStore:
        return self.open_feature_store()
