"""CPU an idle embedded Airflow costs: what a setting that shortens the scheduler's reaction must not raise.

A faster scheduler loop or a DAG processor that re-parses more often shortens waits under load and
costs CPU when nothing runs. B8 measures both in the same run: this module samples the CPU seconds
of the supervisor's process group (``/proc/<pid>/stat``: user + system, plus the reaped children's,
so the DAG processor's short-lived parse processes count) over a window, per component.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

CLOCK_TICKS = 100  # USER_HZ: /proc reports CPU times in 1/100 s on Linux


def _stat(pid: str) -> tuple[int, int, float] | None:
    """(ppid, process group, CPU seconds incl. reaped children) of a live process, or None."""
    try:
        fields = (Path("/proc") / pid / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # After "pid (comm)": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
    # utime stime cutime cstime
    if fields[0] == "Z":
        return None
    ppid, pgrp = int(fields[1]), int(fields[2])
    ticks = sum(int(v) for v in fields[11:15])
    return ppid, pgrp, ticks / CLOCK_TICKS


def group_cpu(pgid: int, components: dict[str, int]) -> dict[str, float]:
    """CPU seconds of every live process in ``pgid``, summed per component (the component whose pid is
    the nearest ancestor; ``other`` for the supervisor and anything else)."""
    procs = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(entry.name)
            if stat and stat[1] == pgid:
                procs[int(entry.name)] = stat
    names = {pid: name for name, pid in components.items()}
    totals: dict[str, float] = {}
    for pid, (_ppid, _, seconds) in procs.items():
        owner, cursor = "other", pid
        while cursor in procs:
            if cursor in names:
                owner = names[cursor]
                break
            cursor = procs[cursor][0]
        totals[owner] = totals.get(owner, 0.0) + seconds
    return totals


def measure_idle(pgid: int, components: dict[str, int], seconds: float) -> dict[str, Any]:
    """CPU used by the group over ``seconds`` of wall time, in % of one core, total and per component."""
    before = group_cpu(pgid, components)
    t0 = time.monotonic()
    time.sleep(seconds)
    after = group_cpu(pgid, components)
    wall = time.monotonic() - t0
    per = {name: round(100 * (after.get(name, 0.0) - before.get(name, 0.0)) / wall, 1) for name in after}
    return {"seconds": round(wall, 1), "cpu_percent": round(sum(per.values()), 1), "by_component": per}
