"""The storage layout is defined once (mlloop.layout): every kind's paths, and no path shape elsewhere."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from mlloop import layout
from mlloop.spec import get_spec
from mlloop.storage import local_storage

ROOT = Path(__file__).resolve().parents[2]
DAY = dt.date(2026, 11, 20)


@pytest.mark.parametrize("kind", sorted(layout.KINDS))
def test_every_kind_puts_a_day_under_its_area_and_use_case(kind: str, tmp_path: Path) -> None:
    storage, spec = local_storage(str(tmp_path)), get_spec("credit_risk")
    path = layout.kind(kind).path(storage, spec, DAY)
    area = layout.kind(kind).area
    assert path.startswith(f"{tmp_path}/{area}/credit_risk/")
    assert layout.day_of(path) == DAY
    assert path.startswith(layout.kind(kind).folder(storage, spec) + "/")


def test_the_features_kind_is_the_feature_views_folder(tmp_path: Path) -> None:
    storage, spec = local_storage(str(tmp_path)), get_spec("credit_risk")
    assert layout.FEATURES.path(storage, spec, DAY) == (
        f"{tmp_path}/features/credit_risk/{spec.features.feature_view}/date=2026-11-20/data.parquet"
    )
    with pytest.raises(ValueError, match=r"'features' partitions are in the feature view's folder"):
        layout.FEATURES.path(storage, "credit_risk", DAY)


def test_the_drift_report_pattern_accepts_the_layouts_report_and_nothing_else(tmp_path: Path) -> None:
    storage = local_storage(str(tmp_path))
    pattern = re.compile(layout.DRIFT_REPORT_PATTERN)
    assert pattern.match(layout.DRIFT_REPORT.path(storage, "credit_risk", DAY))
    assert not pattern.match(layout.DRIFT_REPORT.path(storage, "credit_risk", DAY, layout.DRIFT_REPORT_JSON))
    assert not pattern.match(f"{tmp_path}/../etc/reports/credit_risk/drift/date=2026-11-20/report.html")


def test_the_validation_report_lies_beside_its_training_set(tmp_path: Path) -> None:
    training_set = layout.TRAINING_SET.path(local_storage(str(tmp_path)), "credit_risk", DAY)
    assert layout.validation_report_of(training_set) == training_set.replace("data.parquet", "validation.json")


def test_an_unknown_kind_is_named_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown partition kind 'landing'; expected one of \[.*'features'"):
        layout.kind("landing")


def test_no_path_shape_is_spelled_outside_the_layout() -> None:
    """Joining an area, a dataset and ``date=`` by hand is how two copies of a path drift apart."""
    hand_made = re.compile(
        r"""storage\.partition\(|["']date=|storage\.path\(\s*["'](landing|quarantine|staging|features|predictions|reports)["']"""
    )
    owners = {ROOT / "include/mlloop/layout.py", ROOT / "include/mlloop/storage.py"}
    found = [
        f"{p.relative_to(ROOT)}:{n}"
        for folder in ("include", "plugins", "dags", "feature_repo", "cli")
        for p in sorted((ROOT / folder).rglob("*.py"))
        if p not in owners
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if hand_made.search(line)
    ]
    assert found == []
