"""Settings come from the environment and never leak back into it."""

from __future__ import annotations

import os

from mlloop.feature_store import open_store
from mlloop.settings import get_settings


def test_defaults_live_under_mlloop_home(mlloop_home) -> None:  # type: ignore[no-untyped-def]
    settings = get_settings()
    assert settings.storage_root == str(mlloop_home / "storage")
    assert settings.mlflow_tracking_uri == f"sqlite:///{mlloop_home / 'mlflow' / 'mlflow.db'}"
    assert settings.feast_registry == str(mlloop_home / "feast" / "registry.db")


def test_opening_feast_does_not_leave_deployment_paths_in_the_environment(feast_registry) -> None:  # type: ignore[no-untyped-def]
    """A process that opened Feast once must not hand its paths to the processes it starts."""
    open_store()
    assert "MLLOOP_STORAGE_ROOT" not in os.environ
    assert "MLLOOP_FEAST_REGISTRY" not in os.environ
    assert "MLLOOP_FEAST_ONLINE_STORE" not in os.environ
