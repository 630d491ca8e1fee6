"""The use-case spec: the bundled one loads; a bad one fails with one message naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlloop.spec import SpecError, load_spec, load_specs

BUNDLED = Path(__file__).resolve().parents[2] / "include" / "use_cases" / "credit_risk.yaml"


def write_variant(tmp_path: Path, edit) -> Path:  # type: ignore[no-untyped-def]
    data = yaml.safe_load(BUNDLED.read_text())
    edit(data)
    path = tmp_path / "credit_risk.yaml"
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
