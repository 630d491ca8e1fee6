"""Run Airflow 3 on this machine on embedded defaults, and talk to it through its REST API.

    python scripts/airflow_local.py up      # start `airflow standalone` in the background
    python scripts/airflow_local.py status  # is it up, where, and the login
    python scripts/airflow_local.py down    # stop it

``airflow standalone`` runs every Airflow 3 component (API server + UI, scheduler, DAG processor,
triggerer) with a LocalExecutor on a SQLite metadata DB under ``$MLLOOP_HOME/airflow``. The
driver here only uses what a user has: processes, the REST API, and the printed login.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
TERMINAL_RUN_STATES = {"success", "failed"}


def mlloop_home() -> Path:
    return Path(os.environ.get("MLLOOP_HOME") or ROOT / ".mlloop").resolve()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AirflowError(RuntimeError):
    pass


class LocalAirflow:
    """One ``airflow standalone`` process tree, bound to 127.0.0.1, state under ``home``."""

    def __init__(self, home: Path | None = None, port: int | None = None, extra_env: dict[str, str] | None = None):
        self.home = (home or mlloop_home()).resolve()
        self.airflow_home = self.home / "airflow"
        self.port = port or int(os.environ.get("MLLOOP_AIRFLOW_PORT", "8080"))
        self.extra_env = extra_env or {}
        self.log_path = self.home / "logs" / "airflow-standalone.log"
        self.pid_path = self.home / "airflow-standalone.pid"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                # standalone starts its components as `airflow ...` from PATH: use this venv's.
                "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
                "MLLOOP_HOME": str(self.home),
                "AIRFLOW_HOME": str(self.airflow_home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__PARALLELISM": os.environ.get("AIRFLOW__CORE__PARALLELISM", "8"),
                # The task supervisor polls at this interval; at the default 5 s each finished
                # task keeps its executor slot ~5 s after it ends.
                "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__BASE_URL": self.url,
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
                "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            }
        )
        from mlloop_airflow.preload import DEFAULT_MODULES

        env.setdefault("MLLOOP_PRELOAD_MODULES", DEFAULT_MODULES)
        env.update(self.extra_env)
        return env

    # ------------------------------------------------------------------ lifecycle
    def running_pid(self) -> int | None:
        try:
            pid = int(self.pid_path.read_text())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    def start(self, timeout: float = 240) -> None:
        if self.running_pid():
            raise AirflowError(f"Airflow is already running for {self.home} (pid file {self.pid_path})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.airflow_home.mkdir(parents=True, exist_ok=True)
        self.install_local_settings()
        with open(self.log_path, "ab") as log:
            # A new session: `stop()` signals the whole process group (standalone's components,
            # the executor's workers, serve-logs), not just the standalone wrapper.
            proc = subprocess.Popen(
                [sys.executable, "-m", "airflow", "standalone"],
                env=self.env(),
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid_path.write_text(str(proc.pid))
        self.wait_healthy(timeout, proc)

    def install_local_settings(self) -> None:
        """Let the scheduler preload heavy libraries for its forked task processes (see
        mlloop_airflow.preload); switched off by setting MLLOOP_PRELOAD_MODULES to empty."""
        from mlloop_airflow.preload import LOCAL_SETTINGS

        config = self.airflow_home / "config"
        config.mkdir(parents=True, exist_ok=True)
        (config / "airflow_local_settings.py").write_text(LOCAL_SETTINGS)

    def wait_healthy(self, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise AirflowError(f"airflow standalone exited with {proc.returncode}; see {self.log_path}")
            try:
                health = requests.get(f"{self.url}/api/v2/monitor/health", timeout=5).json()
                statuses = {k: v.get("status") for k, v in health.items() if isinstance(v, dict)}
                last = json.dumps(statuses)
                if statuses and all(s == "healthy" for s in statuses.values()) and self.password_file.exists():
                    return
            except (requests.RequestException, ValueError):
                pass
            time.sleep(2)
        raise AirflowError(f"Airflow did not become healthy within {timeout:.0f}s (last: {last}); see {self.log_path}")

    def stop(self, timeout: float = 30) -> None:
        pid = self.running_pid()
        if pid is None:
            return
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _group_alive(pid):
            time.sleep(0.5)
        if _group_alive(pid):
            os.killpg(pid, signal.SIGKILL)
        self.pid_path.unlink(missing_ok=True)

    # ------------------------------------------------------------------ access
    @property
    def password_file(self) -> Path:
        return self.airflow_home / "simple_auth_manager_passwords.json.generated"

    def login(self) -> tuple[str, str]:
        return "admin", json.loads(self.password_file.read_text())["admin"]

    def client(self) -> AirflowClient:
        user, password = self.login()
        return AirflowClient(self.url, user, password)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


class AirflowClient:
    """The REST API v2 calls the demo and the end-to-end test need."""

    def __init__(self, url: str, username: str, password: str):
        self.url = url.rstrip("/")
        self.username = username
        self.password = password
        self._token: str | None = None
        self.session = requests.Session()

    def _auth(self) -> dict[str, str]:
        if self._token is None:
            resp = self.session.post(
                f"{self.url}/auth/token", json={"username": self.username, "password": self.password}, timeout=30
            )
            resp.raise_for_status()
            self._token = resp.json()["access_token"]
        return {"Authorization": f"Bearer {self._token}"}

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        for _ in range(2):
            resp = self.session.request(method, f"{self.url}/api/v2{path}", headers=self._auth(), timeout=60, **kwargs)
            if resp.status_code == 401:
                self._token = None
                continue
            if resp.status_code >= 400:
                raise AirflowError(f"{method} {path} -> {resp.status_code}: {resp.text[:500]}")
            return resp.json() if resp.content else None
        raise AirflowError(f"{method} {path}: not authorized")

    # dags
    def dag_ids(self) -> list[str]:
        return [d["dag_id"] for d in self.request("GET", "/dags", params={"limit": 500})["dags"]]

    def wait_for_dags(self, dag_ids: Iterable[str], timeout: float = 180) -> None:
        wanted = set(dag_ids)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            missing = wanted - set(self.dag_ids())
            if not missing:
                return
            time.sleep(2)
        errors = self.request("GET", "/importErrors")
        raise AirflowError(f"DAGs not parsed within {timeout:.0f}s: {sorted(missing)}; import errors: {errors}")

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": paused})

    # runs
    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None, run_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"logical_date": None, "conf": conf or {}}
        if run_id:
            body["dag_run_id"] = run_id
        return self.request("POST", f"/dags/{dag_id}/dagRuns", json=body)  # type: ignore[no-any-return]

    def backfill(
        self, dag_id: str, start: dt.date, end: dt.date, max_active_runs: int = 2, attempts: int = 30
    ) -> dict[str, Any]:
        """One run per day of ``[start, end]`` (``to_date`` is inclusive of the last logical date).

        On SQLite the API answers 503 "Database is locked" when the scheduler holds the write
        lock at that moment; that is transient, so creation is retried.
        """
        body = {
            "dag_id": dag_id,
            "from_date": f"{start.isoformat()}T00:00:00Z",
            "to_date": f"{end.isoformat()}T00:00:00Z",
            "max_active_runs": max_active_runs,
            "reprocess_behavior": "failed",
        }
        for attempt in range(attempts):
            try:
                return self.request("POST", "/backfills", json=body)  # type: ignore[no-any-return]
            except AirflowError as exc:
                if "-> 503" not in str(exc) or attempt == attempts - 1:
                    raise
                time.sleep(2)
        raise AssertionError("unreachable")

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self.request("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 500, "order_by": "run_after"})[
            "dag_runs"
        ]

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}")  # type: ignore[no-any-return]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 500})[
            "task_instances"
        ]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        resp = self.session.get(
            f"{self.url}/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            headers={**self._auth(), "Accept": "text/plain"},
            params={"full_content": "true"},
            timeout=60,
        )
        resp.raise_for_status()
        return resp.text

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["up", "down", "status"])
    args = parser.parse_args(argv)
    airflow = LocalAirflow()
    if args.command == "up":
        if not airflow.running_pid():
            print(f"Starting Airflow 3 (standalone) on {airflow.url}; log: {airflow.log_path}", flush=True)
            airflow.start()
        user, password = airflow.login()
        print(f"Airflow UI: {airflow.url}  login: {user} / {password}")
    elif args.command == "down":
        airflow.stop()
        print("Airflow stopped.")
    else:
        pid = airflow.running_pid()
        if pid is None:
            print("Airflow is not running.")
            return 1
        user, password = airflow.login()
        print(f"Airflow is running (pid {pid}) on {airflow.url}; login: {user} / {password}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
