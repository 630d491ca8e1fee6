"""Run Airflow 3 on this machine on embedded defaults, and talk to it through its REST API.

    python scripts/airflow_local.py up      # start Airflow in the background
    python scripts/airflow_local.py status  # is it up, where, the login, each component's restarts
    python scripts/airflow_local.py down    # stop it
    python scripts/airflow_local.py parse   # parse dags/ as Airflow does: DAG ids, import errors
    python scripts/airflow_local.py run <dag_id> [--day YYYY-MM-DD] [--conf JSON]
                                            # trigger one run, wait, print its tasks' states

Every Airflow 3 component (API server + UI, scheduler, DAG processor, triggerer) runs with a
LocalExecutor on a SQLite metadata DB under ``$MLLOOP_HOME/airflow``, as ``airflow standalone``
would run them, under ``scripts/airflow_supervisor.py``, which also restarts a component that
exits. The driver here only uses what a user has: processes, the REST API, and the printed login.
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
from typing import Any, BinaryIO

import requests

ROOT = Path(__file__).resolve().parents[1]
TERMINAL_RUN_STATES = {"success", "failed"}
LOCKED_DB_ATTEMPTS = 60
# Airflow caps every list page at `[api] maximum_page_limit` (100 by default) and silently ignores a
# larger `limit`: every list call pages (AirflowClient.list_all) instead of asking for more.
PAGE_LIMIT = 100


def mlloop_home() -> Path:
    return Path(os.environ.get("MLLOOP_HOME") or ROOT / ".mlloop").resolve()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


PRIVATE_UMASK = 0o077
"""The umask of every process started here: what Airflow creates (the generated password file, logs,
the SQLite DB) is 0600 in 0700 folders from its creation, readable by this user only."""


def private_dir(path: Path) -> Path:
    """``mkdir -p`` whose new folders are 0700 from creation; ``path`` itself is made 0700 if it existed."""
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            pass
    if not missing:
        path.chmod(0o700)
    return path


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in a file that is 0600 from creation (a temporary file, renamed)."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a leftover temporary file keeps its old mode otherwise
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    tmp.replace(path)


def open_private_log(path: Path) -> BinaryIO:
    """``path`` opened for appending, created 0600 (a log may hold the printed login)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "ab")


class AirflowError(RuntimeError):
    pass


class LocalAirflow:
    """One supervised Airflow process tree (``airflow_supervisor.py``), bound to 127.0.0.1, state under ``home``."""

    def __init__(self, home: Path | None = None, port: int | None = None, extra_env: dict[str, str] | None = None):
        self.home = (home or mlloop_home()).resolve()
        self.airflow_home = self.home / "airflow"
        self.port = port or int(os.environ.get("MLLOOP_AIRFLOW_PORT", "8080"))
        self.extra_env = extra_env or {}
        self.log_path = self.home / "logs" / "airflow.log"
        self.pid_path = self.home / "airflow.pid"
        self.components_path = self.home / "airflow-components.json"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                # Tasks and hooks may call `airflow ...` from PATH: use this venv's.
                "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
                "MLLOOP_HOME": str(self.home),
                "AIRFLOW_HOME": str(self.airflow_home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                # What `airflow standalone` would force: one machine, the simple auth manager with a
                # generated admin password (read back by login()).
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__AUTH_MANAGER": (
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
                ),
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
                # SQLite: wait up to a minute for the write lock instead of failing after 5 s
                # (see mlloop_airflow.local_db; no effect on other databases).
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": "mlloop_airflow.local_db.CONNECT_ARGS",
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
        private_dir(self.home)
        private_dir(self.log_path.parent)
        private_dir(self.airflow_home)
        self.install_local_settings()
        with open_private_log(self.log_path) as log:
            # A new session: what the supervisor leaves behind at `stop()` (a killed scheduler's
            # orphaned workers) is found, and killed, as the rest of its process group.
            proc = subprocess.Popen(
                [sys.executable, str(ROOT / "scripts" / "airflow_supervisor.py"), str(self.components_path)],
                env=self.env(),
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                umask=PRIVATE_UMASK,
            )
        write_private(self.pid_path, str(proc.pid))
        self.wait_healthy(timeout, proc)
        self.client().ensure_pools()

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
                raise AirflowError(f"the Airflow supervisor exited with {proc.returncode}; see {self.log_path}")
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
        # The supervisor alone: it stops each component, and the scheduler then stops its
        # executor's workers. Signalled directly, those workers ignore SIGTERM and outlive it.
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _group_alive(pid):
            time.sleep(0.5)
        if _group_alive(pid):
            os.killpg(pid, signal.SIGKILL)
        self.pid_path.unlink(missing_ok=True)

    # ------------------------------------------------------------------ access
    def storage(self) -> Any:
        """The storage root the tasks write (a :class:`mlloop.storage.Storage`), for reading results."""
        from mlloop.storage import local_storage

        return local_storage(str(self.home / "storage"))

    def components(self) -> dict[str, dict[str, Any]]:
        """Each component's pid and restart count, as the supervisor last wrote them."""
        try:
            return json.loads(self.components_path.read_text())["components"]  # type: ignore[no-any-return]
        except (OSError, ValueError, KeyError):
            return {}

    @property
    def password_file(self) -> Path:
        return self.airflow_home / "simple_auth_manager_passwords.json.generated"

    def login(self) -> tuple[str, str]:
        return "admin", json.loads(self.password_file.read_text())["admin"]

    def client(self) -> AirflowClient:
        user, password = self.login()
        return AirflowClient(self.url, user, password)


