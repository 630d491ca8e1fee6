"""Model-quality metrics by name, with the direction that makes one value better than another.

Training logs them as ``holdout_<metric>``, the promotion gate compares them, and a regression use
case works with no code change because the spec names its metrics and this module knows both kinds.
Every metric takes ``(y_true, scores)`` where scores are what :func:`mlloop.registry.predict_scores`
returns: P(positive class) for classification, the predicted value for regression. Threshold metrics
(accuracy, f1) cut the probability at 0.5.

A metric that is undefined on the data (AUC on a slice with one class) is ``nan``, not an error: the
gate reports such slices and does not gate on them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

CLASSIFICATION = "classification"
REGRESSION = "regression"
DECISION_THRESHOLD = 0.5


@dataclass(frozen=True)
class Metric:
    name: str
    task: str
    higher_is_better: bool
    compute: Callable[[np.ndarray, np.ndarray], float]
    description: str
    lowest: float = -math.inf
    highest: float = math.inf
    scale: float | None = None
    """The span between a useless and a perfect model, where one exists (1 for AUC or r2; none for
    rmse, whose values are in the label's units): no regression tolerance can exceed it."""

    def better_by(self, challenger: float, reference: float) -> float:
        """How much better ``challenger`` is than ``reference`` (negative: worse), direction-aware."""
        delta = challenger - reference
        return delta if self.higher_is_better else -delta


def _two_classes(y_true: np.ndarray) -> bool:
    import numpy as np

    return len(np.unique(y_true)) == 2


def _roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y_true, scores)) if _two_classes(y_true) else math.nan


def _average_precision(y_true: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y_true, scores)) if _two_classes(y_true) else math.nan


def _log_loss(y_true: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import log_loss

    return float(log_loss(y_true, scores, labels=[0, 1]))


def _brier(y_true: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import brier_score_loss

    return float(brier_score_loss(y_true, scores, pos_label=1))


def _accuracy(y_true: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(y_true, (scores >= DECISION_THRESHOLD).astype(int)))


def _f1(y_true: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y_true, (scores >= DECISION_THRESHOLD).astype(int), zero_division=0.0))


def _rmse(y_true: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import root_mean_squared_error

    return float(root_mean_squared_error(y_true, scores))


def _mae(y_true: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import mean_absolute_error

    return float(mean_absolute_error(y_true, scores))


def _r2(y_true: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import r2_score

    return float(r2_score(y_true, scores)) if len(y_true) >= 2 else math.nan


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("roc_auc", CLASSIFICATION, True, _roc_auc, "area under the ROC curve", 0.0, 1.0, 1.0),
        Metric(
            "average_precision",
            CLASSIFICATION,
            True,
            _average_precision,
            "area under the precision-recall curve",
            0.0,
            1.0,
            1.0,
        ),
        Metric("log_loss", CLASSIFICATION, False, _log_loss, "cross-entropy of the predicted probabilities", 0.0),
        Metric(
            "brier", CLASSIFICATION, False, _brier, "mean squared error of the predicted probabilities", 0.0, 1.0, 1.0
        ),
        Metric(
            "accuracy", CLASSIFICATION, True, _accuracy, "share of correct predictions at threshold 0.5", 0.0, 1.0, 1.0
        ),
        Metric("f1", CLASSIFICATION, True, _f1, "F1 of the positive class at threshold 0.5", 0.0, 1.0, 1.0),
        Metric("rmse", REGRESSION, False, _rmse, "root mean squared error", 0.0),
        Metric("mae", REGRESSION, False, _mae, "mean absolute error", 0.0),
        # Unbounded below (a model worse than the mean), but 0 (the mean) to 1 (perfect) is the useful span.
        Metric("r2", REGRESSION, True, _r2, "coefficient of determination", -math.inf, 1.0, 1.0),
    )
}


def get_metric(name: str) -> Metric:
    try:
        return METRICS[name]
    except KeyError:
        raise ValueError(f"unknown metric '{name}'; known: {sorted(METRICS)}") from None


def higher_is_better(name: str) -> bool:
    return get_metric(name).higher_is_better


def compute_metrics(names: Iterable[str], y_true: Any, scores: Any) -> dict[str, float]:
    """Each named metric on ``(y_true, scores)``; ``nan`` where it is undefined or there are no rows."""
    import numpy as np

    y = np.asarray(y_true, dtype="float64")
    s = np.asarray(scores, dtype="float64")
    if len(y) != len(s):
        raise ValueError(f"{len(y)} labels but {len(s)} scores")
    result = {}
    for name in names:
        metric = get_metric(name)
        labels = y.astype("int64") if metric.task == CLASSIFICATION else y
        result[name] = metric.compute(labels, s) if len(y) else math.nan
    return result
