"""The triggerer's side of a deferred :class:`~mlloop_airflow.sensors.storage.PartitionSensor`."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent


class PartitionTrigger(BaseTrigger):
    """Fires once the file at ``path`` (under the storage root) exists, checking every ``check_seconds``;
    or, if ``deadline`` (ISO UTC) passes first, fires a timeout event that fails the sensor.

    A deferred sensor holds no worker slot and no scheduler pass: the triggerer checks, and the task
    resumes as soon as the file is there. In reschedule mode the scheduler re-queues the sensor every
    poke interval, which must stay >= 30 s on Airflow 3.3 (``dag_defaults.sensor_poke_seconds``), so
    a partition that lands just after a poke waited up to that long at each stage of the loop (B8).
    The check goes through :class:`~mlloop_airflow.hooks.storage.StorageHook` (local root or S3, the
    same connection as the tasks), in a thread so the triggerer's event loop never blocks. The
    deadline is checked here, not only by the scheduler's trigger timeout, so ``dag.test()`` (which
    runs a trigger inline and has no such timeout) fails a sensor whose file never comes, as a real
    deployment does.
    """

    def __init__(self, path: str, check_seconds: float = 5.0, deadline: str | None = None) -> None:
        super().__init__()
        self.path = path
        self.check_seconds = check_seconds
        self.deadline = deadline

    def serialize(self) -> tuple[str, dict[str, Any]]:
        classpath = f"{type(self).__module__}.{type(self).__qualname__}"
        return classpath, {"path": self.path, "check_seconds": self.check_seconds, "deadline": self.deadline}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from mlloop_airflow.hooks.storage import StorageHook

        deadline = dt.datetime.fromisoformat(self.deadline) if self.deadline else None
        storage = await asyncio.to_thread(lambda: StorageHook().storage)
        while not await asyncio.to_thread(storage.exists, self.path):
            left = (deadline - dt.datetime.now(dt.UTC)).total_seconds() if deadline else self.check_seconds
            if left <= 0:
                yield TriggerEvent({"path": self.path, "found": False})
                return
            await asyncio.sleep(min(self.check_seconds, left))
        self.log.info("Found %s", self.path)
        yield TriggerEvent({"path": self.path, "found": True})
