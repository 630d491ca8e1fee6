"""The one coercion policy: how a landed Arrow table becomes columns of the contract's dtypes.

Upstream teams write parquet with plain pandas, Spark or Arrow, each its own way: an int column
with a missing value becomes float64 with NaN, keys come as uint64, strings as ``string_view`` or
dictionary-encoded, timestamps in any unit and zone. The rule (docs/data_contracts.md has the table):

* a conversion that keeps every value is accepted (any int width; unsigned ints that fit int64;
  floats whose non-null values are whole numbers into int columns, their NaNs become nulls judged
  by the column's null rule; ``string_view``, ``large_string``, dictionary and UTF-8 binary into
  string; any timestamp unit, naive (read as UTC) or any known zone, into UTC; dates into midnight
  UTC);
* a value that cannot be kept (outside int64's range, a fractional value in an int column, bytes
  that are not UTF-8) quarantines its row, with a reason naming the value;
* only a column that cannot be read at all (a type with no lossless way to the contract's, a time
  zone pandas does not know) rejects the batch, with a reason naming the column and the fix.

Every reader of landed data goes through :func:`coerce_table`, so the rule is written once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from mlloop.spec import ColumnSpec

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
# Columns pandas adds for an unnamed, non-range index (``df.to_parquet()``): not data.
_PANDAS_INDEX = re.compile(r"^__index_level_\d+__$")


class Unreadable(ValueError):
    """A column has no lossless way to its contract type; the message names the column and the fix."""


@dataclass
class Coerced:
    """The table's columns as pandas, the values that could not be kept, and the unreadable columns."""

    frame: pd.DataFrame
    lossy: dict[str, dict[int, str]] = field(default_factory=dict)  # column -> row -> reason
    errors: list[str] = field(default_factory=list)

    def row_reasons(self) -> dict[int, list[str]]:
        rows: dict[int, list[str]] = {}
        for reasons in self.lossy.values():
            for row, reason in reasons.items():
                rows.setdefault(row, []).append(reason)
        return rows


def duplicate_columns(names: list[str]) -> list[str]:
    """Column names a table holds more than once (Arrow allows it; no contract can mean it)."""
    return sorted({name for name in names if names.count(name) > 1})


def coerce_table(table: pa.Table, columns: Mapping[str, ColumnSpec]) -> Coerced:
    """Every column of ``table`` as pandas; those the contract declares in its dtype (see module doc).

    Columns the contract does not know are kept as read (the caller decides about them), except the
    ``__index_level_N__`` columns pandas writes for an index, which are not data. A key stored as a
    named pandas index is an ordinary column here (its name is the contract's).
    """
    import pandas as pd
    import pyarrow as pa

    out: dict[str, Any] = {}
    lossy: dict[str, dict[int, str]] = {}
    errors: list[str] = []
    for index, name in enumerate(table.schema.names):
        if name in out:
            continue  # a duplicate name: the caller rejects the batch for it (duplicate_columns)
        column = table.column(index)
        spec = columns.get(name)
        if spec is None:
            if not _PANDAS_INDEX.match(name):
                out[name] = _as_read(column)
            continue
        try:
            out[name], bad = _coerce(name, column, spec.dtype)
        except (Unreadable, pa.ArrowException) as exc:
            reason = (
                str(exc) if isinstance(exc, Unreadable) else f"column '{name}' cannot be read as {spec.dtype}: {exc}"
            )
            errors.append(reason)
            out[name] = pd.Series([None] * table.num_rows, dtype=object)
            continue
        if bad:
            lossy[name] = bad
    frame = pd.DataFrame(out, index=pd.RangeIndex(table.num_rows))
    return Coerced(frame=frame, lossy=lossy, errors=errors)


