"""Wait for a partition to appear under the storage root, unless nothing is coming."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowSkipException

from mlloop_airflow.hooks.storage import StorageHook
from mlloop_airflow.intervals import resolve_day

if TYPE_CHECKING:
    from airflow.sdk import Context

    from mlloop.storage import Storage

_PARTITION_DAY = re.compile(r"/date=(\d{4}-\d{2}-\d{2})/")


class PartitionSensor(BaseSensorOperator):
    """Succeeds when ``<area>/<use_case>/<dataset>/date=<day>/<filename>`` exists.

    Works the same on a local root and on S3 (the check goes through :class:`StorageHook`). Run it
    with ``mode="reschedule"`` so a long wait does not hold a worker slot.

    It does not wait when nothing can come, and skips at once (green, the reason in the log, every
    downstream task skipped) instead of timing out hours later:

    * the day is after ``last_day`` (the spec's ``schedule.end_date``: the data set ended);
    * a **scheduled** run's day is more than ``stale_after_days`` after the newest partition of the
      same dataset: the data lies in the past (a history being replayed; unpausing such a use case
      with ``catchup=False`` creates a run for yesterday), or the feed stopped that long ago, in which
      case the runs of those days waited, failed and alerted already. Backfills and manual runs
      always wait: someone asked for that day.

    :param use_case: use-case name. (templated)
    :param area: storage area (``landing``, ``features``, ``predictions``...).
    :param dataset: dataset folder inside the area, or empty. (templated)
    :param filename: file that marks the partition as complete. (templated)
    :param day: ISO date; empty means the run's data interval. (templated)
    :param last_day: ISO date of the last day that will ever land (not ``end_date``: that one is
        Airflow's, the task's own); empty: no end.
    :param stale_after_days: see above; None: a scheduled run always waits.
    """

    template_fields: Sequence[str] = ("use_case", "dataset", "filename", "day")
    ui_color = "#f0ead6"

    def __init__(
        self,
        *,
        use_case: str,
        area: str,
        dataset: str | None,
        filename: str,
        day: str | None = None,
        last_day: str | None = None,
        stale_after_days: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.use_case = use_case
        self.area = area
        self.dataset = dataset
        self.filename = filename
        self.day = day
        self.last_day = last_day
        self.stale_after_days = stale_after_days

    @cached_property
    def storage_hook(self) -> StorageHook:
        return StorageHook()

    def poke(self, context: Context) -> bool:
        day = resolve_day(context, self.day)
        storage = self.storage_hook.storage
        path = storage.partition(self.area, self.use_case, self.dataset or None, day, self.filename)
        if storage.exists(path):
            self.log.info("Found %s", path)
            return True
        reason = self.nothing_to_wait_for(context, storage, day)
        if reason:
            self.log.warning("Not waiting for %s: %s", path, reason)
            raise AirflowSkipException(f"nothing to wait for: {reason}")
        self.log.info("Waiting for %s", path)
        return False

    def newest_partition(self, storage: Storage) -> dt.date | None:
        """The newest day of this dataset that has its file, or None if none has."""
        pattern = storage.path(self.area, self.use_case, self.dataset or "", "date=*", self.filename)
        days = [dt.date.fromisoformat(m.group(1)) for url in storage.glob(pattern) if (m := _PARTITION_DAY.search(url))]
        return max(days, default=None)

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
        newest = self.newest_partition(storage)
        if newest is None or (day - newest).days <= self.stale_after_days:
            return None
        return (
            f"the newest {self.dataset or self.area} partition of {self.use_case} is {newest}, "
            f"{(day - newest).days} days before this scheduled run's day {day} (schedule.stale_after_days "
            f"{self.stale_after_days}). If the data set ended, set schedule.end_date: {newest} in the spec; to "
            "process landed history, backfill its days (they always wait); if the feed stopped, the runs of its "
            f"first {self.stale_after_days} missing days waited, failed and alerted"
        )
