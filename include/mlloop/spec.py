"""The use-case spec: everything that makes one model's loop different from another's.

A use case is declared once, in a YAML file under ``include/use_cases/`` (or ``MLLOOP_USE_CASES_DIR``):
entity, raw schema and validation rules, features, label and its delay, estimator, metrics, gate
thresholds, drift policy and schedules. DAG files build one set of DAGs per spec, so loading must be
cheap (YAML + pydantic, no heavy imports) and a bad spec must fail with one message that names the
file and the field.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mlloop.settings import get_settings

DType = Literal["int64", "float64", "string", "datetime", "bool"]
NAME_PATTERN = r"^[a-z][a-z0-9_]*$"

CLASSIFICATION_METRICS = ("roc_auc", "average_precision", "log_loss", "brier", "accuracy", "f1")
REGRESSION_METRICS = ("rmse", "mae", "r2")


class SpecError(ValueError):
    """A use-case spec is missing, unreadable or invalid. The message names file and field."""


class FieldError(ValueError):
    """A rule spanning several sections failed; ``field`` is the dotted path to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnSpec(_Strict):
    """One column of a raw batch or feature table, with the rules a row must satisfy."""

    dtype: DType
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    allowed: list[str] | None = None
    description: str = ""
    pattern: str | None = Field(default=None, description="regular expression every value must match whole")
    max_length: int | None = Field(default=None, ge=1, description="longest allowed string, in characters")

    @model_validator(mode="after")
    def _range_is_ordered(self) -> ColumnSpec:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        if self.allowed is not None and self.dtype != "string":
            raise ValueError("'allowed' applies to string columns only")
        return self

    @model_validator(mode="after")
    def _string_rules(self) -> ColumnSpec:
        for rule in ("pattern", "max_length"):
            if getattr(self, rule) is not None and self.dtype != "string":
                raise ValueError(f"'{rule}' applies to string columns only")
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"'pattern' is not a valid regular expression: {exc}") from None
        return self


class EntitySpec(_Strict):
    name: str = Field(pattern=NAME_PATTERN)
    join_key: str = Field(pattern=NAME_PATTERN)
    dtype: Literal["int64", "string"] = "int64"
    description: str = Field(default="", description="the Feast entity's description")


class RawSpec(_Strict):
    """The contract of a raw batch as it lands."""

    timestamp_column: str = "event_timestamp"
    columns: dict[str, ColumnSpec]
    unique: list[str] = Field(default_factory=list, description="columns that identify a row in a batch")
    max_bad_row_share: float = Field(ge=0.0, le=1.0, description="above this share the batch is rejected")
    min_rows: int = Field(default=1, ge=1)


class LabelSpec(_Strict):
    """Labels land later than observations, as their own daily batch of label events."""

    column: str = Field(pattern=NAME_PATTERN)
    dtype: Literal["int64", "float64"]
    delay_days: int = Field(ge=0)
    min_class_share: float = Field(default=0.01, ge=0.0, le=0.5)
    min: float | None = None
    max: float | None = None
    horizon_days: int = Field(
        default=90,
        ge=1,
        description="how many days before its batch's day a label's observation may lie; older labels are quarantined",
    )

    @model_validator(mode="after")
    def _horizon_covers_the_delay(self) -> LabelSpec:
        if self.horizon_days < self.delay_days:
            raise ValueError(f"horizon_days ({self.horizon_days}) must be at least delay_days ({self.delay_days})")
        return self


class FeatureSpec(_Strict):
    """How validated raw rows become the rows of the Feast feature view's offline source."""

    feature_view: str = Field(pattern=NAME_PATTERN)
    derived: dict[str, str] = Field(default_factory=dict, description="name -> pandas expression")
    columns: dict[str, ColumnSpec]
    ttl_days: int = Field(
        default=30,
        ge=1,
        description=(
            "the Feast feature view's ttl: a point-in-time join uses no feature row older than this "
            "before the label or scoring time"
        ),
    )
    description: str = Field(default="", description="the Feast feature view's description")


class ModelSpec(_Strict):
    task: Literal["classification", "regression"]
    name: str = Field(default="", description="registered model name; defaults to the use-case name")
    feature_service: str = Field(pattern=NAME_PATTERN)
    numeric_features: list[str] = Field(default_factory=list)
    categorical_features: list[str] = Field(default_factory=list)
    estimator: str = Field(description="dotted path of a scikit-learn estimator class")
    params: dict[str, Any] = Field(default_factory=dict)
    primary_metric: str
    metrics: list[str]
    holdout_days: int = Field(ge=1)
    min_training_rows: int = Field(ge=10)
    training_window_days: int | None = Field(default=None, ge=1)
    retrain_after_days: int = Field(default=7, ge=0)
    reference_sample_size: int = Field(default=5000, ge=100)

    @field_validator("estimator")
    @classmethod
    def _estimator_is_dotted(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][\w.]*\.[A-Za-z_]\w*", value):
            raise ValueError("must be a dotted path such as sklearn.linear_model.LogisticRegression")
        return value

    @property
    def features(self) -> list[str]:
        return [*self.numeric_features, *self.categorical_features]


