"""Outages are told apart from other errors and explained: what is down, where, what to do."""

from __future__ import annotations

import pytest

from mlloop.outages import explain_outage, redact
from mlloop.settings import Settings
from mlloop.storage import StorageUnavailable


@pytest.fixture
def settings(mlloop_home) -> Settings:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    return replace(
        Settings.from_env(),
        mlflow_tracking_uri="http://ml:s3cr3t@mlflow.internal:5000",
        feast_online_store='{"type": "redis", "connection_string": "redis:6379,password=hunter2"}',
    )


def test_mlflow_unreachable_names_the_server_without_its_password(settings) -> None:  # type: ignore[no-untyped-def]
    from mlflow.exceptions import MlflowException

    error = MlflowException(
        "API request to http://ml:s3cr3t@mlflow.internal:5000/api/2.0/mlflow/registered-models/alias failed with "
        "exception HTTPConnectionPool(host='mlflow.internal', port=5000): Max retries exceeded (Caused by "
        "NewConnectionError('Failed to establish a new connection: [Errno 111] Connection refused'))"
    )
    try:
        raise RuntimeError("while resolving the champion") from error
    except RuntimeError as wrapped:
        message = explain_outage(wrapped, settings)
    assert message is not None
    assert message.startswith("MLflow is unreachable at http://***@mlflow.internal:5000 (MlflowException: Connection")
    assert "Check that the tracking server runs" in message and "retries with backoff" in message
    assert "s3cr3t" not in message


def test_online_store_down_names_redis_without_its_password(settings) -> None:  # type: ignore[no-untyped-def]
    import redis

    message = explain_outage(redis.exceptions.ConnectionError("Error 111 connecting to redis:6379."), settings)
    assert message is not None and message.startswith("The Feast online store (redis at redis:6379,password=***)")
    assert "hunter2" not in message and "MLLOOP_FEAST_ONLINE_STORE" in message


def test_storage_outage_keeps_its_own_message(settings) -> None:  # type: ignore[no-untyped-def]
    assert explain_outage(StorageUnavailable("storage root s3://b is gone"), settings) == "storage root s3://b is gone"


def test_other_errors_are_not_outages(settings) -> None:  # type: ignore[no-untyped-def]
    from mlflow.exceptions import MlflowException

    assert explain_outage(ValueError("bad data"), settings) is None
    assert explain_outage(MlflowException("RESOURCE_DOES_NOT_EXIST: model 'x' not found"), settings) is None


def test_redact() -> None:
    assert redact("postgresql://airflow:pw@db:5432/airflow") == "postgresql://***@db:5432/airflow"
    assert redact("redis:6379,password=abc,ssl=true") == "redis:6379,password=***,ssl=true"
    assert redact("/local/path") == "/local/path"
