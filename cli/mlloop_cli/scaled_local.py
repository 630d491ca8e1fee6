"""The scaled topology as processes on this machine: what docker-compose.yaml runs, without Docker.

    mlloop scaled up      # start everything in the background, print where it is
    mlloop scaled status  # is it up, where, the login
    mlloop scaled down    # stop everything, drop its databases, empty its Redis DBs
    mlloop scaled demo    # up, then the whole loop on it (mlloop_cli.demo's Loop)
    mlloop scaled measure-scoring [--rows 200000 --parts 4]
                                           # after demo: scoring throughput, two workers vs one

What runs (every server on 127.0.0.1, every process in its own process group, all state under
``$MLLOOP_HOME`` (default ``.mlloop-scaled/``) plus what is listed here):

* PostgreSQL (the machine's, ``MLLOOP_SERVICES_POSTGRES_URL``): two new databases per start, one for
  Airflow's metadata (and Celery's results), one for MLflow; dropped by ``down``;
* Redis (the machine's, ``MLLOOP_SERVICES_REDIS_URL``): two empty DB indexes claimed per start, one
  the Celery broker, one Feast's online store; emptied by ``down``;
* an S3-compatible server (moto's server mode) holding the bucket: the storage root
  (``s3://<bucket>/storage``, through the Amazon provider connection ``mlloop_s3``), the Feast
  registry and MLflow's artifacts;
* ``mlflow server``: Postgres backend, artifacts proxied to the bucket;
* Airflow 3 as separate processes: ``api-server``, ``scheduler``, ``dag-processor``, ``triggerer``,
  with the CeleryExecutor and two ``celery worker`` processes that name themselves ``worker-a`` and
  ``worker-b`` (task instances record which one ran them).

Nothing in the DAGs, operators or core knows about any of this: :meth:`ScaledLocalAirflow.env` is
the whole difference, one set of environment variables (the same ones docker-compose.yaml sets).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from mlloop import layout
from mlloop.settings import PROJECT_ROOT as ROOT
from mlloop.settings import get_settings
from mlloop_cli.airflow_local import (
    LocalAirflow,
    _group_alive,
    free_port,
    private_dir,
    start_logged,
    write_private,
)
from mlloop_cli.rest import AirflowError

WORKERS = ("worker-a", "worker-b")
S3_CONN_ID = "mlloop_s3"
S3_KEY, S3_SECRET, S3_REGION = "mlloop-local", "mlloop-local-secret", "us-east-1"
MLFLOW_ROLES = {"admin": "mlloop-admin", "service": "mlloop-airflow", "reader": "mlloop-reader"}
"""MLflow's accounts (basic-auth app): the admin, Airflow's tasks, people (read-only)."""
MLFLOW_AUTH_INI = """[mlflow]
default_permission = READ
database_uri = {database_uri}
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
"""


def services_postgres_url() -> str:
    return get_settings().services_postgres_url


def services_redis_url() -> str:
    return get_settings().services_redis_url


def unreachable_services(timeout: float = 3.0) -> list[str]:
    """The machine services (PostgreSQL, Redis) that do not accept a connection, with why."""
    problems = []
    for name, url in (("PostgreSQL", services_postgres_url()), ("Redis", services_redis_url())):
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or (5432 if name == "PostgreSQL" else 6379)
        try:
            with socket.create_connection((host, port), timeout=timeout):
                pass
        except OSError as exc:
            problems.append(f"{name} at {host}:{port}: {exc}")
    return problems


def _with_database(url: str, database: str, scheme: str | None = None) -> str:
    parts = urlsplit(url)
    return urlunsplit((scheme or parts.scheme, parts.netloc, f"/{database}", parts.query, ""))


@dataclass
class TopologyState:
    """Everything ``down`` needs to undo a start (also written to ``<home>/scaled-state.json``)."""

    run_id: str
    ports: dict[str, int]
    databases: dict[str, str]
    redis_dbs: dict[str, int]
    bucket: str
    jwt_secret: str
    fernet_key: str
    api_secret_key: str
    mlflow_passwords: dict[str, str]
    """Password per :data:`MLFLOW_ROLES` role, generated per start (the file is 0600)."""
    mlflow_secret_key: str
    pgids: dict[str, int] = field(default_factory=dict)

    @classmethod
    def new(cls) -> TopologyState:
        from cryptography.fernet import Fernet

        run_id = f"{dt.datetime.now(dt.UTC):%m%d%H%M%S}{uuid.uuid4().hex[:6]}"
        return cls(
            run_id=run_id,
            ports={name: free_port() for name in ("api", "mlflow", "s3", "scheduler_health", "triggerer_logs")},
            databases={
                "airflow": f"mlloop_{run_id}_airflow",
                "mlflow": f"mlloop_{run_id}_mlflow",
                "mlflow_auth": f"mlloop_{run_id}_mlflow_auth",
            },
            redis_dbs={},
            bucket=f"mlloop-{run_id}",
            jwt_secret=secrets.token_urlsafe(32),
            fernet_key=Fernet.generate_key().decode(),
            api_secret_key=secrets.token_urlsafe(32),
            mlflow_passwords={role: secrets.token_urlsafe(24) for role in MLFLOW_ROLES},
            mlflow_secret_key=secrets.token_urlsafe(32),
        )

    def mlflow_account(self, role: str) -> tuple[str, str]:
        """(username, password) of an MLflow account: ``admin``, ``service`` or ``reader``."""
        return MLFLOW_ROLES[role], self.mlflow_passwords[role]


class ScaledLocalAirflow(LocalAirflow):
    """The scaled topology on this machine, with the :class:`LocalAirflow` interface the Loop drives."""

    def __init__(
        self,
        home: Path | None = None,
        extra_env: dict[str, str] | None = None,
        worker_concurrency: int = 3,
    ):
        settings = get_settings()
        home = (home or (settings.home if settings.home_configured else ROOT / ".mlloop-scaled")).resolve()
        self.state_path = home / "scaled-state.json"
        self.state = self._load_state() or TopologyState.new()
        super().__init__(home, port=self.state.ports["api"], extra_env=extra_env)
        self.worker_concurrency = worker_concurrency
        self.log_path = self.home / "logs" / "scaled"

    # ------------------------------------------------------------------ configuration
    @property
    def s3_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.state.ports['s3']}"

    @property
    def mlflow_url(self) -> str:
        return f"http://127.0.0.1:{self.state.ports['mlflow']}"

    @property
    def storage_root(self) -> str:
        return f"s3://{self.state.bucket}/storage"

    def deployment_env(self) -> dict[str, str]:
        """The variables that make this deployment scaled; docker-compose.yaml sets the same ones."""
        if not self.state.redis_dbs:
            raise AirflowError("the scaled topology is not provisioned yet: call provision() or start() first")
        pg = services_postgres_url()
        airflow_db = _with_database(pg, self.state.databases["airflow"], "postgresql+psycopg2")
        redis = urlsplit(services_redis_url())
        redis_host = f"{redis.hostname or '127.0.0.1'}:{redis.port or 6379}"
        connection = {
            "conn_type": "aws",
            "login": S3_KEY,
            "password": S3_SECRET,
            "extra": {"endpoint_url": self.s3_endpoint, "region_name": S3_REGION},
        }
        return {
            # Airflow: Postgres metadata, Celery on Redis, results in Postgres.
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": airflow_db,
            "AIRFLOW__CELERY__BROKER_URL": f"redis://{redis_host}/{self.state.redis_dbs['broker']}",
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + _with_database(pg, self.state.databases["airflow"]),
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.worker_concurrency),
            "AIRFLOW__CORE__FERNET_KEY": self.state.fernet_key,
            "AIRFLOW__API_AUTH__JWT_SECRET": self.state.jwt_secret,
            "AIRFLOW__API__SECRET_KEY": self.state.api_secret_key,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(self.state.ports["scheduler_health"]),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self.state.ports["triggerer_logs"]),
            # The storage root on S3 through the Amazon provider's connection.
            "MLLOOP_STORAGE_ROOT": self.storage_root,
            "MLLOOP_STORAGE_CONN_ID": S3_CONN_ID,
            f"AIRFLOW_CONN_{S3_CONN_ID.upper()}": json.dumps(connection),
            # Libraries outside Airflow (Feast's registry and DuckDB, MLflow's server, s3fs in
            # the mlloop commands) read the standard AWS variables.
            "AWS_ACCESS_KEY_ID": S3_KEY,
            "AWS_SECRET_ACCESS_KEY": S3_SECRET,
            "AWS_DEFAULT_REGION": S3_REGION,
            "AWS_ENDPOINT_URL_S3": self.s3_endpoint,
            # MLflow over HTTP, as its service account; Feast: registry on S3, online store on
            # Redis, offline parquet on S3.
            "MLFLOW_TRACKING_URI": self.mlflow_url,
            "MLFLOW_TRACKING_USERNAME": self.state.mlflow_account("service")[0],
            "MLFLOW_TRACKING_PASSWORD": self.state.mlflow_account("service")[1],
            "MLLOOP_FEAST_REGISTRY": f"s3://{self.state.bucket}/feast/registry.db",
            "MLLOOP_FEAST_ONLINE_STORE": json.dumps(
                {"type": "redis", "connection_string": f"{redis_host},db={self.state.redis_dbs['feast']}"}
            ),
            "MLLOOP_FEAST_OFFLINE_STORE": json.dumps({"type": "mlloop.feast_offline_store.S3DuckDBOfflineStore"}),
        }

    def env(self) -> dict[str, str]:
        env = super().env()
        env.update(self.deployment_env())
        env.update(self.extra_env)
        # Only Celery workers fork task processes here; the scheduler has nothing to preload for.
        env["MLLOOP_PRELOAD_MODULES"] = ""
        return env

    def process_env(self, name: str) -> dict[str, str]:
        env = self.env()
        if name in WORKERS:
            from mlloop_airflow.preload import DEFAULT_MODULES

            env["MLLOOP_PRELOAD_MODULES"] = self.extra_env.get("MLLOOP_PRELOAD_MODULES", DEFAULT_MODULES)
            env["AIRFLOW__CORE__HOSTNAME_CALLABLE"] = "mlloop_airflow.hostname.worker_hostname"
            env["MLLOOP_WORKER_HOSTNAME"] = name
        if name == "mlflow":
            env["MLFLOW_S3_ENDPOINT_URL"] = self.s3_endpoint
            # The server's job runner (GenAI evaluation jobs: 8 more processes) has nothing to do here.
            env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
            # MLflow's basic-auth app: its config (users DB), the admin it creates at first start.
            env["MLFLOW_AUTH_CONFIG_PATH"] = str(self.mlflow_auth_config)
            env["MLFLOW_AUTH_ADMIN_USERNAME"], env["MLFLOW_AUTH_ADMIN_PASSWORD"] = self.state.mlflow_account("admin")
            env["MLFLOW_FLASK_SERVER_SECRET_KEY"] = self.state.mlflow_secret_key
            for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
                env.pop(name, None)
        return env

    def storage(self) -> Any:
        """The storage root as the tasks see it (s3fs on the local S3 server)."""
        from mlloop.storage import Storage

        # A fresh filesystem without listings cache: results are re-read after tasks replace them.
        return Storage.from_url(
            self.storage_root,
            key=S3_KEY,
            secret=S3_SECRET,
            endpoint_url=self.s3_endpoint,
            skip_instance_cache=True,
            use_listings_cache=False,
        )

    # ------------------------------------------------------------------ lifecycle
    def _load_state(self) -> TopologyState | None:
        try:
            return TopologyState(**json.loads(self.state_path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def _save_state(self) -> None:
        private_dir(self.state_path.parent)
        write_private(self.state_path, json.dumps(asdict(self.state), indent=2))  # it holds the keys

    @property
    def mlflow_auth_config(self) -> Path:
        return self.home / "mlflow-auth" / "basic_auth.ini"

    def _write_mlflow_auth_config(self) -> None:
        """MLflow's basic-auth config: users in their own Postgres database (it holds its URL: 0600)."""
        database = _with_database(services_postgres_url(), self.state.databases["mlflow_auth"], "postgresql+psycopg2")
        private_dir(self.mlflow_auth_config.parent)
        write_private(self.mlflow_auth_config, MLFLOW_AUTH_INI.format(database_uri=database))

    def _provision_mlflow_accounts(self, deadline: float) -> None:
        from mlloop.deployment import Account, provision_mlflow_accounts

        admin, service, reader = (Account(*self.state.mlflow_account(r)) for r in ("admin", "service", "reader"))
        provision_mlflow_accounts(self.mlflow_url, admin, service, reader, timeout=max(deadline - time.monotonic(), 10))

    def running_pid(self) -> int | None:
        """The API server's process group while Airflow runs (what ``LocalAirflow`` callers check)."""
        pgid = self.state.pgids.get("api-server")
        return pgid if pgid is not None and _group_alive(pgid) else None

    def provision(self, timeout: float = 120) -> None:
        """The data services: databases, Redis DBs, the S3 server with the bucket, MLflow.

        Separate from :meth:`start` because raw data lands (on S3) before Airflow starts.
        """
        if "s3" in self.state.pgids:
            return
        problems = unreachable_services()
        if problems:
            raise AirflowError("machine services unreachable: " + "; ".join(problems))
        private_dir(self.home)
        private_dir(self.log_path)
        deadline = time.monotonic() + timeout
        try:
            self._save_state()
            self._create_databases()
            self._claim_redis_dbs()
            moto = str(Path(sys.executable).parent / "moto_server")
            self._spawn("s3", [moto, "-H", "127.0.0.1", "-p", str(self.state.ports["s3"])])
            self._wait_http("S3 server", f"{self.s3_endpoint}/moto-api/", deadline)
            self._create_bucket()
            self._write_mlflow_auth_config()
            self._spawn("mlflow", self._mlflow_command())
            self._provision_mlflow_accounts(deadline)
        except BaseException:
            self.stop()
            raise

    def start(self, timeout: float = 420) -> None:
        """Provision the data services if needed, then start Airflow's components and the workers."""
        if self.running_pid():
            raise AirflowError(f"the scaled topology is already running for {self.home} ({self.state_path})")
        deadline = time.monotonic() + timeout
        self.provision()
        private_dir(self.airflow_home)
        self.install_local_settings()
        try:
            self._migrate_airflow()
            self._spawn("api-server", ["api-server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"])
            self._spawn("scheduler", ["scheduler"])
            self._spawn("dag-processor", ["dag-processor"])
            self._spawn("triggerer", ["triggerer", "--skip-serve-logs"])
            for worker in WORKERS:
                self.start_worker(worker)
            self._wait_http("MLflow", f"{self.mlflow_url}/health", deadline)
            self.wait_healthy(max(deadline - time.monotonic(), 10))
            self.client().ensure_pools()
            self.wait_workers(WORKERS, max(deadline - time.monotonic(), 10))
        except BaseException:
            self.stop()
            raise

    def start_worker(self, name: str) -> None:
        self._spawn(
            name,
            [
                "celery",
                "worker",
                "--celery-hostname",
                f"{name}@%h",
                "--concurrency",
                str(self.worker_concurrency),
                "--skip-serve-logs",
            ],
        )

    def stop_worker(self, name: str, timeout: float = 60) -> None:
        """Stop one worker (warm shutdown: it finishes what it runs), e.g. to compare 1 vs 2 workers."""
        pgid = self.state.pgids.pop(name, None)
        if pgid is not None:
            _stop_group(pgid, timeout)
            self._save_state()

    def stop(self, timeout: float = 30) -> None:
        """Stop every process, drop the databases, empty the Redis DBs (nothing if never started)."""
        if not self.state_path.exists():
            return
        _stop_groups(list(self.state.pgids.values()), timeout)
        self.state.pgids.clear()
        self._save_state()
        self._release_redis_dbs()
        self._drop_databases()
        self.state_path.unlink(missing_ok=True)

    def _spawn(self, name: str, args: list[str]) -> None:
        command = args if args[0].startswith("/") else [sys.executable, "-m", "airflow", *args]
        proc = start_logged(command, self.process_env(name), self.log_path / f"{name}.log")
        self.state.pgids[name] = proc.pid
        self._save_state()

    def _mlflow_command(self) -> list[str]:
        backend = _with_database(services_postgres_url(), self.state.databases["mlflow"], "postgresql+psycopg2")
        return [
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--app-name",
            "basic-auth",
            "--backend-store-uri",
            backend,
            "--artifacts-destination",
            f"s3://{self.state.bucket}/mlflow",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.state.ports["mlflow"]),
            "--workers",
            "1",
        ]

    def _migrate_airflow(self) -> None:
        command, log = [sys.executable, "-m", "airflow", "db", "migrate"], self.log_path / "db-migrate.log"
        if start_logged(command, self.process_env("migrate"), log, new_session=False).wait():
            raise AirflowError(f"airflow db migrate failed; see {log}")

    def _wait_http(self, what: str, url: str, deadline: float) -> None:
        while time.monotonic() < deadline:
            try:
                if requests.get(url, timeout=5).status_code < 500:
                    return
            except requests.RequestException:
                pass
            time.sleep(1)
        raise AirflowError(f"{what} did not answer at {url}; see {self.log_path}")

    def wait_workers(self, names: tuple[str, ...], timeout: float) -> None:
        """Until every named Celery worker answers a ping through the broker."""
        code = (
            "import json; from airflow.providers.celery.executors.celery_executor import app;"
            "print(json.dumps([n for r in (app.control.ping(timeout=5) or []) for n in r]))"
        )
        deadline = time.monotonic() + timeout
        wanted, seen = set(names), set()
        while time.monotonic() < deadline:
            out = subprocess.run(
                [sys.executable, "-c", code], env=self.env(), capture_output=True, text=True, check=False
            )
            if out.returncode == 0 and out.stdout.strip():
                nodes = json.loads(out.stdout.strip().splitlines()[-1])
                seen = {node.split("@", 1)[0] for node in nodes}
                if wanted <= seen:
                    return
            time.sleep(3)
        raise AirflowError(f"Celery workers {sorted(wanted - seen)} did not answer within {timeout:.0f}s")

    # ------------------------------------------------------------------ machine services
    def _admin_connection(self) -> Any:
        import psycopg2

        con = psycopg2.connect(services_postgres_url())
        con.autocommit = True
        return con

    def _create_databases(self) -> None:
        con = self._admin_connection()
        try:
            with con.cursor() as cur:
                for name in self.state.databases.values():
                    cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            con.close()

    def _drop_databases(self) -> None:
        try:
            con = self._admin_connection()
        except Exception as exc:
            print(f"could not drop databases {list(self.state.databases.values())}: {exc}", file=sys.stderr)
            return
        try:
            with con.cursor() as cur:
                for name in self.state.databases.values():
                    cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            con.close()

    def _redis(self, db: int) -> Any:
        import redis

        return redis.Redis.from_url(services_redis_url(), db=db)

    def _claim_redis_dbs(self) -> None:
        """Two empty DB indexes, marked as ours so a concurrent start does not take them too."""
        claim = f"mlloop-scaled-local:{self.state.run_id}"
        for role in ("broker", "feast"):
            for db in range(15, 0, -1):
                if db in self.state.redis_dbs.values():
                    continue
                client = self._redis(db)
                if client.dbsize() == 0 and client.set("mlloop:claimed-by", claim, nx=True):
                    self.state.redis_dbs[role] = db
                    break
            else:
                raise AirflowError("no empty Redis DB index (1-15) to use; free one or set MLLOOP_SERVICES_REDIS_URL")

    def _release_redis_dbs(self) -> None:
        claim = f"mlloop-scaled-local:{self.state.run_id}".encode()
        for db in self.state.redis_dbs.values():
            try:
                client = self._redis(db)
                if client.get("mlloop:claimed-by") == claim:
                    client.flushdb()
            except Exception as exc:
                print(f"could not empty Redis DB {db}: {exc}", file=sys.stderr)
        self.state.redis_dbs.clear()

    def _create_bucket(self) -> None:
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=self.s3_endpoint,
            aws_access_key_id=S3_KEY,
            aws_secret_access_key=S3_SECRET,
            region_name=S3_REGION,
        )
        client.create_bucket(Bucket=self.state.bucket)

    # ------------------------------------------------------------------ reporting
    def describe(self) -> str:
        user, password = self.login()
        reader, reader_password = self.state.mlflow_account("reader")
        pg, redis = urlsplit(services_postgres_url()).netloc, urlsplit(services_redis_url()).netloc
        return "\n".join(
            [
                f"Airflow UI/API: {self.url}  login: {user} / {password}",
                f"Executor:       CeleryExecutor, workers {', '.join(WORKERS)}",
                f"MLflow:         {self.mlflow_url}  login (read-only): {reader} / {reader_password}; "
                f"Airflow's tasks log in as {MLFLOW_ROLES['service']}, the admin is {MLFLOW_ROLES['admin']} "
                f"(passwords in {self.state_path})",
                f"S3 (moto):      {self.s3_endpoint}  bucket {self.state.bucket}  key {S3_KEY} / {S3_SECRET}",
                f"PostgreSQL:     {', '.join(self.state.databases.values())} on {pg}",
                f"Redis:          broker db {self.state.redis_dbs.get('broker')}, Feast online store "
                f"db {self.state.redis_dbs.get('feast')} on {redis}",
                f"Logs:           {self.log_path}",
            ]
        )


