"""The winner's insight, computed once at the end of a job and logged on its run.

The run the selection will choose (the leader by the selection metric) gets an
``insight/`` artifact folder (see ``insight_files``): the numbers of ``insight`` and the
charts of ``insight_charts``. The rows they are computed on:

- tables with test rows (``validation.test_data`` or ``test_data_size``, or the rows held
  out to compare with a live model), or a ``validation_data`` table the final model was
  not refitted on: the final model's answers on those rows, for every chart;
- otherwise (cross-validation, or a holdout the model was then refitted on) the winner's
  own validation predictions, made before the refit (pooled out of fold under
  cross-validation), for the confusion matrix, curves and residuals; permutation
  importance then shuffles the training rows the final model was fitted on, and says so;
- forecasts: each backtest window's forecast (for many series, of the ``CHARTED_SERIES``
  series with the largest actual values, one small panel each).

Permutation importance, the costly part, runs only while the job's time limit leaves
room for it (as many shuffles per column as fit, up to five), and not at all when the
request sets ``training.enable_model_explainability`` to false. Nothing here fails a job:
insight that cannot be made is skipped with the reason in the trainer log and in the
summary.
"""

from __future__ import annotations

import functools
import json
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ...insight_files import INSIGHT_FOLDER, SUMMARY_FILE, chart_entry
from ...logs import get_logger
from ...metrics import Task, as_loss, resolve_goal
from ...request import AutoMLRequest
from . import insight, insight_charts
from .budget import Budget
from .ensemble import EnsembleModel
from .model import FlamlModel
from .predictions import Backtest, Fold, HeldOut
from .probabilities import decide, split_output
from .testset import score_output
from .trials import TrialLog

#: Most rows permutation importance shuffles (a sample of them, fixed seed).
MAX_IMPORTANCE_ROWS = 1000
#: Seconds kept back from the time limit for logging the artifacts.
LOGGING_SECONDS = 0.5
#: Many series: how many are drawn (those with the largest actual values).
CHARTED_SERIES = 4

_ROWS = {
    "test": "the {n} test rows, which took no part in training or choosing the model",
    "validation": "the {n} validation rows (the model was not refitted on them)",
    "training": (
        "the winner's validation predictions ({n} rows, made before it was refitted on "
        "every row); permutation importance on the training rows it was refitted on"
    ),
}


def log_insight(
    client: Any, request: AutoMLRequest, log: TrialLog, budget: Budget | None = None
) -> str | None:
    """Compute, draw and log the insight of the run the selection will choose; returns
    its run id, or None when it was skipped (the reason logged). Never raises."""
    leader = log.leaders.get(request.selection_metric) or log.leaders.get(request.metric)
    if leader is None or leader[1] is None:
        _say("insight.skipped", reason="no winning model")
        return None
    record, model = leader
    if budget is not None and budget.left() <= LOGGING_SECONDS:
        _say("insight.skipped", run_id=record.run_id, reason="the time limit was reached")
        return None
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory() as folder:
            summary = build_insight(
                request, model, log.validation.get(record.run_id), log.held_out, budget
            )
            write_folder(Path(folder), summary)
            client.log_artifacts(record.run_id, folder, artifact_path=INSIGHT_FOLDER)
    except Exception as exc:  # insight is extra: a job that trained stays a success
        _say("insight.failed", run_id=record.run_id, reason=f"{type(exc).__name__}: {exc}")
        return None
    _say(
        "insight.logged",
        run_id=record.run_id,
        charts=len(summary["charts"]),
        skipped=summary["skipped"],
        seconds=round(time.monotonic() - started, 1),
    )
    return str(record.run_id)


