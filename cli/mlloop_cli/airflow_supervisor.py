"""Keep the embedded Airflow's components running: ``airflow standalone`` plus a restart policy.

    python -m mlloop_cli.airflow_supervisor <state-file>   # foreground; mlloop_cli.airflow_local starts it

It does what ``airflow standalone`` does (migrate the metadata DB, then run the API server, the
scheduler, the DAG processor and the triggerer, their output in one log with a ``name | `` prefix)
and one thing more: a component that exits is started again, as a compose file's
``restart: unless-stopped`` would. ``standalone`` never notices a dead component: on a SQLite
metadata DB under load Airflow 3.3's scheduler could die (``ObjectDeletedError`` /
``StaleDataError`` when a backfill's creation was rolled back while it scheduled those runs; the
cause found is fixed in ``mlloop_airflow.local_db``), the UI keeps answering and every run stays
queued forever. Here the log says ``[supervisor] scheduler exited with code 1 ...; restarting``,
the new scheduler adopts the orphaned work, and the runs go on.

``<state-file>`` (JSON) lists each component's pid, start time and restart count, for
``mlloop status`` and for tests. SIGTERM or SIGINT stops every component.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
MAX_BACKOFF_SECONDS = 60.0
_print_lock = threading.Lock()


def say(name: str, line: str) -> None:
    with _print_lock:
        sys.stdout.write(f"{name:<10} | {line.rstrip()}\n")
        sys.stdout.flush()


def _pump(name: str, stream: IO[bytes]) -> None:
    for raw in stream:
        say(name, raw.decode(errors="replace"))


@dataclass
class Component:
    name: str
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    restart_at: float | None = None
    history: list[dict[str, object]] = field(default_factory=list)

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "airflow", self.name],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        assert self.process.stdout is not None
        threading.Thread(target=_pump, args=(self.name, self.process.stdout), daemon=True).start()
        self.started_at = time.time()
        self.restart_at = None

    def backoff(self) -> float:
        """1 s, 2 s, 4 s ... up to a minute: a component that crashes at start does not spin."""
        return float(min(2.0**self.restarts, MAX_BACKOFF_SECONDS))

    def describe(self) -> dict[str, object]:
        return {
            "pid": self.process.pid if self.process else None,
            "started_at": dt.datetime.fromtimestamp(self.started_at, dt.UTC).isoformat() if self.started_at else None,
            "restarts": self.restarts,
            "exits": self.history,
        }


class Supervisor:
    def __init__(self, state_file: Path):
        self.state_file = state_file
        self.components = {name: Component(name) for name in COMPONENTS}
        self.stopping = threading.Event()

    def write_state(self) -> None:
        state = {"supervisor_pid": os.getpid(), "components": {n: c.describe() for n, c in self.components.items()}}
        tmp = self.state_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # private from creation
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(state, indent=2))
        tmp.replace(self.state_file)

    def migrate(self) -> None:
        """``airflow db migrate`` (what standalone's ``initdb`` does) before any component starts."""
        say("supervisor", "Checking the metadata database (airflow db migrate)")
        proc = subprocess.Popen(
            [sys.executable, "-m", "airflow", "db", "migrate"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        assert proc.stdout is not None
        _pump("db-migrate", proc.stdout)
        if proc.wait() != 0:
            say("supervisor", f"airflow db migrate failed with code {proc.returncode}; not starting Airflow")
            raise SystemExit(proc.returncode)

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stopping.set())
        self.migrate()
        if self.stopping.is_set():
            return 0
        for component in self.components.values():
            component.start()
            say("supervisor", f"started {component.name} (pid {component.process.pid if component.process else '?'})")
        self.write_state()
        while not self.stopping.wait(1.0):
            self.check()
        self.stop_all()
        return 0

    def check(self) -> None:
        now = time.monotonic()
        for component in self.components.values():
            proc = component.process
            if component.restart_at is not None:
                if now >= component.restart_at:
                    component.restarts += 1
                    component.start()
                    pid = component.process.pid if component.process else "?"
                    say("supervisor", f"restarted {component.name} (pid {pid}, restart {component.restarts})")
                    self.write_state()
                continue
            if proc is None or proc.poll() is None:
                continue
            # A signal to the whole group (Ctrl-C, a container stop) reaches the components and
            # this process at once: an exit during a stop is not a crash.
            if self.stopping.wait(1.0):
                return
            ran = time.time() - component.started_at
            delay = component.backoff()
            component.history.append({"code": proc.returncode, "after_seconds": round(ran, 1), "at": time.time()})
            say(
                "supervisor",
                f"{component.name} exited with code {proc.returncode} after {ran:.0f} s; restarting in {delay:.0f} s "
                f"(its last lines are above, prefixed '{component.name}')",
            )
            component.restart_at = now + delay
            self.write_state()

    def stop_all(self, timeout: float = 20.0) -> None:
        say("supervisor", "stopping every component")
        running = [c.process for c in self.components.values() if c.process and c.process.poll() is None]
        for proc in running:
            proc.terminate()
        deadline = time.monotonic() + timeout
        for proc in running:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    # Whatever the components create (the generated password file, logs, the SQLite DB) is this
    # user's only from its creation, however the supervisor was started.
    os.umask(0o077)
    return Supervisor(Path(args[0])).run()


if __name__ == "__main__":
    sys.exit(main())
