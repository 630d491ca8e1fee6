"""Feast definitions of the energy_demand use case (include/use_cases/energy_demand.yaml)."""

from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.data_format import ParquetFormat
from feast.types import Float64, Int64, String

from mlloop.feature_store import feature_source_path

# The household's smart meter; its id is a string ("MTR-004217").
meter = Entity(
    name="meter",
    join_keys=["meter_id"],
    value_type=ValueType.STRING,
    description="A household's smart electricity meter.",
)

# Daily partitions written by the energy_demand__feature_ingestion DAG (validated rows only).
meter_profile_source = FileSource(
    name="energy_demand_meter_profile_source",
    path=feature_source_path("energy_demand", "meter_profile"),
    file_format=ParquetFormat(),
    timestamp_field="event_timestamp",
)

# What the meter reported with its daily reading, plus the floor area per person.
meter_profile_fv = FeatureView(
    name="meter_profile",
    entities=[meter],
    ttl=timedelta(days=7),
    schema=[
        Field(name="region", dtype=String),
        Field(name="heating_type", dtype=String),
        Field(name="tariff", dtype=String),
        Field(name="household_size", dtype=Int64),
        Field(name="floor_area_m2", dtype=Float64),
        Field(name="ev_chargers", dtype=Int64),
        Field(name="outdoor_temp_c", dtype=Float64),
        Field(name="kwh_prev_7d", dtype=Float64),
        Field(name="area_per_person", dtype=Float64),
    ],
    online=True,
    source=meter_profile_source,
    tags={"use_case": "energy_demand"},
)

# The features model version 1 reads; a model that needs other features gets a new service.
energy_demand_v1 = FeatureService(
    name="energy_demand_v1",
    features=[meter_profile_fv],
    tags={"use_case": "energy_demand"},
)
