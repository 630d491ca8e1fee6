"""The Airflow REST API v2 calls the demo, the replay and the end-to-end tests need.

Every call goes through Airflow's official client (``apache-airflow-client``, the generated client of
the stable API at Airflow's own version), so request bodies are its typed models and a failed call is
an :class:`AirflowError` carrying the HTTP ``status`` (``None`` for a timeout): callers test
``exc.status == 409``, never the text of a message. Results are the models' JSON view (plain dicts
with the API's field names), the shape the drivers and tests have always read.

Two behaviours of Airflow's API every caller needs are handled here once:

- **Paging**: the API caps every list at ``[api] maximum_page_limit`` (100 by default) and silently
  ignores a larger ``limit``; every list call pages with ``offset`` until ``total_entries``
  (:meth:`AirflowClient.list_all`).
- **A locked SQLite DB** (the embedded Airflow): the API answers 503, or 500 "Database error" when the
  lock outlasts the busy timeout, while a busy scheduler holds the write lock. Idempotent calls
  (reads, PATCH) are retried; a POST is not (its caller finds out with its retry's 409 whether it
  was applied).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import requests
import urllib3
from airflow_client.client import (
    ApiClient,
    ApiException,
    AssetApi,
    BackfillApi,
    BackfillPostBody,
    Configuration,
    CreateAssetEventsBody,
    DAGApi,
    DAGPatchBody,
    DagRunApi,
    ImportErrorApi,
    PoolApi,
    PoolBody,
    PoolPatchBody,
    ReprocessBehavior,
    TaskInstanceApi,
    TriggerDAGRunPostBody,
    XComApi,
)
from pydantic_core import to_jsonable_python

T = TypeVar("T")

LOCKED_DB_ATTEMPTS = 60
REQUEST_TIMEOUT = 60.0
TIMEOUT: dict[str, Any] = {"_request_timeout": REQUEST_TIMEOUT}
"""Passed to every client call: the generated client waits forever by default."""
# Airflow caps every list page at `[api] maximum_page_limit` (100 by default) and silently ignores a
# larger `limit`: every list call pages (AirflowClient.list_all) instead of asking for more.
PAGE_LIMIT = 100


class AirflowError(RuntimeError):
    """A refused or failed Airflow call. ``status`` is the HTTP status (``None``: no answer in time)."""

    def __init__(self, message: str, status: int | None = None, body: str = ""):
        super().__init__(message)
        self.status = status
        self.body = body

    @property
    def timed_out(self) -> bool:
        return self.status is None

    @property
    def db_locked(self) -> bool:
        """Whether the API server could not get SQLite's write lock (transient on the embedded Airflow)."""
        return self.status == 503 or (self.status == 500 and "Database error" in self.body)


def _json(model: Any) -> dict[str, Any]:
    """The JSON view of one of the client's response models: the API's field names and values, every
    field present (``None`` where the API sent null), open models' extra fields at the top level.

    A response the API declares as one of several schemas (``GET`` of an XCom entry: native or
    string) comes wrapped in a model whose only field is ``actual_instance``: its view is the
    instance's, else every field the caller reads would be missing (read as ``None``)."""
    if getattr(model, "actual_instance", None) is not None:
        model = model.actual_instance
    data: dict[str, Any] = model.model_dump(mode="json", by_alias=True, exclude={"additional_properties"})
    data.update(to_jsonable_python(getattr(model, "additional_properties", None) or {}))
    return data


def xcom_value(response: Any) -> Any:
    """The value of a ``GET`` XCom entry response (as stored: a JSON value, or its JSON text)."""
    return _json(response).get("value")