def score_day_in_parts(loop: Any, day: dt.date, parts: int, label: str) -> dict[str, Any]:
    """Trigger ``<uc>__batch_scoring`` for ``day`` split into ``parts`` mapped tasks (the Parts
    parameter), wait for it, and say which workers ran the parts and how fast (``loop``: a
    ``demo.Loop`` on this topology)."""
    run_id = f"parts_{label}_{int(time.time())}"
    loop.api.trigger(loop.dag_id("batch_scoring"), {"day": day.isoformat(), "partitions": parts}, run_id=run_id)
    [run] = loop.wait_runs("batch_scoring", {run_id}, timeout=1200)
    if run["state"] != "success":
        raise AirflowError(f"scoring run {run_id} ended {run['state']}; see its logs in the UI")
    tis = [
        t for t in loop.api.task_instances(loop.dag_id("batch_scoring"), run_id) if t["task_id"] == "score_partition"
    ]
    starts = [dt.datetime.fromisoformat(t["start_date"]) for t in tis]
    ends = [dt.datetime.fromisoformat(t["end_date"]) for t in tis]
    storage = loop.storage()
    rows = storage.row_count(layout.PREDICTIONS.path(storage, loop.use_case, day))
    wall = (max(ends) - min(starts)).total_seconds()
    return {
        "run_id": run_id,
        "parts": sorted(t["map_index"] for t in tis),
        "hosts": sorted({t["hostname"] for t in tis}),
        "rows": rows,
        "score_wall_seconds": round(wall, 1),
        "part_seconds": sorted(round(t["duration"], 1) for t in tis),
        "rows_per_second": round(rows / wall, 1) if wall else None,
    }