def build_insight(
    request: AutoMLRequest,
    model: Any,
    validation: Any,
    held_out: HeldOut | None,
    budget: Budget | None = None,
) -> dict[str, Any]:
    """The summary (``rows``, ``numbers``, ``skipped``) and the charts' SVG text (under
    ``svg``, by file name) for ``model``."""
    out: dict[str, Any] = {"version": 1, "task": request.task.value, "rows": "", "numbers": {}}
    out["charts"], out["svg"], out["skipped"] = [], {}, []
    if request.task is Task.FORECASTING:
        _forecast(out, request, model, validation)
        return out
    fresh = held_out if held_out is not None and held_out.fresh else None
    if fresh is not None:
        y, output = fresh.y, model.predict(None, fresh.X)
        out["rows"] = _ROWS[fresh.kind].format(n=len(fresh.y))
    elif isinstance(validation, Fold):
        y, output = _validation_output(model, validation)
        out["rows"] = _ROWS["training"].format(n=len(validation.y_true))
    else:
        y = output = None
        out["skipped"].append("charts: the winner's validation predictions were not kept")
    if y is not None:
        if request.task is Task.CLASSIFICATION:
            _classification(out, y, output)
        else:
            _regression(out, request, y, output)
    if request.training.enable_model_explainability is False:
        out["skipped"].append(
            "permutation importance: training.enable_model_explainability is false"
        )
    elif held_out is None:
        out["skipped"].append("permutation importance: no rows to shuffle")
    else:
        _importance(out, request, model, held_out, budget)
    return out


def write_folder(folder: Path, summary: dict[str, Any]) -> None:
    """The SVG files and ``insight.json`` (the summary without the SVG text)."""
    for name, text in summary["svg"].items():
        (folder / name).write_text(text, encoding="utf-8")
    kept = {k: v for k, v in summary.items() if k != "svg"}
    (folder / SUMMARY_FILE).write_text(json.dumps(kept, indent=1, default=str), encoding="utf-8")


# Tasks -----------------------------------------------------------------------------------


def _classification(out: dict[str, Any], y: Any, output: Any) -> None:
    labels, proba = split_output(output)
    classes = [str(c) for c in proba.columns] if proba is not None else sorted(set(map(str, y)))
    matrix = insight.confusion(y, labels, classes)
    out["numbers"]["confusion"] = asdict(matrix)
    _chart(
        out,
        "confusion_matrix.svg",
        "Confusion matrix",
        "Rows by true class and predicted class (with the decision threshold, when set).",
        insight_charts.confusion_chart(matrix),
    )
    if proba is None or len(classes) != 2:
        out["skipped"].append(
            "ROC and precision-recall curves: drawn for two classes only"
            if proba is not None
            else "ROC and precision-recall curves: the model gives no probabilities"
        )
        return
    positive, score = classes[1], proba.iloc[:, 1].to_numpy(dtype=float)
    roc = insight.roc(y, score, positive)
    pr = insight.precision_recall(y, score, positive)
    if roc is not None:
        out["numbers"]["roc_auc"] = roc.area
        _chart(
            out,
            "roc_curve.svg",
            "ROC curve",
            f"True against false positive rate of class {positive} as its probability "
            "threshold moves.",
            insight_charts.roc_chart(roc, positive),
        )
    if pr is not None:
        out["numbers"]["average_precision"] = pr.area
        prevalence = float(np.mean(np.asarray(y).astype(str) == positive))
        _chart(
            out,
            "precision_recall_curve.svg",
            "Precision-recall curve",
            f"Precision against recall of class {positive}; chance is its share of the rows "
            f"({prevalence:.3g}).",
            insight_charts.precision_recall_chart(pr, positive, prevalence),
        )
    if roc is None or pr is None:
        out["skipped"].append("ROC and precision-recall curves: the rows hold one class")


