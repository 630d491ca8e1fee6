"""B8: the whole embedded loop through Airflow vs the same core functions in one plain process.

Both sides run the demo's loop (``mlloop demo``, ``mlloop_cli.demo``) for the same use case, days and data sizes,
each on its own scratch MLLOOP_HOME, in the same benchmark run:

* **ours**: the real thing. the embedded Airflow on a free port, driven by the demo's ``Loop``
  through the scheduler and the REST API (backfills, Asset-triggered training and promotion, the
  drift-triggered retrain). Measured: ``Loop.run_phases`` (phase 1 ingestion .. the retrain's
  promotion), i.e. without landing the first batches, ``feast apply`` and Airflow's boot, which
  are reported separately. Every task instance of the loop's DAG runs is read back from the REST
  API for the per-task overhead.
* **limit**: the same steps the operators call (:mod:`mlloop.steps`), in the order the DAGs run
  them, in one fresh Python interpreter with no Airflow: phase 1 ingests each day (validate,
  features, materialize, the day's training request; a due day trains and its challenger goes
  through the gate), scores the last 3 days, checks drift; phase 2 lands the drift scenario's days,
  ingests and scores them, and the drift check's retrain goes through training and the gate. Timed from
  phase 1's ingestion to the end (imports of the core included), like ``run_phases``.

A checker reads both homes afterwards (MLflow registry, drift reports, prediction partitions): each
must reach the demo's outcome, and both the same trainings (trigger, cutoff day), gate decisions,
aliases and drift verdicts, so the table compares two runs that made the same decisions.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import Result, run_python, scratch_home
from bench.idle_cpu import measure_idle
from bench.spy import spied

USE_CASE = "credit_risk"
RAN_STATES = ("success", "failed")
HEALTH_CHECK_SECONDS = 30.0
UNHEALTHY_CHECKS = 3  # consecutive "unhealthy" scheduler checks, HEALTH_CHECK_SECONDS apart, end the run
SENSOR_POKE_SECONDS = "30"  # as mlloop demo runs it (a shorter poke is unsafe on Airflow 3.3)
IDLE_SECONDS = 60.0  # the booted deployment's CPU is sampled this long before its DAGs are unpaused (not timed)

PLAIN = r"""
import datetime as dt, json, time

from mlloop.feature_store import apply_registry
from mlloop.landing import land_days
from mlloop.settings import get_settings
from mlloop.spec import get_spec
from mlloop.storage import Storage

settings = get_settings()
settings.prepare_local_paths()
spec = get_spec(PARAMS["use_case"])
storage = Storage.from_url(settings.storage_root)
phase1 = [dt.date.fromisoformat(d) for d in PARAMS["phase1"]]
phase2 = [dt.date.fromisoformat(d) for d in PARAMS["phase2"]]

# Setup, untimed (the demo does it before Airflow starts): land phase 1, deploy the Feast registry.
land_days(storage, spec, phase1)
apply_registry()

started = time.perf_counter()
# The steps the operators call (mlloop.steps), in the order the DAGs run them; no Airflow.
from mlloop import layout
from mlloop.scoring import PartResult
from mlloop.services import Services
from mlloop.steps import RunInfo, StepSkipped
from mlloop.steps import drift as drift_steps
from mlloop.steps import ingestion as ingestion_steps
from mlloop.steps import promotion as promotion_steps
from mlloop.steps import scoring as scoring_steps
from mlloop.steps import training as training_steps

services = Services.of(storage=storage)
services.feature_store, services.mlflow  # open both now, as the imports above: counted in imports_seconds
imports_seconds = time.perf_counter() - started
seconds = {}
counts = {"ingested": 0, "training_decisions": 0, "trained": 0, "promoted": 0, "rejected": 0, "pending": 0,
          "scored_days": 0, "drift_checks": 0, "drift_triggers": 0}
verdicts = {}
run_no = [0]


def run_info(kind):
    run_no[0] += 1
    return RunInfo(dag_id=spec.dag_id(kind), run_id=f"plain__{kind}__{run_no[0]}")


