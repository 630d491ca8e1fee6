"""The mlloop Airflow plugin: the only file under plugins/ that Airflow loads as a plugin.

* ``/mlloop/reports/...`` in the API server: the storage root's reports area over HTTP, so the
  "Drift report" extra link opens the Evidently report in the browser
  (:mod:`mlloop_airflow.reports_app`; FastAPI is imported on the first request only);
* an "MLflow" entry in the UI's navigation, to ``MLLOOP_MLFLOW_UI_URL``;
* ``/mlloop-health/...``: each use case's model health over time (:mod:`mlloop_airflow.health_app`),
  shown inside the UI from the navigation ("Model health") and as a tab of every DAG.

Operator extra links need no registration here: Airflow 3 stores their URLs as XComs when a task
runs (:mod:`mlloop_airflow.links`).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from mlloop.settings import get_settings
from mlloop_airflow import health_app
from mlloop_airflow.links import REPORTS_URL_PREFIX
from mlloop_airflow.reports_app import LazyApp, create_app


class MlloopPlugin(AirflowPlugin):
    name = "mlloop"
    fastapi_apps = [  # noqa: RUF012 (Airflow reads these class attributes)
        {"name": "mlloop reports", "app": LazyApp(create_app), "url_prefix": REPORTS_URL_PREFIX},
        {
            "name": "mlloop model health",
            "app": LazyApp(health_app.create_app),
            "url_prefix": health_app.HEALTH_URL_PREFIX,
        },
    ]
    external_views = [  # noqa: RUF012
        {"name": "MLflow", "href": get_settings().mlflow_ui_url, "destination": "nav", "category": "browse"},
        {
            "name": "Model health",
            "href": f"{health_app.HEALTH_URL_PREFIX}/",
            "url_route": "model-health",
            "destination": "nav",
            "category": "browse",
        },
        {"name": "Model health", "href": f"{health_app.HEALTH_URL_PREFIX}/dag/{{DAG_ID}}", "destination": "dag"},
    ]
