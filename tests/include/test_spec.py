"""The use-case spec: the bundled one loads; a bad one fails with one message naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlloop.spec import SpecError, load_spec, load_specs

BUNDLED = Path(__file__).resolve().parents[2] / "include" / "use_cases" / "credit_risk.yaml"
REGRESSION = BUNDLED.parent / "energy_demand.yaml"


def write_variant(tmp_path: Path, edit, source: Path = BUNDLED) -> Path:  # type: ignore[no-untyped-def]
    data = yaml.safe_load(source.read_text())
    edit(data)
    path = tmp_path / source.name
    path.write_text(yaml.safe_dump(data))
    return path


def test_bundled_specs_load() -> None:
    specs = load_specs(BUNDLED.parent)
    spec = next(s for s in specs if s.name == "credit_risk")
    assert spec.dag_id("training") == "credit_risk__training"
    assert set(spec.model.features) <= set(spec.features.columns)
    assert spec.load_estimator_class().__name__ == "HistGradientBoostingClassifier"


@pytest.mark.parametrize(
    ("edit", "field", "words"),
    [
        (lambda d: d["promotion"].update(max_regression=-0.1), "promotion.max_regression", "greater than or equal"),
        (lambda d: d["model"].update(primary_metric="rmse"), "model.primary_metric", "'rmse' is not one of"),
        (lambda d: d["raw"]["columns"]["age"].update(dtype="integer"), "raw.columns.age.dtype", "int64"),
        (lambda d: d["model"]["numeric_features"].append("shoe_size"), "model.numeric_features", "shoe_size"),
        (lambda d: d.pop("drift"), "drift", "Field required"),
        (lambda d: d["drift"].update(key_features=["region2"]), "drift.key_features", "'region2' is not a model"),
        (lambda d: d["raw"]["columns"]["age"].update(min=200), "raw.columns.age", "greater than max"),
        (lambda d: d.update(colour="blue"), "colour", "Extra inputs"),
    ],
)
def test_invalid_spec_names_the_field(tmp_path: Path, edit, field: str, words: str) -> None:  # type: ignore[no-untyped-def]
    path = write_variant(tmp_path, edit)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    message = str(err.value)
    assert str(path) in message
    assert f"field '{field}" in message
    assert words in message


def test_spec_name_must_match_file(tmp_path: Path) -> None:
    path = write_variant(tmp_path, lambda d: d.update(name="other_name"))
    with pytest.raises(SpecError, match="must equal the file name"):
        load_spec(path)


def test_unreadable_yaml_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(path)


def test_unimportable_estimator_is_reported(tmp_path: Path) -> None:
    spec = load_spec(write_variant(tmp_path, lambda d: d["model"].update(estimator="sklearn.nothing.Here")))
    with pytest.raises(SpecError, match=r"model\.estimator 'sklearn\.nothing\.Here' cannot be imported"):
        spec.load_estimator_class()


def _join_key_as_feature_column(d: dict) -> None:  # type: ignore[type-arg]
    d["features"]["columns"]["customer_id"] = {"dtype": "int64"}


def _switch_to_r2(**gate: float):  # type: ignore[no-untyped-def]
    """energy_demand moved from rmse to r2, keeping (some of) its rmse-unit thresholds."""

    def edit(d: dict) -> None:  # type: ignore[type-arg]
        d["model"]["primary_metric"] = "r2"
        d["promotion"].update(min_primary_metric=0.5, max_regression=0.02, max_segment_regression=0.05)
        d["drift"]["max_quality_drop"] = 0.1
        d["promotion"].update({k: v for k, v in gate.items() if k != "max_quality_drop"})
        if "max_quality_drop" in gate:
            d["drift"]["max_quality_drop"] = gate["max_quality_drop"]

    return edit


@pytest.mark.parametrize(
    ("edit", "source", "field", "words"),
    [
        # Feast serves features by the join key and never returns it as a feature.
        (
            lambda d: (_join_key_as_feature_column(d), d["model"]["numeric_features"].append("customer_id")),
            BUNDLED,
            "model.numeric_features",
            "'customer_id' is the entity's join key (entity.join_key): Feast looks features up by it",
        ),
        (
            lambda d: d["model"]["categorical_features"].append("meter_id"),
            REGRESSION,
            "model.categorical_features",
            "'meter_id' is the entity's join key",
        ),
        (_join_key_as_feature_column, BUNDLED, "features.columns.customer_id", "does not serve it as a feature"),
        # Gate and drift thresholds in the primary metric's range and units.
        (
            lambda d: d["promotion"].update(min_primary_metric=1.2),
            BUNDLED,
            "promotion.min_primary_metric",
            "1.2 is outside the range of model.primary_metric roc_auc (its values are between 0 and 1)",
        ),
        (
            lambda d: d["promotion"].update(max_regression=5.0),
            BUNDLED,
            "promotion.max_regression",
            "5 is more than the whole span of model.primary_metric roc_auc (1)",
        ),
        (
            lambda d: d["promotion"].update(max_segment_regression=1.5),
            BUNDLED,
            "promotion.max_segment_regression",
            "more than the whole span",
        ),
        (lambda d: d["drift"].update(max_quality_drop=2.0), BUNDLED, "drift.max_quality_drop", "in roc_auc's units"),
        (
            lambda d: d["promotion"].update(min_primary_metric=-1.0),
            REGRESSION,
            "promotion.min_primary_metric",
            "-1 is outside the range of model.primary_metric rmse (its values are >= 0)",
        ),
        (_switch_to_r2(min_primary_metric=3.0), REGRESSION, "promotion.min_primary_metric", "(its values are <= 1)"),
        (
            _switch_to_r2(max_regression=5.0),
            REGRESSION,
            "promotion.max_regression",
            "5 is more than the whole span of model.primary_metric r2",
        ),
        (_switch_to_r2(max_quality_drop=1.0 + 1e-6), REGRESSION, "drift.max_quality_drop", "r2"),
        # A data set that ends: its last day is not before its first.
        (
            lambda d: d["schedule"].update(start_date="2011-01-01", end_date="2010-12-31"),
            BUNDLED,
            "schedule",
            "end_date (2010-12-31) is before start_date (2011-01-01)",
        ),
        (
            lambda d: d["schedule"].update(stale_after_days=0),
            BUNDLED,
            "schedule.stale_after_days",
            "greater than or equal to 1",
        ),
        # The drift check's minimum rows are the spec's, and must be positive.
        (
            lambda d: d["drift"].update(min_labelled_rows=0),
            BUNDLED,
            "drift.min_labelled_rows",
            "greater than or equal to 1",
        ),
        (
            lambda d: d["drift"].update(min_prediction_rows=0),
            BUNDLED,
            "drift.min_prediction_rows",
            "greater than or equal to 1",
        ),
        # The shadow sample: every row, or enough rows a day for the shadow gate's evidence.
        (
            lambda d: d["promotion"].update(shadow_max_rows=-5),
            BUNDLED,
            "promotion.shadow_max_rows",
            "must be 0 or null (shadow-score every row) or at least 100 rows a day, got -5",
        ),
        (
            lambda d: d["promotion"].update(shadow_max_rows=20),
            BUNDLED,
            "promotion.shadow_max_rows",
            "at least 100 rows a day, got 20",
        ),
    ],
)
def test_a_spec_that_cannot_work_is_refused_with_its_field(
    tmp_path: Path, edit, source: Path, field: str, words: str
) -> None:  # type: ignore[no-untyped-def]
    path = write_variant(tmp_path, edit, source)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    message = str(err.value)
    assert str(path) in message
    assert f"field '{field}'" in message, message
    assert words in message, message


@pytest.mark.parametrize(
    ("edit", "source"),
    [
        (_switch_to_r2(), REGRESSION),  # r2 with thresholds in r2's units
        (_switch_to_r2(min_primary_metric=-0.5, max_quality_drop=1.0), REGRESSION),  # r2 can be negative
        (lambda d: d["promotion"].update(min_primary_metric=25.0, max_regression=5.0), REGRESSION),  # rmse: any size
        (lambda d: d["promotion"].update(min_primary_metric=0.0, max_regression=1.0), BUNDLED),  # the bounds themselves
    ],
)
def test_thresholds_in_the_metric_s_range_and_units_are_accepted(tmp_path: Path, edit, source: Path) -> None:  # type: ignore[no-untyped-def]
    load_spec(write_variant(tmp_path, edit, source))


@pytest.mark.parametrize(("value", "expected"), [(None, None), (0, None), (100, 100), (250_000, 250_000)])
def test_the_shadow_sample_defaults_to_50k_rows_a_day_and_0_or_null_means_every_row(
    tmp_path: Path, value: int | None, expected: int | None
) -> None:
    assert load_spec(BUNDLED).promotion.shadow_max_rows == 50_000
    spec = load_spec(write_variant(tmp_path, lambda d: d["promotion"].update(shadow_max_rows=value)))
    assert spec.promotion.shadow_max_rows == expected


def test_the_drift_minimum_rows_default_to_100_labelled_and_50_predictions_and_are_configurable(tmp_path: Path) -> None:
    spec = load_spec(BUNDLED)
    assert (spec.drift.min_labelled_rows, spec.drift.min_prediction_rows) == (100, 50)
    spec = load_spec(write_variant(tmp_path, lambda d: d["drift"].update(min_labelled_rows=24, min_prediction_rows=24)))
    assert (spec.drift.min_labelled_rows, spec.drift.min_prediction_rows) == (24, 24)


@pytest.mark.parametrize(
    ("edit", "field", "words"),
    [
        (lambda d: d["raw"]["columns"]["region"].update(pattern="[a-z"), "raw.columns.region", "not a valid regular"),
        (lambda d: d["raw"]["columns"]["age"].update(pattern="[0-9]+"), "raw.columns.age", "string columns only"),
        (lambda d: d["raw"]["columns"]["age"].update(max_length=3), "raw.columns.age", "string columns only"),
        (lambda d: d["raw"]["columns"]["region"].update(max_length=0), "raw.columns.region.max_length", "greater than"),
        (lambda d: d["labels"].update(horizon_days=1), "labels", "horizon_days (1) must be at least delay_days (3)"),
    ],
)
def test_invalid_string_rules_and_label_horizon_name_the_field(tmp_path: Path, edit, field: str, words: str) -> None:  # type: ignore[no-untyped-def]
    path = write_variant(tmp_path, edit)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert f"field '{field}" in str(err.value) and words in str(err.value)


def test_load_specs_reuses_unchanged_specs_and_sees_every_edit_addition_and_removal(tmp_path: Path) -> None:
    """Every DAG file loads every spec (bench B11): a process parses each file once while its bytes
    are the same, yet the DAG processor must see a spec the moment it is edited, added or removed."""
    path = write_variant(tmp_path, lambda d: None)
    first = load_specs(tmp_path)
    assert load_specs(tmp_path)[0] is first[0]  # not read and validated again

    # Same size as before, written at once: a modification-time key could miss this edit.
    path.write_text(path.read_text().replace("owner: ml-platform", "owner: ml-platfork"))
    assert [s.owner for s in load_specs(tmp_path)] == ["ml-platfork"]

    write_variant(tmp_path, lambda d: d.update(name="energy_demand"), REGRESSION)
    assert [s.name for s in load_specs(tmp_path)] == ["credit_risk", "energy_demand"]
    path.unlink()
    assert [s.name for s in load_specs(tmp_path)] == ["energy_demand"]

    path.write_text(path.parent.joinpath("energy_demand.yaml").read_text().replace("drift:", "drift_typo:", 1))
    with pytest.raises(SpecError):  # an invalid spec is never cached: it raises on every call
        load_specs(tmp_path)
    with pytest.raises(SpecError):
        load_specs(tmp_path)