def timed(kind):
    def wrap(fn):
        def inner(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                seconds[kind] = seconds.get(kind, 0.0) + time.perf_counter() - t0
        return inner
    return wrap


def features_event(day):
    # feature_ingestion's request_training: the day's training decision in data time (the ledger);
    # only a due day emits the features Asset event, whose training run trains (cutoff = the day),
    # and the new challenger's event starts a promotion run.
    try:
        _, extra = ingestion_steps.request_training(services, spec, day)
    except StepSkipped:
        return
    version = training(training_steps.TrainingAsk(events=[extra]))
    if version is not None:
        promotion(version)


@timed("ingestion")
def ingest(day):
    # feature_ingestion: wait_for_raw_batch, validate_observations, validate_labels, build_features,
    # materialize_online (request_training: features_event)
    assert storage.exists(layout.LANDING_OBSERVATIONS.path(storage, spec, day)), day  # the sensor
    ingestion_steps.validate_batch(services, spec, "observations", day, optional=False)
    ingestion_steps.validate_batch(services, spec, "labels", day, optional=True)
    ingestion_steps.build_features(services, spec, day)
    ingestion_steps.materialize(services, spec, day, None)
    counts["ingested"] += 1


@timed("training")
def training(ask, drift=None):
    # training: decide_training, build_training_set, validate_training_set, train_and_register
    counts["training_decisions"] += 1
    decision = training_steps.decide(services, spec, ask)
    if not decision.train:
        return None
    built = training_steps.build_set(services, spec, decision.cutoff_day.isoformat())
    validation = training_steps.validate_set(services, spec, built["path"])
    inputs = training_steps.TrainInputs(
        training_set=built["path"], cutoff_day=decision.cutoff_day.isoformat(), trigger_reason=decision.reason,
        validation=validation, training_set_info=built["join"], drift=drift, drift_report=ask.drift_report,
    )
    ref = training_steps.train_and_register(services, spec, inputs, run_info("training"))
    counts["trained"] += 1
    return ref.version


@timed("promotion")
def promotion(version):
    # promotion: evaluate_challenger, then promote_challenger, reject_challenger or mark_pending
    _, step = promotion_steps.run_promotion(
        services, spec, run_info("promotion"), event_versions=[version], serialized_by="the plain loop (one process)"
    )
    if step is not None:
        counts[{"promote": "promoted", "reject": "rejected", "pending": "pending"}[step]] += 1
    return step


def pin(day, policy, purpose):
    try:
        return scoring_steps.pin_champion(services, spec, lambda: day, policy, purpose)
    except StepSkipped:
        raise AssertionError(f"no champion to {purpose} with on {day}") from None


@timed("scoring")
def score(day):
    # batch_scoring: wait_for_features, resolve_champion (the DAG's default model policy),
    # [resolve_shadow], plan_parts, score_partition (mapped), commit_predictions
    from mlloop.champion import CHAMPION_AT_DAY

    assert storage.exists(layout.FEATURES.path(storage, spec, day)), day  # the sensor
    pinned = pin(day, CHAMPION_AT_DAY, "score the day")
    run_id = run_info("batch_scoring").run_id
    shadow = scoring_steps.resolve_shadow(services, spec, day, pinned) if spec.promotion.shadow_days else None
    parts = []
    for part in scoring_steps.plan(spec, day, None):
        result = scoring_steps.score_part(
            services, spec, day, scoring_steps.load_pinned(services, spec, pinned), run_id,
            shadow=scoring_steps.load_shadow(services, spec, day, shadow, run_id), **part,
        )
        parts.append(PartResult.from_dict(result.as_dict()))  # as XCom carries it to the commit
    scoring_steps.commit(services, spec, day, pinned, parts, run_id)
    scoring_steps.commit_shadow(services, spec, day, shadow, parts, run_id)
    counts["scored_days"] += 1


def drift_check(day):
    # drift_monitoring: wait_for_predictions, resolve_champion (champion_at_day), compute_drift,
    # decide_retrain, trigger_training, record_trigger; then the triggered training run and its promotion.
    from mlloop.champion import CHAMPION_AT_DAY

    t0 = time.perf_counter()
    assert storage.exists(layout.PREDICTIONS.path(storage, spec, day)), day  # the sensor
    pinned = pin(day, CHAMPION_AT_DAY, "monitor")
    run = run_info("drift_monitoring")
    report = drift_steps.measure(services, spec, day, pinned, run.run_id)
    decision = drift_steps.decide_retrain(services, spec, day, report.summary, lambda: 0)
    counts["drift_checks"] += 1
    verdicts[day.isoformat()] = {"drift": bool(report.summary["verdict"]["drift"]), "trigger": decision.trigger}
    seconds["drift"] = seconds.get("drift", 0.0) + time.perf_counter() - t0
    if decision.conf is None:
        return
    counts["drift_triggers"] += 1
    conf = decision.conf
    training_run = run_info("training")
    drift_steps.record_trigger(services, spec, day, conf, training_run.dag_id, training_run.run_id, run.run_id)
    ask = training_steps.TrainingAsk(conf.get("cutoff_day"), conf.get("reason"), conf.get("force", False),
                                     conf.get("drift_report"))
    version = training(ask, drift=conf.get("drift"))
    assert version is not None, "the drift-triggered training did not train"
    promotion(version)


marks = {}
# Phase 1: ingest (each day's features event may train and promote), score the last 3 days, drift check.
for day in phase1:
    ingest(day)
    features_event(day)
marks["phase1_ingested"] = time.perf_counter() - started
for day in phase1[-3:]:
    score(day)
drift_check(phase1[-1])
marks["phase1_done"] = time.perf_counter() - started
# Phase 2: the drift scenario's days land; ingest and score them; the drift check retrains.
t0 = time.perf_counter()
land_days(storage, spec, phase2, **{spec.generator.drift_param: phase2[0]})
seconds["landing"] = time.perf_counter() - t0
for day in phase2:
    ingest(day)
    features_event(day)
for day in phase2:
    score(day)
drift_check(phase2[-1])
wall = time.perf_counter() - started
print(json.dumps({"seconds": wall, "imports_seconds": imports_seconds, "step_seconds": seconds, "marks": marks,
                  "counts": counts, "verdicts": verdicts}))
"""

OUTCOME = r"""
import datetime as dt, json
from mlloop import layout, registry
from mlloop import tags as tag_keys
from mlloop.settings import get_settings
from mlloop.spec import get_spec
from mlloop.storage import Storage

spec = get_spec(PARAMS["use_case"])
storage = Storage.from_url(get_settings().storage_root)
client = registry.mlflow_client()
model = spec.registered_model_name
aliases = registry.aliases(client, model)
versions = []
for v in sorted(client.search_model_versions(f"name='{model}'"), key=lambda v: int(v.version)):
    tags = client.get_run(v.run_id).data.tags
    versions.append({"version": v.version, "decision": v.tags.get(tag_keys.DECISION),
                     "cutoff": tags.get(tag_keys.LINEAGE_CUTOFF_DAY),
                     "reason": tags.get(tag_keys.TRIGGER_REASON, "")})
drift = {}
for day in PARAMS["drift_days"]:
    path = layout.DRIFT_REPORT.path(storage, spec, dt.date.fromisoformat(day), layout.DRIFT_REPORT_JSON)
    drift[day] = json.loads(storage.read_bytes(path)).get("drift") if storage.exists(path) else None
rows = {}
for day in PARAMS["scored_days"]:
    path = layout.PREDICTIONS.path(storage, spec, dt.date.fromisoformat(day))
    rows[day] = storage.row_count(path) if storage.exists(path) else 0
print(json.dumps({"aliases": aliases, "versions": versions, "drift": drift, "rows_scored": rows}))
"""


def _script(body: str, params: dict[str, Any]) -> str:
    return f"PARAMS = {params!r}\n{body}"


def _days(today: dt.date, phase1: int, phase2: int) -> tuple[list[dt.date], list[dt.date]]:
    days = [today - dt.timedelta(days=n) for n in range(phase1 + phase2, 0, -1)]
    return days[:phase1], days[phase1:]


def _outcome(home: Path, phase1: list[dt.date], phase2: list[dt.date]) -> dict[str, Any]:
    params = {
        "use_case": USE_CASE,
        "drift_days": [phase1[-1].isoformat(), phase2[-1].isoformat()],
        "scored_days": [d.isoformat() for d in phase1[-3:] + phase2],
    }
    out = run_python(_script(OUTCOME, params), env={"MLLOOP_HOME": str(home)}, timeout=600)
    out.pop("peak_rss_mb", None)
    return out


def check_outcome(out: dict[str, Any], phase1: list[dt.date], phase2: list[dt.date]) -> list[str]:
    """What the demo's loop must have reached; returns the problems (empty: all good)."""
    problems = []
    versions = out["versions"]
    if "champion" not in out["aliases"]:
        problems.append("no champion")
    if len(versions) < 2:
        problems.append(f"{len(versions)} model version(s), expected the first one and the drift retrain")
    if not any(v["reason"].startswith("drift") for v in versions):
        problems.append("no drift-triggered retrain")
    if out["drift"].get(phase1[-1].isoformat()) is not False:
        problems.append(f"drift check {phase1[-1]}: {out['drift'].get(phase1[-1].isoformat())}, expected no drift")
    if out["drift"].get(phase2[-1].isoformat()) is not True:
        problems.append(f"drift check {phase2[-1]}: {out['drift'].get(phase2[-1].isoformat())}, expected drift")
    unscored = [day for day, rows in out["rows_scored"].items() if not rows]
    if unscored:
        problems.append(f"days not scored: {unscored}")
    return problems


def decisions(out: dict[str, Any]) -> list[tuple[str, str | None, str | None]]:
    """The trainings and promotion decisions a loop reached, in version order: (what triggered the
    training, its cutoff day, the gate's decision). Run ids and times differ between loops; these must not."""
    return [(v["reason"].split(":", 1)[0], v["cutoff"], v["decision"]) for v in out["versions"]]


def compare_outcomes(airflow: dict[str, Any], plain: dict[str, Any]) -> list[str]:
    """Both loops must make the same decisions (issue 13): the same trainings (trigger and cutoff),
    the same gate decisions, the same aliases, the same drift verdicts. Returns the differences."""
    problems = []
    if decisions(airflow) != decisions(plain):
        problems.append(f"different trainings or promotions: Airflow {decisions(airflow)} vs plain {decisions(plain)}")
    for key in ("aliases", "drift"):
        if airflow[key] != plain[key]:
            problems.append(f"different {key}: Airflow {airflow[key]} vs plain {plain[key]}")
    return problems


def run_plain(today: dt.date, phase1_days: int, phase2_days: int) -> dict[str, Any]:
    phase1, phase2 = _days(today, phase1_days, phase2_days)
    params = {
        "use_case": USE_CASE,
        "phase1": [d.isoformat() for d in phase1],
        "phase2": [d.isoformat() for d in phase2],
    }
    with scratch_home("loop-plain") as home:
        out = run_python(_script(PLAIN, params), env={"MLLOOP_HOME": str(home)}, timeout=3600)
        out["outcome"] = _outcome(home, phase1, phase2)
    return out


def _seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return (dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)).total_seconds()


