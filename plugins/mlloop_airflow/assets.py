"""The Assets DAGs exchange; one set per use case, named ``<use_case>.<what>``.

URIs use an ``x-mlloop`` scheme: they name a logical dataset, not a location, so they stay the
same whether the storage root is a local folder or a bucket.
"""

from __future__ import annotations

from airflow.sdk import Asset


def _asset(use_case: str, what: str) -> Asset:
    return Asset(name=f"{use_case}.{what}", uri=f"x-mlloop://{use_case}/{what}", group="mlloop")


def features_asset(use_case: str) -> Asset:
    """Updated when an interval's features are in the offline store and materialized online."""
    return _asset(use_case, "features")


def challenger_asset(use_case: str) -> Asset:
    """Updated when a new model version is registered with alias ``challenger``."""
    return _asset(use_case, "challenger")


def champion_asset(use_case: str) -> Asset:
    """Updated when alias ``champion`` moves (promotion or rollback)."""
    return _asset(use_case, "champion")


def predictions_asset(use_case: str) -> Asset:
    """Updated when an interval's prediction partition is committed."""
    return _asset(use_case, "predictions")