def measure_scoring(topology: ScaledLocalAirflow, use_case: str, rows: int, parts: int) -> dict[str, Any]:
    """Scoring throughput on the same day with two workers, then one: a synthetic feature partition
    of ``rows`` entities for today is written, then scored in ``parts`` parts each way. Needs a
    running topology whose use case has a champion (``demo`` leaves one)."""
    from demo import Loop

    from mlloop.features import build_features
    from mlloop.ingestion import features_path
    from mlloop.landing import generate
    from mlloop.spec import get_spec

    day = dt.datetime.now(dt.UTC).date()
    spec = get_spec(use_case)
    batch = generate(spec, day, n_customers=rows, rows_per_day=rows, bad_row_share=0.0)
    storage = topology.storage()
    storage.write_frame(build_features(batch.observations, spec), features_path(storage, spec, day))
    loop = Loop(topology, use_case, day)
    loop.client = topology.client()
    results = {"two_workers": score_day_in_parts(loop, day, parts, "two_workers")}
    topology.stop_worker(WORKERS[1])
    try:
        results["one_worker"] = score_day_in_parts(loop, day, parts, "one_worker")
    finally:
        topology.start_worker(WORKERS[1])
        topology.wait_workers(WORKERS, 300)
    return results


def _stop_group(pgid: int, timeout: float) -> None:
    _stop_groups([pgid], timeout)