def idle_gaps(ran: list[dict[str, Any]]) -> list[float]:
    """Within each DAG run, the stretches when none of its task instances was running although a
    later one was still to come: the time from an upstream task's end to its downstream's start
    (the scheduler noticing, queueing, the executor starting a process). Sensors count as running
    while they wait, so waiting for data is not a gap."""
    return [gap for gap, _ in _gaps(ran)]


def _gaps(ran: list[dict[str, Any]]) -> list[tuple[float, dict[str, Any]]]:
    """Each gap of :func:`idle_gaps` with the task instance that ended it."""
    by_run: dict[tuple[str, str], list[tuple[dt.datetime, dt.datetime, int, dict[str, Any]]]] = {}
    for n, ti in enumerate(ran):
        span = (dt.datetime.fromisoformat(ti["start_date"]), dt.datetime.fromisoformat(ti["end_date"]), n, ti)
        by_run.setdefault((str(ti.get("dag_id")), str(ti.get("dag_run_id"))), []).append(span)
    gaps = []
    for spans in by_run.values():
        spans.sort(key=lambda span: span[:3])
        reach = spans[0][1]
        for start, end, _, ti in spans[1:]:
            if start > reach:
                gaps.append(((start - reach).total_seconds(), {**ti, "_upstream_end": reach.isoformat()}))
            reach = max(reach, end)
    return gaps


