"""The project's Feast offline store: DuckDB, answering point-in-time joins by as-of join, on any root.

:class:`AsOfDuckDBOfflineStore` is Feast's DuckDB offline store whose ``get_historical_features``
runs one DuckDB ``ASOF LEFT JOIN`` per feature view (``mlloop.feast_asof_join``: Feast's semantics,
ttl and created-timestamp tie-break included, at the cost of an as-of join instead of Feast's range
join plus dedup); requests outside the common case go to Feast's implementation unchanged. It is
the embedded default (``mlloop.settings``); ``{"type": "duckdb"}`` selects Feast's own store.

Scaled, the storage root is ``s3://...`` on MinIO, a cloud bucket or moto; DuckDB then needs two
things Feast's own DuckDB store does not give it, which :class:`S3DuckDBOfflineStore` adds:

* its ``httpfs`` extension, which DuckDB normally downloads on first use. The project pins
  ``duckdb`` to the version of the ``duckdb-extension-httpfs`` package, which ships the official
  (signed) extension binary, and :func:`ensure_httpfs` installs that file, so no download happens.
  Where the packaged binary does not fit (it is built for ``linux_amd64``), DuckDB's own install
  is left to run (and needs the network);
* the endpoint and URL style of an S3-compatible server (MinIO and moto need path-style URLs),
  which DuckDB does not read from the environment. :class:`S3DuckDBOfflineStore` creates a
  temporary (in-memory, never persisted) DuckDB secret with them on the connection Feast uses.

Selected by configuration only (``MLLOOP_FEAST_OFFLINE_STORE``, see ``.env.example``)::

    {"type": "mlloop.feast_offline_store.AsOfDuckDBOfflineStore"}   # the default
    {"type": "mlloop.feast_offline_store.S3DuckDBOfflineStore"}

Endpoint, region and credentials default to the standard AWS variables every other S3 client of
the loop reads (``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``, ``AWS_REGION`` or
``AWS_DEFAULT_REGION``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``);
the config keys ``s3_endpoint``, ``s3_region`` and ``s3_url_style`` override them.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from feast.infra.offline_stores.duckdb import DuckDBOfflineStore, DuckDBOfflineStoreConfig
from pydantic import StrictStr

if TYPE_CHECKING:
    import duckdb

log = logging.getLogger(__name__)

PACKAGED_PLATFORM = "linux_amd64"
"""The platform the ``duckdb-extension-httpfs`` wheel's binary is built for."""

# connection id -> (the connection, kept alive so its id is not reused; the settings applied)
_prepared: dict[int, tuple[Any, tuple[str, ...]]] = {}
_lock = threading.Lock()


class AsOfDuckDBOfflineStoreConfig(DuckDBOfflineStoreConfig):
    """Feast reads this from ``offline_store:`` in ``feature_store.yaml``."""

    type: StrictStr = "mlloop.feast_offline_store.AsOfDuckDBOfflineStore"


class S3DuckDBOfflineStoreConfig(AsOfDuckDBOfflineStoreConfig):
    """Feast reads this from ``offline_store:`` in ``feature_store.yaml``."""

    type: StrictStr = "mlloop.feast_offline_store.S3DuckDBOfflineStore"
    s3_endpoint: str | None = None
    """``host:port`` or ``http(s)://host:port``; default ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``
    (none: AWS itself)."""
    s3_region: str | None = None
    """Default ``AWS_REGION`` / ``AWS_DEFAULT_REGION``, else ``us-east-1``."""
    s3_url_style: Literal["path", "vhost"] = "path"


def packaged_httpfs_path(version: str) -> Path | None:
    """The httpfs binary the ``duckdb-extension-httpfs`` package ships for DuckDB ``version``."""
    try:
        import duckdb_extension_httpfs
    except ImportError:
        return None
    path = Path(duckdb_extension_httpfs.__file__).parent / "extensions" / f"v{version}" / "httpfs.duckdb_extension"
    return path if path.is_file() else None


def ensure_httpfs(con: duckdb.DuckDBPyConnection) -> str:
    """Install (from the packaged binary, no download) and load httpfs; say where it came from."""
    import duckdb

    row = con.execute("SELECT installed, loaded FROM duckdb_extensions() WHERE extension_name = 'httpfs'").fetchone()
    installed, loaded = bool(row and row[0]), bool(row and row[1])
    source = "already installed"
    if not installed:
        platform = str(con.execute("PRAGMA platform").fetchone()[0])  # type: ignore[index]
        packaged = packaged_httpfs_path(duckdb.__version__)
        if packaged is not None and platform == PACKAGED_PLATFORM:
            con.execute(f"INSTALL '{_sql_str(str(packaged))}'")
            source = f"installed from {packaged}"
        else:
            # Another platform or DuckDB version: DuckDB's own install (a download) is the only way.
            con.execute("INSTALL httpfs")
            source = "installed by DuckDB (downloaded)"
    if not loaded:
        con.execute("LOAD httpfs")
    return source


