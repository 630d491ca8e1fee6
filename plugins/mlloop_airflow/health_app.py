"""The model health view: one page per use case, served inside Airflow's API server.

Mounted at :data:`HEALTH_URL_PREFIX` by ``plugins/mlloop_plugin.py`` and listed in the UI's
navigation ("Model health", shown inside the Airflow UI)::

    GET /mlloop-health/                  the use cases, each a link to its page
    GET /mlloop-health/<use_case>        the charts and the version history (:mod:`mlloop.health`)
    GET /mlloop-health/dag/<dag_id>      the same, for a DAG's "Model health" tab
    GET /mlloop-health/static/plotly.min.js

The charts are Plotly's, with its JavaScript served from the installed ``plotly`` package (no CDN:
the page works with no network). The numbers are read from MLflow and the storage root on each
request. Readers must be logged in to Airflow and allowed to read the use case's promotion DAG;
pages carry the reports app's sandbox headers (version tags and segment values are data). The
Plotly bundle is a public library file: served without a login, because a sandboxed page's
requests carry no cookies.

The index is the one page that is *not* sandboxed, because it is what the UI's navigation frame
opens and a user then clicks a use case in it: a click in a sandboxed (opaque-origin) document
is a cross-site navigation, the browser drops Airflow's ``SameSite=Lax`` login cookie from it,
and the use case's page answers 401 inside the frame (seen in Chromium). The index holds only
use case names and runs no script, so it carries :data:`INDEX_HEADERS` instead: a policy that
forbids every script, style and subresource, while keeping Airflow's origin for the click.
"""

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlloop_airflow.reports_app import SECURITY_HEADERS

if TYPE_CHECKING:
    from fastapi import FastAPI
    from mlflow import MlflowClient

    from mlloop.storage import Storage

HEALTH_URL_PREFIX = "/mlloop-health"
PLOTLY_JS = "static/plotly.min.js"
INDEX_HEADERS = {
    **{name: value for name, value in SECURITY_HEADERS.items() if name != "Content-Security-Policy"},
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'self'",
}


def plotly_js_path() -> str:
    import plotly

    return str(Path(plotly.__file__).parent / "package_data" / "plotly.min.js")


def may_read_use_case(use_case: str, user: Any) -> bool:
    """Readers of a use case's health are those allowed to read its promotion DAG's runs."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

    details = DagDetails(id=f"{use_case}__promotion")
    return get_auth_manager().is_authorized_dag(
        method="GET", access_entity=DagAccessEntity.RUN, details=details, user=user
    )


def create_app(
    storage_factory: "Callable[[], Storage] | None" = None, client_factory: "Callable[[], MlflowClient] | None" = None
) -> "FastAPI":
    from airflow.api_fastapi.core_api.security import GetUserDep
    from fastapi import FastAPI, HTTPException, status
    from fastapi.responses import FileResponse, HTMLResponse

    from mlloop.spec import SpecError, get_spec, load_specs

    app = FastAPI(title="mlloop model health", description="Each use case's model health over time")

    def storage() -> "Storage":
        if storage_factory is not None:
            return storage_factory()
        from mlloop_airflow.hooks.storage import StorageHook

        return StorageHook().storage

    def client() -> "MlflowClient":
        if client_factory is not None:
            return client_factory()
        from mlloop.registry import mlflow_client

        return mlflow_client()

    def allowed(use_case: str, user: Any) -> bool:
        return may_read_use_case(use_case, user)

    @app.get(f"/{PLOTLY_JS}")
    def plotly_js() -> FileResponse:
        return FileResponse(plotly_js_path(), media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})

    @app.get("/", response_class=HTMLResponse)
    def index(user: GetUserDep) -> HTMLResponse:
        from html import escape

        names = [s.name for s in load_specs() if allowed(s.name, user)]
        items = "".join(f'<li><a href="{HEALTH_URL_PREFIX}/{escape(n)}">{escape(n)}</a></li>' for n in names)
        body = f"<!doctype html><html><body><h1>Model health</h1><ul>{items}</ul></body></html>"
        return HTMLResponse(body, headers=INDEX_HEADERS)

    @app.get("/dag/{dag_id}", response_class=HTMLResponse)
    def dag_page(dag_id: str, user: GetUserDep) -> HTMLResponse:
        """The "Model health" tab of a DAG: the page of the DAG's use case (``<use_case>__<stage>``)."""
        return page(dag_id.split("__", 1)[0], user)

    @app.get("/{use_case}", response_class=HTMLResponse)
    def page(use_case: str, user: GetUserDep) -> HTMLResponse:
        from mlloop.health import model_health, render_html

        try:
            spec = get_spec(use_case)
        except (SpecError, KeyError, FileNotFoundError):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no use case {use_case!r}") from None
        if not allowed(spec.name, user):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"not allowed to read the runs of {spec.name}__promotion")
        health = model_health(storage(), client(), spec)
        return HTMLResponse(render_html(health, f"{HEALTH_URL_PREFIX}/{PLOTLY_JS}"), headers=SECURITY_HEADERS)

    return app
