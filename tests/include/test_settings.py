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


def test_opening_mlflow_does_not_pin_the_environment_to_its_store(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """mlflow.set_tracking_uri exports MLFLOW_TRACKING_URI; left there, it pinned every later settings
    read, and every Airflow the process started, to the first store opened (seen in CI: a test's
    scheduler wrote to an earlier test's MLflow)."""
    import mlflow

    from mlloop.registry import mlflow_client

    first, second = tmp_path / "first", tmp_path / "second"
    monkeypatch.setenv("MLLOOP_HOME", str(first))
    mlflow_client()
    assert "MLFLOW_TRACKING_URI" not in os.environ and "MLFLOW_REGISTRY_URI" not in os.environ
    assert mlflow.get_tracking_uri() == f"sqlite:///{first / 'mlflow' / 'mlflow.db'}"  # the fluent API still works
    monkeypatch.setenv("MLLOOP_HOME", str(second))
    assert get_settings().mlflow_tracking_uri == f"sqlite:///{second / 'mlflow' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    mlflow_client()
    assert os.environ["MLFLOW_TRACKING_URI"] == "http://mlflow.example:5000"  # a deployment's own value stays