def gap_phases(ran: list[dict[str, Any]]) -> dict[str, Any]:
    """Where the gaps go, from the downstream task instance's own timestamps: upstream end ->
    ``scheduled_when`` (the scheduler noticing the end and scheduling it), -> ``queued_when`` (handing
    it to the executor), -> ``start_date`` (a worker picking it up and forking the task process).
    Sums over the gaps whose task instance has both timestamps; and the gaps' median, p90 and max."""
    gaps = _gaps(ran)
    phases = {"to_scheduled": 0.0, "to_queued": 0.0, "to_start": 0.0}
    counted = 0
    for _, ti in gaps:
        scheduled, queued = ti.get("scheduled_when"), ti.get("queued_when")
        if not scheduled or not queued:
            continue
        counted += 1
        phases["to_scheduled"] += _seconds_between(ti["_upstream_end"], scheduled) or 0.0
        phases["to_queued"] += _seconds_between(scheduled, queued) or 0.0
        phases["to_start"] += _seconds_between(queued, ti["start_date"]) or 0.0
    values = sorted(gap for gap, _ in gaps)

    def pct(q: float) -> float | None:
        return round(values[min(len(values) - 1, int(q * len(values)))], 2) if values else None

    return {
        "n_with_timestamps": counted,
        **{f"sum_{k}_seconds": round(v, 1) for k, v in phases.items()},
        "p50_seconds": pct(0.5),
        "p90_seconds": pct(0.9),
        "max_seconds": values[-1] if values else None,
    }


