"""Feast on a real registry: interval materialization, online reads, the out-of-order guard."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from mlloop.feature_store import materialize_interval, online_features, open_store
from mlloop.ingestion import day_bounds, validate_landed_batch, write_feature_partition
from mlloop.landing import land_days

DAYS = [dt.date(2026, 3, 10), dt.date(2026, 3, 11)]


@pytest.fixture
def ingested(storage, spec, feast_registry):  # type: ignore[no-untyped-def]
    land_days(storage, spec, DAYS, rows_per_day=300, n_customers=400, bad_row_share=0.0)
    frames = {}
    for day in DAYS:
        validate_landed_batch(storage, spec, "observations", day)
        path, _ = write_feature_partition(storage, spec, day)
        frames[day] = storage.read_frame(path)
    return frames


def test_materialized_day_is_readable_online(ingested, spec) -> None:  # type: ignore[no-untyped-def]
    store = open_store()
    materialize_interval(store, [spec.features.feature_view], *day_bounds(DAYS[0]))
    expected = ingested[DAYS[0]].head(5)
    online = online_features(store, spec.model.feature_service, "customer_id", expected["customer_id"].tolist())
    merged = online.merge(expected, on="customer_id", suffixes=("_online", ""))
    assert len(merged) == 5
    np.testing.assert_array_equal(merged["annual_income_online"], merged["annual_income"])
    assert (merged["employment_type_online"] == merged["employment_type"]).all()


def test_reingesting_an_older_day_does_not_regress_the_online_store(ingested, spec) -> None:  # type: ignore[no-untyped-def]
    store = open_store()
    for day in DAYS:
        materialize_interval(store, [spec.features.feature_view], *day_bounds(day))
    window = materialize_interval(store, [spec.features.feature_view], *day_bounds(DAYS[0]))
    assert window.extended_to_watermark
    both = set(ingested[DAYS[0]]["customer_id"]) & set(ingested[DAYS[1]]["customer_id"])
    assert both, "generator should make customers recur"
    newest = ingested[DAYS[1]].set_index("customer_id").loc[sorted(both)]
    online = online_features(store, spec.model.feature_service, "customer_id", sorted(both)).set_index("customer_id")
    got = online.loc[newest.index, "annual_income"].to_numpy(dtype=float)
    np.testing.assert_array_equal(got, newest["annual_income"].to_numpy(dtype=float))


def test_apply_before_the_first_ingestion_is_quiet(mlloop_home, caplog) -> None:  # type: ignore[no-untyped-def]
    """Feast validates each source path and cannot expand a glob: without the filter, every use case's
    partition glob was reported as "Could not validate FileSource path" on every apply."""
    import logging

    from mlloop.feature_store import apply_registry

    with caplog.at_level(logging.WARNING, logger="feast"):
        apply_registry()
    assert [r.getMessage() for r in caplog.records if "Could not validate" in r.getMessage()] == []
    assert open_store().get_feature_view("customer_profile").name == "customer_profile"  # applied


def test_a_real_source_problem_is_still_reported(mlloop_home, caplog) -> None:  # type: ignore[no-untyped-def]
    """Only the partition globs' "does not exist" is dropped: another path, or another error, still warns."""
    import logging

    from mlloop.feature_store import FEAST_FILE_SOURCE_LOGGER, feature_source_path

    glob = feature_source_path("credit_risk", "customer_profile")
    feast_log = logging.getLogger(FEAST_FILE_SOURCE_LOGGER)
    message = "Could not validate FileSource path '%s': %s"
    with caplog.at_level(logging.WARNING, logger=FEAST_FILE_SOURCE_LOGGER):
        feast_log.warning(message, glob, FileNotFoundError(f"FileSource path does not exist: {glob}"))
        typo = str(mlloop_home / "features" / "credit_risk" / "customer_profil" / "data.parquet")
        feast_log.warning(message, typo, FileNotFoundError(f"FileSource path does not exist: {typo}"))
        feast_log.warning(message, glob, PermissionError("access denied"))
    reported = [r.getMessage() for r in caplog.records]
    assert len(reported) == 2, reported
    assert "customer_profil/data.parquet" in reported[0] and "access denied" in reported[1]


def test_the_feast_apply_cli_is_quiet_before_the_first_ingestion(mlloop_home) -> None:  # type: ignore[no-untyped-def]
    """What `make feast-apply` and the demo run: Feast's own CLI in the feature repo, environment from the settings."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from mlloop.settings import get_settings

    settings = get_settings()
    settings.prepare_local_paths()
    env = {**os.environ, **settings.feast_environment()}
    feast = str(Path(sys.executable).parent / "feast")
    out = subprocess.run(
        [feast, "apply"], cwd=settings.feast_repo_path, env=env, capture_output=True, text=True, check=True
    )
    assert "Created feature view customer_profile" in out.stdout
    assert "Could not validate" not in out.stdout + out.stderr, out.stderr
