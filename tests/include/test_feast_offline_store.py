"""Feast's offline store on S3: httpfs from the packaged binary (no download), path-style endpoints.

The S3 server is moto's, in this process, on loopback; nothing here reaches the network (and the
network here reaches no DuckDB extension repository, so a download attempt would fail the test).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from loop_fixtures import feature_frame, write_clean_features
from mlloop.feast_offline_store import (
    S3DuckDBOfflineStoreConfig,
    ensure_httpfs,
    packaged_httpfs_path,
    s3_secret_settings,
)

DAYS = [dt.date(2026, 11, 1) + dt.timedelta(days=n) for n in range(3)]


def test_httpfs_installs_from_the_packaged_binary(tmp_path: Path) -> None:
    import duckdb

    assert packaged_httpfs_path(duckdb.__version__) is not None, "duckdb and duckdb-extension-httpfs versions differ"
    con = duckdb.connect(config={"extension_directory": str(tmp_path)})

    source = ensure_httpfs(con)

    assert source.startswith("installed from"), source
    assert con.execute("SELECT loaded FROM duckdb_extensions() WHERE extension_name = 'httpfs'").fetchone() == (True,)
    assert list(tmp_path.rglob("httpfs.duckdb_extension"))
    assert ensure_httpfs(con) == "already installed"


def test_secret_settings_come_from_the_aws_variables_unless_configured() -> None:
    env = {
        "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9000/",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "key",
        "AWS_SECRET_ACCESS_KEY": "secret",
    }
    settings = s3_secret_settings(S3DuckDBOfflineStoreConfig(), env)
    assert settings == {
        "URL_STYLE": "path",
        "ENDPOINT": "127.0.0.1:9000",
        "USE_SSL": "false",
        "REGION": "eu-west-1",
        "KEY_ID": "key",
        "SECRET": "secret",
    }
    configured = S3DuckDBOfflineStoreConfig(s3_endpoint="https://minio.example:9000", s3_region="us-west-2")
    assert s3_secret_settings(configured, env) | {"KEY_ID": "", "SECRET": ""} == {
        "URL_STYLE": "path",
        "ENDPOINT": "minio.example:9000",
        "USE_SSL": "true",
        "REGION": "us-west-2",
        "KEY_ID": "",
        "SECRET": "",
    }
    assert "ENDPOINT" not in s3_secret_settings(S3DuckDBOfflineStoreConfig(), {})  # AWS itself


@pytest.fixture
def s3_root(mlloop_home: Path, moto_bucket: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The loop's settings pointing at a bucket on a moto S3 server."""
    root = f"s3://{moto_bucket}/storage"
    monkeypatch.setenv("MLLOOP_STORAGE_ROOT", root)
    monkeypatch.setenv(
        "MLLOOP_FEAST_OFFLINE_STORE", json.dumps({"type": "mlloop.feast_offline_store.S3DuckDBOfflineStore"})
    )
    return root


@pytest.mark.integration
def test_feast_reads_and_materializes_features_on_s3(s3_root: str, spec) -> None:  # type: ignore[no-untyped-def]
    from mlloop.feature_store import (
        apply_registry,
        historical_features,
        materialize_interval,
        online_features,
        open_store,
    )
    from mlloop.settings import get_settings
    from mlloop.storage import Storage

    storage = Storage.from_url(get_settings().storage_root)
    write_clean_features(storage, spec, DAYS, n_customers=300, rows_per_day=100)
    apply_registry()
    store = open_store()
    assert type(store.config.offline_store).__name__ == "S3DuckDBOfflineStoreConfig"
    features = feature_frame(storage, spec, DAYS)
    key, ts = spec.entity.join_key, spec.raw.timestamp_column

    entities = features[[key, ts]].head(40)
    got = historical_features(store, entities, spec.model.feature_service)

    assert len(got) == 40
    expected = features.set_index([key, ts]).loc[list(zip(got[key], got[ts], strict=True)), "loan_amount"]
    assert got["loan_amount"].tolist() == pytest.approx(expected.tolist())

    start = dt.datetime.combine(DAYS[0], dt.time(), tzinfo=dt.UTC)
    materialize_interval(store, [spec.features.feature_view], start, start + dt.timedelta(days=len(DAYS)))
    newest = features.sort_values(ts).drop_duplicates(key, keep="last").set_index(key)
    keys = newest.index[:5].tolist()
    online = online_features(store, spec.model.feature_service, key, keys).set_index(key)
    assert online.loc[keys, "loan_amount"].tolist() == pytest.approx(newest.loc[keys, "loan_amount"].tolist())
