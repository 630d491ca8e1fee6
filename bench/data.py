"""Synthetic feature partitions at benchmark sizes, in the bundled use case's schema.

The generator of the use case models one day of applications; benchmarks need millions of rows
over many days quickly, so this writes the same columns with vectorized numpy instead.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from mlloop.ingestion import features_path
from mlloop.spec import UseCaseSpec
from mlloop.storage import Storage

START = dt.date(2026, 1, 1)


def feature_frame(spec: UseCaseSpec, keys: np.ndarray, day: dt.date, rng: np.random.Generator) -> pd.DataFrame:
    n = len(keys)
    start = pd.Timestamp(day, tz="UTC")
    income = np.exp(rng.normal(10.8, 0.5, n))
    frame = pd.DataFrame(
        {
            spec.entity.join_key: keys.astype(np.int64),
            spec.raw.timestamp_column: start + pd.to_timedelta(rng.integers(0, 86_400, n), unit="s"),
            "age": rng.integers(18, 90, n),
            "annual_income": income,
            "credit_utilization": rng.random(n),
            "n_late_payments_12m": rng.poisson(0.5, n),
            "n_open_accounts": rng.integers(1, 12, n),
            "loan_amount": np.round(np.exp(rng.normal(9.2, 0.6, n)), -2),
            "debt_to_income": rng.beta(2, 5, n) * 1.2,
            "loan_to_income": rng.random(n),
            "employment_type": rng.choice(["salaried", "self_employed", "unemployed", "retired"], n),
            "region": rng.choice(["north", "south", "east", "west"], n),
        }
    )
    return frame.sort_values(spec.raw.timestamp_column, kind="stable").reset_index(drop=True)


def write_feature_days(storage: Storage, spec: UseCaseSpec, customers: int, days: int, seed: int = 0) -> list[dt.date]:
    """One feature row per customer per day for ``days`` days (every customer, every day)."""
    rng = np.random.default_rng(seed)
    keys = 100_000 + np.arange(customers)
    written = []
    for i in range(days):
        day = START + dt.timedelta(days=i)
        storage.write_frame(feature_frame(spec, keys, day, rng), features_path(storage, spec, day))
        written.append(day)
    return written
