"""The MLflow login of a task process, from an Airflow connection: the one MLflow concern that needs Airflow.

The client itself is core-owned (:mod:`mlloop.services`, :func:`mlloop.registry.mlflow_client`)."""

from __future__ import annotations

import os

from airflow.sdk import BaseHook

from mlloop.settings import get_settings

CONN_ID_ENV = "MLLOOP_MLFLOW_CONN_ID"
USERNAME_ENV, PASSWORD_ENV = "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"


def apply_mlflow_credentials() -> None:
    """Log this task process in to an MLflow server that asks for it (its basic-auth app), never
    showing the password in a log.

    The login comes from the Airflow connection ``$MLLOOP_MLFLOW_CONN_ID`` (its login and password)
    when that is set, else from ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD`` as the
    deployment sets them; MLflow's client reads those two variables on every request, so the
    connection's values are exported to them. Either way the password is registered with Airflow's
    secrets masker first. Called before every mlloop operator's ``execute`` (``operators.base``).
    """
    from airflow.sdk.log import mask_secret

    conn_id = get_settings().mlflow_conn_id
    if conn_id:
        connection = BaseHook.get_connection(conn_id)
        if connection.password:
            mask_secret(connection.password, PASSWORD_ENV)
            os.environ[PASSWORD_ENV] = connection.password
        if connection.login:
            os.environ[USERNAME_ENV] = connection.login
    password = os.environ.get(PASSWORD_ENV, "")
    if password:
        mask_secret(password, PASSWORD_ENV)
