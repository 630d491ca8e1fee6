"""Every process the tooling starts (Airflow's supervisor, the scaled deployment's components, its
``db migrate``) goes through ``start_logged``: its log private and appended to, the files it
creates private, and, when asked, a session of its own that ``stop()`` can kill as a group."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

from mlloop.settings import PROJECT_ROOT
from mlloop_cli.airflow_local import start_logged

CHILD = """
import json, os, sys
open(sys.argv[1], "w").write("secret")
print(json.dumps({"pid": os.getpid(), "sid": os.getsid(0), "cwd": os.getcwd()}), flush=True)
print("to stderr", file=sys.stderr, flush=True)
"""


def run(tmp_path: Path, log: Path, name: str, new_session: bool = True) -> dict[str, object]:
    created = tmp_path / name
    proc = start_logged([sys.executable, "-c", CHILD, str(created)], dict(os.environ), log, new_session=new_session)
    assert proc.wait(60) == 0
    assert stat.S_IMODE(created.stat().st_mode) == 0o600, "a file the process creates is private (umask 077)"
    line = [line for line in log.read_text().splitlines() if line.startswith("{")][-1]
    return dict(json.loads(line), file=str(created))


def test_a_started_process_logs_privately_in_the_project_root_in_its_own_session(tmp_path: Path) -> None:
    log = tmp_path / "component.log"
    log.write_text("earlier run\n")
    log.chmod(0o644)

    first = run(tmp_path, log, "first")

    assert stat.S_IMODE(log.stat().st_mode) == 0o600, "the log may hold the printed login: private"
    text = log.read_text()
    assert text.startswith("earlier run\n"), "appended to, never truncated"
    assert "to stderr" in text, "both streams go to the log"
    assert first["cwd"] == str(PROJECT_ROOT)
    assert first["sid"] == first["pid"], "a long-running process leads its own session (stop() kills the group)"


def test_a_short_command_the_caller_waits_for_stays_in_the_callers_session(tmp_path: Path) -> None:
    log = tmp_path / "db-migrate.log"
    child = run(tmp_path, log, "migrate", new_session=False)
    assert child["sid"] == os.getsid(0), "Ctrl-C on the caller reaches it"