def _regression(out: dict[str, Any], request: AutoMLRequest, y: Any, output: Any) -> None:
    points = insight.residuals(y, output)
    out["numbers"]["residuals"] = {
        "rows": points.rows,
        "mean_error": points.mean_error,
        "mean_absolute_error": points.mean_absolute_error,
    }
    target = request.target_column_name
    _chart(
        out,
        "predicted_vs_actual.svg",
        "Predicted against actual",
        "Each row's prediction against its actual value; on the line they agree.",
        insight_charts.predicted_actual_chart(points, target),
    )
    _chart(
        out,
        "residuals.svg",
        "Residuals",
        "Each row's error (actual less predicted) against its prediction.",
        insight_charts.residuals_chart(points, target),
    )


def _forecast(out: dict[str, Any], request: AutoMLRequest, model: Any, validation: Any) -> None:
    if not isinstance(validation, Backtest) or not validation.times:
        out["skipped"].append("forecast charts: the winner's backtest forecasts were not kept")
        return
    intervals = getattr(model, "intervals", None)
    quantiles = ", with its quantile band (split conformal, from these windows' errors)"
    caption = (
        "Each window forecast by the model fitted on the points before it"
        + (quantiles if intervals is not None else "")
        + "."
    )
    target = request.target_column_name
    if validation.series:
        _panel_forecast(out, validation, intervals, caption, target)
        return
    windows = _windows(validation.folds, validation.times, intervals)
    out["rows"] = f"the {len(windows)} backtest windows the winner was scored on"
    out["numbers"]["windows"] = [asdict(w) for w in windows]
    _chart(
        out,
        "forecast_windows.svg",
        "Forecast against actual, per backtest window",
        caption,
        insight_charts.forecast_chart(windows, target),
    )


def _panel_forecast(
    out: dict[str, Any], validation: Backtest, intervals: Any, caption: str, target: str
) -> None:
    """Many series: the backtest windows of the ``CHARTED_SERIES`` series with the largest
    mean absolute actual value in them (those that weigh most in the pooled metrics)."""
    labels = np.concatenate(validation.series)
    actual = np.abs(np.concatenate([f.y_true for f in validation.folds]))
    size = pd.Series(actual).groupby(labels, sort=False).mean()
    chosen = [str(s) for s in size.sort_values(ascending=False, kind="stable").index]
    drawn = chosen[:CHARTED_SERIES]
    panels = []
    for name in drawn:
        folds, times = [], []
        for fold, when, which in zip(
            validation.folds, validation.times, validation.series, strict=True
        ):
            rows = np.asarray(which) == name
            folds.append(Fold(fold.y_true[rows], fold.y_pred[rows]))
            times.append(np.asarray(when)[rows])
        panels.append((name, _windows(folds, times, intervals)))
    windows = len(validation.folds)
    out["rows"] = (
        f"the {windows} backtest windows the winner was scored on, of {len(drawn)} of its "
        f"{len(chosen)} series (the largest)"
    )
    out["numbers"]["series"] = [
        {"series": name, "windows": [asdict(w) for w in ws]} for name, ws in panels
    ]
    more = (
        f"; the other {len(chosen) - len(drawn)} are not drawn" if len(chosen) > len(drawn) else ""
    )
    _chart(
        out,
        "forecast_windows.svg",
        "Forecast against actual, per backtest window and series",
        caption.removesuffix(".")
        + f", for the {len(drawn)} series with the largest actual values{more}.",
        insight_charts.panel_forecast_chart(panels, target),
    )


def _windows(folds: list[Fold], times: list[Any], intervals: Any) -> list[insight.WindowForecast]:
    """Each window's record, with its quantile band (steps 1.. of the window) when the
    model has intervals."""
    windows = []
    for index, (fold, when) in enumerate(zip(folds, times, strict=True)):
        bands = None
        if intervals is not None:
            bands = intervals.around(fold.y_pred, np.arange(1, len(fold.y_pred) + 1))
        windows.append(insight.window_forecast(index, when, fold.y_true, fold.y_pred, bands))
    return windows


