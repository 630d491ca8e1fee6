"""The conf of a training run, as one model: what the drift monitor sends and the training DAG accepts.

:class:`TrainingConf` is the single definition. The drift monitor builds its trigger's conf with it
(:func:`mlloop.drift.retrain_conf`), and the training DAG declares its Params from
:func:`param_schemas`, which is this model's JSON schema (one Param per field, each field's schema
with its title, description and bounds). Adding or bounding a field here changes both sides.

JSON Schema, not only pydantic, validates a trigger: Airflow checks a run's conf against the Params
before the run exists (a bad trigger is answered 400), so the bounds that keep a conf small (number
of features, length of names) are part of the schema.
"""

from __future__ import annotations

import copy
import functools
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.json_schema import SkipJsonSchema

from mlloop.layout import DRIFT_REPORT_PATTERN

MAX_DRIFT_FEATURES = 1000
"""One entry per model feature at most: a conf of megabytes would be stored in the metadata DB and
rendered in every task's log and form."""
FeatureName = Annotated[str, StringConstraints(max_length=200)]
GENERIC_DAY_PATTERN = r"^\d{4}-\d{2}-\d{2}$"


class DriftNumbers(BaseModel):
    """The numbers behind a drift trigger (logged as the training run's tags). Every key is optional
    in a hand-written trigger; the drift monitor always sends all of them."""

    model_config = ConfigDict(extra="forbid")

    # Left out by a hand-written trigger, never null in the schema (SkipJsonSchema): the monitor sends values.
    drifted_share: Annotated[float, Field(ge=0, le=1)] | SkipJsonSchema[None] = None
    drifted_features: (
        Annotated[dict[FeatureName, float | None], Field(max_length=MAX_DRIFT_FEATURES)] | SkipJsonSchema[None]
    ) = None
    key_features_drifted: Annotated[list[FeatureName], Field(max_length=MAX_DRIFT_FEATURES)] | SkipJsonSchema[None] = (
        None
    )
    prediction_drift: float | None = None
    prediction_drifted: bool | None = None
    quality_metric: str | None = Field(default=None, max_length=50)
    quality_current: float | None = None
    quality_reference: float | None = None
    quality_drop: float | None = None
    labelled_rows: Annotated[int, Field(ge=0)] | SkipJsonSchema[None] = None


DRIFT_NUMBER_KEYS = tuple(DriftNumbers.model_fields)
"""The keys of :meth:`mlloop.drift.DriftVerdict.numbers`, which the drift monitor sends."""


class TrainingConf(BaseModel):
    """A training run's conf (its trigger form). Every field may be left out."""

    # python-re: the drift report pattern has a look-ahead (no ".." segment), which Rust's regex lacks.
    model_config = ConfigDict(extra="forbid", regex_engine="python-re")

    reason: str | None = Field(
        default=None,
        max_length=1000,
        title="Reason",
        description=(
            "Why training is requested (e.g. 'drift: income shock'). Set, it trains even if the "
            "newest model is recent. Leave empty for the scheduled rules."
        ),
    )
    cutoff_day: str | None = Field(
        default=None,
        pattern=GENERIC_DAY_PATTERN,
        json_schema_extra={"format": "date"},
        title="Cutoff day",
        description=(
            "Newest label partition (landing day, YYYY-MM-DD, UTC) to train on. Empty: the day of the "
            "training request that triggered the run, else the newest ingested day."
        ),
    )
    force: bool = Field(default=False, title="Force", description="Train even if the newest model is recent.")
    drift: DriftNumbers | None = Field(
        default=None,
        title="Drift numbers",
        description="Set by the drift monitor: the numbers behind the trigger (logged as run tags).",
    )
    drift_report: str | None = Field(
        default=None,
        max_length=1024,
        pattern=DRIFT_REPORT_PATTERN,
        title="Drift report",
        description=(
            "Set by the drift monitor: where the drift report is (logged as a run tag). Must be a "
            "reports/<use case>/drift/date=YYYY-MM-DD/report.html under the storage root."
        ),
    )

    def as_conf(self) -> dict[str, Any]:
        """The JSON conf of a trigger: the fields that were set, nothing else."""
        return self.model_dump(mode="json", exclude_unset=True)


def _inline(schema: Any, defs: dict[str, Any]) -> Any:
    """``schema`` with every ``$ref`` replaced by its definition, and ``anyOf [X, null]`` written as
    X with ``"null"`` in its type (the form Airflow's trigger form renders as a typed field)."""
    if isinstance(schema, list):
        return [_inline(item, defs) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        resolved = _inline(copy.deepcopy(defs[schema["$ref"].rsplit("/", 1)[-1]]), defs)
        return {**resolved, **{k: _inline(v, defs) for k, v in schema.items() if k != "$ref"}}
    out = {k: _inline(v, defs) for k, v in schema.items() if k != "$defs"}
    options = out.get("anyOf")
    if isinstance(options, list) and len(options) == 2 and {"type": "null"} in options:
        (other,) = [o for o in options if o != {"type": "null"}]
        if isinstance(other.get("type"), str):
            del out["anyOf"]
            out = {**other, **out, "type": ["null", other["type"]]}
    return out


def param_schemas(day_pattern: str = GENERIC_DAY_PATTERN) -> dict[str, dict[str, Any]]:
    """Each field's JSON schema (``default`` included), as the training DAG declares its Params.

    ``day_pattern`` narrows ``cutoff_day`` to a use case's years (``dag_defaults.day_pattern``):
    the one bound that depends on the spec. A fresh copy each call (callers edit it).
    """
    schemas = copy.deepcopy(_model_param_schemas())
    schemas["cutoff_day"]["pattern"] = day_pattern
    return schemas


@functools.cache
def _model_param_schemas() -> dict[str, dict[str, Any]]:
    """Built once per process: pydantic's JSON schema generation costs ~5 ms, and the training DAG
    file asks once per use case (bench B11)."""
    full = TrainingConf.model_json_schema()
    defs = full.get("$defs", {})
    schemas = {name: _inline(field, defs) for name, field in full["properties"].items()}
    drift = schemas["drift"]
    drift["additionalProperties"] = False
    for prop in drift.get("properties", {}).values():
        prop.pop("title", None)
        prop.pop("default", None)
    return schemas