def is_sensor(ti: dict[str, Any]) -> bool:
    """A task instance (REST API dict) that waits for data rather than working."""
    operator = str(ti.get("operator_name") or ti.get("operator") or "")
    return "Sensor" in operator or str(ti["task_id"]).startswith("wait_for_")


def duration(ti: dict[str, Any]) -> float:
    """A task instance's duration, from its start and end when Airflow reports none."""
    value = ti.get("duration")
    if value is None:
        value = _seconds_between(ti.get("start_date"), ti.get("end_date"))
    return float(value or 0.0)


def task_instance_stats(api: Any, dag_ids: list[str]) -> dict[str, Any]:
    """Every task instance of the loop's DAG runs, from the REST API: counts and summed durations."""
    runs_per_dag: dict[str, int] = {}
    tis: list[dict[str, Any]] = []
    for dag_id in dag_ids:
        runs = api.runs(dag_id)
        runs_per_dag[dag_id] = len(runs)
        for run in runs:
            tis.extend(api.task_instances(dag_id, run["dag_run_id"]))
    states = Counter(str(ti.get("state")) for ti in tis)
    # Skipped task instances (a branch not taken) get start and end dates too, but never ran.
    ran = [ti for ti in tis if ti.get("state") in RAN_STATES and ti.get("start_date") and ti.get("end_date")]

    sensors = [ti for ti in ran if is_sensor(ti)]
    work = [ti for ti in ran if not is_sensor(ti)]
    queued = (_seconds_between(ti.get("queued_when") or ti.get("scheduled_when"), ti.get("start_date")) for ti in ran)
    waits = [s for s in queued if s is not None and s >= 0]
    by_task: dict[str, list[float]] = {}
    for ti in work:
        by_task.setdefault(str(ti["task_id"]), []).append(duration(ti))
    gaps = idle_gaps(ran)
    starts = sorted(str(ti["start_date"]) for ti in ran)
    ends = sorted(str(ti["end_date"]) for ti in ran)
    return {
        "dag_runs": runs_per_dag,
        "dag_runs_total": sum(runs_per_dag.values()),
        "task_instances": len(tis),
        "task_instances_ran": len(ran),
        "task_instances_ran_sensors": len(sensors),
        "task_instances_ran_non_sensor": len(work),
        "states": dict(states),
        "sum_duration_seconds": round(sum(duration(ti) for ti in ran), 2),
        "sum_duration_non_sensor_seconds": round(sum(duration(ti) for ti in work), 2),
        "sum_duration_sensor_seconds": round(sum(duration(ti) for ti in sensors), 2),
        "mean_queued_to_start_seconds": round(sum(waits) / len(waits), 2) if waits else None,
        "first_start_to_last_end_seconds": _seconds_between(starts[0], ends[-1]) if ran else None,
        "idle_gaps_inside_runs": {
            "n": len(gaps),
            "sum_seconds": round(sum(gaps), 1),
            "mean_seconds": round(sum(gaps) / len(gaps), 2) if gaps else None,
            **gap_phases(ran),
        },
        "non_sensor_seconds_by_task": {
            task: {"n": len(values), "sum": round(sum(values), 2), "mean": round(sum(values) / len(values), 2)}
            for task, values in sorted(by_task.items())
        },
    }


def _log_excerpt(path: Path, lines: int = 60) -> str:
    """The scheduler's and the errors' last lines of the embedded Airflow's log (the rest is noise)."""
    if not path.exists():
        return ""
    text = path.read_text(errors="replace").splitlines()
    wanted = [line for line in text if line.startswith("scheduler") or "[error" in line or "Traceback" in line]
    return "--- embedded Airflow log (scheduler and errors, tail) ---\n" + "\n".join(
        line[:400] for line in wanted[-lines:]
    )