def _importance(
    out: dict[str, Any],
    request: AutoMLRequest,
    model: Any,
    rows: HeldOut,
    budget: Budget | None,
) -> None:
    X, y = rows.X, rows.y
    if len(X) > MAX_IMPORTANCE_ROWS:
        X = X.sample(MAX_IMPORTANCE_ROWS, random_state=0)
        y = y.loc[X.index]
    if X.shape[1] == 0 or len(X) < 2:
        out["skipped"].append("permutation importance: too few rows or columns")
        return
    predict = functools.partial(model.predict, None)
    metric, loss = _loss(request, predict, X, y)
    started = time.monotonic()
    predict(X)
    per_call = time.monotonic() - started
    left = math.inf if budget is None else budget.left() - LOGGING_SECONDS - 2 * per_call
    repeats = insight.repeats_within(per_call, X.shape[1], left)
    if repeats == 0:
        out["skipped"].append("permutation importance: the time limit leaves no room for it")
        return
    ranking = insight.permutation_ranking(predict, X, y, loss, repeats=repeats)
    where = "test" if rows.kind == "test" else rows.kind
    out["numbers"]["importance"] = {
        "metric": metric,
        "rows": len(X),
        "rows_kind": rows.kind,
        "repeats": repeats,
        "columns": [asdict(i) for i in ranking],
    }
    _chart(
        out,
        "permutation_importance.svg",
        "Permutation importance",
        f"How much {metric} worsens when one column is shuffled, on {len(X)} {where} rows, "
        f"{repeats} shuffles each"
        + (
            " (the model was fitted on these rows: this is what it relies on, not what "
            "generalises; give validation.test_data_size for held-out rows)."
            if rows.kind == "training"
            else "."
        ),
        insight_charts.importance_chart(ranking, metric),
    )


# Helpers ---------------------------------------------------------------------------------


def _validation_output(model: Any, fold: Fold) -> tuple[Any, Any]:
    """(true labels or values, the model's answer) of a leader's validation predictions,
    its labels decoded and, for a classifier, chosen with the model's threshold."""
    if fold.proba is None or fold.classes is None:
        return fold.y_true, fold.y_pred
    decode = _decoder(model)
    classes = np.asarray(fold.classes)
    threshold = getattr(model, "decision_threshold", None)
    labels = decode(decide(fold.proba, classes, threshold))
    table = pd.DataFrame({"prediction": labels})
    for i, name in enumerate(decode(classes)):
        table[f"proba_{name}"] = np.asarray(fold.proba)[:, i]
    return decode(fold.y_true), table


def _decoder(model: Any) -> Callable[[Any], Any]:
    """The model's way from encoded labels to the training data's (FLAML encodes text)."""
    first = model.members[0] if isinstance(model, EnsembleModel) else model
    if isinstance(first, FlamlModel):
        return first.decode
    return np.asarray


def _loss(
    request: AutoMLRequest, predict: Callable[[pd.DataFrame], Any], X: pd.DataFrame, y: Any
) -> tuple[str, Callable[[Any, Any], float]]:
    """The metric importance is measured in: the primary metric, or when it cannot be
    computed on these rows accuracy (classes) or RMSE (values)."""
    fallback = (
        "accuracy" if request.task is Task.CLASSIFICATION else "normalized_root_mean_squared_error"
    )
    output = predict(X)
    for metric in (request.metric, fallback):
        goal = resolve_goal(metric, None, request.task)

        def loss(target: Any, answer: Any, metric: str = metric, goal: Any = goal) -> float:
            value = score_output(answer, request.task, target, (metric,)).get(metric, math.nan)
            return as_loss(value, goal)

        if math.isfinite(loss(y, output)):
            return metric, loss
    return fallback, loss


def _chart(out: dict[str, Any], file: str, title: str, caption: str, svg: str) -> None:
    out["charts"].append(chart_entry(file, title, caption))
    out["svg"][file] = svg


def _say(event: str, **fields: Any) -> None:
    get_logger("automl_service.trainer").info(event, **fields)