def _group_alive(pgid: int) -> bool:
    """Whether a live process is left in the group.

    Zombies do not count: the group leader this process started stays one until it is reaped (so
    it is reaped here), and processes orphaned during the stop stay zombies where PID 1 does not
    reap (containers, micro-VMs). Counting them made every stop wait its full timeout."""
    try:
        os.waitpid(pgid, os.WNOHANG)
    except ChildProcessError:
        pass  # not our child (started by an earlier command), or already reaped
    proc = Path("/proc")
    if proc.is_dir():
        return any(_live_member(entry, pgid) for entry in proc.iterdir() if entry.name.isdigit())
    try:  # no /proc (macOS): any member, zombie or not
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _live_member(entry: Path, pgid: int) -> bool:
    try:
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses; split after the last ")".
        state, _ppid, pgrp = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:3]
    except (OSError, IndexError, ValueError):
        return False  # gone meanwhile
    return int(pgrp) == pgid and state != "Z"


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
        """One REST call. Idempotent ones (GET, PATCH) are retried while SQLite is locked (503, or 500
        "Database error" when the lock outlasts the busy timeout): busy schedulers do that."""
        unauthorized = 0
        for attempt in range(LOCKED_DB_ATTEMPTS):
            try:
                resp = self.session.request(
                    method, f"{self.url}/api/v2{path}", headers=self._auth(), timeout=60, **kwargs
                )
            except requests.Timeout as exc:
                # The API server waited on SQLite's lock for longer than the timeout: as transient as a
                # 503, and the caller of a POST finds out with its retry (409) whether it was applied.
                if method in ("GET", "PATCH") and attempt < LOCKED_DB_ATTEMPTS - 1:
                    continue
                raise AirflowError(f"{method} {path} -> timed out: {exc}") from exc
            if resp.status_code == 401 and unauthorized == 0:
                self._token = None
                unauthorized += 1
                continue
            locked = resp.status_code == 503 or (resp.status_code == 500 and "Database error" in resp.text)
            if locked and method in ("GET", "PATCH") and attempt < LOCKED_DB_ATTEMPTS - 1:
                time.sleep(2)
                continue
            if resp.status_code >= 400:
                raise AirflowError(f"{method} {path} -> {resp.status_code}: {resp.text[:500]}")
            return resp.json() if resp.content else None
        raise AirflowError(f"{method} {path}: not authorized")

    def list_all(
        self, path: str, key: str, params: dict[str, Any] | None = None, identity: tuple[str, ...] = ()
    ) -> list[dict[str, Any]]:
        """Every item of a REST list (``key`` of each page), page by page with ``offset`` until
        ``total_entries``.

        Items keep the server's order (pass ``order_by`` in ``params`` where the order matters). An item
        that appears again on a later page (a row inserted before the offset while paging, e.g. a
        backfill's earlier run) is kept once when ``identity`` names the fields that identify it.
        """
        items: list[dict[str, Any]] = []
        seen: set[tuple[Any, ...]] = set()
        offset = 0
        while True:
            page = self.request("GET", path, params={**(params or {}), "limit": PAGE_LIMIT, "offset": offset})
            batch = page[key]
            offset += len(batch)
            for item in batch:
                if identity:
                    ident = tuple(item.get(field) for field in identity)
                    if ident in seen:
                        continue
                    seen.add(ident)
                items.append(item)
            total = page.get("total_entries")
            if not batch or (total is not None and offset >= total):
                return items

    # pools
    def ensure_pools(self) -> None:
        """Create (or resize) the pools the DAGs need (mlloop_airflow.pools): a task in a missing
        pool is never scheduled."""
        from mlloop_airflow.pools import POOLS

        for name, (slots, description) in POOLS.items():
            body = {"name": name, "slots": slots, "description": description, "include_deferred": False}
            try:
                self.request("POST", "/pools", json=body)
            except AirflowError as exc:
                if "-> 409" not in str(exc):
                    raise
                self.request("PATCH", f"/pools/{name}", json=body)

    # dags
    def dag_ids(self) -> list[str]:
        return [d["dag_id"] for d in self.list_all("/dags", "dags", {"order_by": "dag_id"})]

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
        return self.list_all("/importErrors", "import_errors", {"order_by": "id"}, identity=("import_error_id",))

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": paused})

    # runs
    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None, run_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"logical_date": None, "conf": conf or {}}
        if run_id:
            body["dag_run_id"] = run_id
        return self.request("POST", f"/dags/{dag_id}/dagRuns", json=body)  # type: ignore[no-any-return]

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
        body = {
            "dag_id": dag_id,
            "from_date": f"{start.isoformat()}T00:00:00Z",
            "to_date": f"{end.isoformat()}T00:00:00Z",
            "max_active_runs": max_active_runs,
            "reprocess_behavior": "failed",
        }
        deadline = time.monotonic() + timeout
        attempt = 0
        while True:
            try:
                return self.request("POST", "/backfills", json=body)  # type: ignore[no-any-return]
            except AirflowError as exc:
                message = str(exc)
                if "-> 409" in message:
                    mine = [
                        b
                        for b in self.backfills(dag_id)
                        if b["from_date"][:10] == start.isoformat() and not b["completed_at"]
                    ]
                    if mine:
                        return mine[-1]  # type: ignore[no-any-return]
                transient = (
                    "already a running backfill" in message
                    or "-> 503" in message
                    or "-> timed out" in message
                    or ("-> 500" in message and "Database error" in message)
                )
                if not transient or time.monotonic() > deadline:
                    raise
                attempt += 1
                time.sleep(min(2 + attempt, 10))

    def backfills(self, dag_id: str) -> list[dict[str, Any]]:
        """The DAG's backfills, oldest first."""
        return self.list_all("/backfills", "backfills", {"dag_id": dag_id, "order_by": "id"}, identity=("id",))

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        """Every run of the DAG, in ``run_after`` order (oldest first)."""
        return self.list_all(
            f"/dags/{dag_id}/dagRuns", "dag_runs", {"order_by": ["run_after", "id"]}, identity=("dag_run_id",)
        )

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}")  # type: ignore[no-any-return]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self.list_all(
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances",
            "task_instances",
            {"order_by": ["id"]},
            identity=("task_id", "map_index"),
        )

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1, map_index: int = -1) -> str:
        """One try's log as text: each structured line's event, then its other fields as key=value.

        (Airflow 3.3's log endpoint serves JSON or NDJSON only; text/plain is answered 406.)
        """
        resp = self.session.get(
            f"{self.url}/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            headers={**self._auth(), "Accept": "application/json"},
            params={"full_content": "true", "map_index": map_index},
            timeout=60,
        )
        resp.raise_for_status()
        lines = []
        for item in resp.json().get("content") or []:
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


