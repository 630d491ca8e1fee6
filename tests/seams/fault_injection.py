"""Test-only fault injection: crash a write half-way, or hold an alias move, on request.

Not part of the shipped code: a test deployment installs it through the core's seams
(``mlloop.seams``) with :func:`deployment_env`, which names this module in ``MLLOOP_TEST_HOOKS`` and
puts its folder on ``PYTHONPATH``. It is then inert until ``MLLOOP_FAULTS_DIR`` names a folder. A test *arms* a
fault by creating a file in that folder, and the first code path that reaches the fault's point
*claims* it by renaming the file (one process wins, so the retry, or a concurrent task, runs
clean). Two faults exist:

``kill-on-write`` (or ``kill-on-write.<label>``, to arm several at once)
    The file holds a fragment of a storage path. The first atomic write whose target contains it
    truncates its temporary file to half (the bytes a crash leaves behind) and is then killed with
    SIGKILL, before the file is published. A second line ``scope=supervisor`` kills the Airflow
    task supervisor (the task's parent) first, so only the scheduler's heartbeat timeout can
    notice; the default kills the task process alone. Claimed as ``killed-on-write[.<label>]``.

``pause-before-alias-move``
    The first move of alias ``champion`` waits, after re-reading the alias and before writing it,
    until the test deletes the claimed file ``paused-before-alias-move`` (its ``.info`` sibling names
    the model and version being moved). It lets a test hold one promotion inside the critical
    section while another one tries to enter.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

ENV = "MLLOOP_FAULTS_DIR"
KILL_ON_WRITE = "kill-on-write"
KILLED_ON_WRITE = "killed-on-write"
PAUSE_BEFORE_ALIAS_MOVE = "pause-before-alias-move"
PAUSED_BEFORE_ALIAS_MOVE = "paused-before-alias-move"
MAX_PAUSE_SECONDS = 900.0
HOOK_MODULE = "fault_injection"


def deployment_env(faults: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """The variables a test deployment sets so its processes run these hooks with faults armed in ``faults``."""
    base = dict(os.environ) if base is None else base
    pythonpath = os.pathsep.join(p for p in (str(Path(__file__).resolve().parent), base.get("PYTHONPATH", "")) if p)
    return {"MLLOOP_TEST_HOOKS": HOOK_MODULE, ENV: str(faults), "PYTHONPATH": pythonpath}


def _folder() -> Path | None:
    value = os.environ.get(ENV, "").strip()
    return Path(value) if value else None


def _claim(folder: Path, armed: str, claimed: str) -> bool:
    try:
        (folder / armed).rename(folder / claimed)
    except FileNotFoundError:
        return False
    return True


def on_atomic_write(target: str, local_tmp: str | None) -> None:
    """Called between writing a temporary file and publishing it over ``target``."""
    folder = _folder()
    if folder is None:
        return
    for armed in sorted(folder.glob(f"{KILL_ON_WRITE}*")):
        try:
            lines = armed.read_text().split("\n")
        except FileNotFoundError:  # claimed by another process meanwhile
            continue
        if lines[0].strip() and lines[0].strip() in target:
            claimed = KILLED_ON_WRITE + armed.name.removeprefix(KILL_ON_WRITE)
            if _claim(folder, armed.name, claimed):
                _kill(folder / claimed, target, local_tmp, supervisor="scope=supervisor" in lines[1:])


def _kill(claimed: Path, target: str, local_tmp: str | None, *, supervisor: bool) -> None:
    claimed.write_text(f"{target}\npid={os.getpid()}\n")
    if local_tmp and Path(local_tmp).exists():
        os.truncate(local_tmp, Path(local_tmp).stat().st_size // 2)
    if supervisor and _parent_is_airflow():
        os.kill(os.getppid(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def _parent_is_airflow() -> bool:
    """Only ever kill a parent that is an Airflow process (never a test runner or a shell)."""
    try:
        return b"airflow" in Path(f"/proc/{os.getppid()}/cmdline").read_bytes()
    except OSError:
        return False


def before_alias_move(model: str, version: str) -> None:
    """Called inside the alias critical section, after the re-check and before the write."""
    folder = _folder()
    if folder is None or not _claim(folder, PAUSE_BEFORE_ALIAS_MOVE, PAUSED_BEFORE_ALIAS_MOVE):
        return
    (folder / f"{PAUSED_BEFORE_ALIAS_MOVE}.info").write_text(f"{model} {version}\n")
    deadline = time.monotonic() + MAX_PAUSE_SECONDS
    while (folder / PAUSED_BEFORE_ALIAS_MOVE).exists() and time.monotonic() < deadline:
        time.sleep(0.2)
