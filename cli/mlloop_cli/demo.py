"""The main job: run the whole ML loop on a local Airflow 3, the way a user would.

    mlloop demo [--use-case credit_risk [--use-case energy_demand] | --all] [--stop]

1. lands generated raw batches for 8 past days, deploys the Feast registry, starts Airflow 3
   (API server + UI, scheduler, DAG processor, triggerer, as ``airflow standalone`` runs them, under a
   supervisor that restarts a component that dies: ``mlloop_cli.airflow_supervisor``);
2. backfills feature ingestion over those days; the features Asset starts training, the challenger
   Asset starts the gated promotion, and the first model becomes champion;
3. backfills batch scoring and runs a drift check (no drift expected);
4. switches the generator's drift scenario on and lands 4 more days; ingests and scores them;
   the drift check for the last day finds drift and triggers retraining, whose challenger goes
   through the gate again;
5. prints a summary and leaves the UI running (``make down`` stops it).

With several use cases, one Airflow runs them all: step 1 is done for each, then every use case's
loop (steps 2-4) runs at the same time, each in its own thread with its own REST client.

Everything goes through Airflow's scheduler and REST API; nothing calls the pipeline's Python
functions behind Airflow's back. The state lives under ``$MLLOOP_HOME`` (default ``.mlloop/``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlloop import layout
from mlloop_cli.airflow_local import LocalAirflow, mlloop_home
from mlloop_cli.rest import AirflowClient, AirflowError

if TYPE_CHECKING:
    from mlloop.storage import Storage

PHASE1_DAYS = 8
PHASE2_DAYS = 4
STAGES = ("feature_ingestion", "training", "promotion", "batch_scoring", "drift_monitoring", "rollback")
DEMO_MARKER = ".mlloop-demo-home"
# One backfill creation at a time across the use cases' threads: on SQLite two at once wait on each
# other's write lock for a minute, fail, and Airflow 3.3 deletes runs the scheduler already holds
# (it dies with StaleDataError; the supervisor restarts it, but minutes are lost).
_BACKFILL_CREATION = threading.Lock()


@dataclass
class LoopResult:
    """What the loop did, for the summary and for the end-to-end test's assertions."""

    use_case: str
    phase1: list[dt.date]
    phase2: list[dt.date]
    started: float = field(default_factory=time.monotonic)
    step_times: dict[str, float] = field(default_factory=dict)
    drift_verdicts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def elapsed(self) -> float:
        return time.monotonic() - self.started


