"""Wait for a partition to appear under the storage root."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator

from mlloop_airflow.hooks.storage import StorageHook
from mlloop_airflow.intervals import resolve_day

if TYPE_CHECKING:
    from airflow.sdk import Context


class PartitionSensor(BaseSensorOperator):
    """Succeeds when ``<area>/<use_case>/<dataset>/date=<day>/<filename>`` exists.

    Works the same on a local root and on S3 (the check goes through :class:`StorageHook`). Run it
    with ``mode="reschedule"`` so a long wait does not hold a worker slot.

    :param use_case: use-case name. (templated)
    :param area: storage area (``landing``, ``features``, ``predictions``...).
    :param dataset: dataset folder inside the area, or empty. (templated)
    :param filename: file that marks the partition as complete. (templated)
    :param day: ISO date; empty means the run's data interval. (templated)
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
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.use_case = use_case
        self.area = area
        self.dataset = dataset
        self.filename = filename
        self.day = day

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
        self.log.info("Waiting for %s", path)
        return False