MIN_SHADOW_ROWS = 100
"""The smallest shadow sample a day (``promotion.shadow_max_rows``) a spec may ask for."""


class PromotionSpec(_Strict):
    """The gate a challenger must pass to become champion."""

    min_primary_metric: float
    max_regression: float = Field(ge=0.0, description="allowed drop of the primary metric vs champion")
    segment_column: str | None = None
    max_segment_regression: float = Field(default=0.05, ge=0.0)
    min_segment_rows: int = Field(default=50, ge=1)
    evaluation_days: int = Field(ge=1, description="the fresh window both models are scored on")
    require_approval: bool = False
    when_champion_fails_floor: Literal["promote_better", "keep", "alert_only"] = Field(
        default="promote_better",
        description=(
            "the champion misses min_primary_metric on the evaluation window: promote a challenger that beats "
            "it even below the floor (with an alert), keep it (logged), or keep it and alert"
        ),
    )
    shadow_days: int = Field(
        default=0,
        ge=0,
        le=60,
        description=(
            "0: a challenger that passes the gate is promoted. N: it becomes pending, is shadow-scored beside "
            "the champion, and is promoted only if it also wins on the predictions it made on N labelled days"
        ),
    )
    shadow_max_rows: int | None = Field(
        default=50_000,
        description=(
            "rows a day the shadow challenger scores: a deterministic sample of the day's rows (by a hash "
            "of entity key + event timestamp), the same for every run, part count and model, so the shadow "
            "gate judges both models on exactly those rows. 0 or null: every row. The sample keeps the "
            "shadow's cost near flat as days grow (bench B2 shadow row)"
        ),
    )

    @field_validator("shadow_max_rows")
    @classmethod
    def _shadow_sample_is_usable(cls, value: int | None) -> int | None:
        if value and not value >= MIN_SHADOW_ROWS:  # 0 and null: every row
            raise ValueError(
                f"must be 0 or null (shadow-score every row) or at least {MIN_SHADOW_ROWS} rows a day, got "
                f"{value}: a smaller sample makes the shadow gate's evidence noise"
            )
        return value or None  # one spelling of "every row"


class ScoringSpec(_Strict):
    chunk_rows: int = Field(default=50_000, ge=100, description="rows scored and written at a time")
    fetch_rows: int = Field(
        default=500_000,
        ge=100,
        description=(
            "entity rows per Feast point-in-time query. Each query re-reads the feature view's TTL "
            "window, so one query per 50k-row chunk made scoring quadratic in the day's size; memory "
            "holds two queries' features (the next one is fetched while the current one is scored)"
        ),
    )
    partitions: int = Field(default=1, ge=1, le=64)


class DriftSpec(_Strict):
    window_days: int = Field(ge=1)
    sample_size: int = Field(ge=100)
    seed: int = 0
    method: str | None = Field(default=None, description="Evidently stat test, e.g. 'psi'; None = auto")
    threshold: float | None = None
    drifted_share: float = Field(gt=0.0, le=1.0, description="share of drifted features that means drift")
    key_features: list[str] = Field(default_factory=list)
    max_quality_drop: float = Field(default=0.05, ge=0.0)
    cooldown_hours: float = Field(default=24.0, ge=0.0)
    min_labelled_rows: int = Field(
        default=100, ge=1, description="fewer labelled predictions in the window: quality is reported, not judged"
    )
    min_prediction_rows: int = Field(
        default=50, ge=1, description="fewer rows scored by the champion in the window: prediction drift not measured"
    )


class ScheduleSpec(_Strict):
    start_date: dt.date
    ingestion: str = "@daily"
    scoring: str = "@daily"
    drift: str = "@daily"
    raw_batch_timeout_hours: float = Field(default=12.0, gt=0.0)
    end_date: dt.date | None = Field(
        default=None,
        description=(
            "the last day of a data set that ends (the per-interval DAGs' Airflow end_date): no scheduled "
            "run is created for a later day, and a sensor asked for one skips at once"
        ),
    )
    stale_after_days: int | None = Field(
        default=7,
        ge=1,
        description=(
            "a scheduled run whose day is more than this many days after the newest partition it waits "
            "for does not wait: its sensor skips at once, saying why (history far in the past, or a feed "
            "that stopped that long ago and has failed its runs since); null: always wait"
        ),
    )

    @model_validator(mode="after")
    def _ends_after_it_starts(self) -> ScheduleSpec:
        if self.end_date is not None and self.end_date < self.start_date:
            raise ValueError(f"end_date ({self.end_date}) is before start_date ({self.start_date})")
        return self


