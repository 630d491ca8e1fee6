"""Metric values agree with scikit-learn, directions are right, undefined cases are nan."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlloop.metrics import METRICS, compute_metrics, get_metric, higher_is_better
from mlloop.spec import CLASSIFICATION_METRICS, REGRESSION_METRICS


def test_every_metric_the_spec_allows_is_known() -> None:
    assert set(METRICS) == set(CLASSIFICATION_METRICS) | set(REGRESSION_METRICS)


@pytest.mark.parametrize(
    ("name", "higher"),
    [
        *[(name, True) for name in ("roc_auc", "average_precision", "accuracy", "f1", "r2")],
        *[(name, False) for name in ("log_loss", "brier", "rmse", "mae")],
    ],
)
def test_direction(name: str, higher: bool) -> None:
    assert higher_is_better(name) is higher
    assert get_metric(name).better_by(1.0, 2.0) == (-1.0 if higher else 1.0)


def test_classification_values() -> None:
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

    y = np.array([0, 0, 1, 1, 0, 1])
    p = np.array([0.1, 0.6, 0.7, 0.4, 0.2, 0.9])
    values = compute_metrics(CLASSIFICATION_METRICS, y, p)
    assert values["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert values["log_loss"] == pytest.approx(log_loss(y, p))
    assert values["brier"] == pytest.approx(brier_score_loss(y, p))
    assert values["accuracy"] == pytest.approx(4 / 6)
    assert values["f1"] == pytest.approx(2 / 3)


def test_regression_values() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    pred = np.array([1.5, 2.0, 2.5, 5.0])
    values = compute_metrics(REGRESSION_METRICS, y, pred)
    assert values["rmse"] == pytest.approx(math.sqrt((0.25 + 0 + 0.25 + 1) / 4))
    assert values["mae"] == pytest.approx(0.5)
    assert values["r2"] == pytest.approx(1 - 1.5 / 5.0)


def test_undefined_is_nan_not_an_error() -> None:
    one_class = compute_metrics(["roc_auc", "average_precision", "log_loss"], [0, 0, 0], [0.1, 0.2, 0.3])
    assert math.isnan(one_class["roc_auc"]) and math.isnan(one_class["average_precision"])
    assert one_class["log_loss"] > 0
    assert math.isnan(compute_metrics(["rmse"], [], [])["rmse"])


def test_unknown_metric_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="roc_auc"):
        get_metric("auc")
