"""Serve the reports area of the storage root over HTTP, inside Airflow's API server.

Mounted at ``/mlloop`` by ``plugins/mlloop_plugin.py``::

    GET /mlloop/reports/<use_case>/drift/date=<day>/report.html

streams ``<storage root>/reports/<use_case>/drift/date=<day>/report.html`` through
:class:`mlloop.storage.Storage` (a local folder or S3, through the same connection the tasks use),
so an extra link on a task opens the Evidently report in the browser. Only files under
``reports/<use_case>/`` are served: anything else (``..``, absolute paths, other areas, a symlink
that leads out of the use case's folder once resolved) is refused. Callers must be logged in to
Airflow (the UI's session cookie or a bearer token) and allowed to read the use case's
drift-monitoring DAG.

A report is data, not trusted code: Evidently 0.7 writes categorical values raw inside a
``<script>`` block, so a value ``</script><script>...`` runs as script in the page, and the page is
served by Airflow's API server, which accepts the reader's ``_token`` cookie. Every response
therefore carries :data:`SECURITY_HEADERS`: ``Content-Security-Policy: sandbox allow-scripts`` (the
report's own scripts run, but in an opaque origin: no cookies, no same-origin API calls),
``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: no-referrer``.

FastAPI is imported when the first request arrives, not when Airflow loads the plugin: every
Airflow process loads plugins, only the API server serves this. (No ``from __future__ import
annotations`` here: FastAPI reads the routes' annotations at run time.)
"""

import mimetypes
import os
import posixpath
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from mlloop import layout

if TYPE_CHECKING:
    from fastapi import FastAPI

    from mlloop.storage import Storage

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

CHUNK_BYTES = 1 << 20
REPORTS_AREA = layout.DRIFT_REPORT.area
SECURITY_HEADERS = {
    "Content-Security-Policy": "sandbox allow-scripts",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class ReportPathError(ValueError):
    """The requested path is not a file of the reports area."""


def resolve_report(storage: "Storage", relative: str) -> str:
    """The storage URL of ``reports/<relative>``; raise :class:`ReportPathError` if it would leave the
    use case's reports folder. On a local storage root the path is resolved (symlinks followed) and
    the resolved path is what is served, so a link cannot lead elsewhere between check and read."""
    if not relative or "\\" in relative or "\x00" in relative or relative.startswith("/"):
        raise ReportPathError(f"not a report path: {relative!r}")
    normalized = posixpath.normpath(relative)
    if normalized in (".", "..") or normalized.startswith("../") or "/../" in f"/{relative}/":
        raise ReportPathError(f"{relative!r} points outside the reports area")
    url = storage.path(REPORTS_AREA, normalized)
    area = storage.path(REPORTS_AREA) + "/"
    if not url.startswith(area) or not storage.contains(url):
        raise ReportPathError(f"{relative!r} points outside the reports area")
    if storage.is_local:
        folder = os.path.realpath(storage._strip(storage.path(REPORTS_AREA, use_case_of(normalized))))
        real = os.path.realpath(storage._strip(url))
        if not real.startswith(folder + os.sep):
            raise ReportPathError(f"{relative!r} resolves outside the reports of its use case")
        return real
    return url


def use_case_of(relative: str) -> str:
    return posixpath.normpath(relative).split("/", 1)[0]


def may_read_reports(request: Any, user: Any) -> None:
    """Readers of a use case's reports are those allowed to read its drift-monitoring DAG's runs
    (the user comes from the UI's session cookie or a bearer token; none: 401)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
    from fastapi import HTTPException, status

    dag_id = f"{use_case_of(request.path_params.get('path', ''))}__drift_monitoring"
    allowed = get_auth_manager().is_authorized_dag(
        method="GET", access_entity=DagAccessEntity.RUN, details=DagDetails(id=dag_id), user=user
    )
    if not allowed:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"not allowed to read the runs of {dag_id}")


def create_app(storage_factory: "Callable[[], Storage] | None" = None) -> "FastAPI":
    """The reports app. ``storage_factory`` defaults to the storage root the tasks use."""
    from airflow.api_fastapi.core_api.security import GetUserDep
    from fastapi import Depends, FastAPI, HTTPException, Request, status
    from fastapi.responses import StreamingResponse

    app = FastAPI(title="mlloop reports", description="Drift reports and other files under reports/")

    @app.middleware("http")
    async def isolate(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    def storage() -> "Storage":
        if storage_factory is not None:
            return storage_factory()
        from mlloop_airflow.hooks.storage import StorageHook

        return StorageHook().storage

    def may_read(request: Request, user: GetUserDep) -> None:
        may_read_reports(request, user)

    @app.get("/reports/{path:path}", dependencies=[Depends(may_read)])
    def report(path: str) -> StreamingResponse:
        store = storage()
        try:
            url = resolve_report(store, path)
        except ReportPathError as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
        if not store.exists(url) or store.fs.isdir(store._strip(url)):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no report at reports/{path}")
        media_type = mimetypes.guess_type(url)[0] or "application/octet-stream"

        def chunks() -> Any:
            with store.fs.open(store._strip(url), "rb") as handle:
                while chunk := handle.read(CHUNK_BYTES):
                    yield chunk

        return StreamingResponse(chunks(), media_type=media_type, headers=SECURITY_HEADERS)

    return app


class LazyApp:
    """An ASGI app that builds the real one (``factory``) on its first request."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self.factory = factory
        self._app: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._app is None:
            self._app = self.factory()
        await self._app(scope, receive, send)

    def __repr__(self) -> str:
        return f"LazyApp({getattr(self.factory, '__qualname__', self.factory)!r})"
