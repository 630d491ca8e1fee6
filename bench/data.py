"""Synthetic feature partitions at benchmark sizes, in a use case's schema read from its spec.

The generator of the use case models one day of applications; benchmarks need millions of rows
over many days quickly, so the rows come from :func:`mlloop.synthetic.feature_rows` (vectorized
numpy, every value inside its column's rules) instead.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

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


def register_champion(
    spec: UseCaseSpec,
    rows: int = 20_000,
    seed: int = 3,
    train: pd.DataFrame | None = None,
    positives: float | None = None,
) -> str:
    """Fit the spec's pipeline (``mlloop.training.build_pipeline``, as training does) on ``train``
    (default: synthetic rows of the spec), register it with the registration tags every version
    carries, make it champion; its version. For benchmarks that score (B2, B10, ``bench.batch_scoring``):
    the model's quality is irrelevant, its shape is the real one.

    Labels: with ``positives``, that share of random positives; else (credit_risk's synthetic rows)
    more defaults with a higher debt-to-income.
    """
    import mlflow
    import mlflow.sklearn

    from mlloop.registry import CHAMPION, ensure_experiment, mlflow_client, record_model_checksum
    from mlloop.tags import registration
    from mlloop.training import build_pipeline, pip_requirements, skops_trusted_types

    rng = np.random.default_rng(seed)
    if train is None:
        train = feature_rows(spec, entity_keys(spec, rows), START, rng)
    if positives is not None:
        y = (rng.random(len(train)) < positives).astype(int)
    else:
        y = (rng.random(len(train)) < 1 / (1 + np.exp(-(train["debt_to_income"] * 4 - 3)))).astype(int)
    model = build_pipeline(spec).fit(train[spec.model.features], y)
    client = mlflow_client()
    mlflow.set_experiment(experiment_id=ensure_experiment(client, spec))
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            pip_requirements=pip_requirements(),
            skops_trusted_types=skops_trusted_types(model),
            registered_model_name=spec.registered_model_name,
        )
    version = str(info.registered_model_version)
    for key, value in registration(spec.name, spec.model.feature_service, run.info.run_id).items():
        client.set_model_version_tag(spec.registered_model_name, version, key, value)
    record_model_checksum(client, spec.registered_model_name, version)
    client.set_registered_model_alias(spec.registered_model_name, CHAMPION, version)
    return version