class Loop:
    poll = 1.0
    """Seconds between two polls of a wait. A wait ends on average half a poll after its runs did;
    one poll is one filtered list of runs (a few ms on the API server), so polling often is cheap."""

    def __init__(self, airflow: LocalAirflow, use_case: str, today: dt.date, poke_seconds: int = 30):
        self.airflow = airflow
        self.use_case = use_case
        self.today = today
        days = [today - dt.timedelta(days=n) for n in range(PHASE1_DAYS + PHASE2_DAYS, 0, -1)]
        self.result = LoopResult(use_case, days[:PHASE1_DAYS], days[PHASE1_DAYS:])
        self.client: AirflowClient | None = None
        self.poke_seconds = poke_seconds
        self.prefix = ""

    # ------------------------------------------------------------------ output
    def say(self, message: str) -> None:
        print(f"[{self.result.elapsed():6.0f}s] {self.prefix}{message}", flush=True)

    def dag_id(self, stage: str) -> str:
        return f"{self.use_case}__{stage}"

    @property
    def api(self) -> AirflowClient:
        assert self.client is not None, "Airflow is not started"
        return self.client

    # ------------------------------------------------------------------ setup
    def env(self) -> dict[str, str]:
        return self.airflow.env()

    def land(self, days: list[dt.date], drift_from: dt.date | None = None) -> None:
        cmd = [sys.executable, "-m", "mlloop.landing", self.use_case, "--start", str(days[0]), "--end", str(days[-1])]
        if drift_from:
            cmd += ["--drift-from", str(drift_from)]
        out = run_checked(cmd, self.env(), f"landing generated batches of {self.use_case}")
        for line in out.splitlines():
            self.say(f"  {line}")

    def feast_apply(self) -> None:
        """``feast apply`` of the whole feature repo (every use case's definitions at once)."""
        env = self.env()
        script = (
            "import json; from mlloop.settings import get_settings as s; "
            "print(json.dumps({**s().feast_environment(), 'repo': str(s().feast_repo_path)}))"
        )
        feast_env = json.loads(run_checked([sys.executable, "-c", script], env, "reading the Feast settings"))
        repo = feast_env.pop("repo")
        env.update(feast_env)
        feast = str(Path(sys.executable).parent / "feast")
        run_checked([feast, "apply"], env, "feast apply", cwd=repo)

    def start_airflow(self) -> None:
        """Start Airflow (shared by every loop of ``start_loops``) and unpause this use case's DAGs."""
        if not self.airflow.running_pid():
            self.airflow.start()
        self.client = self.airflow.client()
        dags = [self.dag_id(stage) for stage in STAGES]
        self.api.wait_for_dags(dags)
        for dag_id in dags:
            self.api.set_paused(dag_id, False)

    # ------------------------------------------------------------------ waiting
    def runs(self, stage: str) -> list[dict[str, Any]]:
        return self.api.runs(self.dag_id(stage))

    def progress(self, stages: tuple[str, ...]) -> str:
        parts = []
        for stage in stages:
            counts = Counter(r["state"] for r in self.runs(stage))
            if counts:
                parts.append(f"{stage}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
        return "; ".join(parts)

    def wait_quiet(self, stages: tuple[str, ...], what: str, timeout: float, settle: float = 20.0) -> None:
        """Wait until these stages have nothing left to do: no run queued or running and no Asset
        event queued for them (an upstream task's event becomes a run at the scheduler's next pass).

        Read as runs, queued events, runs again: a run that started or ended between the reads
        changes the second read, so a quiet answer is never a snapshot taken mid-handover. Events
        still queued after ``settle`` seconds with nothing running (a DAG waiting for the other
        Assets of an AND condition) do not hold the wait. Until this, the wait was a fixed ``settle``
        with nothing running, 20 s each time (bench B8)."""
        last_report = 0.0
        stuck_since: float | None = None

        def snapshot() -> tuple[bool, frozenset[tuple[str, str]]]:
            runs = [(stage, r) for stage in stages for r in self.runs(stage)]
            active = any(r["state"] in ("queued", "running") for _, r in runs)
            return active, frozenset((stage, f"{r['dag_run_id']}={r['state']}") for stage, r in runs)

        def quiet() -> bool:
            nonlocal last_report, stuck_since
            if time.monotonic() - last_report > 30:
                self.say(f"  ... {self.progress(stages)}")
                last_report = time.monotonic()
            active, before = snapshot()
            if active:
                stuck_since = None
                return False
            queued = [event for stage in stages for event in self.api.queued_asset_events(self.dag_id(stage))]
            active, after = snapshot()
            if active or after != before:
                stuck_since = None
                return False
            if not queued:
                return True
            stuck_since = stuck_since or time.monotonic()
            return time.monotonic() - stuck_since >= settle

        self.api.wait_until(what, quiet, timeout, poll=self.poll)

    def wait_runs(self, stage: str, run_ids: set[str], timeout: float) -> list[dict[str, Any]]:
        def done() -> bool:
            states = {r["dag_run_id"]: r["state"] for r in self.runs(stage)}
            return all(states.get(rid) in ("success", "failed") for rid in run_ids)

        self.api.wait_until(f"{stage} runs {sorted(run_ids)}", done, timeout, poll=self.poll)
        return [r for r in self.runs(stage) if r["dag_run_id"] in run_ids]

    def backfill(self, stage: str, days: list[dt.date], timeout: float) -> list[dict[str, Any]]:
        """Backfill ``days`` of a per-interval DAG and wait for those runs (skipping days that
        already have a run, e.g. the scheduler's own run for yesterday)."""
        self.start_backfill(stage, days)
        return self.wait_backfill(stage, days, timeout)

    def day_runs(self, stage: str, days: list[dt.date]) -> list[dict[str, Any]]:
        """The runs of these days only (the API filters by logical date: a poll of a long replay
        does not page through every run of the DAG)."""
        wanted = {d.isoformat() for d in days}
        runs = self.api.runs(self.dag_id(stage), first_day=min(days), last_day=max(days))
        return [r for r in runs if (r.get("logical_date") or "")[:10] in wanted]

    def start_backfill(self, stage: str, days: list[dt.date]) -> None:
        """Create the backfill of the ``days`` that have no run yet; do not wait."""
        existing = {r["logical_date"][:10] for r in self.day_runs(stage, days) if r.get("logical_date")}
        todo = [d for d in days if d.isoformat() not in existing]
        if todo:
            with _BACKFILL_CREATION:
                self.api.backfill(self.dag_id(stage), todo[0], todo[-1], max_active_runs=3)

    def wait_backfill(self, stage: str, days: list[dt.date], timeout: float) -> list[dict[str, Any]]:
        """Wait for the runs of ``days``; a failed one raises with its failed tasks' log tails."""

        def done() -> bool:
            runs = self.day_runs(stage, days)
            # A failed day stops the wait at once: later days may wait on it (ingestion decides
            # training in day order), and its cause is what the user needs now.
            if any(r["state"] == "failed" for r in runs):
                return True
            return len(runs) >= len(days) and all(r["state"] in ("success", "failed") for r in runs)

        last = [0.0]

        def report() -> None:
            if time.monotonic() - last[0] > 30:
                self.say(f"  ... {self.progress((stage, 'training', 'promotion'))}")
                last[0] = time.monotonic()

        self.api.wait_until(f"{stage} for {days[0]}..{days[-1]}", done, timeout, poll=self.poll, on_poll=report)
        runs = self.day_runs(stage, days)
        failed = [r["dag_run_id"] for r in runs if r["state"] != "success"]
        if failed:
            raise AirflowError(
                f"{stage} runs failed: {failed}; open them in the UI ({self.airflow.url})\n"
                + self.failure_cause(stage, failed)
            )
        return runs

    def failure_cause(self, stage: str, run_ids: list[str], lines: int = 12) -> str:
        """The failed tasks of these runs with the end of each one's log: the cause, not just a run id."""
        out = []
        for run_id in run_ids[:3]:
            for ti in self.api.task_instances(self.dag_id(stage), run_id):
                if ti["state"] != "failed":
                    continue
                try:
                    log = self.api.task_log(
                        self.dag_id(stage), run_id, ti["task_id"], max(1, ti.get("try_number") or 1)
                    )
                except Exception as exc:  # the log is a help; its absence must not hide the failure
                    log = f"(log not readable: {exc})"
                tail = "\n".join(f"      {line[:300]}" for line in log.splitlines()[-lines:])
                out.append(f"  {run_id} / {ti['task_id']} failed; the end of its log:\n{tail}")
        return "\n".join(out)

    # ------------------------------------------------------------------ reading results
    def storage(self) -> Storage:
        """The storage root the tasks wrote, a local folder or S3 (``mlloop.storage.Storage``)."""
        return self.airflow.storage()

    def storage_root(self) -> str:
        return self.storage().url

    def drift_report(self, day: dt.date) -> dict[str, Any]:
        storage = self.storage()
        path = layout.DRIFT_REPORT.path(storage, self.use_case, day, layout.DRIFT_REPORT_JSON)
        return json.loads(storage.read_bytes(path)) if storage.exists(path) else {}

    # ------------------------------------------------------------------ the loop
    def step(self, name: str) -> None:
        self.result.step_times[name] = self.result.elapsed()
        self.say(name)

    def run(self) -> LoopResult:
        """The whole loop of this one use case (Airflow is started if it is not running)."""
        return run_loops([self])[0]

    def run_phases(self) -> LoopResult:
        """Steps 2-4 of the module docstring, once the phase-1 batches landed and Airflow is up."""
        r = self.result
        self.step(f"Phase 1: ingesting {len(r.phase1)} days; the features Asset starts training and promotion")
        self.backfill("feature_ingestion", r.phase1, timeout=900)
        self.wait_quiet(("training", "promotion"), "training and promotion to settle", timeout=600)
        self.step(f"Scoring {r.phase1[-3]}..{r.phase1[-1]} with the champion")
        self.backfill("batch_scoring", r.phase1[-3:], timeout=600)
        self.step(f"Drift check for {r.phase1[-1]} (no drift expected)")
        self.backfill("drift_monitoring", r.phase1[-1:], timeout=600)
        r.drift_verdicts[r.phase1[-1].isoformat()] = self.drift_report(r.phase1[-1])
        self.say(f"  verdict: {describe_verdict(r.drift_verdicts[r.phase1[-1].isoformat()])}")

        self.step(f"Phase 2: switching the drift scenario on ({self.drift_param()} {r.phase2[0]}) and landing 4 days")
        self.land(r.phase2, drift_from=r.phase2[0])
        self.step(f"Ingesting and scoring {r.phase2[0]}..{r.phase2[-1]}")
        self.backfill("feature_ingestion", r.phase2, timeout=900)
        self.backfill("batch_scoring", r.phase2, timeout=600)
        self.step(f"Drift check for {r.phase2[-1]}; on drift it triggers retraining")
        self.backfill("drift_monitoring", r.phase2[-1:], timeout=600)
        r.drift_verdicts[r.phase2[-1].isoformat()] = self.drift_report(r.phase2[-1])
        self.say(f"  verdict: {describe_verdict(r.drift_verdicts[r.phase2[-1].isoformat()])}")
        self.wait_quiet(("training", "promotion"), "the retraining and its promotion", timeout=600)
        self.step("Done")
        return r

    def drift_param(self) -> str:
        """The generator parameter that switches the drift scenario on (the spec's generator.drift_param)."""
        code = f"from mlloop.spec import get_spec; print(get_spec({self.use_case!r}).generator.drift_param)"
        out = subprocess.run([sys.executable, "-c", code], env=self.env(), capture_output=True, text=True)
        return out.stdout.strip() or "drift scenario from"


def run_loops(loops: list[Loop]) -> list[LoopResult]:
    """Run the loops of several use cases in ONE Airflow: land and deploy for all, start Airflow
    once, then drive every use case's phases at the same time (a thread and a REST client each)."""
    first = loops[0]
    for loop in loops:
        if len(loops) > 1:
            loop.prefix = f"{loop.use_case}: "
        r = loop.result
        loop.step(f"Landing raw batches for {r.phase1[0]}..{r.phase1[-1]} (the upstream system's job)")
        loop.land(r.phase1)
    first.step("Deploying the Feast registry (feast apply)")
    first.feast_apply()
    first.step(f"Starting Airflow 3 on {first.airflow.url}")
    for loop in loops:
        loop.start_airflow()
    user, password = first.airflow.login()
    first.say(f"  UI: {first.airflow.url}  login: {user} / {password}")
    if len(loops) == 1:
        return [first.run_phases()]
    with ThreadPoolExecutor(max_workers=len(loops), thread_name_prefix="loop") as pool:
        futures = [pool.submit(loop.run_phases) for loop in loops]
        return [future.result() for future in futures]


def describe_verdict(report: dict[str, Any]) -> str:
    """The drift report's one-line verdict (reports/<uc>/drift/date=<day>/report.json)."""
    if not report:
        return "no report found"
    return str((report.get("verdict") or {}).get("headline") or ("DRIFT" if report.get("drift") else "no drift"))


def describe_registry(registry: dict[str, Any]) -> list[str]:
    """Champion and previous champion with the gate's numbers, from the versions' tags."""
    if "error" in registry:
        return [f"Model registry: could not be read ({registry['error']})"]
    aliases, tags = registry.get("aliases", {}), registry.get("tags", {})
    if "champion" not in aliases:
        return ["Model registry: no champion (every challenger was rejected; see the promotion runs' logs)"]
    from mlloop.tags import GateRecord

    gate = GateRecord.from_tags(tags.get("champion", {}))
    lines = [f"Champion: v{aliases['champion']} ({gate.describe() if gate else 'never gated'})"]
    if "previous-champion" in aliases:
        lines.append(f"Previous champion (rollback target): v{aliases['previous-champion']}")
    return lines + describe_shadow(registry)


def describe_shadow(registry: dict[str, Any]) -> list[str]:
    """The shadow comparison (promotion.shadow_days), from the pending and champion versions' shadow.* tags."""
    from mlloop import tags as tag_keys

    aliases, tags = registry.get("aliases", {}), registry.get("tags", {})
    lines = []
    for alias in ("pending", "champion"):
        mine = tags.get(alias, {})
        if alias not in aliases or not mine.get(tag_keys.SHADOW_STATE):
            continue
        days = mine.get(tag_keys.SHADOW_DAYS) or "none yet"
        gate = mine.get(tag_keys.SHADOW_PREFIX + tag_keys.GATE_VS_CHAMPION, "")
        result = mine.get(tag_keys.SHADOW_RESULT)
        lines.append(
            f"Shadow: v{aliases[alias]} {mine[tag_keys.SHADOW_STATE]}, {mine.get(tag_keys.SHADOW_DAYS_LABELLED, '0')} "
            f"of {mine.get(tag_keys.SHADOW_DAYS_REQUIRED, '?')} labelled shadow days ({days})"
            + (f"; vs the served predictions: {gate}" if gate else "")
            + (f"; result: {result}" if result else "")
        )
    return lines


def run_checked(cmd: list[str], env: dict[str, str], what: str, cwd: str | Path | None = None) -> str:
    """Run a helper process; on failure raise with its own error output (the cause), not a bare exit code."""
    out = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        detail = (out.stderr or out.stdout).strip().splitlines()
        cause = "\n".join(f"    {line}" for line in detail[-15:])
        raise RuntimeError(f"{what} failed (exit code {out.returncode}):\n{cause}")
    return out.stdout


def mlflow_online_lines(loop: Loop) -> list[str]:
    """Where to look next: quarantine, online store, the UIs (shared by the demo and the replay)."""
    storage = loop.storage()
    user, password = loop.airflow.login()
    return [
        f"Drift reports: {layout.DRIFT_REPORT.folder(storage, loop.use_case)}",
        f"Quarantined rows: {layout.QUARANTINE.area_folder(storage, loop.use_case)}",
        f"Online store: {online_store(loop)} (read it with Feast: see README)",
        f"Airflow UI: {loop.airflow.url}  login: {user} / {password}",
        f"Model health (charts; also in the UI's Browse menu): {loop.airflow.url}/mlloop-health/{loop.use_case}",
        f"MLflow UI: {mlflow_ui(loop)}",
    ]


def summary(loop: Loop) -> str:
    """The closing screen: champion, rows scored, drift and what it triggered, where to look."""
    code = (
        "import json; from mlloop.spec import get_spec; from mlloop import registry as r;"
        f"s=get_spec('{loop.use_case}'); c=r.mlflow_client(); a=r.aliases(c, s.registered_model_name);"
        "v={k: r.get_version(c, s.registered_model_name, x).tags for k, x in a.items()};"
        "print(json.dumps({'aliases': a, 'tags': v}))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=loop.env(), capture_output=True, text=True)
    registry = json.loads(out.stdout) if out.returncode == 0 else {"error": out.stderr[-500:]}
    storage = loop.storage()
    predictions = storage.glob(layout.PREDICTIONS.pattern(storage, loop.use_case))
    rows = sum(storage.row_count(p) for p in predictions)
    training_runs = loop.runs("training")
    drift_triggered = [t for t in training_runs if (t.get("conf") or {}).get("reason", "").startswith("drift")]
    lines = [
        "",
        "=" * 78,
        f"The loop ran in {loop.result.elapsed() / 60:.1f} min.",
        *describe_registry(registry),
    ]
    lines += [
        f"Rows scored: {rows:,} in {len(predictions)} partitions under "
        f"{layout.PREDICTIONS.folder(storage, loop.use_case)}",
        "Drift checks:",
        *[f"  {day}: {describe_verdict(rep)}" for day, rep in loop.result.drift_verdicts.items()],
        f"Training runs triggered by drift: {len(drift_triggered)}"
        + (f" ({drift_triggered[0]['dag_run_id']}: {drift_triggered[0]['state']})" if drift_triggered else ""),
        *mlflow_online_lines(loop),
        "=" * 78,
    ]
    return "\n".join(lines)


def mlflow_ui(loop: Loop) -> str:
    """A tracking server is its own UI; the embedded file store is browsed with `make mlflow-ui`."""
    tracking = loop.env().get("MLFLOW_TRACKING_URI", "")
    if tracking.startswith(("http://", "https://")):
        return tracking
    return "make mlflow-ui  (then http://127.0.0.1:5000)"


def online_store(loop: Loop) -> str:
    """Where Feast's online store is, as the tasks are configured (the embedded default: SQLite)."""
    configured = loop.env().get("MLLOOP_FEAST_ONLINE_STORE")
    if configured:
        store = json.loads(configured)
        return f"{store.get('type')} {store.get('connection_string') or store.get('path') or ''}".strip()
    return str(loop.airflow.home / "feast" / "online_store.db")


def has_generator(use_case: str) -> bool:
    from mlloop.spec import get_spec

    return get_spec(use_case).generator is not None


def prepare_home(home: Path) -> None:
    """Start from a clean demo home; refuse to wipe a folder the demo did not create."""
    if home.exists() and any(home.iterdir()):
        if not (home / DEMO_MARKER).exists():
            raise SystemExit(f"{home} exists and was not created by the demo; set MLLOOP_HOME to an empty folder")
        shutil.rmtree(home)
    home.mkdir(parents=True, exist_ok=True)
    (home / DEMO_MARKER).write_text("created by `mlloop demo`; `make demo` wipes and recreates this folder\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument(
        "--use-case", action="append", dest="use_cases", help="use case to run (repeatable; default credit_risk)"
    )
    choice.add_argument(
        "--all",
        action="store_true",
        help="run every use case in include/use_cases that has a generator, at once (landed history: mlloop replay)",
    )
    parser.add_argument("--stop", action="store_true", help="stop Airflow at the end instead of leaving the UI up")
    args = parser.parse_args(argv)
    if args.all:
        from mlloop.spec import load_specs

        # The demo makes up its data: use cases whose history is landed by their team run with `mlloop replay`.
        use_cases = [spec.name for spec in load_specs() if spec.generator is not None]
    else:
        use_cases = args.use_cases or ["credit_risk"]
    try:
        without = [name for name in use_cases if not has_generator(name)]
    except ValueError as exc:  # SpecError: an unknown name or a broken spec, with the file and field
        print(f"{exc}", file=sys.stderr)
        return 2
    if without:
        print(
            f"{', '.join(without)}: no generator in the spec, so the demo cannot make up its data. Land its raw "
            "batches (docs/authoring.md, step 6), then run the loop over them with\n"
            f"  mlloop replay --use-case {without[0]} --from YYYY-MM-DD --to YYYY-MM-DD",
            file=sys.stderr,
        )
        return 2
    home = mlloop_home()
    airflow = LocalAirflow(home, extra_env={"MLLOOP_SENSOR_POKE_SECONDS": "30"})
    airflow.stop()
    prepare_home(home)
    os.environ["MLLOOP_HOME"] = str(home)
    today = dt.datetime.now(dt.UTC).date()
    loops = [Loop(airflow, name, today) for name in use_cases]
    try:
        run_loops(loops)
        for loop in loops:
            print(summary(loop), flush=True)
    except Exception as exc:
        return report_failure("loop", exc, airflow, args.stop)
    finally:
        if args.stop:
            airflow.stop()
    return report_success(args.stop)


def report_failure(what: str, exc: Exception, airflow: LocalAirflow, stopping: bool) -> int:
    """The cause of a failed loop or replay, and whether Airflow is still up to look at (exit code 1)."""
    print(f"\nThe {what} did not complete: {exc}", file=sys.stderr)
    if airflow.running_pid() and not stopping:
        print(f"Airflow is still up for you to look: {airflow.url}; its log: {airflow.log_path}", file=sys.stderr)
    elif not airflow.running_pid():
        print("Airflow was not started.", file=sys.stderr)
    return 1


def report_success(stopping: bool) -> int:
    if not stopping:
        print("Airflow keeps running for you to look around; `make down` stops it.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
