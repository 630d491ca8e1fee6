"""Feast definitions of the credit_risk use case (include/use_cases/credit_risk.yaml)."""

from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.data_format import ParquetFormat
from feast.types import Float64, Int64, String

from mlloop.feature_store import feature_source_path

# The applicant; every feature and label is keyed by it.
customer = Entity(
    name="customer",
    join_keys=["customer_id"],
    value_type=ValueType.INT64,
    description="A retail-credit customer.",
)

# Daily partitions written by the credit_risk__feature_ingestion DAG (validated rows only).
customer_profile_source = FileSource(
    name="credit_risk_customer_profile_source",
    path=feature_source_path("credit_risk", "customer_profile"),
    file_format=ParquetFormat(),
    timestamp_field="event_timestamp",
)

# What the customer declared at application time, plus ratios derived from it.
customer_profile_fv = FeatureView(
    name="customer_profile",
    entities=[customer],
    ttl=timedelta(days=30),
    schema=[
        Field(name="age", dtype=Int64),
        Field(name="annual_income", dtype=Float64),
        Field(name="credit_utilization", dtype=Float64),
        Field(name="n_late_payments_12m", dtype=Int64),
        Field(name="n_open_accounts", dtype=Int64),
        Field(name="loan_amount", dtype=Float64),
        Field(name="debt_to_income", dtype=Float64),
        Field(name="loan_to_income", dtype=Float64),
        Field(name="employment_type", dtype=String),
        Field(name="region", dtype=String),
    ],
    online=True,
    source=customer_profile_source,
    tags={"use_case": "credit_risk"},
)

# The features model version 1 reads; a model that needs other features gets a new service.
credit_risk_v1 = FeatureService(
    name="credit_risk_v1",
    features=[customer_profile_fv],
    tags={"use_case": "credit_risk"},
)
