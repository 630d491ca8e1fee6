"""Synthetic feature rows for tests and benchmarks, in any use case's schema, read from its spec.

A use case's generator models its domain one day at a time; tests and benchmarks that need feature
partitions of a given size (or of a use case with no generator) need rows that merely fit the
feature view's contract: the join key, the timestamp and every ``features.columns`` entry, each
value inside the column's ``min``/``max`` and ``allowed`` values. Vectorized numpy (imported inside
the functions, as everywhere in the core), so millions of rows take a second. Nothing here is a
realistic distribution: do not train a model on it and read its metrics.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from mlloop.spec import ColumnSpec, UseCaseSpec

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

UNBOUNDED_SPAN = 100.0
"""Width of the value range of a numeric column that declares only one bound, or none."""


def entity_keys(spec: UseCaseSpec, n: int, first: int = 100_000) -> np.ndarray:
    """``n`` distinct join-key values of the spec's key type (``first``, ``first + 1``, ... or their text)."""
    import numpy as np

    numbers = first + np.arange(n, dtype=np.int64)
    if spec.entity.dtype == "string":
        return np.array([f"{spec.entity.name}-{k:06d}" for k in numbers], dtype=object)
    return numbers


def _bounds(column: ColumnSpec) -> tuple[float, float]:
    low = column.min if column.min is not None else (column.max - UNBOUNDED_SPAN if column.max is not None else 0.0)
    high = column.max if column.max is not None else low + UNBOUNDED_SPAN
    return low, high


def column_values(name: str, column: ColumnSpec, n: int, rng: np.random.Generator, day: dt.date) -> np.ndarray:
    """``n`` values that satisfy one column's rules (no nulls, even where the column allows them)."""
    import numpy as np
    import pandas as pd

    if column.dtype == "string":
        choices = column.allowed or [f"{name}_{i}" for i in range(5)]
        return rng.choice(np.array(choices, dtype=object), n)
    if column.dtype == "bool":
        return rng.random(n) < 0.5
    if column.dtype == "datetime":
        return (pd.Timestamp(day, tz="UTC") + pd.to_timedelta(rng.integers(0, 86_400, n), unit="s")).to_numpy()
    low, high = _bounds(column)
    if column.dtype == "int64":
        return rng.integers(int(np.ceil(low)), int(np.floor(high)) + 1, n, dtype=np.int64)
    return rng.uniform(low, high, n)


def feature_rows(spec: UseCaseSpec, keys: np.ndarray, day: dt.date, rng: np.random.Generator) -> pd.DataFrame:
    """One feature row per key observed at a random time of ``day``, sorted by time, in the columns and
    order of a feature partition ingestion writes (join key, timestamp, ``features.columns``)."""
    import numpy as np
    import pandas as pd

    n = len(keys)
    key, ts = spec.entity.join_key, spec.raw.timestamp_column
    frame = pd.DataFrame(
        {
            key: keys.astype(np.int64) if spec.entity.dtype == "int64" else keys.astype(str).astype(object),
            ts: pd.Timestamp(day, tz="UTC") + pd.to_timedelta(rng.integers(0, 86_400, n), unit="s"),
            **{name: column_values(name, column, n, rng, day) for name, column in spec.features.columns.items()},
        }
    )
    return frame.sort_values(ts, kind="stable").reset_index(drop=True)
