"""The as-of point-in-time join against Feast's own DuckDB store, on data built to hit the edges.

Oracle: the same Feast repository (two feature views, one with a created-timestamp column and a
ttl, one keyed by a string with no ttl), the same entity rows, answered once by Feast's
``DuckDBOfflineStore`` and once by ``AsOfDuckDBOfflineStore``: every row and value must be equal.
Hand-written rows hit each edge on purpose (the ttl boundary exactly, ties on the event time,
rows before an entity's first feature row, unknown entities, duplicated rows, a null key); random
rows (times on a coarse grid, so ties and exact hits are frequent) cover what the hand-written ones
miss. On the S3 root the files live on a moto server on loopback; Feast's own store reads them
through the same prepared DuckDB connection.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlloop.storage import Storage

T0 = pd.Timestamp("2026-03-01", tz="UTC")
DAY = pd.Timedelta(days=1)
SEC = pd.Timedelta(seconds=1)
TTL = dt.timedelta(days=2)
OURS = {"type": "mlloop.feast_offline_store.AsOfDuckDBOfflineStore"}
OURS_S3 = {"type": "mlloop.feast_offline_store.S3DuckDBOfflineStore"}
FEAST = {"type": "duckdb"}


# ------------------------------------------------------------------------------------------ data
def customer_rows(rng: np.random.Generator) -> pd.DataFrame:
    """View ``activity`` (key ``customer_id``, created timestamp ``created``, ttl 2 days)."""
    hand = [
        # customer 1: two rows at T0, the later-created one wins (written first, so file order can't decide)
        (1, T0, T0 + pd.Timedelta(hours=2), 2.0, 20, "newer"),
        (1, T0 + DAY, T0 + DAY, 3.0, 30, "day1"),
        (1, T0, T0 + pd.Timedelta(hours=1), 1.0, 10, "older"),
        # customer 2: one row, a day after T0
        (2, T0 + DAY, T0 + DAY, 5.0, 50, "c2"),
        # customer 3: a tie whose other side has no created timestamp
        (3, T0, pd.NaT, 7.0, 70, "no-created"),
        (3, T0, T0, 8.0, 80, "created"),
        # customer 4: a tie like customer 1's, the later-created row written second
        (4, T0, T0 + pd.Timedelta(hours=1), 11.0, 110, "older"),
        (4, T0, T0 + pd.Timedelta(hours=2), 12.0, 120, "newer"),
    ]
    frame = pd.DataFrame(hand, columns=["customer_id", "event_timestamp", "created", "amount", "visits", "segment"])
    n = 3000
    times = T0 + pd.to_timedelta(rng.integers(0, 40, n) * 6, unit="h")  # a 6-hour grid: ties everywhere
    random = pd.DataFrame(
        {
            "customer_id": rng.integers(100, 300, n),
            "event_timestamp": times,
            # unique created times: a tie on both timestamps has no defined answer in Feast either
            "created": times + pd.to_timedelta(rng.permutation(n) + 1, unit="s"),
            "amount": rng.normal(100, 30, n).round(3),
            "visits": rng.integers(0, 50, n),
            "segment": rng.choice(["a", "b", "c"], n),
        }
    )
    return pd.concat([frame, random], ignore_index=True)


def merchant_rows(rng: np.random.Generator) -> pd.DataFrame:
    """View ``merchant`` (string key ``merchant_id``, no created timestamp, no ttl)."""
    hand = [
        ("m1", T0 - 10 * DAY, 0.1, 1),
        ("m1", T0 + DAY, 0.2, 2),
        ("m2", T0 - 100 * DAY, 0.3, 3),  # old, but the view has no ttl: still joined
    ]
    frame = pd.DataFrame(hand, columns=["merchant_id", "event_timestamp", "risk", "n_disputes"])
    n = 500
    random = pd.DataFrame(
        {
            "merchant_id": [f"r{i}" for i in rng.integers(0, 40, n)],
            "event_timestamp": T0 + pd.to_timedelta(rng.permutation(n) * 1800, unit="s"),  # no ties
            "risk": rng.random(n).round(4),
            "n_disputes": rng.integers(0, 9, n),
        }
    )
    return pd.concat([frame, random], ignore_index=True)


def entity_rows(customers: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Label rows with their own columns: a row id, a label, a comment, a nullable integer."""
    hand: list[tuple[int, str | None, pd.Timestamp]] = [
        (1, "m1", T0 - SEC),  # before customer 1's first row
        (1, "m1", T0),  # exactly at the tie
        (1, "m1", T0 + pd.Timedelta(hours=12)),
        (1, "m2", T0 + DAY),  # exactly at an update
        (1, "m2", T0 + DAY + TTL),  # exactly at the ttl boundary: still joined
        (1, "m2", T0 + DAY + TTL),  # the same row again
        (1, "m9", T0 + DAY + TTL + SEC),  # a second past the ttl; a merchant with no rows
        (2, "m1", T0),  # before customer 2's first row
        (99, "m1", T0 + DAY),  # a customer with no rows at all
        (3, None, T0 + pd.Timedelta(hours=1)),  # the null-created tie; no merchant key
        (4, "m1", T0 + pd.Timedelta(hours=1)),  # the tie written the other way round
    ]
    frame = pd.DataFrame(hand, columns=["customer_id", "merchant_id", "event_timestamp"])
    n = 4000
    picks = customers.sample(n=n // 2, replace=True, random_state=7)
    offsets = rng.choice(
        [pd.Timedelta(0), pd.Timedelta(TTL), pd.Timedelta(TTL) + SEC, -SEC, pd.Timedelta(hours=5)], n // 2
    )
    exact = pd.DataFrame(
        {
            "customer_id": picks["customer_id"].to_numpy(),
            "merchant_id": [f"r{i}" for i in rng.integers(0, 45, n // 2)],
            "event_timestamp": picks["event_timestamp"].to_numpy() + offsets,
        }
    )
    random = pd.DataFrame(
        {
            "customer_id": rng.integers(90, 310, n // 2),
            "merchant_id": [f"r{i}" for i in rng.integers(0, 45, n // 2)],
            "event_timestamp": T0 + pd.to_timedelta(rng.integers(-86_400, 14 * 86_400, n // 2), unit="s"),
        }
    )
    frame = pd.concat([frame, exact, random], ignore_index=True)
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
    frame["_entity_row"] = np.arange(len(frame))
    frame["label"] = rng.integers(0, 2, len(frame))
    frame["comment"] = [f"row {i}" for i in range(len(frame))]
    frame["weight"] = pd.array([None if i % 7 == 0 else i for i in range(len(frame))], dtype="Int64")
    return frame.sample(frac=1.0, random_state=3).reset_index(drop=True)  # not in time order


def write_partitions(storage: Storage, dataset: str, frame: pd.DataFrame) -> str:
    """One parquet file per day, as ingestion writes them; returns the glob a FileSource reads."""
    for day, part in frame.groupby(frame["event_timestamp"].dt.date, sort=True):
        storage.write_frame(part.reset_index(drop=True), storage.path(dataset, f"date={day}", "data.parquet"))
    return storage.path(dataset, "date=*", "data.parquet")


# ------------------------------------------------------------------------------------------ Feast
def feast_objects(activity_glob: str, merchant_glob: str) -> dict[str, Any]:
    from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
    from feast.data_format import ParquetFormat
    from feast.types import Float64, Int64, String

    customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
    merchant = Entity(name="merchant", join_keys=["merchant_id"], value_type=ValueType.STRING)
    activity = FeatureView(
        name="activity",
        entities=[customer],
        ttl=TTL,
        schema=[
            Field(name="amount", dtype=Float64),
            Field(name="visits", dtype=Int64),
            Field(name="segment", dtype=String),
        ],
        source=FileSource(
            name="activity_source",
            path=activity_glob,
            file_format=ParquetFormat(),
            timestamp_field="event_timestamp",
            created_timestamp_column="created",
        ),
    )
    merchant_fv = FeatureView(
        name="merchant",
        entities=[merchant],
        ttl=dt.timedelta(0),
        schema=[Field(name="risk", dtype=Float64), Field(name="n_disputes", dtype=Int64)],
        source=FileSource(
            name="merchant_source", path=merchant_glob, file_format=ParquetFormat(), timestamp_field="event_timestamp"
        ),
    )
    both = FeatureService(name="both", features=[activity[["amount", "segment"]], merchant_fv])
    whole = FeatureService(name="whole", features=[merchant_fv, activity])
    return {"objects": [customer, merchant, activity, merchant_fv, both, whole]}


def open_store(repo: Path, offline: dict[str, str]) -> Any:
    from feast import FeatureStore
    from feast.repo_config import RepoConfig

    config = RepoConfig(
        project="asof_test",
        provider="local",
        registry=str(repo / "registry.db"),
        offline_store=offline,
        online_store={"type": "sqlite", "path": str(repo / "online.db")},
        entity_key_serialization_version=3,
        repo_path=repo,
    )
    return FeatureStore(config=config)


@pytest.fixture
def moto_s3(moto_bucket: str) -> str:
    """The offline parquet's root on the moto bucket."""
    return f"s3://{moto_bucket}/offline"


def build_stores(tmp_path: Path, root: str, offline: dict[str, str]) -> dict[str, Any]:
    """Ours and Feast's own store over the same repository and the same parquet files."""
    rng = np.random.default_rng(17)
    storage = Storage.from_url(root)
    customers, merchants = customer_rows(rng), merchant_rows(rng)
    activity_glob = write_partitions(storage, "activity", customers)
    objects = feast_objects(activity_glob, write_partitions(storage, "merchant", merchants))
    repo = tmp_path / "repo"
    repo.mkdir()
    ours = open_store(repo, offline)
    ours.apply(objects["objects"])
    return {"ours": ours, "feast": open_store(repo, FEAST), "entities": entity_rows(customers, rng)}


@pytest.fixture
def local_stores(tmp_path: Path) -> dict[str, Any]:
    return build_stores(tmp_path, str(tmp_path / "offline"), OURS)


@pytest.fixture(params=["local", "s3"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """Both stores on the local root, then on an S3 root."""
    if request.param == "local":
        return build_stores(tmp_path, str(tmp_path / "offline"), OURS)
    import ibis

    from mlloop.feast_offline_store import S3DuckDBOfflineStoreConfig, prepare_connection

    built = build_stores(tmp_path, request.getfixturevalue("moto_s3"), OURS_S3)
    # Feast's own store cannot reach a moto endpoint; give its connection the same secret ours uses.
    prepare_connection(ibis.get_backend().con, S3DuckDBOfflineStoreConfig())
    return built


def retrieve(store: Any, entities: pd.DataFrame, service: str, full_feature_names: bool) -> tuple[Any, pd.DataFrame]:
    job = store.get_historical_features(
        entity_df=entities, features=store.get_feature_service(service), full_feature_names=full_feature_names
    )
    return job, job.to_df()


def assert_same_result(ours: pd.DataFrame, feast: pd.DataFrame, entities: pd.DataFrame) -> None:
    """Same columns in the same order, same rows, same values and feature dtypes; entity columns as given."""
    assert list(ours.columns) == list(feast.columns)
    assert len(ours) == len(feast) == len(entities)
    feast = feast.sort_values("_entity_row").reset_index(drop=True)
    assert ours["_entity_row"].tolist() == entities["_entity_row"].tolist(), "ours keeps the input order"
    ours = ours.sort_values("_entity_row").reset_index(drop=True)
    features = [c for c in ours.columns if c not in entities.columns]
    pd.testing.assert_frame_equal(ours[features], feast[features])
    for column in entities.columns:
        # Feast hands entity columns through DuckDB (timestamps come back in microseconds); ours as given
        pd.testing.assert_series_equal(ours[column], feast[column], check_dtype=False, obj=column)


# ------------------------------------------------------------------------------------------ tests
@pytest.mark.parametrize("full_feature_names", [False, True], ids=["short names", "full names"])
def test_as_of_join_equals_feasts_point_in_time_join(stores: dict[str, Any], full_feature_names: bool) -> None:
    from mlloop.feast_asof_join import AsOfRetrievalJob

    entities = stores["entities"]
    job, ours = retrieve(stores["ours"], entities, "both", full_feature_names)
    assert isinstance(job, AsOfRetrievalJob), "the common case must not be left to Feast"
    _, feast = retrieve(stores["feast"], entities, "both", full_feature_names)

    assert_same_result(ours, feast, entities)
    amount = "activity__amount" if full_feature_names else "amount"
    risk = "merchant__risk" if full_feature_names else "risk"
    names = [("activity", "amount"), ("activity", "segment"), ("merchant", "risk"), ("merchant", "n_disputes")]
    assert list(ours.columns) == [*entities.columns, *(f"{v}__{f}" if full_feature_names else f for v, f in names)]
    # The edges, readable: entity rows 0..10 are the hand-written ones
    hand = ours.set_index("_entity_row").loc[range(11)]
    assert hand[amount].tolist()[:7] == pytest.approx([np.nan, 2.0, 2.0, 3.0, 3.0, 3.0, np.nan], nan_ok=True)
    assert hand[amount].isna().tolist()[7:9] == [True, True]  # before the first row; no rows at all
    assert hand[amount].tolist()[9:] == [8.0, 12.0]  # the created timestamp breaks ties, a missing one loses
    assert hand[risk].tolist() == pytest.approx(
        [0.1, 0.1, 0.1, 0.3, 0.3, 0.3, np.nan, 0.1, 0.2, np.nan, 0.1], nan_ok=True
    )
    assert ours[amount].notna().sum() > len(ours) / 4, "the random rows must hit features too"


def test_whole_views_in_the_services_order(stores: dict[str, Any]) -> None:
    entities = stores["entities"]
    _, ours = retrieve(stores["ours"], entities, "whole", True)
    _, feast = retrieve(stores["feast"], entities, "whole", True)

    assert_same_result(ours, feast, entities)
    assert list(ours.columns)[len(entities.columns) :] == [
        "merchant__risk",
        "merchant__n_disputes",
        "activity__amount",
        "activity__visits",
        "activity__segment",
    ]


def test_requests_outside_the_common_case_are_answered_by_feast(stores: dict[str, Any]) -> None:
    """filter_by_created_timestamp is left to Feast's implementation, and gives Feast's answer."""
    from mlloop.feast_asof_join import AsOfRetrievalJob

    entities = stores["entities"]
    features = stores["ours"].get_feature_service("both")
    ours = stores["ours"].get_historical_features(
        entity_df=entities, features=features, filter_by_created_timestamp=True
    )
    feast = stores["feast"].get_historical_features(
        entity_df=entities, features=features, filter_by_created_timestamp=True
    )
    assert not isinstance(ours, AsOfRetrievalJob)
    order = ["_entity_row"]
    pd.testing.assert_frame_equal(
        ours.to_df().sort_values(order).reset_index(drop=True), feast.to_df().sort_values(order).reset_index(drop=True)
    )


def test_entity_timestamps_as_strings_or_naive_are_read_as_utc(stores: dict[str, Any]) -> None:
    entities = stores["entities"].head(200)
    _, expected = retrieve(stores["ours"], entities, "both", False)
    for converted in (
        entities.assign(event_timestamp=entities["event_timestamp"].dt.tz_localize(None)),
        entities.assign(event_timestamp=entities["event_timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")),
    ):
        _, got = retrieve(stores["ours"], converted, "both", False)
        pd.testing.assert_frame_equal(got[["amount", "risk"]], expected[["amount", "risk"]])


def test_a_retrieved_dataset_can_be_persisted(local_stores: dict[str, Any], tmp_path: Path) -> None:
    from feast.infra.offline_stores.file_source import SavedDatasetFileStorage

    job, ours = retrieve(local_stores["ours"], local_stores["entities"], "both", False)
    target = tmp_path / "saved.parquet"
    job.persist(SavedDatasetFileStorage(path=str(target)))

    saved = pd.read_parquet(target)
    pd.testing.assert_frame_equal(saved[["_entity_row", "amount", "risk"]], ours[["_entity_row", "amount", "risk"]])


def test_the_default_offline_store_is_the_as_of_one(mlloop_home: Path) -> None:
    from mlloop.settings import get_settings

    assert json.loads(get_settings().feast_offline_store) == OURS


def test_the_join_runs_as_a_sort_merge_as_of_join(local_stores: dict[str, Any]) -> None:
    """DuckDB may run a small-looking as-of join as a nested loop; for the entity rows (an Arrow
    table with no size estimate) that was 250x slower at 100k labels (bench B4: 84 s vs 0.3 s)."""
    import ibis

    from mlloop.feast_asof_join import join_cursor, join_sql

    job = local_stores["ours"].get_historical_features(
        entity_df=local_stores["entities"], features=local_stores["ours"].get_feature_service("both")
    )
    cursor, _ = join_cursor(ibis.get_backend().con, job.plan, job.entity_df)
    plan = "\n".join(row[1] for row in cursor.execute("EXPLAIN " + join_sql(job.plan)).fetchall())
    assert plan.count("ASOF_JOIN") == 2, plan
    assert "NESTED_LOOP_JOIN" not in plan, plan


def test_a_view_is_read_by_streaming_it_past_the_entity_keys(local_stores: dict[str, Any]) -> None:
    """The key filter hashes the entity rows and streams the view past them. Written as a correlated
    EXISTS, DuckDB collected every distinct key of the whole view into a hash aggregate first, for
    every scoring window: memory grew with the day's size (bench B3: 1.45x from 1M to 4M rows)."""
    import ibis

    from mlloop.feast_asof_join import TimeBounds, entity_keys_table, join_cursor, view_sql

    job = local_stores["ours"].get_historical_features(
        entity_df=local_stores["entities"], features=local_stores["ours"].get_feature_service("both")
    )
    cursor, _ = join_cursor(ibis.get_backend().con, job.plan, job.entity_df)
    try:
        bounds = TimeBounds.of(entity_keys_table(job.entity_df, job.plan))
        for n, view in enumerate(job.plan.views):
            sql = view_sql(view, f"v{n}", job.plan, bounds)
            plan = "\n".join(row[1] for row in cursor.execute("EXPLAIN " + sql).fetchall())
            assert "SEMI" in plan and "DELIM" not in plan, plan
    finally:
        cursor.close()


def test_a_narrow_request_reads_only_the_view_rows_it_can_join(stores: dict[str, Any]) -> None:
    """A scoring window asks for a few entities over a day: the answer is still Feast's, and each view
    is read only for those keys and that span (less the ttl), not its whole history (bench B3)."""
    from mlloop.feast_asof_join import TS, join_cursor

    everything = stores["entities"]
    start = T0 + DAY
    entities = everything[
        everything["customer_id"].isin([1, 2, 150, 151, 99])
        & everything["event_timestamp"].between(start, start + pd.Timedelta(hours=30))
    ].reset_index(drop=True)
    assert len(entities) >= 4
    job, ours = retrieve(stores["ours"], entities, "both", False)
    _, feast = retrieve(stores["feast"], entities, "both", False)
    assert_same_result(ours, feast, entities)

    cursor, views = join_cursor(job._connect(), job.plan, entities)
    cursor.close()
    by_name = {view.name: rows for view, rows in zip(job.plan.views, views, strict=True)}
    activity, merchant = by_name["activity"].to_pandas(), by_name["merchant"].to_pandas()
    newest, oldest = entities["event_timestamp"].max(), entities["event_timestamp"].min()
    assert set(activity.iloc[:, 0]) <= {1, 2, 150, 151, 99}  # the first column is the view's join key
    assert set(merchant.iloc[:, 0]) <= set(entities["merchant_id"].dropna())
    assert activity[TS].max() <= newest and activity[TS].min() >= oldest - TTL
    assert merchant[TS].max() <= newest  # no ttl on merchant: no lower bound
    assert len(activity) < 100 and len(merchant) < 500, (len(activity), len(merchant))
