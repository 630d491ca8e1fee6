"""Defaults every mlloop DAG shares: ownership, retries, the ``day`` Param, tags.

Read at DAG-parse time, so only cheap things live here (no pandas, no ML libraries).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow.sdk import DAG, CronDataIntervalTimetable, Param
from airflow.sdk.definitions.param import ParamsDict
from airflow.sdk.exceptions import ParamValidationError

from mlloop.settings import get_settings
from mlloop_airflow.notifiers.failure import FailureNotifier

if TYPE_CHECKING:
    from mlloop.spec import UseCaseSpec

DAY_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
# MLflow's registry keeps a version number in an SQL INTEGER column: a larger one cannot exist, and
# asking for it fails inside MLflow (an overflow, retried) instead of in the trigger form.
MAX_MODEL_VERSION = 2**31 - 1


# Each (default, schema) of a scheduled DAG's Param found valid in this process (see mlloop_dag).
_CHECKED_PARAMS: set[str] = set()


def mlloop_dag(*, params: Mapping[str, Param], **kwargs: Any) -> DAG:
    """``DAG(params=params, **kwargs)``, with each Param's default checked once per process per distinct
    (default, schema) instead of once per DAG.

    Airflow checks a scheduled DAG's Params when the DAG is built, with ``jsonschema.validate``, which
    first checks the schema itself against JSON Schema's metaschema. Every use case's DAGs carry the
    same schemas, and at 50 use cases those checks were half of a DAG file's parse time (bench B11,
    ``bench/profiles/B11-parse-training-50-use-cases.txt``). The rule and the error stay Airflow's: a
    scheduled DAG whose Params have no valid default does not load. The DAG is built without Params
    and given them here, before its tasks exist (a task copies its DAG's Params when it is built).
    """
    dag = DAG(**kwargs)
    if dag.timetable.can_be_scheduled:
        for name, param in params.items():
            key = json.dumps([param.value, param.schema], sort_keys=True, default=repr)
            if key in _CHECKED_PARAMS:
                continue
            try:
                ParamsDict({name: param}).validate()
            except ParamValidationError as exc:
                raise ValueError(
                    f"Dag {dag.dag_id!r} is not allowed to define a Schedule, as there are required params "
                    "without default values, or the default values are not valid."
                ) from exc
            _CHECKED_PARAMS.add(key)
    dag.params.update(params)
    return dag


def default_args(spec: UseCaseSpec) -> dict[str, Any]:
    """Owner from the spec; transient faults retry with exponential backoff, data faults do not
    (operators raise ``AirflowFailException`` for those). A task that fails for good alerts the
    on-call through :class:`FailureNotifier` when ``MLLOOP_ALERT_CONN_ID`` is set (off otherwise)."""
    settings = get_settings()  # read from the environment on every call: once per DAG, not twice
    return {
        "owner": spec.owner,
        "retries": settings.task_retries,
        "retry_delay": dt.timedelta(seconds=settings.retry_delay_seconds),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": dt.timedelta(minutes=10),
        "on_failure_callback": [FailureNotifier()],
    }


def interval_timetable(expression: str) -> CronDataIntervalTimetable:
    """A schedule whose runs cover a data interval (the day before the run, for ``@daily``).

    Airflow 3 turns a plain cron string into a *trigger* timetable whose runs have an empty
    interval starting at the run time, so ``@daily`` would process the current, incomplete day.
    Per-interval DAGs (ingestion, scoring, drift) need the previous, complete day.
    """
    return CronDataIntervalTimetable(expression, timezone="UTC")


def sensor_poke_seconds() -> float:
    """Reschedule-mode poke interval. Keep it >= 30 s on a real scheduler: a shorter one can
    re-queue the sensor before the executor has reported its previous try, which Airflow 3.3
    then marks failed ("finished with state success, but the task instance's state is queued")."""
    return get_settings().sensor_poke_seconds


# A data set with no end date: the Day param's years stop this long after its start (a schema must be
# bounded; the exact range, start date .. a year ahead, is the first task's check).
OPEN_ENDED_YEARS = 100


def day_pattern(spec: UseCaseSpec) -> str:
    """A ``YYYY-MM-DD`` pattern whose year lies in the use case's data: from ``schedule.start_date``'s
    year to ``schedule.end_date``'s (no end: :data:`OPEN_ENDED_YEARS` later).

    From the spec alone, never the clock: a DAG parsed on Dec 31 and again on Jan 1 is the same DAG
    (a pattern that followed the calendar year made a new DAG version every new year). JSON Schema
    has no date range (``formatMinimum`` is not in the standard Airflow validates with), so the
    schema bounds the year and the run's first task the exact day, start date .. a year ahead
    (:func:`mlloop.steps.check_day_in_range`).
    """
    first = spec.schedule.start_date.year
    end = spec.schedule.end_date
    last = max(first, end.year) if end else min(first + OPEN_ENDED_YEARS, 9999)
    return rf"^(?:{year_range(first, last)})-\d{{2}}-\d{{2}}$"


def year_range(first: int, last: int) -> str:
    """A regex matching exactly the four-digit years ``first`` .. ``last`` (short, unlike an alternation)."""
    return _digits_range(f"{first:04d}", f"{last:04d}")


def _digits_range(low: str, high: str) -> str:
    """The numbers ``low`` .. ``high``, both written with the same number of digits."""
    rest = len(low) - 1
    if low == high:
        return low
    if low[1:] == "0" * rest and high[1:] == "9" * rest:
        return _digit_class(low[0], high[0]) + r"\d" * rest
    if low[0] == high[0]:
        return low[0] + _group(_digits_range(low[1:], high[1:]))
    parts = [low[0] + _group(_digits_range(low[1:], "9" * rest))]
    if int(high[0]) - int(low[0]) > 1:
        parts.append(_digit_class(str(int(low[0]) + 1), str(int(high[0]) - 1)) + r"\d" * rest)
    parts.append(high[0] + _group(_digits_range("0" * rest, high[1:])))
    return "|".join(parts)


def _digit_class(low: str, high: str) -> str:
    return low if low == high else r"\d" if (low, high) == ("0", "9") else f"[{low}-{high}]"


def _group(pattern: str) -> str:
    return f"(?:{pattern})" if "|" in pattern else pattern


def day_param(spec: UseCaseSpec) -> Param:
    return Param(
        None,
        type=["null", "string"],
        pattern=day_pattern(spec),
        format="date",
        title="Day",
        description=(
            "Day to process (YYYY-MM-DD, UTC), from the use case's start date "
            f"({spec.schedule.start_date}) to a year ahead. Leave empty for scheduled and backfill runs; "
            "a manual trigger has no data interval in Airflow 3, so set it there."
        ),
    )


def model_policy_param() -> Param:
    """Which model a scoring day uses (:data:`mlloop.champion.MODEL_POLICIES`)."""
    from mlloop.champion import CHAMPION_AT_DAY, MODEL_POLICIES

    return Param(
        CHAMPION_AT_DAY,
        type="string",
        enum=list(MODEL_POLICIES),
        title="Model policy",
        description=(
            "champion_at_day: the version that was champion at the end of the day scored (data time: a "
            "version trained with cutoff C serves from C+1), so a backfill scores each day as it was served. "
            "current: the champion now (e.g. to rescore history with a new model)."
        ),
    )


def partitions_param(spec: UseCaseSpec) -> Param:
    """How many mapped tasks a scoring run splits the day into (empty: the spec's number)."""
    return Param(
        None,
        type=["null", "integer"],
        minimum=1,
        maximum=64,
        title="Parts",
        description=(
            f"Split the day into this many score_partition tasks, which run in parallel on the "
            f"executor's workers. Leave empty for the spec's scoring.partitions ({spec.scoring.partitions})."
        ),
    )


def on_call_doc(summary: str, links: str = "") -> str:
    """The "On call" section that ends every DAG's ``doc_md``: where the one summary is logged, where
    the tasks' extra links go, and how failures reach a person."""
    lines = ["", "**On call**", f"- *One summary*: {summary}"]
    if links:
        lines.append(f"- *Links* (buttons on the task instance): {links}")
    lines.append(
        "- *Alerts*: a task that fails for good posts the DAG, task, interval, the one-line cause and a "
        "link to its log to the Airflow connection named by `MLLOOP_ALERT_CONN_ID` (off unless set)."
    )
    return "\n".join(lines) + "\n"


def tags(spec: UseCaseSpec, stage: str) -> list[str]:
    return [f"use_case:{spec.name}", f"stage:{stage}", "mlloop"]


def start_date(spec: UseCaseSpec) -> dt.datetime:
    return dt.datetime.combine(spec.schedule.start_date, dt.time(), tzinfo=dt.UTC)


def end_date(spec: UseCaseSpec) -> dt.datetime | None:
    """The DAG's ``end_date`` from ``schedule.end_date``, the last day of a data set that ends.

    Airflow's scheduler creates no run whose data interval starts after it, so unpausing never asks
    for a day that cannot come. (A backfill asked past it is not cut by Airflow; its sensors skip those
    days at once: ``sensor_horizon``.)
    """
    last = spec.schedule.end_date
    return dt.datetime.combine(last, dt.time(), tzinfo=dt.UTC) if last else None


def sensor_horizon(spec: UseCaseSpec) -> dict[str, Any]:
    """What a per-interval DAG's partition sensor needs to know that there is nothing to wait for:
    the data set's last day and how stale its newest partition may be (``PartitionSensor``)."""
    last = spec.schedule.end_date
    return {"last_day": last.isoformat() if last else None, "stale_after_days": spec.schedule.stale_after_days}