class GeneratorSpec(_Strict):
    callable: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", description="module:function")
    params: dict[str, Any] = Field(default_factory=dict)
    drift_param: str | None = Field(default=None, description="the parameter taking the drift start date")


class UseCaseSpec(_Strict):
    name: str = Field(pattern=NAME_PATTERN)
    description: str
    owner: str = "ml-platform"
    entity: EntitySpec
    raw: RawSpec
    labels: LabelSpec
    features: FeatureSpec
    model: ModelSpec
    promotion: PromotionSpec
    scoring: ScoringSpec = Field(default_factory=ScoringSpec)
    drift: DriftSpec
    schedule: ScheduleSpec
    generator: GeneratorSpec | None = None

    @model_validator(mode="after")
    def _cross_references(self) -> UseCaseSpec:
        raw_cols = set(self.raw.columns)
        for required in (self.entity.join_key, self.raw.timestamp_column):
            if required not in raw_cols:
                raise FieldError("raw.columns", f"must declare '{required}'")
        for col in self.raw.unique:
            if col not in raw_cols:
                raise FieldError("raw.unique", f"names unknown column '{col}'")
        self._join_key_is_no_feature()
        available = raw_cols | set(self.features.derived)
        for col in self.features.columns:
            if col not in available:
                raise FieldError(f"features.columns.{col}", "is neither a raw column nor a derived feature")
        for kind in ("numeric_features", "categorical_features"):
            for col in getattr(self.model, kind):
                if col not in self.features.columns:
                    raise FieldError(f"model.{kind}", f"'{col}' is not in features.columns")
        if not self.model.features:
            raise FieldError("model", "needs at least one numeric or categorical feature")
        allowed = CLASSIFICATION_METRICS if self.model.task == "classification" else REGRESSION_METRICS
        for name, metrics in (
            ("model.primary_metric", [self.model.primary_metric]),
            ("model.metrics", self.model.metrics),
        ):
            for metric in metrics:
                if metric not in allowed:
                    raise FieldError(name, f"'{metric}' is not one of {list(allowed)} for {self.model.task}")
        if self.model.primary_metric not in self.model.metrics:
            raise FieldError("model.primary_metric", "must also be listed in model.metrics")
        seg = self.promotion.segment_column
        if seg is not None and seg not in self.model.categorical_features:
            raise FieldError("promotion.segment_column", f"'{seg}' must be a categorical model feature")
        for col in self.drift.key_features:
            if col not in self.model.features:
                raise FieldError("drift.key_features", f"'{col}' is not a model feature")
        if self.model.task == "classification" and self.labels.dtype != "int64":
            raise FieldError("labels.dtype", "classification labels must be int64 (0/1)")
        self._thresholds_fit_the_metric()
        return self

    def _join_key_is_no_feature(self) -> None:
        """Feast serves features *by* the join key and never returns it as one: a model feature (or a
        feature column) named like it fails only when a training set is built, so refuse it here."""
        key = self.entity.join_key
        why = (
            f"'{key}' is the entity's join key (entity.join_key): Feast looks features up by it and does not "
            "serve it as a feature"
        )
        for kind in ("numeric_features", "categorical_features"):
            if key in getattr(self.model, kind):
                raise FieldError(f"model.{kind}", f"{why}; remove it, or derive a feature from it in features.derived")
        if key in self.features.columns:
            raise FieldError(f"features.columns.{key}", f"{why}; remove it (it is in every feature row anyway)")

    def _thresholds_fit_the_metric(self) -> None:
        """Gate and drift thresholds are in the primary metric's units: a floor outside the metric's
        range, or a tolerance wider than its whole useful span, is a threshold meant for another metric
        (e.g. ``max_regression: 5.0`` kept from rmse after switching to r2)."""
        from mlloop.metrics import get_metric

        name = self.model.primary_metric
        metric = get_metric(name)
        floor = self.promotion.min_primary_metric
        if not metric.lowest <= floor <= metric.highest:
            bounds = (
                f">= {metric.lowest:g}"
                if metric.highest == float("inf")
                else f"<= {metric.highest:g}"
                if metric.lowest == float("-inf")
                else f"between {metric.lowest:g} and {metric.highest:g}"
            )
            raise FieldError(
                "promotion.min_primary_metric",
                f"{floor:g} is outside the range of model.primary_metric {name} (its values are {bounds})",
            )
        if metric.scale is None:
            return
        for field, value in (
            ("promotion.max_regression", self.promotion.max_regression),
            ("promotion.max_segment_regression", self.promotion.max_segment_regression),
            ("drift.max_quality_drop", self.drift.max_quality_drop),
        ):
            if value > metric.scale:
                raise FieldError(
                    field,
                    f"{value:g} is more than the whole span of model.primary_metric {name} ({metric.scale:g}): it is "
                    f"in {name}'s units, so a value meant for another metric (e.g. rmse) lets every model through",
                )

    # Names derived from the spec, in one place so DAGs, operators and tests agree.
    @property
    def registered_model_name(self) -> str:
        return self.model.name or self.name

    @property
    def experiment_name(self) -> str:
        return f"mlloop/{self.name}"

    def dag_id(self, stage: str) -> str:
        return f"{self.name}__{stage}"

    @property
    def label_columns(self) -> dict[str, str]:
        """Schema of a label-event batch: entity key, the observation time it labels, the label."""
        return {
            self.entity.join_key: self.entity.dtype,
            self.raw.timestamp_column: "datetime",
            self.labels.column: self.labels.dtype,
        }

    def load_estimator_class(self) -> type:
        module, _, cls = self.model.estimator.rpartition(".")
        try:
            return getattr(importlib.import_module(module), cls)
        except (ImportError, AttributeError) as exc:
            raise SpecError(f"{self.name}: model.estimator '{self.model.estimator}' cannot be imported: {exc}") from exc