def _stop_groups(pgids: list[int], timeout: float) -> None:
    """SIGTERM every process group at once, then SIGKILL what is left after ``timeout``."""
    for pgid in pgids:
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_group_alive(pgid) for pgid in pgids):
        time.sleep(0.5)
    for pgid in pgids:
        if _group_alive(pgid):
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["up", "down", "status", "demo", "measure-scoring"])
    parser.add_argument("--use-case", default="credit_risk")
    parser.add_argument("--rows", type=int, default=200_000, help="measure-scoring: entities in the day")
    parser.add_argument("--parts", type=int, default=4, help="measure-scoring: mapped scoring tasks")
    args = parser.parse_args(argv)
    topology = ScaledLocalAirflow(extra_env={"MLLOOP_SENSOR_POKE_SECONDS": "30"})
    if args.command == "down":
        topology.stop()
        print("Scaled topology stopped; its databases and Redis DBs are gone.")
        return 0
    if args.command == "status":
        if topology.running_pid() is None:
            print("The scaled topology is not running.")
            return 1
        print(topology.describe())
        return 0
    if args.command == "measure-scoring":
        if topology.running_pid() is None:
            print("Start it first (`demo` leaves a topology with a champion running).", file=sys.stderr)
            return 1
        print(json.dumps(measure_scoring(topology, args.use_case, args.rows, args.parts), indent=2))
        return 0
    if args.command == "up":
        if topology.running_pid() is None:
            print(f"Starting the scaled topology under {topology.home}; logs: {topology.log_path}", flush=True)
            topology.start()
        print(topology.describe())
        return 0
    from demo import Loop, prepare_home, summary

    topology.stop()
    prepare_home(topology.home)
    topology = ScaledLocalAirflow(topology.home, extra_env=topology.extra_env)
    topology.provision()
    loop = Loop(topology, args.use_case, dt.datetime.now(dt.UTC).date())
    loop.run()
    print(summary(loop), flush=True)
    print(topology.describe())
    print("The topology keeps running; `mlloop scaled down` stops it.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