class AirflowClient:
    """One logged-in session with an Airflow API server (the simple auth manager's login)."""

    def __init__(self, url: str, username: str, password: str):
        self.url = url.rstrip("/")
        self.username = username
        self.password = password
        # retries=False: the retry policy is call() below, the same for every call.
        self.api_client = ApiClient(Configuration(host=self.url, retries=False))
        self.dags_api = DAGApi(self.api_client)
        self.dag_runs_api = DagRunApi(self.api_client)
        self.task_instances_api = TaskInstanceApi(self.api_client)
        self.pools_api = PoolApi(self.api_client)
        self.backfills_api = BackfillApi(self.api_client)
        self.import_errors_api = ImportErrorApi(self.api_client)
        self.xcom_api = XComApi(self.api_client)
        self.assets_api = AssetApi(self.api_client)

    def _login(self) -> None:
        # The token endpoint is Airflow's auth manager's, not part of the stable API's client.
        resp = requests.post(
            f"{self.url}/auth/token", json={"username": self.username, "password": self.password}, timeout=30
        )
        resp.raise_for_status()
        self.api_client.configuration.access_token = resp.json()["access_token"]

    def call(self, what: str, action: Callable[[], T], idempotent: bool = True) -> T:
        """Run one client call: log in first (and once more on 401), retry an idempotent one while
        SQLite is locked or the answer is late, translate failures into :class:`AirflowError`."""
        relogged = False
        for attempt in range(LOCKED_DB_ATTEMPTS):
            last = attempt == LOCKED_DB_ATTEMPTS - 1
            if self.api_client.configuration.access_token is None:
                self._login()
            try:
                return action()
            except ApiException as exc:
                body = exc.body if isinstance(exc.body, str) else ""
                error = AirflowError(f"{what} -> {exc.status}: {body[:500]}", status=exc.status, body=body)
                if exc.status == 401 and not relogged:
                    self.api_client.configuration.access_token = None
                    relogged = True
                    continue
                if error.db_locked and idempotent and not last:
                    time.sleep(2)
                    continue
                raise error from exc
            except (urllib3.exceptions.TimeoutError, urllib3.exceptions.ProtocolError) as exc:
                # The API server waited on SQLite's lock for longer than the timeout: as transient as a 503.
                if idempotent and not last:
                    continue
                raise AirflowError(f"{what} -> timed out: {exc}") from exc
        raise AirflowError(f"{what}: gave up after {LOCKED_DB_ATTEMPTS} attempts")

    def list_all(
        self, what: str, fetch: Callable[[int, int], Any], key: str, identity: tuple[str, ...] = ()
    ) -> list[dict[str, Any]]:
        """Every item of a REST list: ``fetch(limit, offset)`` page by page until ``total_entries``.

        Items keep the server's order (ask for an ``order_by`` where the order matters). An item that
        appears again on a later page (a row inserted before the offset while paging, e.g. a
        backfill's earlier run) is kept once when ``identity`` names the fields that identify it.
        """
        items: list[dict[str, Any]] = []
        seen: set[tuple[Any, ...]] = set()
        offset = 0
        while True:
            page = self.call(what, lambda offset=offset: fetch(PAGE_LIMIT, offset))  # type: ignore[misc]
            batch = [_json(item) for item in getattr(page, key)]
            offset += len(batch)
            for item in batch:
                if identity:
                    ident = tuple(item.get(field) for field in identity)
                    if ident in seen:
                        continue
                    seen.add(ident)
                items.append(item)
            total = page.total_entries
            if not batch or (total is not None and offset >= total):
                return items

    # pools
    def ensure_pools(self) -> None:
        """Create (or resize) the pools the DAGs need (mlloop_airflow.pools): a task in a missing
        pool is never scheduled."""
        from mlloop_airflow.pools import POOLS

        for name, (slots, description) in POOLS.items():
            self._ensure_pool(name, slots, description)

    def _ensure_pool(self, name: str, slots: int, description: str) -> None:
        body = PoolBody(name=name, slots=slots, description=description, include_deferred=False)
        try:
            self.call(f"POST /pools {name}", lambda: self.pools_api.post_pool(body, **TIMEOUT), idempotent=False)
        except AirflowError as exc:
            if exc.status != 409:
                raise
            patch = PoolPatchBody(pool=name, slots=slots, description=description, include_deferred=False)
            self.call(f"PATCH /pools/{name}", lambda: self.pools_api.patch_pool(name, patch, **TIMEOUT))

    # dags
    def dag_ids(self) -> list[str]:
        dags = self.list_all(
            "GET /dags",
            lambda limit, offset: self.dags_api.get_dags(limit=limit, offset=offset, order_by=["dag_id"], **TIMEOUT),
            "dags",
        )
        return [d["dag_id"] for d in dags]

    def wait_for_dags(self, dag_ids: Iterable[str], timeout: float = 180) -> None:
        wanted = set(dag_ids)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            missing = wanted - set(self.dag_ids())
            if not missing:
                return
            time.sleep(2)
        errors = self.import_errors()
        raise AirflowError(f"DAGs not parsed within {timeout:.0f}s: {sorted(missing)}; import errors: {errors}")

    def import_errors(self) -> list[dict[str, Any]]:
        return self.list_all(
            "GET /importErrors",
            lambda limit, offset: self.import_errors_api.get_import_errors(
                limit=limit, offset=offset, order_by=["id"], **TIMEOUT
            ),
            "import_errors",
            identity=("import_error_id",),
        )

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.call(
            f"PATCH /dags/{dag_id}", lambda: self.dags_api.patch_dag(dag_id, DAGPatchBody(is_paused=paused), **TIMEOUT)
        )

    # runs
    def trigger(
        self,
        dag_id: str,
        conf: dict[str, Any] | None = None,
        run_id: str | None = None,
        logical_date: dt.datetime | None = None,
    ) -> dict[str, Any]:
        body = TriggerDAGRunPostBody(dag_run_id=run_id, logical_date=logical_date, conf=conf or {})
        response = self.call(
            f"POST /dags/{dag_id}/dagRuns",
            lambda: self.dag_runs_api.trigger_dag_run(dag_id, body, **TIMEOUT),
            idempotent=False,
        )
        return _json(response)

    def backfill(
        self, dag_id: str, start: dt.date, end: dt.date, max_active_runs: int = 2, timeout: float = 900
    ) -> dict[str, Any]:
        """One run per day of ``[start, end]`` (``to_date`` is inclusive of the last logical date).

        On SQLite the API answers 503 "Database is locked", or 500 "Database error" when the lock
        outlasts the busy timeout, while the scheduler holds the write lock. With several use cases'
        runs writing on a busy machine that can last minutes, so creation is retried for up to
        ``timeout`` seconds. If a failed attempt did create the backfill, the retry's 409 returns it.
        A 409 for another, earlier backfill of the DAG is waited out too: the scheduler marks a
        backfill complete some seconds after its last run ends, and until then refuses a new one.
        """
        midnight = dt.time(tzinfo=dt.UTC)
        body = BackfillPostBody(
            dag_id=dag_id,
            from_date=dt.datetime.combine(start, midnight),
            to_date=dt.datetime.combine(end, midnight),
            max_active_runs=max_active_runs,
            reprocess_behavior=ReprocessBehavior.FAILED,
        )
        deadline = time.monotonic() + timeout
        attempt = 0
        while True:
            try:
                response = self.call(
                    "POST /backfills", lambda: self.backfills_api.create_backfill(body, **TIMEOUT), idempotent=False
                )
                return _json(response)
            except AirflowError as exc:
                if exc.status == 409:
                    mine = [
                        b
                        for b in self.backfills(dag_id)
                        if b["from_date"][:10] == start.isoformat() and not b["completed_at"]
                    ]
                    if mine:
                        return mine[-1]
                if not (exc.status == 409 or exc.timed_out or exc.db_locked) or time.monotonic() > deadline:
                    raise
                attempt += 1
                time.sleep(min(2 + attempt, 10))

    def backfills(self, dag_id: str) -> list[dict[str, Any]]:
        """The DAG's backfills, oldest first."""
        return self.list_all(
            "GET /backfills",
            lambda limit, offset: self.backfills_api.list_backfills(
                dag_id, limit=limit, offset=offset, order_by=["id"], **TIMEOUT
            ),
            "backfills",
            identity=("id",),
        )

    def runs(
        self, dag_id: str, first_day: dt.date | None = None, last_day: dt.date | None = None
    ) -> list[dict[str, Any]]:
        """Every run of the DAG, in ``run_after`` order (oldest first); with ``first_day``/``last_day``
        only the runs whose logical date is in those days (the server filters: no paging through a
        year of runs to find a week's)."""
        since = dt.datetime.combine(first_day, dt.time(), tzinfo=dt.UTC) if first_day else None
        until = dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC) if last_day else None
        return self.list_all(
            f"GET /dags/{dag_id}/dagRuns",
            lambda limit, offset: self.dag_runs_api.get_dag_runs(
                dag_id,
                limit=limit,
                offset=offset,
                order_by=["run_after", "id"],
                logical_date_gte=since,
                logical_date_lt=until,
                **TIMEOUT,
            ),
            "dag_runs",
            identity=("dag_run_id",),
        )

    # assets
    def asset_id(self, name: str) -> int:
        """The id of the Asset named ``name`` (an Asset exists once a parsed DAG declares it)."""
        assets = self.list_all(
            "GET /assets",
            lambda limit, offset: self.assets_api.get_assets(
                limit=limit, offset=offset, name_pattern=name, order_by=["id"], **TIMEOUT
            ),
            "assets",
            identity=("id",),
        )
        for asset in assets:
            if asset["name"] == name:
                return int(asset["id"])
        raise AirflowError(f"no Asset named {name!r}: is a DAG that declares it parsed?", status=404)

    def queued_asset_events(self, dag_id: str) -> list[dict[str, Any]]:
        """The Asset events waiting to start a run of ``dag_id``: an upstream task's event is queued
        here until the scheduler's next pass creates the run (or, for an AND of Assets, until the
        others come too)."""
        page = self.call(
            f"GET /dags/{dag_id}/assets/queuedEvents",
            lambda: self.assets_api.get_dag_asset_queued_events(dag_id, **TIMEOUT),
        )
        return [_json(event) for event in page.queued_events]

    def create_asset_event(self, asset_id: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Record an Asset event by hand (as the UI's "Create Asset Event"): the DAGs scheduled on it run."""
        body = CreateAssetEventsBody(asset_id=asset_id, extra=extra or {})
        return _json(
            self.call(
                f"POST /assets/events {asset_id}",
                lambda: self.assets_api.create_asset_event(body, **TIMEOUT),
                idempotent=False,
            )
        )

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return _json(
            self.call(f"GET run {dag_id}/{run_id}", lambda: self.dag_runs_api.get_dag_run(dag_id, run_id, **TIMEOUT))
        )

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self.list_all(
            f"GET task instances of {dag_id}/{run_id}",
            lambda limit, offset: self.task_instances_api.get_task_instances(
                dag_id, run_id, limit=limit, offset=offset, order_by=["id"], **TIMEOUT
            ),
            "task_instances",
            identity=("task_id", "map_index"),
        )

    def task_tries(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> list[dict[str, Any]]:
        """Every try of one task instance, first try first."""
        response = self.call(
            f"GET tries of {dag_id}/{run_id}/{task_id}",
            lambda: self.task_instances_api.get_task_instance_tries(
                dag_id, run_id, task_id, map_index=map_index, **TIMEOUT
            ),
        )
        return sorted((_json(t) for t in response.task_instances), key=lambda t: t["try_number"])

    def task_dependencies(self, dag_id: str, run_id: str, task_id: str) -> list[dict[str, Any]]:
        """Why the scheduler holds a task instance back (each with a ``reason``)."""
        response = self.call(
            f"GET dependencies of {dag_id}/{run_id}/{task_id}",
            lambda: self.task_instances_api.get_task_instance_dependencies(dag_id, run_id, task_id, **TIMEOUT),
        )
        return [_json(d) for d in response.dependencies]

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str) -> Any:
        """One XCom value of a task instance (deserialized by the API server)."""
        response = self.call(
            f"GET xcom {key} of {dag_id}/{run_id}/{task_id}",
            lambda: self.xcom_api.get_xcom_entry(dag_id, task_id, run_id, key, **TIMEOUT),
        )
        return xcom_value(response)

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1, map_index: int = -1) -> str:
        """One try's log as text: each structured line's event, then its other fields as key=value.

        (Airflow 3.3's log endpoint serves JSON or NDJSON only; text/plain is answered 406.)
        """

        def fetch() -> Any:
            # Raw JSON: the client's model of a log line keeps only event and timestamp, and drops
            # the rest (a failed task's exception is in "error_detail").
            raw = self.task_instances_api.get_log_without_preload_content(
                dag_id,
                run_id,
                task_id,
                try_number,
                full_content=True,
                map_index=map_index,
                accept="application/json",
                **TIMEOUT,
            )
            if raw.status >= 400:
                raise ApiException(http_resp=raw)
            return json.loads(raw.data)

        content = self.call(f"GET log of {dag_id}/{run_id}/{task_id} try {try_number}", fetch).get("content") or []
        lines = []
        for item in content:
            if isinstance(item, dict):
                fields = " ".join(f"{k}={v}" for k, v in item.items() if k not in ("event", "timestamp"))
                lines.append(f"{item.get('event', '')} {fields}".rstrip())
            else:
                lines.append(str(item))
        return "\n".join(lines)

    def wait_until(
        self,
        what: str,
        predicate: Callable[[], bool],
        timeout: float,
        poll: float = 3.0,
        on_poll: Callable[[], None] | None = None,
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            if on_poll:
                on_poll()
            time.sleep(poll)
        raise AirflowError(f"timed out after {timeout:.0f}s waiting for {what}")