def _format_validation_error(path: Path, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, FieldError):
            lines.append(f"field '{cause.field}': {cause}")
            continue
        field = ".".join(str(part) for part in err["loc"]) or "(top level)"
        lines.append(f"field '{field}': {err['msg']}")
    return f"invalid use-case spec {path}: " + "; ".join(lines)


# libyaml's safe loader when PyYAML was built with it: the pure-Python one takes ~70 ms per spec,
# and every DAG file parses every spec on every DAG-processor pass (bench B1).
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_spec(path: str | Path) -> UseCaseSpec:
    """Read and validate one spec file; raise :class:`SpecError` naming the file and field."""
    path = Path(path)
    return _spec_from_text(path, _read_spec(path))


def _read_spec(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SpecError(f"cannot read use-case spec {path}: {exc.strerror}") from exc


def _spec_from_text(path: Path, data: bytes) -> UseCaseSpec:
    try:
        raw = yaml.load(data.decode("utf-8"), Loader=_YAML_LOADER)
    except UnicodeDecodeError as exc:
        raise SpecError(f"use-case spec {path} is not UTF-8 text: {exc}") from exc
    except yaml.YAMLError as exc:
        raise SpecError(f"use-case spec {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise SpecError(f"use-case spec {path} must be a mapping at the top level")
    try:
        spec = UseCaseSpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(_format_validation_error(path, exc)) from exc
    if spec.name != path.stem:
        raise SpecError(f"invalid use-case spec {path}: field 'name': '{spec.name}' must equal the file name")
    return spec


# Each spec file read so far in this process: its bytes then, and the spec they made. See load_specs.
_LOADED: dict[Path, tuple[bytes, UseCaseSpec]] = {}


def load_specs(directory: str | Path | None = None) -> list[UseCaseSpec]:
    """All specs in the use-case folder, sorted by name. An invalid one raises (it must be seen).

    Each file is parsed and validated once per process while its bytes stay the same: every DAG
    file loads every spec, and a process that parses several (a whole-folder ``DagBag``, a task
    re-parsing its DAG file) would otherwise do it again each time (bench B11: ~4 ms of CPU per
    spec, 50 specs per file). The files are still read on every call, so an edited, added or
    removed spec is seen at once (a modification time can miss an edit made within its resolution).
    Specs are frozen models, so callers can share them. An invalid spec is not cached: it raises
    every time.
    """
    folder = Path(directory) if directory is not None else get_settings().use_cases_dir
    specs = []
    for path in sorted(folder.glob("*.yaml")):
        data = _read_spec(path)
        cached = _LOADED.get(path)
        if cached is None or cached[0] != data:
            cached = (data, _spec_from_text(path, data))
            _LOADED[path] = cached
        specs.append(cached[1])
    return specs


@functools.cache
def _cached_spec(name: str, folder: str) -> UseCaseSpec:
    return load_spec(Path(folder) / f"{name}.yaml")


def get_spec(name: str) -> UseCaseSpec:
    """The spec of one use case by name, as tasks look it up at run time."""
    folder = get_settings().use_cases_dir
    if not (folder / f"{name}.yaml").exists():
        known = sorted(p.stem for p in folder.glob("*.yaml"))
        raise SpecError(f"no use-case spec named '{name}' in {folder} (known: {known})")
    return _cached_spec(name, str(folder))
