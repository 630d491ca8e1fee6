"""A use case is one YAML file: its Feast objects are generated from the spec, a hand-written Feast
file is checked against the spec, and Feast imports nothing else from the feature repo.

Real Feast throughout: the generated objects are applied to a real registry (``apply_registry``,
what ``make feast-apply`` does through the CLI) in the test's private MLLOOP_HOME.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from mlloop.feast_definitions import FeastDefinitionError, build, handwritten_mismatches
from mlloop.spec import UseCaseSpec, get_spec, load_specs
from mlloop.synthetic import entity_keys, feature_rows

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = [spec.name for spec in load_specs(ROOT / "include" / "use_cases")]

# A hand-written feature repo file for credit_risk, as the project had before its objects were generated.
HANDWRITTEN = """
from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.data_format import ParquetFormat
from feast.types import Float64, Int64, String

from mlloop.feature_store import feature_source_path

customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
source = FileSource(
    name="credit_risk_customer_profile_source",
    path=feature_source_path("credit_risk", "customer_profile"),
    file_format=ParquetFormat(),
    timestamp_field="event_timestamp",
)
customer_profile_fv = FeatureView(
    name="customer_profile",
    entities=[customer],
    ttl=timedelta(days=TTL_DAYS),
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
    source=source,
    description="written by hand",
)
credit_risk_v1 = FeatureService(name="credit_risk_v1", features=[customer_profile_fv])
"""


@pytest.mark.parametrize("name", SHIPPED)
def test_the_generated_objects_are_what_the_spec_says(name: str, mlloop_home: Path) -> None:
    from feast import ValueType
    from feast.types import Float64, Int64, String

    spec = get_spec(name)
    objects = build(spec)
    entity, view, service = objects.entity, objects.view, objects.service
    assert (entity.name, entity.join_key) == (spec.entity.name, spec.entity.join_key)
    assert entity.value_type == {"int64": ValueType.INT64, "string": ValueType.STRING}[spec.entity.dtype]
    assert view.name == spec.features.feature_view
    assert view.entities == [spec.entity.name]
    assert view.ttl == dt.timedelta(days=spec.features.ttl_days)
    dtypes = {"int64": Int64, "float64": Float64, "string": String}
    assert {f.name: f.dtype for f in view.schema if f.name != spec.entity.join_key} == {
        c: dtypes[col.dtype] for c, col in spec.features.columns.items()
    }
    assert view.online and view.tags == {"use_case": name}
    assert objects.source.path == f"{mlloop_home}/storage/features/{name}/{view.name}/date=*/data.parquet"
    assert objects.source.timestamp_field == spec.raw.timestamp_column
    assert service.name == spec.model.feature_service and service.tags == {"use_case": name}
    served = {f.name for p in service.feature_view_projections for f in p.features}
    assert set(spec.model.features) <= served
    # The check a hand-written file goes through accepts what the generator builds.
    assert handwritten_mismatches(spec, types.SimpleNamespace(**objects.by_attribute(name))) == []  # type: ignore[arg-type]


def test_feast_apply_registers_every_spec_of_the_use_case_folder(feast_registry: Path) -> None:
    from mlloop.feature_store import open_store

    store = open_store()
    specs = [get_spec(name) for name in SHIPPED]
    assert {e.name for e in store.list_entities()} >= {s.entity.name for s in specs}
    assert {v.name for v in store.list_feature_views()} == {s.features.feature_view for s in specs}
    assert {fs.name for fs in store.list_feature_services()} == {s.model.feature_service for s in specs}
    view = store.get_feature_view(get_spec("credit_risk").features.feature_view)
    assert view.ttl == dt.timedelta(days=30) and view.tags == {"use_case": "credit_risk"}


def test_a_relative_use_case_folder_is_read_from_where_it_was_set(
    mlloop_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Feast runs from the repo folder: ``MLLOOP_USE_CASES_DIR=include/use_cases`` (.env.example) set in
    the project folder must still find the specs, and a folder that is not there must not apply an
    empty registry (which deletes every use case's views)."""
    from mlloop.feature_store import apply_registry, open_store

    views = {get_spec(name).features.feature_view for name in SHIPPED}
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("MLLOOP_USE_CASES_DIR", "include/use_cases")
    apply_registry()
    assert {v.name for v in open_store().list_feature_views()} == views
    monkeypatch.setenv("MLLOOP_USE_CASES_DIR", str(tmp_path / "missing"))
    with pytest.raises(FeastDefinitionError, match=r"missing \(MLLOOP_USE_CASES_DIR\) is not a directory"):
        apply_registry()
    assert {v.name for v in open_store().list_feature_views()} == views


@pytest.fixture
def feature_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mlloop_home: Path) -> Iterator[Path]:
    """A copy of the project's feature repo (MLLOOP_FEAST_REPO), to add files to.

    Feast imports repo files as top-level modules (``use_cases``, ``credit_risk``) from ``sys.path``:
    this repo goes first, the project repo's modules imported by earlier tests are set aside, and
    this repo's modules leave with the test."""
    repo = tmp_path / "feature_repo"
    repo.mkdir()
    for name in ("feature_store.yaml", ".feastignore", "use_cases.py"):
        shutil.copy(ROOT / "feature_repo" / name, repo / name)
    monkeypatch.setenv("MLLOOP_FEAST_REPO", str(repo))
    monkeypatch.syspath_prepend(str(repo))
    for name in ("use_cases", *SHIPPED):
        monkeypatch.delitem(sys.modules, name, raising=False)
    yield repo
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(repo)):
            del sys.modules[name]


