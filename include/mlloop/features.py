"""Validated raw rows -> rows of the use case's Feast feature view (its offline source)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlloop.spec import UseCaseSpec

if TYPE_CHECKING:
    import pandas as pd


class FeatureBuildError(ValueError):
    """A derived-feature expression in the spec cannot be evaluated on the batch."""


def build_features(valid: pd.DataFrame, spec: UseCaseSpec) -> pd.DataFrame:
    """Compute derived features and keep the entity key, the event timestamp and the features.

    Derived features are pandas expressions from ``features.derived`` (``total_debt / annual_income``),
    evaluated on float copies of the numeric columns; a division by zero gives a missing value, not
    infinity, so downstream range checks and models see one kind of "unknown".
    """
    import numpy as np
    import pandas as pd

    key, ts = spec.entity.join_key, spec.raw.timestamp_column
    numeric = {
        name: pd.to_numeric(valid[name], errors="coerce").astype("float64")
        for name, col in spec.raw.columns.items()
        if col.dtype in ("int64", "float64") and name in valid
    }
    env = valid.assign(**numeric)
    out = valid[[key, ts]].copy()
    for name, expression in spec.features.derived.items():
        try:
            values = env.eval(expression, engine="python")
        except Exception as exc:
            raise FeatureBuildError(f"{spec.name}: features.derived.{name} = '{expression}' failed: {exc}") from exc
        env[name] = pd.Series(values, index=env.index).replace([np.inf, -np.inf], np.nan).astype("float64")
    for name, col in spec.features.columns.items():
        series = env[name] if name in spec.features.derived else valid[name]
        if col.dtype == "int64" and not col.nullable:
            series = series.astype("int64")
        elif col.dtype == "float64":
            series = series.astype("float64")
        out[name] = series.to_numpy() if col.dtype != "int64" or not col.nullable else series
    out[key] = out[key].astype("int64") if spec.entity.dtype == "int64" else out[key].astype(str)
    return out.sort_values([ts, key], kind="stable").reset_index(drop=True)