# ------------------------------------------------------------------------------ per dtype
def _coerce(name: str, column: pa.ChunkedArray, dtype: str) -> tuple[Any, dict[int, str]]:
    import pyarrow as pa

    array = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if dtype == "int64":
        return _to_int64(name, array)
    if dtype == "float64":
        return _to_float64(name, array)
    if dtype == "string":
        return _to_string(name, array)
    if dtype == "datetime":
        return _to_utc(name, array), {}
    if dtype == "bool":
        return _to_bool(name, array), {}
    raise Unreadable(f"column '{name}': unknown contract dtype {dtype!r}")


def _wrong_type(name: str, array: pa.Array, dtype: str, hint: str = "") -> Unreadable:
    return Unreadable(f"column '{name}' has type {array.type}, the contract says {dtype}{hint}")


def _to_int64(name: str, array: pa.Array) -> tuple[Any, dict[int, str]]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(array)
    if pa.types.is_null(array.type):
        return _int_series(np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool)), {}
    nulls = array.is_null().to_numpy(zero_copy_only=False)
    if pa.types.is_integer(array.type):
        if pa.types.is_uint64(array.type):
            too_big = pc.fill_null(pc.greater(array, pa.scalar(INT64_MAX, pa.uint64())), False).to_numpy(
                zero_copy_only=False
            )
            raw = array.to_numpy(zero_copy_only=False) if not nulls.any() else pc.fill_null(array, 0).to_numpy()
            bad = {int(i): f"{name}: value {int(raw[i])} does not fit int64" for i in np.flatnonzero(too_big)}
            values = np.where(too_big, 0, raw).astype(np.int64)
            return _int_series(values, nulls | too_big), bad
        values = pc.fill_null(array.cast(pa.int64()), 0).to_numpy(zero_copy_only=False)
        return _int_series(values, nulls), {}
    if pa.types.is_floating(array.type) or pa.types.is_decimal(array.type):
        floats = array.cast(pa.float64()) if pa.types.is_floating(array.type) else None
        if floats is None:  # decimals: exact Python values, then the same rules
            return _int_from_objects(name, array.to_pylist())
        values = pc.fill_null(floats, np.nan).to_numpy(zero_copy_only=False)
        missing = np.isnan(values)
        # float64 represents 2**63 exactly and nothing between INT64_MAX and it: ">=" is exact.
        out_of_range = ~missing & ((values >= 2.0**63) | (values < -(2.0**63)))
        fractional = ~missing & ~out_of_range & (values != np.floor(values))
        bad = {int(i): f"{name}: value {float(values[i])} does not fit int64" for i in np.flatnonzero(out_of_range)}
        for i in np.flatnonzero(fractional):
            bad[int(i)] = f"{name}: fractional value {float(values[i])} in an int column"
        keep = ~(missing | out_of_range | fractional)
        ints = np.zeros(n, dtype=np.int64)
        ints[keep] = values[keep].astype(np.int64)
        return _int_series(ints, ~keep), bad
    raise _wrong_type(name, array, "int64")


def _int_from_objects(name: str, values: list[Any]) -> tuple[Any, dict[int, str]]:
    import numpy as np

    ints = np.zeros(len(values), dtype=np.int64)
    nulls = np.zeros(len(values), dtype=bool)
    bad: dict[int, str] = {}
    for i, value in enumerate(values):
        if value is None or value != value:
            nulls[i] = True
        elif value != int(value):
            nulls[i], bad[i] = True, f"{name}: fractional value {value} in an int column"
        elif not INT64_MIN <= int(value) <= INT64_MAX:
            nulls[i], bad[i] = True, f"{name}: value {value} does not fit int64"
        else:
            ints[i] = int(value)
    return _int_series(ints, nulls), bad


def _int_series(values: np.ndarray, nulls: np.ndarray) -> Any:
    """NumPy int64 unless nulls force pandas' nullable Int64: GX checks ranges vectorized only on
    NumPy dtypes and falls back to a Python call per value for Int64 (17x slower)."""
    import pandas as pd

    if not nulls.any():
        return pd.Series(values, dtype="int64")
    return pd.Series(pd.arrays.IntegerArray(values, nulls))


FLOAT64_EXACT_INT = 2**53  # ints beyond it have no exact float64


