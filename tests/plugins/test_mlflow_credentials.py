"""Airflow's tasks log in to an MLflow server with basic auth (the scaled deployments) from the
environment or an Airflow connection, and the password never shows in a task log."""

from __future__ import annotations

import json
import uuid

import pytest

from mlloop_airflow.hooks.mlflow import CONN_ID_ENV, PASSWORD_ENV, USERNAME_ENV, apply_mlflow_credentials


def task_log_line(text: str) -> str:
    """``text`` as a task log writes it: through Airflow's secrets masker (``airflow.sdk.log.mask_logs``)."""
    from airflow.sdk.log import mask_logs

    return str(mask_logs(None, "info", {"event": text})["event"])


def test_the_login_comes_from_the_airflow_connection_and_its_password_is_masked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    password = f"pw-{uuid.uuid4().hex}"
    connection = {"conn_type": "http", "host": "http://mlflow:5000", "login": "mlloop-airflow", "password": password}
    monkeypatch.setenv("AIRFLOW_CONN_MLLOOP_MLFLOW", json.dumps(connection))
    monkeypatch.setenv(CONN_ID_ENV, "mlloop_mlflow")
    monkeypatch.setenv(USERNAME_ENV, "")  # restored after the test, whatever the function exports
    monkeypatch.setenv(PASSWORD_ENV, "")

    apply_mlflow_credentials()

    from mlflow.utils.credentials import get_default_host_creds  # what MLflow's client sends

    creds = get_default_host_creds("http://mlflow:5000")
    assert (creds.username, creds.password) == ("mlloop-airflow", password)
    assert password not in task_log_line(f"calling MLflow as mlloop-airflow:{password}")


def test_a_password_from_the_environment_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    password = f"pw-{uuid.uuid4().hex}"
    monkeypatch.delenv(CONN_ID_ENV, raising=False)
    monkeypatch.setenv(USERNAME_ENV, "mlloop-airflow")
    monkeypatch.setenv(PASSWORD_ENV, password)

    apply_mlflow_credentials()

    assert password not in task_log_line(f"MLFLOW_TRACKING_PASSWORD is {password}")


def test_every_use_case_operator_applies_the_login_before_it_runs() -> None:
    from mlloop_airflow.operators.base import UseCaseOperator
    from mlloop_airflow.operators.training import TrainModelOperator

    assert issubclass(TrainModelOperator, UseCaseOperator)
    assert "apply_mlflow_credentials" in TrainModelOperator.execute.__code__.co_names
