"""Wait for a partition to appear under the storage root, unless nothing is coming."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowSensorTimeout, AirflowSkipException

from mlloop_airflow.hooks.storage import StorageHook
from mlloop_airflow.intervals import resolve_day

if TYPE_CHECKING:
    from airflow.sdk import Context

    from mlloop.layout import PartitionKind
    from mlloop.spec import UseCaseSpec
    from mlloop.storage import Storage

DEFERRAL_GRACE_SECONDS = 300


class PartitionSensor(BaseSensorOperator):
    """Succeeds when the partition of ``kind`` (a :mod:`mlloop.layout` kind) for ``day`` exists.

    Works the same on a local root and on S3 (the check goes through :class:`StorageHook`). With
    ``deferrable`` (the default, ``MLLOOP_SENSOR_DEFERRABLE``) a partition that is not there at the
    first check is waited for by the triggerer (:class:`~mlloop_airflow.triggers.partition.PartitionTrigger`,
    every ``check_seconds``): no worker slot is held and the task resumes within seconds of the file
    landing. Without it, run it with ``mode="reschedule"`` (the scheduler re-queues it every
    ``poke_interval``) so a long wait does not hold a worker slot either.

    It does not wait when nothing can come, and skips at once (green, the reason in the log, every
    downstream task skipped) instead of timing out hours later:

    * the day is after ``last_day`` (the spec's ``schedule.end_date``: the data set ended);
    * a **scheduled** run's day is more than ``stale_after_days`` after the newest partition of the
      same dataset: the data lies in the past (a history being replayed; unpausing such a use case
      with ``catchup=False`` creates a run for yesterday), or the feed stopped that long ago, in which
      case the runs of those days waited, failed and alerted already. Backfills and manual runs
      always wait: someone asked for that day.

    :param use_case: use-case name. (templated)
    :param kind: the partition kind's name in :data:`mlloop.layout.KINDS` (``landing_observations``,
        ``features``, ``predictions``...): its area, dataset folder and the file that marks it complete.
    :param day: ISO date; empty means the run's data interval. (templated)
    :param last_day: ISO date of the last day that will ever land (not ``end_date``: that one is
        Airflow's, the task's own); empty: no end.
    :param stale_after_days: see above; None: a scheduled run always waits.
    :param deferrable: wait in the triggerer (default: the ``MLLOOP_SENSOR_DEFERRABLE`` setting).
    :param check_seconds: how often the triggerer checks (default: ``MLLOOP_SENSOR_CHECK_SECONDS``).
    """

    template_fields: Sequence[str] = ("use_case", "kind", "day")
    ui_color = "#f0ead6"

    def __init__(
        self,
        *,
        use_case: str,
        kind: str,
        day: str | None = None,
        last_day: str | None = None,
        stale_after_days: int | None = None,
        deferrable: bool | None = None,
        check_seconds: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.use_case = use_case
        self.kind = kind
        self.day = day
        self.last_day = last_day
        self.stale_after_days = stale_after_days
        # None: the deployment's setting, read when the task runs (not when the DAG file is parsed).
        self.deferrable = deferrable
        self.check_seconds = check_seconds

    @cached_property
    def storage_hook(self) -> StorageHook:
        return StorageHook()

    def execute(self, context: Context) -> Any:
        from mlloop.settings import get_settings

        settings = get_settings()
        if not (settings.sensor_deferrable if self.deferrable is None else self.deferrable):
            return super().execute(context)
        if self.poke(context):
            return None
        from mlloop_airflow.triggers.partition import PartitionTrigger

        check_seconds = settings.sensor_check_seconds if self.check_seconds is None else self.check_seconds
        path = self.partition_path(resolve_day(context, self.day))
        # The timeout counts from the try's start, as in reschedule mode (Airflow's own sensor timeout).
        started = getattr(context.get("ti"), "start_date", None) or dt.datetime.now(dt.UTC)
        deadline = started + dt.timedelta(seconds=self.timeout)
        self.log.info(
            "Deferring: the triggerer checks for %s every %.0f s, until %s (the sensor's timeout)",
            path,
            check_seconds,
            deadline.isoformat(timespec="seconds"),
        )
        self.defer(
            trigger=PartitionTrigger(path=path, check_seconds=check_seconds, deadline=deadline.isoformat()),
            method_name="execute_complete",
            # A backstop for a trigger that never reports: the trigger itself fires at the deadline.
            timeout=dt.timedelta(seconds=self.timeout + DEFERRAL_GRACE_SECONDS),
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> None:
        """The triggerer found the partition, or the sensor's timeout passed first."""
        event = event or {}
        if not event.get("found"):
            raise AirflowSensorTimeout(
                f"{event.get('path')} did not appear within the sensor's timeout of {self.timeout:.0f} s"
            )
        self.log.info("Found %s", event["path"])

    def partition_path(self, day: dt.date) -> str:
        return self.partition_kind.path(self.storage_hook.storage, self.spec, day)

    def poke(self, context: Context) -> bool:
        day = resolve_day(context, self.day)
        storage = self.storage_hook.storage
        path = self.partition_path(day)
        if storage.exists(path):
            self.log.info("Found %s", path)
            return True
        reason = self.nothing_to_wait_for(context, storage, day)
        if reason:
            self.log.warning("Not waiting for %s: %s", path, reason)
            raise AirflowSkipException(f"nothing to wait for: {reason}")
        self.log.info("Waiting for %s", path)
        return False

    @property
    def partition_kind(self) -> PartitionKind:
        from mlloop.layout import kind

        return kind(self.kind)

    @property
    def spec(self) -> UseCaseSpec:
        from mlloop.spec import get_spec

        return get_spec(self.use_case)

    def newest_partition(self, storage: Storage, kind: PartitionKind | None = None) -> dt.date | None:
        """The newest day of this dataset (or of ``kind``) that has its file, or None if none has."""
        from mlloop.layout import day_of

        urls = storage.glob((kind or self.partition_kind).pattern(storage, self.spec))
        return max((day for url in urls if (day := day_of(url))), default=None)

    def newest_data(self, storage: Storage) -> dt.date | None:
        """The newest day of data on its way: this dataset's newest partition, or the newest landed
        raw batch if that is newer (a backfill in progress will still build this day's partition)."""
        from mlloop.layout import LANDING_OBSERVATIONS

        newest = self.newest_partition(storage)
        if self.partition_kind == LANDING_OBSERVATIONS:  # ingestion's own sensor: the same glob
            return newest
        landed = self.newest_partition(storage, LANDING_OBSERVATIONS)
        return max((day for day in (newest, landed) if day is not None), default=None)

    def nothing_to_wait_for(self, context: Context, storage: Storage, day: dt.date) -> str | None:
        """Why the partition of ``day`` will not come, or None (then wait for it)."""
        if self.last_day not in (None, "", "None"):
            last = dt.date.fromisoformat(str(self.last_day))
            if day > last:
                return (
                    f"{day} is after {self.use_case}'s schedule.end_date {last}: the data set ends there, "
                    "nothing more will land"
                )
        run_type = getattr(context.get("dag_run"), "run_type", None)
        if self.stale_after_days is None or str(getattr(run_type, "value", run_type)) != "scheduled":
            return None
        newest = self.newest_data(storage)
        if newest is None or (day - newest).days <= self.stale_after_days:
            return None
        return (
            f"the newest {self.kind} partition (or landed batch) of {self.use_case} is {newest}, "
            f"{(day - newest).days} days before this scheduled run's day {day} (schedule.stale_after_days "
            f"{self.stale_after_days}). If the data set ended, set schedule.end_date: {newest} in the spec; to "
            "process landed history, backfill its days (they always wait); if the feed stopped, the runs of its "
            f"first {self.stale_after_days} missing days waited, failed and alerted"
        )
