"""Feast definitions of the hourly_temps use case (include/use_cases/hourly_temps.yaml)."""

from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.data_format import ParquetFormat
from feast.types import Float64, Int64, String

from mlloop.feature_store import feature_source_path

# A city at one hour of the day ("seattle-07"): it recurs every day.
city_hour = Entity(
    name="city_hour",
    join_keys=["station_hour"],
    value_type=ValueType.STRING,
    description="A city at one hour of the day.",
)

# Daily partitions written by the hourly_temps__feature_ingestion DAG (validated rows only).
city_hour_history_source = FileSource(
    name="hourly_temps_city_hour_history_source",
    path=feature_source_path("hourly_temps", "city_hour_history"),
    file_format=ParquetFormat(),
    timestamp_field="event_timestamp",
)

# What was known about the hour the day before: same hour yesterday and last week, yesterday's mean.
city_hour_history_fv = FeatureView(
    name="city_hour_history",
    entities=[city_hour],
    ttl=timedelta(days=2),
    schema=[
        Field(name="city", dtype=String),
        Field(name="hour", dtype=Int64),
        Field(name="day_of_year", dtype=Int64),
        Field(name="temp_prev_day", dtype=Float64),
        Field(name="temp_prev_week", dtype=Float64),
        Field(name="temp_prev_day_mean", dtype=Float64),
        Field(name="day_change", dtype=Float64),
    ],
    online=True,
    source=city_hour_history_source,
    tags={"use_case": "hourly_temps"},
)

# The features model version 1 reads.
hourly_temps_v1 = FeatureService(
    name="hourly_temps_v1",
    features=[city_hour_history_fv],
    tags={"use_case": "hourly_temps"},
)
