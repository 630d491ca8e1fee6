"""Feast access: the offline-source layout, interval materialization and feature retrieval.

Feast is imported inside functions (about 7 s) so that importing this module is free.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlloop import layout
from mlloop.settings import Settings, get_settings

if TYPE_CHECKING:
    import pandas as pd
    from feast import FeatureStore

log = logging.getLogger(__name__)

FEAST_FILE_SOURCE_LOGGER = "feast.infra.offline_stores.file_source"


class _PartitionGlobsAreNotMissing(logging.Filter):
    """Drops Feast's "Could not validate FileSource path" warning for the partition globs of
    :func:`feature_source_path`, and only for them.

    ``feast apply`` checks each ``FileSource`` path with pyarrow's ``get_file_info``, which does not
    expand globs: ``.../date=*/data.parquet`` is "not found" before the first ingestion and after
    it alike, so the warning said nothing, once per use case per apply. Any other path (a source
    defined by hand, a typo), and any other error on these paths, is still logged.
    """

    def __init__(self) -> None:
        super().__init__()
        self.globs: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        expected = (
            record.msg == "Could not validate FileSource path '%s': %s"
            and len(args) == 2
            and isinstance(args[1], FileNotFoundError)
            and str(args[0]) in self.globs
        )
        return not expected


_PARTITION_GLOBS = _PartitionGlobsAreNotMissing()


def feature_source_path(use_case: str, dataset: str, settings: Settings | None = None) -> str:
    """The glob a Feast ``FileSource`` reads: every daily partition of one feature dataset.

    Files are named ``data.parquet`` inside ``date=YYYY-MM-DD`` folders; temporary files written
    during an atomic replace have other names, so the glob never sees half a partition.
    """
    root = (settings or get_settings()).storage_root
    kind = layout.FEATURES
    glob = "/".join([root, kind.area, use_case, dataset, f"{layout.PARTITION_PREFIX}*", kind.filename])
    # The feature repo builds its FileSources from here, in `feast apply` (CLI) and apply_registry.
    _PARTITION_GLOBS.globs.add(glob)
    feast_log = logging.getLogger(FEAST_FILE_SOURCE_LOGGER)
    if _PARTITION_GLOBS not in feast_log.filters:
        feast_log.addFilter(_PARTITION_GLOBS)
    return glob


def open_store(settings: Settings | None = None) -> FeatureStore:
    """The project's Feast store, configured by ``feature_repo/feature_store.yaml`` + environment."""
    from feast import FeatureStore

    settings = settings or get_settings()
    with settings.feast_environment_applied():
        return FeatureStore(repo_path=str(settings.feast_repo_path))


class FeatureRegistryError(RuntimeError):
    """The Feast registry lacks a definition this use case needs (``feast apply`` not run?)."""


@dataclass(frozen=True)
class MaterializedWindow:
    feature_views: list[str]
    start: dt.datetime
    end: dt.datetime
    extended_to_watermark: bool

    def describe(self) -> str:
        note = (
            " (extended to the online watermark: an older interval was re-ingested)"
            if self.extended_to_watermark
            else ""
        )
        window = f"[{self.start.isoformat()}, {self.end.isoformat()})"
        return f"materialized {', '.join(self.feature_views)} for {window}{note}"


def materialize_interval(
    store: FeatureStore, feature_views: list[str], start: dt.datetime, end: dt.datetime
) -> MaterializedWindow:
    """Write the newest row per entity of ``[start, end)`` into the online store.

    If a later interval was materialized already, the window is extended up to that watermark:
    the SQLite online store is last-write-wins, so materializing an old interval alone would put
    stale values over newer ones. Feast's registry records materialized intervals per view.
    """
    watermark = start
    for name in feature_views:
        try:
            view = store.get_feature_view(name)
        except Exception as exc:
            raise FeatureRegistryError(
                f"feature view '{name}' is not in the Feast registry; deploy the registry first "
                f"('make feast-apply' or 'cd feature_repo && feast apply'): {exc}"
            ) from exc
        for _, interval_end in view.materialization_intervals:
            watermark = max(watermark, interval_end)
    extended = watermark > end
    window_end = max(end, watermark)
    store.materialize(start_date=start, end_date=window_end, feature_views=feature_views)
    return MaterializedWindow(feature_views, start, window_end, extended)


def historical_features(store: FeatureStore, entity_df: pd.DataFrame, feature_service: str) -> pd.DataFrame:
    """Point-in-time join of ``entity_df`` (join key + event timestamp + extra columns) with a service.

    Feast drops entity rows older than the entity's first feature row and reorders the output;
    callers must not assume the same length or order. Extra columns pass through, so callers that
    need their own order send a row id along (``_label_row`` in training, ``_entity_row`` in scoring).
    """
    service = store.get_feature_service(feature_service)
    return store.get_historical_features(entity_df=entity_df, features=service).to_df()


def online_features(store: FeatureStore, feature_service: str, join_key: str, keys: list[object]) -> pd.DataFrame:
    """One-off online read as a DataFrame (tests, the demo). Serving code uses :class:`OnlineReader`."""
    return OnlineReader.open(store, feature_service, join_key).read_frame(keys)


@dataclass(frozen=True)
class OnlineReader:
    """Repeated online reads of one feature service.

    Resolving a service by name deserializes its protos from the registry on every call, which
    costs ~6 ms per read against ~0.3 ms for the read itself; the reader resolves it once.
    """

    store: FeatureStore
    service: Any
    join_key: str

    @classmethod
    def open(cls, store: FeatureStore, feature_service: str, join_key: str) -> OnlineReader:
        return cls(store, store.get_feature_service(feature_service), join_key)

    def read(self, keys: list[object]) -> dict[str, list[Any]]:
        rows = [{self.join_key: k} for k in keys]
        return dict(self.store.get_online_features(features=self.service, entity_rows=rows).to_dict())

    def read_frame(self, keys: list[object]) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self.read(keys))


def apply_registry(settings: Settings | None = None) -> None:
    """Deploy ``feature_repo/`` into the registry in-process, as ``feast apply`` does.

    For tests and scripts that already imported Feast (the CLI re-imports it, ~8 s). Repo modules
    are re-imported so their environment-dependent source paths are read afresh. Sources are
    validated as the CLI does; the partition globs' warning is filtered (:func:`feature_source_path`).
    """
    import os
    import sys

    from feast.repo_config import load_repo_config
    from feast.repo_operations import apply_total

    settings = settings or get_settings()
    repo = settings.feast_repo_path.resolve()
    for name, module in list(sys.modules.items()):
        if getattr(module, "__file__", None) and str(module.__file__).startswith(str(repo) + os.sep):
            del sys.modules[name]
    if str(repo) not in sys.path:
        # Feast imports the repo's files as top-level modules; its CLI puts the repo on sys.path too.
        sys.path.append(str(repo))
    cwd = Path.cwd()
    with settings.feast_environment_applied():
        config = load_repo_config(repo, repo / "feature_store.yaml")
        try:
            apply_total(config, repo, skip_source_validation=False)
        finally:
            os.chdir(cwd)
