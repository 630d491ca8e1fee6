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
