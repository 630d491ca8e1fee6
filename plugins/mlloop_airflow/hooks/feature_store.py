"""The Feast feature store of the project, opened once per task."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

if TYPE_CHECKING:
    from feast import FeatureStore


class FeastHook(BaseHook):
    """Opens ``feature_repo/`` with the environment's registry and online store.

    Importing Feast takes ~7 s, so it happens here, at execute time, never at DAG parse time.
    """

    hook_name = "Feast feature store"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    @cached_property
    def store(self) -> FeatureStore:
        from mlloop.feature_store import open_store

        return open_store()

    def get_conn(self) -> FeatureStore:
        return self.store
