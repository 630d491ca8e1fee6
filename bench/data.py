"""Synthetic feature partitions at benchmark sizes, in a use case's schema read from its spec.

The generator of the use case models one day of applications; benchmarks need millions of rows
over many days quickly, so the rows come from :func:`mlloop.synthetic.feature_rows` (vectorized
numpy, every value inside its column's rules) instead.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from mlloop.ingestion import features_path
from mlloop.spec import UseCaseSpec
from mlloop.storage import Storage
from mlloop.synthetic import entity_keys, feature_rows

START = dt.date(2026, 1, 1)


def write_feature_days(storage: Storage, spec: UseCaseSpec, customers: int, days: int, seed: int = 0) -> list[dt.date]:
    """One feature row per entity per day for ``days`` days (every entity, every day)."""
    rng = np.random.default_rng(seed)
    keys = entity_keys(spec, customers)
    written = []
    for i in range(days):
        day = START + dt.timedelta(days=i)
        storage.write_frame(feature_rows(spec, keys, day, rng), features_path(storage, spec, day))
        written.append(day)
    return written