def s3_secret_settings(config: S3DuckDBOfflineStoreConfig, env: dict[str, str] | None = None) -> dict[str, str]:
    """The DuckDB S3 secret parameters: config first, then the standard AWS variables."""
    env = dict(os.environ) if env is None else env
    settings: dict[str, str] = {"URL_STYLE": config.s3_url_style}
    endpoint = config.s3_endpoint or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or ""
    if endpoint:
        scheme, _, rest = endpoint.rpartition("://")
        settings["ENDPOINT"] = rest.rstrip("/")
        settings["USE_SSL"] = "false" if scheme == "http" else "true"
    settings["REGION"] = config.s3_region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
    for name, variable in (
        ("KEY_ID", "AWS_ACCESS_KEY_ID"),
        ("SECRET", "AWS_SECRET_ACCESS_KEY"),
        ("SESSION_TOKEN", "AWS_SESSION_TOKEN"),
    ):
        if env.get(variable):
            settings[name] = env[variable]
    return settings


def prepare_connection(con: duckdb.DuckDBPyConnection, config: S3DuckDBOfflineStoreConfig) -> None:
    """httpfs loaded and an S3 secret on ``con``, once per connection and configuration."""
    settings = s3_secret_settings(config)
    key = tuple(sorted(settings.items()))
    flat = tuple(f"{k}={v}" for k, v in key)
    with _lock:
        if id(con) in _prepared and _prepared[id(con)][1] == flat:
            return
        source = ensure_httpfs(con)
        params = ", ".join(
            f"{name} {value}" if name == "USE_SSL" else f"{name} '{_sql_str(value)}'" for name, value in key
        )
        con.execute(f"CREATE OR REPLACE SECRET mlloop_s3 (TYPE s3, {params})")
        _prepared[id(con)] = (con, flat)
    log.info(
        "DuckDB offline store: httpfs %s; S3 endpoint %s, %s-style URLs",
        source,
        settings.get("ENDPOINT", "AWS"),
        config.s3_url_style,
    )


def _sql_str(value: str) -> str:
    return value.replace("'", "''")


def _prepare_default_backend(config: Any) -> None:
    """Feast's DuckDB store reads through ibis's default DuckDB connection: prepare that one."""
    import ibis

    offline = config.offline_store
    if not isinstance(offline, S3DuckDBOfflineStoreConfig):
        raise TypeError(f"S3DuckDBOfflineStore needs an S3DuckDBOfflineStoreConfig, got {type(offline).__name__}")
    prepare_connection(ibis.get_backend().con, offline)


def _default_connection() -> duckdb.DuckDBPyConnection:
    """The DuckDB connection Feast's DuckDB store reads through (ibis's default backend)."""
    import ibis

    return ibis.get_backend().con


def _historical_features(
    config: Any,
    feature_views: Any,
    feature_refs: Any,
    entity_df: Any,
    registry: Any,
    project: str,
    full_feature_names: bool = False,
    **options: Any,
) -> Any:
    """By as-of join when the request is the common case, else by Feast's DuckDB store."""
    from mlloop.feast_asof_join import asof_retrieval_job

    job = asof_retrieval_job(
        config, feature_views, feature_refs, entity_df, full_feature_names, options, _default_connection
    )
    if job is not None:
        return job
    return DuckDBOfflineStore.get_historical_features(
        config, feature_views, feature_refs, entity_df, registry, project, full_feature_names, **options
    )


class AsOfDuckDBOfflineStore(DuckDBOfflineStore):
    """:class:`DuckDBOfflineStore` whose point-in-time join is an as-of join (see the module)."""

    @staticmethod
    def get_historical_features(config: Any, *args: Any, **kwargs: Any) -> Any:
        return _historical_features(config, *args, **kwargs)


class S3DuckDBOfflineStore(AsOfDuckDBOfflineStore):
    """:class:`AsOfDuckDBOfflineStore` whose DuckDB connection can read ``s3://`` on any endpoint."""

    @staticmethod
    def pull_latest_from_table_or_query(config: Any, *args: Any, **kwargs: Any) -> Any:
        _prepare_default_backend(config)
        return DuckDBOfflineStore.pull_latest_from_table_or_query(config, *args, **kwargs)

    @staticmethod
    def get_historical_features(config: Any, *args: Any, **kwargs: Any) -> Any:
        _prepare_default_backend(config)
        return _historical_features(config, *args, **kwargs)

    @staticmethod
    def pull_all_from_table_or_query(config: Any, *args: Any, **kwargs: Any) -> Any:
        _prepare_default_backend(config)
        return DuckDBOfflineStore.pull_all_from_table_or_query(config, *args, **kwargs)

    @staticmethod
    def offline_write_batch(config: Any, *args: Any, **kwargs: Any) -> Any:
        _prepare_default_backend(config)
        return DuckDBOfflineStore.offline_write_batch(config, *args, **kwargs)
