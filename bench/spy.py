"""py-spy over a whole process tree (B8's Airflow), summarized into where task processes spend CPU.

pyinstrument (``profiled``) sees one interpreter. B8's cost is spread over the Airflow components
and one short-lived process per task instance, so ``--profile`` attaches ``py-spy record
--subprocesses`` to the supervisor of the embedded Airflow for the timed phases, keeps the raw
stacks (``<name>.raw``, collapsed format) and writes ``<name>.txt``: CPU seconds by component, then
inside task processes by Task SDK step, by operator, and the imports those processes still pay.

py-spy samples at 50 Hz and makes everything it watches slower; read shares, not absolute times.
Samples of a thread blocked in a lock wait can count as CPU (py-spy's idle detection is per thread
state), which inflates the API server's line.
"""

from __future__ import annotations

import collections
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

RATE_HZ = 50
TASK_PROCESSES = "task processes (one per task instance)"


@contextmanager
def spied(name: str, pid: int | None) -> Iterator[None]:
    """Record ``pid`` and its descendants while the block runs, if ``MLLOOP_BENCH_PROFILE_DIR`` is set."""
    folder = os.environ.get("MLLOOP_BENCH_PROFILE_DIR")
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if not folder or not spy or not pid:
        if folder and not spy:
            print("[bench] py-spy not found: B8 is not profiled (it is a dev dependency: make install)")
        yield
        return
    raw = Path(folder) / f"{name}.raw"
    raw.parent.mkdir(parents=True, exist_ok=True)
    cmd = [spy, "record", "--subprocesses", "--rate", str(RATE_HZ), "--format", "raw", "-o", str(raw)]
    proc = subprocess.Popen([*cmd, "--pid", str(pid)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)  # py-spy writes what it recorded and exits
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
        if raw.exists():
            (Path(folder) / f"{name}.txt").write_text(summarize(raw))


def _frame(frame: str) -> str:
    return re.sub(r":\d+\)$", ")", frame)


def _component(process: str, frames: list[str]) -> str:
    """A stable name for a process frame like ``process 7158:"python -m airflow scheduler"``."""
    title = process.split(":", 1)[1].strip('"')
    if any("sdk/execution_time/task_runner.py" in f for f in frames):
        return TASK_PROCESSES
    for name in ("api_server", "scheduler", "dag-processor", "triggerer", "serve-logs", "airflow_supervisor"):
        if name in title:
            return name
    if "airflow worker" in title:
        return "LocalExecutor workers and task supervisors"
    return re.sub(r"\d+", "N", title)[:60]


def summarize(raw: Path, top: int = 12) -> str:
    """The report written next to the raw stacks."""
    by_component: collections.Counter[str] = collections.Counter()
    steps: collections.Counter[str] = collections.Counter()
    operators: collections.Counter[str] = collections.Counter()
    inside: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    imports: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        frames = stack.split(";")
        processes = [f for f in frames if f.startswith("process ")]
        component = _component(processes[-1], frames) if processes else "?"
        by_component[component] += n
        if component != TASK_PROCESSES:
            continue
        runner = [f for f in frames if "sdk/execution_time/task_runner.py" in f]
        steps[_frame(runner[-1]).split(" (")[0] if runner else "(outside the task runner)"] += n
        loads = [i for i, f in enumerate(frames) if f.startswith("_find_and_load (")]
        if loads:
            modules = [f for f in frames[loads[0] :] if f.startswith("<module> (")]
            imports[_frame(modules[0])[len("<module> (") : -1] if modules else "?"] += n
        calls = [i for i, f in enumerate(frames) if f.startswith("_run_execute_callable (")]
        if calls and calls[-1] + 2 < len(frames):
            body = frames[calls[-1] + 1 :]
            operator = next((f for f in body if ".execute (" in f), _frame(body[0]))
            operators[_frame(operator)] += n
            ours = [f for f in body if re.search(r"\((mlloop|mlloop_airflow)/", f)]
            library = next((f for f in body if not re.search(r"\((mlloop|mlloop_airflow|airflow)/", f)), None)
            where = f"{_frame(ours[-1]) if ours else '-'} -> {_frame(library) if library else '-'}"
            inside[_frame(operator)][where] += n

    def seconds(n: int) -> str:
        return f"{n / RATE_HZ:8.1f} s"

    total = sum(by_component.values())
    tasks = by_component[TASK_PROCESSES]
    out = [f"py-spy --subprocesses at {RATE_HZ} Hz: {total / RATE_HZ:.0f} s of samples in all", ""]
    out += ["## CPU by component", *(f"{seconds(n)}  {k}" for k, n in by_component.most_common(top)), ""]
    out += [f"## Task processes ({tasks / RATE_HZ:.0f} s), by Task SDK step"]
    out += [f"{seconds(n)}  {k}" for k, n in steps.most_common(top)] + [""]
    out += [f"## Imports inside task processes ({sum(imports.values()) / RATE_HZ:.0f} s), by first module loaded"]
    out += [f"{seconds(n)}  {k}" for k, n in imports.most_common(top)] + [""]
    out += ["## Operators' execute, and inside each: our deepest frame -> the first library frame"]
    for operator, n in operators.most_common(top):
        out.append(f"{seconds(n)}  {operator}")
        out += [f"    {seconds(m)}  {k}" for k, m in inside[operator].most_common(4)]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(summarize(Path(sys.argv[1])))