PARSE_SCRIPT = """
import json, time
from airflow.dag_processing.dagbag import DagBag
started = time.perf_counter()
bag = DagBag(dag_folder={folder!r})
print(json.dumps({{
    "seconds": round(time.perf_counter() - started, 2),
    "dags": {{dag_id: dag.fileloc for dag_id, dag in sorted(bag.dags.items())}},
    "errors": bag.import_errors,
}}))
"""


def parse_dags(airflow: LocalAirflow) -> int:
    """Parse dags/ the way the DAG processor does, with this Airflow's configuration."""
    code = PARSE_SCRIPT.format(folder=str(ROOT / "dags"))
    out = subprocess.run([sys.executable, "-c", code], env=airflow.env(), capture_output=True, text=True, check=False)
    if out.returncode != 0:
        print(out.stderr[-3000:], file=sys.stderr)
        return 1
    result = json.loads(out.stdout.strip().splitlines()[-1])
    for dag_id, path in result["dags"].items():
        print(f"  {dag_id:<40} {Path(path).name}")
    for path, error in result["errors"].items():
        print(f"IMPORT ERROR in {path}:\n{error}", file=sys.stderr)
    print(f"{len(result['dags'])} DAGs, {len(result['errors'])} import error(s), parsed in {result['seconds']} s")
    return 1 if result["errors"] else 0


