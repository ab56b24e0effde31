"""Canonical metrics against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from automl_service.engines.local.evaluate import (
    classification_metrics,
    compute_metrics,
    regression_metrics,
)
from automl_service.metrics import METRIC_GOALS, Task


def test_binary_metrics_match_hand_computed_values() -> None:
    """Binary accuracy, norm_macro_recall, weighted precision and AUC match hand values."""
    # y_true 0,1,1,0; predicted 0,1,0,0; positive-class scores .1,.8,.4,.3
    m = classification_metrics([0, 1, 1, 0], [0, 1, 0, 0], [0.1, 0.8, 0.4, 0.3])
    assert m["accuracy"] == pytest.approx(0.75)
    # recall: class 0 = 2/2, class 1 = 1/2; macro = .75; (0.75 - 0.5) / 0.5
    assert m["norm_macro_recall"] == pytest.approx(0.5)
    # precision: class 0 = 2/3, class 1 = 1; weighted by support 2,2 -> 5/6
    assert m["precision_score_weighted"] == pytest.approx(5 / 6)
    # every positive scores above every negative
    assert m["AUC_weighted"] == pytest.approx(1.0)
    assert m["average_precision_score_weighted"] == pytest.approx(1.0)
    assert m["log_loss"] == pytest.approx(-np.mean(np.log([0.9, 0.8, 0.4, 0.7])))


def test_multiclass_norm_macro_recall_uses_one_over_c() -> None:
    """With 3 classes, norm_macro_recall is (macro recall - 1/3) / (1 - 1/3)."""
    y_true = [0, 1, 2, 2]
    y_pred = [0, 1, 2, 1]
    proba = np.eye(3)[y_pred] * 0.7 + 0.1
    m = classification_metrics(y_true, y_pred, proba)
    macro_recall = (1 + 1 + 0.5) / 3
    assert m["norm_macro_recall"] == pytest.approx((macro_recall - 1 / 3) / (2 / 3))
    assert m["accuracy"] == pytest.approx(0.75)
    assert 0.0 <= m["AUC_weighted"] <= 1.0


def test_string_labels_work_with_explicit_label_order() -> None:
    """String labels score the same as their integer codes when the order is given."""
    names = classification_metrics(
        ["no", "yes", "yes"],
        ["no", "yes", "no"],
        [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]],
        labels=["no", "yes"],
    )
    codes = classification_metrics([0, 1, 1], [0, 1, 0], [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    assert names == pytest.approx(codes)


def test_regression_metrics_match_hand_computed_values() -> None:
    """RMSE, MAE and their range-normalised forms match hand values."""
    m = regression_metrics([1, 2, 3, 5], [1, 2, 4, 4])
    # errors 0,0,1,1: rmse = sqrt(2/4), mae = 0.5, range of y_true = 4
    assert m["root_mean_squared_error"] == pytest.approx(math.sqrt(0.5))
    assert m["mean_absolute_error"] == pytest.approx(0.5)
    assert m["normalized_root_mean_squared_error"] == pytest.approx(math.sqrt(0.5) / 4)
    assert m["normalized_mean_absolute_error"] == pytest.approx(0.125)
    # mean 2.75, total sum of squares 8.75, residual 2 -> r2 = 1 - 2/8.75
    assert m["r2_score"] == pytest.approx(1 - 2 / 8.75)
    # ranks 1,2,3,4 vs 1,2,3.5,3.5
    assert m["spearman_correlation"] == pytest.approx(0.9486832980505139)
    # |1/5| on the last row, |1/3| on the third, 0 elsewhere: mean * 100
    assert m["mean_absolute_percentage_error"] == pytest.approx((1 / 3 + 1 / 5) / 4 * 100)


def test_undefined_metrics_are_omitted_not_nan() -> None:
    """A constant truth leaves out range-normalised and rank metrics instead of NaN or inf."""
    m = regression_metrics([2, 2, 2], [1, 2, 3])
    assert "normalized_root_mean_squared_error" not in m
    assert "spearman_correlation" not in m
    assert m["mean_absolute_error"] == pytest.approx(2 / 3)
    assert all(math.isfinite(v) for v in m.values())


def test_single_class_leaves_out_auc() -> None:
    """With one class present, AUC is omitted and accuracy is still reported."""
    m = classification_metrics(
        [1, 1, 1], [1, 1, 0], [[0.2, 0.8], [0.3, 0.7], [0.6, 0.4]], labels=[0, 1]
    )
    assert "AUC_weighted" not in m
    assert m["accuracy"] == pytest.approx(2 / 3)


@pytest.mark.parametrize("task", list(Task))
def test_only_known_metric_names_are_returned(task: Task) -> None:
    """Every returned name is in the task's metric table, including all primary metrics."""
    if task is Task.CLASSIFICATION:
        m = compute_metrics(task, [0, 1, 0, 1], [0, 1, 1, 1], [0.2, 0.9, 0.6, 0.7])
    else:
        m = compute_metrics(task, [1.0, 2.0, 4.0], [1.5, 2.0, 3.0])
    assert set(m) <= set(METRIC_GOALS[task])
    assert m
