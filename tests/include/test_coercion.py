"""The coercion policy, row by row (docs/data_contracts.md): what is converted without loss, which
values quarantine their row, and which columns reject the batch. Plain Arrow tables, no GX."""

from __future__ import annotations

import decimal
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from mlloop.coercion import coerce_table
from mlloop.spec import ColumnSpec

# (contract dtype, arrow array, values after coercion (None = null), {row: reason fragment})
LOSSLESS_OR_LOSSY: list[tuple[str, pa.Array, list[Any], dict[int, str]]] = [
    ("int64", pa.array([1, -2, None], pa.int8()), [1, -2, None], {}),
    ("int64", pa.array([1, 2**63 - 1], pa.uint64()), [1, 2**63 - 1], {}),
    (
        "int64",
        pa.array([1, 2**63, 2**64 - 1], pa.uint64()),
        [1, None, None],
        {1: "does not fit int64", 2: "value 18446744073709551615"},
    ),
    ("int64", pa.array([1.0, float("nan"), 3.0]), [1, None, 3], {}),  # NaN: a null, judged by the null rule
    (
        "int64",
        pa.array([1.0, 2.5, float("inf"), 2.0**63]),
        [1, None, None, None],
        {1: "fractional value 2.5", 2: "value inf does not fit", 3: "does not fit int64"},
    ),
    ("int64", pa.array([decimal.Decimal("4"), decimal.Decimal("4.5")]), [4, None], {1: "fractional value 4.5"}),
    ("int64", pa.nulls(2), [None, None], {}),
    ("float64", pa.array([1, 2**53, 2**53 + 1], pa.int64()), [1.0, float(2**53), None], {2: "has no exact float64"}),
    ("float64", pa.array([1.5, None], pa.float32()), [1.5, None], {}),
    ("string", pa.array(["a", None]).cast(pa.string_view()), ["a", None], {}),
    ("string", pa.array(["a", "b"]).cast(pa.large_string()), ["a", "b"], {}),
    ("string", pa.array(["a", "b", "a"]).dictionary_encode(), ["a", "b", "a"], {}),
    ("string", pa.array([b"MTR-1", b"\xff\xfe"], pa.binary()), ["MTR-1", None], {1: "are not UTF-8 text"}),
    ("bool", pa.array([True, None]), [True, None], {}),
]


@pytest.mark.parametrize(("dtype", "array", "values", "lossy"), LOSSLESS_OR_LOSSY)
def test_values_are_kept_or_their_row_gets_a_reason(
    dtype: str, array: pa.Array, values: list[Any], lossy: dict[int, str]
) -> None:
    coerced = coerce_table(pa.table({"c": array}), {"c": ColumnSpec(dtype=dtype)})  # type: ignore[arg-type]
    assert coerced.errors == []
    got = [None if pd.isna(v) else v for v in coerced.frame["c"].astype(object).tolist()]
    assert got == values
    reasons = coerced.lossy.get("c", {})
    assert set(reasons) == set(lossy)
    for row, says in lossy.items():
        assert says in reasons[row]


def test_timestamps_of_any_unit_and_known_zone_become_the_same_utc_instants() -> None:
    instants = pa.array([0, 1_700_000_000_000], pa.timestamp("ms", tz="UTC"))
    variants = {
        "naive ms (read as UTC)": instants.cast(pa.timestamp("ms")),
        "s": instants.cast(pa.timestamp("s", tz="UTC")),
        "ns, Europe/Berlin": instants.cast(pa.timestamp("ns", tz="Europe/Berlin")),
        "us, +05:30": instants.cast(pa.timestamp("us", tz="+05:30")),
    }
    expected = coerce_table(pa.table({"t": instants}), {"t": ColumnSpec(dtype="datetime")}).frame["t"]
    for name, array in variants.items():
        got = coerce_table(pa.table({"t": array}), {"t": ColumnSpec(dtype="datetime")}).frame["t"]
        assert str(got.dt.tz) == "UTC", name
        assert (got == expected).all(), name
    dates = coerce_table(pa.table({"t": pa.array([0], pa.date32())}), {"t": ColumnSpec(dtype="datetime")}).frame["t"]
    assert dates.iloc[0].isoformat() == "1970-01-01T00:00:00+00:00"


UNREADABLE = [
    ("int64", pa.array(["1", "2"]), "column 'c' has type string, the contract says int64"),
    ("int64", pa.array([True, False]), "column 'c' has type bool, the contract says int64"),
    ("string", pa.array([1, 2]), "column 'c' has type int64, the contract says string"),
    ("datetime", pa.array(["2026-01-01"]), "the contract says datetime (write a parquet timestamp"),
    (
        "datetime",
        pa.array([0], pa.timestamp("us", tz="Eastern Standard Time")),
        "column 'c' has time zone 'Eastern Standard Time', which is not a zone name pandas knows",
    ),
]


@pytest.mark.parametrize(("dtype", "array", "says"), UNREADABLE)
def test_a_column_with_no_lossless_conversion_is_named_with_the_fix(dtype: str, array: pa.Array, says: str) -> None:
    coerced = coerce_table(pa.table({"c": array}), {"c": ColumnSpec(dtype=dtype)})  # type: ignore[arg-type]
    assert len(coerced.errors) == 1 and says in coerced.errors[0]


def test_pandas_index_artefacts_are_dropped_and_other_columns_kept_as_read() -> None:
    table = pa.table({"c": [1, 2], "__index_level_0__": [10, 11], "extra": ["x", "y"]})
    frame = coerce_table(table, {"c": ColumnSpec(dtype="int64")}).frame
    assert list(frame.columns) == ["c", "extra"]