def _to_float64(name: str, array: pa.Array) -> tuple[Any, dict[int, str]]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = array.type
    numeric = pa.types.is_floating(kind) or pa.types.is_integer(kind) or pa.types.is_decimal(kind)
    if not (numeric or pa.types.is_null(kind)):
        raise _wrong_type(name, array, "float64")
    bad: dict[int, str] = {}
    if pa.types.is_integer(kind):
        large = pc.fill_null(pc.greater_equal(pc.abs(array.cast(pa.float64(), safe=False)), FLOAT64_EXACT_INT), False)
        for i in np.flatnonzero(large.to_numpy(zero_copy_only=False)):  # rare: checked one by one
            value = array[int(i)].as_py()
            if int(float(value)) != value:
                bad[int(i)] = f"{name}: value {value} has no exact float64"
        if bad:
            inexact = np.zeros(len(array), dtype=bool)
            inexact[list(bad)] = True
            array = pc.if_else(pa.array(inexact), pa.scalar(None, kind), array)
    # Decimals are approximations in float64 by nature (0.1 has no exact float): converted as such.
    return array.cast(pa.float64(), safe=False).to_pandas(), bad


def _to_string(name: str, array: pa.Array) -> tuple[Any, dict[int, str]]:
    import pandas as pd
    import pyarrow as pa

    kind = array.type
    bad: dict[int, str] = {}
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_binary_view(kind):
        # Spark without binaryAsString writes strings as bare binary: UTF-8 bytes are strings.
        values = []
        for i, raw in enumerate(array.to_pylist()):
            try:
                values.append(None if raw is None else raw.decode("utf-8"))
            except UnicodeDecodeError:
                values.append(None)
                bad[i] = f"{name}: bytes {raw[:20]!r} are not UTF-8 text"
        return pd.Series(values, dtype=object), bad
    text = pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)
    if not (text or pa.types.is_null(kind)):
        raise _wrong_type(name, array, "string")
    series = array.cast(pa.large_string()).to_pandas()
    return series.astype(object).where(series.notna(), None), bad


def _known_zone(tz: str) -> bool:
    import pandas as pd

    try:
        pd.Timestamp(0, tz=tz)
    except Exception:  # pytz.UnknownTimeZoneError, zoneinfo's, ValueError: pandas cannot use it
        return False
    return True


def _to_utc(name: str, array: pa.Array) -> Any:
    import pyarrow as pa

    kind = array.type
    if pa.types.is_null(kind):
        return array.cast(pa.timestamp("us", tz="UTC")).to_pandas()
    if pa.types.is_date(kind):
        array = array.cast(pa.timestamp("s")) if pa.types.is_date32(kind) else array.cast(pa.timestamp("ms"))
        kind = array.type
    if not pa.types.is_timestamp(kind):
        raise _wrong_type(name, array, "datetime", " (write a parquet timestamp, not text or numbers)")
    if kind.tz is not None and not _known_zone(kind.tz):
        raise Unreadable(
            f"column '{name}' has time zone '{kind.tz}', which is not a zone name pandas knows: write the "
            "timestamps in UTC or with an IANA zone name (e.g. 'America/New_York'), then re-deliver the batch"
        )
    # An aware timestamp stores UTC instants (the zone is a label): relabelling it is lossless.
    # A naive one is read as UTC, the contract's zone.
    return array.cast(pa.timestamp(kind.unit, tz="UTC")).to_pandas()


def _to_bool(name: str, array: pa.Array) -> Any:
    import pyarrow as pa

    if not (pa.types.is_boolean(array.type) or pa.types.is_null(array.type)):
        raise _wrong_type(name, array, "bool")
    return array.cast(pa.bool_()).to_pandas().astype("boolean")


def _as_read(column: pa.ChunkedArray) -> Any:
    """A column the contract does not declare, as pandas would read it (only its name matters)."""
    import pandas as pd

    try:
        return column.to_pandas()
    except Exception:  # a type pandas cannot convert: the caller rejects unknown columns anyway
        return pd.Series([None] * len(column), dtype=object)