def run_airflow(today: dt.date, phase1_days: int, phase2_days: int) -> dict[str, Any]:
    import requests

    from mlloop_cli.airflow_local import LocalAirflow, free_port
    from mlloop_cli.demo import STAGES, Loop, LoopResult
    from mlloop_cli.rest import AirflowError

    class TimedLoop(Loop):
        """The demo's loop, timing its driver's waits for training and promotion to finish (the
        Asset-triggered runs no backfill waits for), and giving up early if the scheduler dies (the
        demo would wait out its 10-minute timeouts)."""

        quiet_wait_seconds = 0.0
        health_checked = 0.0
        unhealthy_checks = 0
        idle: dict[str, Any] | None = None

        def start_airflow(self) -> None:
            """The demo's start, with the idle deployment's CPU measured once its DAGs are parsed and
            before they are unpaused (no run can start)."""
            if not self.airflow.running_pid():
                self.airflow.start()
            self.client = self.airflow.client()
            self.api.wait_for_dags([self.dag_id(stage) for stage in STAGES])
            pid = self.airflow.running_pid()
            if pid is not None:
                pids = {name: int(c["pid"]) for name, c in self.airflow.components().items() if c.get("pid")}
                self.idle = measure_idle(pid, pids, IDLE_SECONDS)
            super().start_airflow()

        def wait_quiet(self, stages: tuple[str, ...], what: str, timeout: float, settle: float = 20.0) -> None:
            t0 = time.perf_counter()
            try:
                super().wait_quiet(stages, what, timeout, settle)
            finally:
                self.quiet_wait_seconds += time.perf_counter() - t0

        def runs(self, stage: str) -> list[dict[str, Any]]:
            if time.monotonic() - self.health_checked > HEALTH_CHECK_SECONDS:
                self.health_checked = time.monotonic()
                self.check_scheduler()
            return super().runs(stage)

        def check_scheduler(self) -> None:
            try:
                health = requests.get(f"{self.airflow.url}/api/v2/monitor/health", timeout=10).json()
            except (requests.RequestException, ValueError):
                return
            status = (health.get("scheduler") or {}).get("status")
            self.unhealthy_checks = self.unhealthy_checks + 1 if status == "unhealthy" else 0
            if self.unhealthy_checks >= UNHEALTHY_CHECKS:
                raise AirflowError(f"the scheduler is {status} (health {health}); it probably died: see its log")

    phase1, phase2 = _days(today, phase1_days, phase2_days)
    with scratch_home("loop-airflow") as home:
        airflow = LocalAirflow(home, port=free_port(), extra_env={"MLLOOP_SENSOR_POKE_SECONDS": SENSOR_POKE_SECONDS})
        loop = TimedLoop(airflow, USE_CASE, today)
        loop.result = LoopResult(USE_CASE, phase1, phase2)
        loop.prefix = "B8 airflow: "
        try:
            t0 = time.perf_counter()
            loop.land(phase1)
            loop.feast_apply()
            setup = time.perf_counter() - t0
            t0 = time.perf_counter()
            loop.start_airflow()
            boot = time.perf_counter() - t0 - (loop.idle or {}).get("seconds", 0.0)
            t0 = time.perf_counter()
            with spied("B8-loop-airflow", airflow.running_pid()):
                loop.run_phases()
            wall = time.perf_counter() - t0
            stats = task_instance_stats(loop.api, [loop.dag_id(stage) for stage in STAGES])
        except Exception as exc:
            raise RuntimeError(f"the Airflow loop failed: {exc}\n{_log_excerpt(airflow.log_path)}") from exc
        finally:
            airflow.stop()
        step_times = loop.result.step_times
        return {
            "seconds": wall,
            "setup_seconds": setup,
            "boot_seconds": boot,
            "quiet_wait_seconds": loop.quiet_wait_seconds,
            "idle_cpu": loop.idle,
            "step_times": {name: round(at - step_times[next(iter(step_times))], 1) for name, at in step_times.items()},
            "task_instances": stats,
            "outcome": _outcome(home, phase1, phase2),
        }


