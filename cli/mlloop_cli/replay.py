"""Run the whole loop over a date range of landed history, in data time, through Airflow.

    mlloop replay --use-case <name> --from 2011-01-01 --to 2011-03-31 [--land] [--stop]
    make replay USE_CASE=<name> FROM=2011-01-01 TO=2011-03-31

The raw batches must already be under ``landing/<use case>/{observations,labels}/date=<day>/``
of the storage root (``$MLLOOP_HOME``, default ``.mlloop/``): landing is the upstream system's job
(``python -m mlloop.land_dataset`` lands the bundled real data set; ``--land`` generates the
missing days of a use case that has a generator). Nothing landed is ever deleted.

It deploys the Feast registry, starts the embedded Airflow (or reuses the one running on this
home), unpauses the use case's DAGs and then drives everything through the scheduler and the REST
API, in data-time order, in chunks that end at each drift check day and hold at most
``model.retrain_after_days`` days (so at most one training is due in each):

1. backfill ingestion of the chunk; ingestion decides, per day and in day order, whether a training
   is due (the ledger ``staging/<use case>/training_requests/``) and only then emits the features
   Asset, which starts training, whose challenger Asset starts the gated promotion;
2. wait for exactly those trainings and promotions (the ledger says which days were due);
3. backfill scoring of the chunk's days from the first day a champion serves (each day with the
   version that was champion at that day's end);
4. run the drift check due on the chunk's last day, if any, and wait for the retraining it
   triggers and its promotion.

Every decision depends only on data of days up to the one decided, so two replays of the same
landed history give the same trainings, cutoffs, promotions and champion. The end summary lists
them; ``--result FILE`` also writes them as JSON (what the end-to-end test compares).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlloop import layout
from mlloop import tags as tag_keys
from mlloop_cli.airflow_local import LocalAirflow, mlloop_home
from mlloop_cli.demo import Loop, describe_verdict, mlflow_online_lines, report_failure, report_success
from mlloop_cli.replay_timing import PER_DAY, STAGE_PHASE, breakdown, describe
from mlloop_cli.rest import AirflowError

TERMINAL = ("success", "failed")


def schedule_days(expression: str, first: dt.date, last: dt.date) -> list[dt.date]:
    """The days in ``[first, last]`` a per-interval DAG on ``expression`` has a run for (the start of
    each complete data interval, as Airflow's backfill creates them)."""
    from airflow.timetables.interval import CronDataIntervalTimetable

    # The scheduler's own class for dag_defaults.interval_timetable (same cron, same time zone).
    timetable = CronDataIntervalTimetable(expression, timezone="UTC")
    start = dt.datetime.combine(first, dt.time(), tzinfo=dt.UTC)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    days = []
    current = timetable._align_to_next(start)  # type: ignore[arg-type]
    while current < end:
        following = timetable._get_next(current)
        days.append(dt.date(current.year, current.month, current.day))
        current = following
    return days


def chunks(days: list[dt.date], check_days: set[dt.date], size: int) -> list[list[dt.date]]:
    """Split ``days`` (in order) into chunks ending at each check day and holding at most ``size`` days.

    Training requests are at least ``model.retrain_after_days`` days apart, so a chunk of at most
    that many days holds at most one due day: the driver can wait for exactly its training."""
    out: list[list[dt.date]] = []
    current: list[dt.date] = []
    for day in days:
        current.append(day)
        if day in check_days or len(current) >= size:
            out.append(current)
            current = []
    if current:
        out.append(current)
    return out


class Replay(Loop):
    """The loop over ``days`` of landed history (a :class:`demo.Loop` driven in data-time chunks)."""

    def __init__(self, airflow: LocalAirflow, use_case: str, first: dt.date, last: dt.date, land: bool = False):
        super().__init__(airflow, use_case, last + dt.timedelta(days=1))
        self.first, self.last = first, last
        self.land_missing = land
        self.trainings: list[dict[str, Any]] = []
        self.scored_days: list[dt.date] = []
        self.drift_checks: dict[str, dict[str, Any]] = {}
        self.waits: list[dict[str, Any]] = []  # per chunk: seconds the driver waited on each phase
        self.timings: dict[str, Any] = {}

    @contextmanager
    def waiting(self, phase: str) -> Iterator[None]:
        """Count the wall-clock seconds of the block toward ``phase`` of the current chunk."""
        started = time.monotonic()
        try:
            yield
        finally:
            chunk = self.waits[-1]
            chunk[phase] = round(chunk.get(phase, 0.0) + time.monotonic() - started, 1)

    # ------------------------------------------------------------------ data
    def spec(self) -> Any:
        from mlloop.spec import get_spec

        return get_spec(self.use_case)

    def landed_days(self) -> list[dt.date]:
        from mlloop.ingestion import landing_path
        from mlloop.landing import date_range

        storage, spec = self.storage(), self.spec()
        days = date_range(self.first, self.last)
        missing = [d for d in days if not storage.exists(landing_path(storage, spec, "observations", d))]
        if missing and self.land_missing:
            if spec.generator is None:
                raise AirflowError(
                    f"{self.use_case} has no generator, so --land cannot produce its data: land the raw batches "
                    "yourself (docs/authoring.md, step 6)"
                )
            self.say(f"Landing {len(missing)} missing day(s) with the generator ({missing[0]} .. {missing[-1]})")
            for day in missing:
                self.land([day])
            missing = []
        if len(missing) == len(days):
            raise AirflowError(
                f"nothing is landed for {self.use_case} in {self.first} .. {self.last} under "
                f"{layout.LANDING_OBSERVATIONS.folder(storage, self.use_case)}: land the raw batches first "
                "(docs/authoring.md, step 6), or pass --land for a use case with a generator"
            )
        if missing:
            self.say(
                f"  {len(missing)} day(s) without a landed batch are left out: {', '.join(map(str, missing[:10]))}"
            )
        return [d for d in days if d not in missing]

    def versions(self) -> list[dict[str, Any]]:
        """Every registered version: cutoff, why it was trained, the gate's decision and numbers."""
        from mlloop import registry

        spec = self.spec()
        client = registry.mlflow_client()
        out = []
        for v in client.search_model_versions(f"name = '{spec.registered_model_name}'"):
            tags = v.tags or {}
            run_tags = client.get_run(v.run_id).data.tags if v.run_id else {}
            out.append(
                {
                    "version": str(v.version),
                    "cutoff": tags.get(tag_keys.TRAINING_CUTOFF),
                    "why": run_tags.get(tag_keys.TRIGGER_REASON, ""),
                    "decision": tags.get(tag_keys.DECISION),
                    "reasons": tags.get(tag_keys.REASONS, ""),
                    "serves_from": tags.get(tag_keys.SERVES_FROM),
                    "gate": {
                        k: val
                        for k, val in sorted(tags.items())
                        if k.startswith(tag_keys.GATE_PREFIX) and not k.endswith(("_at", "dag_id", "dag_run_id"))
                    },
                }
            )
        return sorted(out, key=lambda v: int(v["version"]))

    def champion(self) -> str | None:
        from mlloop import registry

        client = registry.mlflow_client()
        return registry.aliases(client, self.spec().registered_model_name).get("champion")

    # ------------------------------------------------------------------ waiting
    def wait_for_models(self, cutoffs: list[dt.date], before: dict[str, int], what: str) -> None:
        """Wait until the training runs started for ``cutoffs`` (one each) and the promotions of the
        versions they registered have finished; a failed run stops the replay with its cause."""
        wanted = {c.isoformat() for c in cutoffs}

        def done() -> bool:
            training = self.runs("training")[before["training"] :]
            promotion = self.runs("promotion")[before["promotion"] :]
            for stage, runs in (("training", training), ("promotion", promotion)):
                failed = [r["dag_run_id"] for r in runs if r["state"] == "failed"]
                if failed:
                    raise AirflowError(f"{stage} runs failed: {failed}\n{self.failure_cause(stage, failed)}")
            if len(training) < len(wanted) or any(r["state"] not in TERMINAL for r in training + promotion):
                return False
            registered = [v for v in self.versions() if v["cutoff"] in wanted]
            undecided = [v["version"] for v in registered if not v["decision"]]
            return not undecided and len(promotion) >= len({v["cutoff"] for v in registered})

        last = [time.monotonic()]

        def report() -> None:
            if time.monotonic() - last[0] > 30:
                self.say(f"  ... {self.progress(('training', 'promotion'))}")
                last[0] = time.monotonic()

        self.api.wait_until(what, done, timeout=1800, poll=self.poll, on_poll=report)

    def counts(self) -> dict[str, int]:
        return {stage: len(self.runs(stage)) for stage in ("training", "promotion")}

    def drift_decision(self, day: dt.date) -> str:
        runs = [r for r in self.runs("drift_monitoring") if (r.get("logical_date") or "")[:10] == day.isoformat()]
        if not runs:
            return "no drift run"
        try:
            value = self.api.xcom(self.dag_id("drift_monitoring"), runs[-1]["dag_run_id"], "decide_retrain", "decision")
        except AirflowError:
            return "no decision (the check was skipped: no champion or no predictions)"
        return decision_text(value)

    # ------------------------------------------------------------------ the replay
    def run_replay(self) -> Replay:
        from mlloop.training_requests import requests

        started = dt.datetime.now(dt.UTC)
        spec = self.spec()
        days = self.landed_days()
        check_days = set(schedule_days(spec.schedule.drift, days[0], days[-1]))
        parts = chunks(days, check_days, max(1, spec.model.retrain_after_days))
        self.step(
            f"Replaying {len(days)} landed day(s) {days[0]} .. {days[-1]} in {len(parts)} chunk(s); "
            f"drift checks on {len(check_days & set(days))} day(s) ({spec.schedule.drift})"
        )
        for number, chunk in enumerate(parts, 1):
            self.say(f"Chunk {number}/{len(parts)}: {chunk[0]} .. {chunk[-1]}")
            self.waits.append({"chunk": f"{chunk[0]}..{chunk[-1]}", "days": len(chunk)})
            before = self.counts()
            # Scoring of the days whose model is already known runs beside ingestion (its sensor
            # waits for each day's features); the other days wait for the chunk's training.
            early = self.servable(chunk, self.fixed_until(spec))
            with self.waiting("ingestion"):
                self.start_backfill("feature_ingestion", chunk)
                if early:
                    self.start_backfill("batch_scoring", early)
                self.wait_backfill("feature_ingestion", chunk, timeout=1800)
            due = [
                r.cutoff_day
                for r in requests(self.storage(), spec)
                if r.source == "features" and chunk[0] <= r.cutoff_day <= chunk[-1]
            ]
            if due:
                self.say(f"  training due at {', '.join(map(str, due))}: waiting for it and its promotion")
                with self.waiting("training+promotion"):
                    self.wait_for_models(due, before, f"the training for {due} and its promotion")
            late = [d for d in self.servable(chunk, chunk[-1]) if d not in early]
            with self.waiting("scoring"):
                if early:
                    self.wait_backfill("batch_scoring", early, timeout=1800)
                if late:
                    self.backfill("batch_scoring", late, timeout=1800)
            self.scored_days += sorted(early + late)
            if chunk[-1] in check_days and chunk[-1] in self.scored_days:
                self.check_drift(chunk[-1])
        self.step("Done")
        self.timings = self.measure(days, started)
        return self

    def measure(self, days: list[dt.date], since: dt.datetime) -> dict[str, Any]:
        """The time breakdown (``replay_timing``): the driver's waits and the times of the replay's runs
        and their tasks: the replayed days' runs of the per-day DAGs (not the scheduler's own run of
        yesterday), the trainings and promotions started since ``since`` (a reused home keeps older ones)."""
        wanted = {d.isoformat() for d in days}
        runs = {
            stage: [
                r
                for r in self.runs(stage)
                if (
                    (r.get("logical_date") or "")[:10] in wanted
                    if stage in PER_DAY
                    else dt.datetime.fromisoformat(r.get("run_after") or "1970-01-01T00:00:00+00:00") >= since
                )
            ]
            for stage in STAGE_PHASE
        }
        tasks = {
            stage: {r["dag_run_id"]: self.api.task_instances(self.dag_id(stage), r["dag_run_id"]) for r in stage_runs}
            for stage, stage_runs in runs.items()
        }
        return breakdown(runs, tasks, self.waits, self.result.elapsed(), len(days))

    def servable(self, days: list[dt.date], until: dt.date | None) -> list[dt.date]:
        """The ``days`` up to ``until`` that a champion serves (none before the first promotion)."""
        from mlloop.champion import champion_history
        from mlloop.registry import mlflow_client

        if until is None or not self.champion():
            return []
        history = champion_history(mlflow_client(), self.spec().registered_model_name)
        serving = min((d for d, _ in history), default=None)
        return [d for d in days if serving is not None and serving <= d <= until]

    def fixed_until(self, spec: Any) -> dt.date | None:
        """The last day whose model (the champion at that day's end) no training still to come can
        change: a version trained with cutoff C serves from C+1, and the next training is due
        ``model.retrain_after_days`` after the newest one in the ledger at the earliest. Every earlier
        training's promotion is decided before a chunk starts, so these days score the same now as
        after the chunk's training."""
        from mlloop.training_requests import requests

        ledger = requests(self.storage(), spec)
        return ledger[-1].cutoff_day + dt.timedelta(days=spec.model.retrain_after_days) if ledger else None

    def check_drift(self, day: dt.date) -> None:
        before = self.counts()
        with self.waiting("drift"):
            self.backfill("drift_monitoring", [day], timeout=1800)
        report = self.drift_report(day)
        decision = self.drift_decision(day)
        triggered = len(self.runs("training")) > before["training"]
        self.drift_checks[day.isoformat()] = {
            "verdict": describe_verdict(report),
            "drift": bool(report.get("drift")),
            "decision": decision,
            "retrained": triggered,
        }
        self.say(f"  drift check {day}: {describe_verdict(report)}; {decision}")
        if triggered:
            with self.waiting("drift retrain"):
                self.wait_for_models([day], before, f"the retraining triggered by the drift check of {day}")

    # ------------------------------------------------------------------ results
    def result_dict(self) -> dict[str, Any]:
        """What the replay decided, in data terms only (no run ids, no wall-clock times)."""
        storage = self.storage()
        predictions = storage.glob(layout.PREDICTIONS.pattern(storage, self.use_case))
        return {
            "use_case": self.use_case,
            "days": [self.first.isoformat(), self.last.isoformat()],
            "trainings": [
                {k: v[k] for k in ("version", "cutoff", "why", "decision", "reasons", "serves_from")}
                for v in self.versions()
            ],
            "champion": self.champion(),
            "drift_checks": self.drift_checks,
            "rows_scored": sum(storage.row_count(p) for p in predictions),
            "days_scored": len(predictions),
            "timings": self.timings,
        }


def decision_text(value: Any) -> str:
    """What ``decide_retrain`` decided, from its ``decision`` XCom (``{"trigger", "reason"}``, as a
    dict or its JSON text): the reason, which says whether it triggered a retrain and why (not)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value or "no decision recorded"
    if not isinstance(value, dict):
        return "no decision recorded" if value is None else str(value)
    return str(value.get("reason") or ("retrain triggered" if value.get("trigger") else "no retrain"))


def replay_summary(replay: Replay) -> str:
    """The demo's closing screen, extended: trainings (cutoff, why), promotions with their gate
    tables, drift verdicts with the retrains they triggered (data days), rows scored."""
    result = replay.result_dict()
    lines = [
        "",
        "=" * 78,
        f"Replay of {replay.use_case}, {replay.first} .. {replay.last}, in {replay.result.elapsed() / 60:.1f} min.",
        *summary_lines(result, replay.versions(), layout.PREDICTIONS.folder(replay.storage(), replay.use_case)),
    ]
    if replay.timings:
        lines += describe(replay.timings)
    lines += mlflow_online_lines(replay)
    lines.append("=" * 78)
    return "\n".join(lines)


def summary_lines(result: dict[str, Any], versions: list[dict[str, Any]], predictions: str) -> list[str]:
    """The summary's body (pure): ``result`` is :meth:`Replay.result_dict`, ``versions``
    :meth:`Replay.versions` (with their gate tags), ``predictions`` the folder scored rows are in."""
    lines = [f"Trainings: {len(result['trainings'])}"]
    for version in versions:
        lines.append(
            f"  v{version['version']}: cutoff {version['cutoff']} ({version['why'] or 'reason not recorded'}) -> "
            f"{(version['decision'] or 'undecided').upper()}"
            + (f", serves from {version['serves_from']}" if version["serves_from"] else "")
        )
        if version["decision"] == "rejected":
            lines.append(f"      why: {version['reasons']}")
        for key, value in version["gate"].items():
            lines.append(f"      {key}: {value}")
    lines.append(f"Champion at the end: v{result['champion']}" if result["champion"] else "No champion at the end")
    lines.append(f"Drift checks: {len(result['drift_checks'])}")
    for day, check in result["drift_checks"].items():
        retrained = " -> RETRAINED (cutoff " + day + ")" if check["retrained"] else ""
        lines.append(f"  {day}: {check['verdict']}; {check['decision']}{retrained}")
    lines.append(
        f"Rows scored: {result['rows_scored']:,} in {result['days_scored']} day partition(s) under {predictions}"
    )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--use-case", required=True, help="the use case (include/use_cases/<name>.yaml)")
    parser.add_argument(
        "--from", dest="first", required=True, type=dt.date.fromisoformat, help="first day (YYYY-MM-DD)"
    )
    parser.add_argument("--to", dest="last", required=True, type=dt.date.fromisoformat, help="last day, inclusive")
    parser.add_argument("--land", action="store_true", help="generate missing days (use cases with a generator)")
    parser.add_argument("--result", type=Path, help="also write the outcome as JSON to this file")
    parser.add_argument("--stop", action="store_true", help="stop Airflow at the end instead of leaving the UI up")
    args = parser.parse_args(argv)
    if args.last < args.first:
        parser.error(f"--to {args.last} is before --from {args.first}")
    home = mlloop_home()
    os.environ["MLLOOP_HOME"] = str(home)
    airflow = LocalAirflow(home, extra_env={"MLLOOP_SENSOR_POKE_SECONDS": "30"})
    replay = Replay(airflow, args.use_case, args.first, args.last, land=args.land)
    started_here = False
    try:
        from mlloop.spec import get_spec

        get_spec(args.use_case)  # a bad name or spec fails here, with the file and the field
        replay.landed_days()
        replay.step("Deploying the Feast registry (feast apply)")
        replay.feast_apply()
        started_here = not airflow.running_pid()
        replay.step(f"{'Starting' if started_here else 'Reusing'} Airflow 3 on {airflow.url}")
        replay.start_airflow()
        replay.run_replay()
        print(replay_summary(replay), flush=True)
        if args.result:
            args.result.write_text(json.dumps(replay.result_dict(), indent=2))
    except Exception as exc:
        return report_failure("replay", exc, airflow, args.stop)
    finally:
        if args.stop:
            airflow.stop()
    return report_success(args.stop)


if __name__ == "__main__":
    sys.exit(main())
