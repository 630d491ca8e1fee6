"""The partition sensor waits for a file under the storage root, local or remote alike."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from mlloop_airflow.sensors.storage import PartitionSensor


def test_sensor_waits_until_the_partition_lands(storage) -> None:  # type: ignore[no-untyped-def]
    sensor = PartitionSensor(
        task_id="wait",
        use_case="credit_risk",
        kind="landing_observations",
        day="2026-05-01",
    )
    assert sensor.poke({}) is False  # type: ignore[arg-type]
    path = storage.partition("landing", "credit_risk", "observations", dt.date(2026, 5, 1), "batch.parquet")
    storage.write_frame(pd.DataFrame({"a": [1]}), path)
    assert sensor.poke({}) is True  # type: ignore[arg-type]


def test_template_fields_cover_what_users_template() -> None:
    assert {"use_case", "kind", "day"} <= set(PartitionSensor.template_fields)


def test_a_deferred_sensor_resumes_once_the_partition_lands(storage) -> None:  # type: ignore[no-untyped-def]
    """The triggerer's check: nothing while the file is missing, one event as soon as it is written."""
    import asyncio

    from mlloop_airflow.triggers.partition import PartitionTrigger

    path = storage.partition("landing", "credit_risk", "observations", dt.date(2026, 5, 2), "batch.parquet")
    trigger = PartitionTrigger(path=path, check_seconds=0.05)
    classpath, kwargs = trigger.serialize()
    assert classpath == "mlloop_airflow.triggers.partition.PartitionTrigger"
    assert kwargs == {"path": path, "check_seconds": 0.05, "deadline": None}

    async def first_event(delay: float) -> object:
        async def land() -> None:
            await asyncio.sleep(delay)
            storage.write_frame(pd.DataFrame({"a": [1]}), path)

        writer = asyncio.create_task(land())
        event = await asyncio.wait_for(anext(aiter(trigger.run())), timeout=10)
        await writer
        return event

    event = asyncio.run(first_event(0.3))
    assert event.payload == {"path": path, "found": True}  # type: ignore[attr-defined]

    missing = storage.partition("landing", "credit_risk", "observations", dt.date(2026, 5, 4), "batch.parquet")
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=0.3)).isoformat()
    late = PartitionTrigger(path=missing, check_seconds=0.05, deadline=soon)
    timeout = asyncio.run(asyncio.wait_for(anext(aiter(late.run())), timeout=10))
    assert timeout.payload == {"path": missing, "found": False}


def test_a_deferrable_sensor_defers_only_when_the_partition_is_missing(storage) -> None:  # type: ignore[no-untyped-def]
    from airflow.sdk.exceptions import TaskDeferred

    sensor = PartitionSensor(
        task_id="wait", use_case="credit_risk", kind="landing_observations", day="2026-05-03", deferrable=True
    )
    try:
        sensor.execute({})  # type: ignore[arg-type]
    except TaskDeferred as deferred:
        assert deferred.trigger.path.endswith("date=2026-05-03/batch.parquet")  # type: ignore[attr-defined]
    else:
        raise AssertionError("the sensor did not defer for a missing partition")
    path = storage.partition("landing", "credit_risk", "observations", dt.date(2026, 5, 3), "batch.parquet")
    storage.write_frame(pd.DataFrame({"a": [1]}), path)
    assert sensor.execute({}) is None  # type: ignore[arg-type]  # there at the first check: no deferral