def run_once(airflow: LocalAirflow, dag_id: str, conf: dict[str, Any], timeout: float) -> int:
    """Unpause ``dag_id``, trigger one run with ``conf``, wait for it and print its tasks' states."""
    if airflow.running_pid() is None:
        print("Airflow is not running: start it with `python scripts/airflow_local.py up`.", file=sys.stderr)
        return 1
    client = airflow.client()
    client.wait_for_dags([dag_id], timeout=120)
    client.set_paused(dag_id, False)
    run_id = client.trigger(dag_id, conf)["dag_run_id"]
    print(f"Triggered {dag_id} run {run_id} with conf {json.dumps(conf)}; waiting (up to {timeout:.0f} s)...")
    client.wait_until(
        f"{dag_id} run {run_id}", lambda: client.run(dag_id, run_id)["state"] in TERMINAL_RUN_STATES, timeout
    )
    state = client.run(dag_id, run_id)["state"]
    for ti in sorted(client.task_instances(dag_id, run_id), key=lambda t: (t["start_date"] or "", t["task_id"])):
        mapped = f"[{ti['map_index']}]" if ti.get("map_index", -1) >= 0 else ""
        print(f"  {ti['task_id'] + mapped:<32} {ti['state']}")
    print(f"Run {state}: {airflow.url}/dags/{dag_id}/runs/{run_id}")
    return 0 if state == "success" else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["up", "down", "status", "parse", "run"])
    parser.add_argument("dag_id", nargs="?", help="for run: the DAG to trigger")
    parser.add_argument("--day", help="for run: the day to process (the per-interval DAGs' Day parameter)")
    parser.add_argument("--conf", default="{}", help="for run: more conf (Trigger form parameters) as JSON")
    parser.add_argument("--timeout", type=float, default=900, help="for run: seconds to wait for the run")
    args = parser.parse_args(argv)
    airflow = LocalAirflow()
    if args.command == "parse":
        return parse_dags(airflow)
    if args.command == "run":
        if not args.dag_id:
            parser.error("run needs a DAG id, e.g. credit_risk__feature_ingestion")
        conf = {**json.loads(args.conf), **({"day": args.day} if args.day else {})}
        return run_once(airflow, args.dag_id, conf, args.timeout)
    if args.command == "up":
        if not airflow.running_pid():
            print(f"Starting Airflow 3 on {airflow.url}; log: {airflow.log_path}", flush=True)
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
        print(f"Airflow is running (pid {pid}) on {airflow.url}; login: {user} / {password}; log: {airflow.log_path}")
        for name, component in airflow.components().items():
            print(f"  {name:<14} pid {component['pid']}, restarts {component['restarts']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