def idle_cpu(idle: dict[str, Any] | None) -> str:
    if not idle:
        return "? (not measured)"
    parts = ", ".join(f"{name} {pct}" for name, pct in sorted(idle["by_component"].items()))
    return f"{idle['cpu_percent']}% of a core over {idle['seconds']:.0f} s ({parts})"


def run(size: str, loop_days: list[int] | None = None) -> list[Result]:
    if not loop_days:
        print(f"[bench] B8 skipped at size {size!r}: the whole loop on Airflow takes minutes (use --size default)")
        return []
    phase1_days, phase2_days = loop_days
    today = dt.datetime.now(dt.UTC).date()
    phase1, phase2 = _days(today, phase1_days, phase2_days)
    plain = run_plain(today, phase1_days, phase2_days)
    print(f"[bench]   B8 plain loop: {plain['seconds']:.1f} s", flush=True)
    ours = run_airflow(today, phase1_days, phase2_days)
    problems = {
        "airflow": check_outcome(ours["outcome"], phase1, phase2),
        "plain": check_outcome(plain["outcome"], phase1, phase2),
    }
    if any(problems.values()):
        raise RuntimeError(f"the loop did not reach the demo's outcome: {problems}")
    differences = compare_outcomes(ours["outcome"], plain["outcome"])
    if differences:
        raise RuntimeError(f"the plain loop and the Airflow loop decided differently: {differences}")

    stats = ours["task_instances"]
    ran = stats["task_instances_ran"]
    ratio = ours["seconds"] / plain["seconds"]
    overhead = (ours["seconds"] - plain["seconds"]) / ran
    work = stats["sum_duration_non_sensor_seconds"]
    gaps = stats["idle_gaps_inside_runs"]
    in_task = (work - plain["seconds"]) / stats["task_instances_ran_non_sensor"]
    extra = {
        "days": {"phase1": [d.isoformat() for d in phase1], "phase2": [d.isoformat() for d in phase2]},
        "airflow": ours,
        "plain": plain,
    }

    def models(out: dict[str, Any]) -> str:
        return ", ".join(f"v{v['version']} {v['decision']} (cutoff {v['cutoff']})" for v in out["outcome"]["versions"])

    return [
        Result(
            "B8",
            f"whole loop wall time ({phase1_days}+{phase2_days} days: ingest, train, promote, score, drift, retrain)",
            size,
            ours["seconds"],
            plain["seconds"],
            "s",
            ratio,
            "<= 2x",
            ratio <= 2,
            notes=(
                f"Airflow boot {ours['boot_seconds']:.0f} s not counted; {stats['dag_runs_total']} DAG runs, "
                f"{ran} task instances ran (+{stats['task_instances'] - ran} skipped); the driver waited "
                f"{ours['quiet_wait_seconds']:.0f} s for Asset-triggered training and promotion to finish "
                "(no run active, no Asset event queued; no fixed settle time); "
                f"Airflow models: {models(ours)}; plain: {models(plain)}"
            ),
            extra=extra,
        ),
        Result(
            "B8",
            "Airflow overhead per task instance ((Airflow wall - plain wall) / task instances)",
            size,
            overhead,
            plain["seconds"] / ran,
            "s",
            overhead / (plain["seconds"] / ran),
            "report",
            None,
            notes=(
                f"limit: plain seconds per task instance; {ran} task instances ran; sum of their durations "
                f"{stats['sum_duration_seconds']:.0f} s (non-sensor {work:.0f} s = {work / plain['seconds']:.1f}x the "
                f"plain wall, i.e. {in_task:.2f} s more per non-sensor task; sensors "
                f"{stats['sum_duration_sensor_seconds']:.0f} s) vs Airflow wall {ours['seconds']:.0f} s; "
                f"mean queued->start {stats['mean_queued_to_start_seconds']} s; inside DAG runs, "
                f"{gaps['n']} gaps between one task's end and the next one's start add up to "
                f"{gaps['sum_seconds']:.0f} s (mean {gaps['mean_seconds']} s, p50 {gaps['p50_seconds']} s, p90 "
                f"{gaps['p90_seconds']} s; of the sum, end->scheduled {gaps['sum_to_scheduled_seconds']} s, "
                f"->queued {gaps['sum_to_queued_seconds']} s, ->start {gaps['sum_to_start_seconds']} s); "
                f"the idle deployment (booted, DAGs "
                f"parsed, nothing running) used {idle_cpu(ours['idle_cpu'])}"
            ),
            extra={"task_instances": stats},
        ),
    ]