def test_a_handwritten_file_that_agrees_with_its_spec_replaces_the_generated_objects(feature_repo: Path) -> None:
    from mlloop.feature_store import apply_registry, open_store

    (feature_repo / "credit_risk.py").write_text(HANDWRITTEN.replace("TTL_DAYS", "30"))
    apply_registry()
    store = open_store()
    assert store.get_feature_view("customer_profile").description == "written by hand"
    assert store.get_feature_view("meter_profile").tags == {"use_case": "energy_demand"}  # still generated


def test_a_handwritten_file_that_disagrees_fails_naming_both_files_and_the_field(feature_repo: Path) -> None:
    from mlloop.feature_store import apply_registry

    (feature_repo / "credit_risk.py").write_text(HANDWRITTEN.replace("TTL_DAYS", "7"))
    with pytest.raises(FeastDefinitionError) as raised:
        apply_registry()
    message = str(raised.value)
    assert str(feature_repo / "credit_risk.py") in message
    assert str(ROOT / "include" / "use_cases" / "credit_risk.yaml") in message
    assert "field 'features.ttl_days': the spec says 30, the view's ttl is 7 days" in message


def test_a_handwritten_file_feast_imports_after_the_generated_module_is_checked_too(
    feature_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``zz_credit.py`` sorts after ``use_cases.py``: the check loads it first, Feast then reuses it."""
    import yaml

    from mlloop.feature_store import apply_registry, open_store

    raw = yaml.safe_load((ROOT / "include" / "use_cases" / "credit_risk.yaml").read_text())
    raw["name"], raw["model"]["feature_service"] = "zz_credit", "zz_credit_v1"
    folder = tmp_path / "use_cases"
    folder.mkdir()
    (folder / "zz_credit.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("MLLOOP_USE_CASES_DIR", str(folder))
    monkeypatch.delitem(sys.modules, "zz_credit", raising=False)
    handwritten = HANDWRITTEN.replace('"credit_risk', '"zz_credit')
    (feature_repo / "zz_credit.py").write_text(handwritten.replace("TTL_DAYS", "7"))
    with pytest.raises(FeastDefinitionError, match=r"zz_credit\.py disagrees .* field 'features\.ttl_days'"):
        apply_registry()
    (feature_repo / "zz_credit.py").write_text(handwritten.replace("TTL_DAYS", "30"))
    apply_registry()
    assert [v.description for v in open_store().list_feature_views()] == ["written by hand"]


def test_a_handwritten_file_with_another_join_key_or_a_missing_feature_is_named(mlloop_home: Path) -> None:
    spec = get_spec("credit_risk")
    source = (
        HANDWRITTEN.replace("TTL_DAYS", "30")
        .replace('join_keys=["customer_id"]', 'join_keys=["client_id"]')
        .replace('        Field(name="region", dtype=String),\n', "")
    )
    module = types.ModuleType("handwritten")
    exec(compile(source, "handwritten.py", "exec"), module.__dict__)
    problems = handwritten_mismatches(spec, module)
    assert any(p.startswith("field 'entity.join_key'") for p in problems), problems
    assert any(p.startswith("field 'features.columns'") and "'region'" in p for p in problems), problems
    assert any(p.startswith("field 'model.categorical_features'") and "'region'" in p for p in problems), problems


def test_feast_imports_no_file_that_belongs_to_no_use_case(feature_repo: Path) -> None:
    from mlloop.feature_store import apply_registry

    (feature_repo / "helpers.py").write_text("X = 1\n")
    with pytest.raises(FeastDefinitionError, match=r"helpers\.py: Feast imports every Python file"):
        apply_registry()
    # Where .feastignore says, a helper is out of Feast's way.
    (feature_repo / "lib").mkdir()
    (feature_repo / "helpers.py").rename(feature_repo / "lib" / "helpers.py")
    with (feature_repo / ".feastignore").open("a") as ignore:
        ignore.write("lib/\n")
    apply_registry()


@pytest.mark.parametrize("name", SHIPPED)
def test_synthetic_feature_rows_fit_the_feature_views_contract(name: str) -> None:
    """The rows tests and benchmarks write as feature partitions pass the spec's own validation."""
    from mlloop.validation import Contract, validate_table

    spec = get_spec(name)
    keys = entity_keys(spec, 500)
    frame = feature_rows(spec, keys, dt.date(2026, 1, 5), np.random.default_rng(0))
    key, ts = spec.entity.join_key, spec.raw.timestamp_column
    assert list(frame.columns) == [key, ts, *spec.features.columns]
    assert frame[key].is_unique and frame[ts].is_monotonic_increasing
    assert (frame[ts].dt.date == dt.date(2026, 1, 5)).all()
    from mlloop.spec import ColumnSpec

    columns = {key: ColumnSpec(dtype=spec.entity.dtype), ts: ColumnSpec(dtype="datetime"), **spec.features.columns}
    contract = Contract(name=f"{name}.synthetic", columns=columns, unique=(key,), timestamp_column=ts)
    result = validate_table(pa.Table.from_pandas(frame, preserve_index=False), contract, source="synthetic")
    assert len(result.valid) == len(frame), result.report


def test_synthetic_rows_follow_a_changed_spec(spec: UseCaseSpec) -> None:
    """A column added to the spec appears in the rows, within its rules, with no code change."""
    from mlloop.spec import ColumnSpec

    columns = {**spec.features.columns, "tenure_years": ColumnSpec(dtype="int64", min=0, max=40)}
    changed = spec.model_copy(update={"features": spec.features.model_copy(update={"columns": columns})})
    frame = feature_rows(changed, entity_keys(changed, 200), dt.date(2026, 1, 5), np.random.default_rng(1))
    assert frame["tenure_years"].between(0, 40).all() and frame["tenure_years"].nunique() > 10
