"""Run Airflow 3 on this machine on embedded defaults, and talk to it through its REST API.

    mlloop up      # start Airflow in the background
    mlloop status  # is it up, where, the login, each component's restarts
    mlloop down    # stop it
    mlloop parse   # parse dags/ as Airflow does: DAG ids, import errors
    mlloop run <dag_id> [--day YYYY-MM-DD] [--conf JSON]
                   # trigger one run, wait, print its tasks' states

Every Airflow 3 component (API server + UI, scheduler, DAG processor, triggerer) runs with a
LocalExecutor on a SQLite metadata DB under ``$MLLOOP_HOME/airflow``, as ``airflow standalone``
would run them, under ``mlloop_cli.airflow_supervisor``, which also restarts a component that
exits. The driver here only uses what a user has: processes, the REST API, and the printed login.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, BinaryIO

import requests

from mlloop.settings import PROJECT_ROOT as ROOT
from mlloop.settings import get_settings
from mlloop_cli.rest import AirflowClient, AirflowError

__all__ = ["AirflowClient", "AirflowError", "LocalAirflow", "free_port", "mlloop_home"]

TERMINAL_RUN_STATES = {"success", "failed"}


def mlloop_home() -> Path:
    return get_settings().home


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


def start_logged(
    command: list[str], env: dict[str, str], log_path: Path, *, new_session: bool = True
) -> subprocess.Popen[bytes]:
    """Start ``command`` in the project root, its output (both streams) appended to ``log_path``.

    Every process the tooling starts goes through here so that each keeps the same three promises:
    its log is private (0600: it may print the login), the files it creates are private (umask
    077), and, with ``new_session``, it leads its own process group, so that stopping it finds and
    kills what it leaves behind (a killed scheduler's orphaned workers) with it. A short command
    the caller waits for passes ``new_session=False`` (Ctrl-C then reaches it too).
    """
    with open_private_log(log_path) as log:
        return subprocess.Popen(
            command,
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=new_session,
            umask=PRIVATE_UMASK,
        )


class LocalAirflow:
    """One supervised Airflow process tree (``airflow_supervisor.py``), bound to 127.0.0.1, state under ``home``."""

    def __init__(self, home: Path | None = None, port: int | None = None, extra_env: dict[str, str] | None = None):
        self.home = (home or mlloop_home()).resolve()
        self.airflow_home = self.home / "airflow"
        self.port = port or get_settings().airflow_port
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
                # An idle scheduler loop sleeps this long, and a finished task waits for the next loop.
                # At the default 1 s, B8's 81 waits between tasks averaged 0.75 s end->scheduled; at
                # 0.25 s, 0.23 s. Costs ~7% of a core idle, paid for by the next setting
                # (bench/profiles/B8-scheduling.md).
                "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": os.environ.get(
                    "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME", "0.25"
                ),
                # Re-parse an unchanged DAG file every 2 min, not 30 s: re-parsing was ~8% of a core on an
                # idle deployment. An edited DAG file is parsed at the next refresh (mtime); DAGs of a
                # use-case YAML added while Airflow runs appear within ~2 min instead of ~30 s.
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": os.environ.get(
                    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL", "120"
                ),
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
        command = [sys.executable, "-m", "mlloop_cli.airflow_supervisor", str(self.components_path)]
        proc = start_logged(command, self.env(), self.log_path)
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
            return json.loads(self.components_path.read_text())["components"]
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
    folder = ROOT / "dags"
    if not folder.is_dir():  # "0 DAGs, 0 import errors" would read as a pass
        print(
            f"no DAG folder at {folder}: set MLLOOP_PROJECT to the project's folder (the one holding dags/); "
            "an installed package does not know where the project is (the image sets /opt/mlloop)",
            file=sys.stderr,
        )
        return 1
    code = PARSE_SCRIPT.format(folder=str(folder))
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
        print("Airflow is not running: start it with `mlloop up`.", file=sys.stderr)
        return 1
    client = airflow.client()
    client.wait_for_dags([dag_id], timeout=300)  # a use case added while Airflow runs: the next re-parse
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
