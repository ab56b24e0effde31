"""Model insight: the numbers, the charts, the artifact folder, the report's section, and
real jobs that log it on their winning run."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from sklearn.linear_model import LinearRegression

from automl_service.engines.local import insight, insight_charts
from automl_service.engines.local.budget import Budget
from automl_service.engines.local.insight_artifacts import download_insight
from automl_service.engines.local.model_insight import write_folder
from automl_service.engines.local.trainer import run_attempt
from automl_service.insight_files import Chart, ModelInsight, read_insight
from automl_service.report import render_report
from automl_service.request import AutoMLRequest
from automl_service.results import RequestResult, RequestState

if TYPE_CHECKING:
    from fixtures_mlflow_store import MlflowStore

pytest_plugins = ["fixtures_mlflow_store"]


# The numbers -----------------------------------------------------------------------------


def test_confusion_matrix_counts_rows_by_true_and_predicted_class() -> None:
    """Known counts, in the classes' given order, labels compared as text."""
    y_true = ["no", "no", "no", "yes", "yes", "maybe"]
    y_pred = ["no", "yes", "no", "yes", "no", "yes"]
    matrix = insight.confusion(y_true, y_pred, ["maybe", "no", "yes"])
    assert matrix.classes == ["maybe", "no", "yes"]
    assert matrix.counts == [[0, 0, 1], [0, 2, 1], [0, 1, 1]]
    assert insight.confusion([0, 1, 1], np.array([1, 1, 1]), [0, 1]).counts == [[0, 1], [0, 2]]


def test_curves_of_the_positive_class() -> None:
    """A perfect score has ROC AUC 1 and average precision 1; a reversed one AUC 0; a
    single class has no ROC curve."""
    y = np.array(["a", "a", "b", "b"])
    perfect = np.array([0.1, 0.2, 0.8, 0.9])
    roc = insight.roc(y, perfect, "b")
    pr = insight.precision_recall(y, perfect, "b")
    assert roc is not None and roc.area == 1.0 and roc.x[0] == 0.0 and roc.y[-1] == 1.0
    assert pr is not None and pr.area == 1.0 and pr.x == sorted(pr.x)
    reversed_roc = insight.roc(y, 1 - perfect, "b")
    assert reversed_roc is not None and reversed_roc.area == 0.0
    assert insight.roc(np.array(["b", "b"]), np.array([0.3, 0.6]), "b") is None
    assert insight.precision_recall(np.array(["a", "a"]), np.array([0.3, 0.6]), "b") is None


def test_residuals_summarise_every_row_and_thin_the_points() -> None:
    actual = np.arange(5000, dtype=float)
    residual = insight.residuals(actual, actual - 2.0)
    assert residual.rows == 5000
    assert residual.mean_error == pytest.approx(2.0)
    assert residual.mean_absolute_error == pytest.approx(2.0)
    assert len(residual.actual) == insight.MAX_POINTS
    assert residual.actual[0] == 0.0 and residual.actual[-1] == 4999.0


def test_permutation_importance_ranks_the_informative_column_first() -> None:
    """On a table where y depends on one column strongly, another weakly and a third not
    at all, shuffling them worsens the error in that order; the unused one by ~0."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(400, 3)), columns=["noise", "strong", "weak"])
    y = 5 * X["strong"] + 1 * X["weak"] + rng.normal(scale=0.1, size=400)
    model = LinearRegression().fit(X, y)

    def rmse(target: Any, predicted: Any) -> float:
        return float(np.sqrt(np.mean((np.asarray(target) - np.asarray(predicted)) ** 2)))

    ranking = insight.permutation_ranking(model.predict, X, y, rmse, repeats=3)
    assert [i.feature for i in ranking] == ["strong", "weak", "noise"]
    assert ranking[0].mean > 5 * ranking[1].mean > 0
    assert abs(ranking[2].mean) < 0.05


def test_shuffles_fit_the_time_left() -> None:
    assert insight.repeats_within(0.01, 10, 100.0) == 5  # at most five
    assert insight.repeats_within(0.1, 10, 2.5) == 2
    assert insight.repeats_within(0.1, 10, 0.5) == 0
    assert insight.repeats_within(0.1, 10, -1.0) == 0


def test_window_forecast_takes_the_quantile_columns() -> None:
    bands = pd.DataFrame(
        {"forecast": [1.0, 2.0], "quantile_0.1": [0.5, 1.5], "quantile_0.9": [1.5, 2.5]}
    )
    window = insight.window_forecast(
        0, pd.to_datetime(["2020-01-01", "2020-02-01"]), [1.1, 2.2], [1.0, 2.0], bands
    )
    assert window.times == ["2020-01-01T00:00:00", "2020-02-01T00:00:00"]
    assert window.quantiles == {0.1: [0.5, 1.5], 0.9: [1.5, 2.5]}


# The charts and the folder ---------------------------------------------------------------


def test_charts_are_svg_with_their_text_as_text() -> None:
    """Each chart is an SVG document whose titles and labels are searchable text."""
    matrix = insight.confusion(["a", "b"], ["a", "a"], ["a", "b"])
    svg = insight_charts.confusion_chart(matrix)
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert "Confusion matrix" in svg and "predicted class" in svg
    ranking = [insight.Importance(f"column_{i}", 1.0 / (i + 1), 0.01) for i in range(20)]
    bars = insight_charts.importance_chart(ranking, "accuracy")
    assert "column_0" in bars and "column_14" in bars and "column_15" not in bars
    assert "top 15 of 20" in bars


def test_the_folder_reads_back_in_order_with_extra_svg_files(tmp_path: Path) -> None:
    """What the trainer writes reads back in its order; another SVG in the folder is
    shown by its file name; a file that is not an SVG is named in the notes."""
    svg = insight_charts.roc_chart(insight.Curve([0, 0, 1], [0, 1, 1], 1.0), "yes")
    summary = {
        "version": 1,
        "rows": "the 10 test rows",
        "numbers": {"roc_auc": 1.0},
        "charts": [
            {"file": "roc_curve.svg", "title": "ROC curve", "caption": "c1"},
            {"file": "broken.svg", "title": "Broken", "caption": ""},
        ],
        "svg": {"roc_curve.svg": svg, "broken.svg": "not a picture"},
        "skipped": ["permutation importance: training.enable_model_explainability is false"],
    }
    write_folder(tmp_path, summary)
    (tmp_path / "azure_explanation.svg").write_text(svg)
    assert "svg" not in json.loads((tmp_path / "insight.json").read_text())
    read = read_insight(tmp_path)
    assert read is not None
    assert [c.file for c in read.charts] == ["roc_curve.svg", "azure_explanation.svg"]
    assert read.charts[1].title == "azure_explanation"
    assert read.rows == "the 10 test rows" and read.numbers == {"roc_auc": 1.0}
    assert read.notes == [
        "permutation importance: training.enable_model_explainability is false",
        "broken.svg is not an SVG image",
    ]
    assert read_insight(tmp_path / "absent") is None


# The report's section --------------------------------------------------------------------

HOSTILE = '<script>alert("x")</script>'


def result(task: str = "classification") -> RequestResult:
    return RequestResult(
        request_id="r", state=RequestState.SUCCEEDED, task=task, best_run_id="run-1"
    )


def test_the_report_embeds_each_chart_as_an_image_of_its_own() -> None:
    """Charts are data: URI images holding the SVG unchanged, with escaped titles and
    captions; a wide chart spans the row; without insight the section says so."""
    svg = insight_charts.roc_chart(insight.Curve([0, 1], [0, 1], 0.5), "yes")
    wide = insight_charts.forecast_chart(
        [insight.WindowForecast(0, ["2020-01-01", "2020-02-01"], [1, 2], [1, 2])], "y"
    )
    shown = ModelInsight(
        rows=f"rows {HOSTILE}",
        charts=[Chart("roc.svg", HOSTILE, HOSTILE, svg), Chart("f.svg", "F", "", wide)],
        notes=[HOSTILE],
    )
    html = render_report(result(), [], shown)
    # rows, alt text, title, caption and note: each escaped
    assert "<script>" not in html and html.count("&lt;script&gt;") == 5
    images = html.split('src="data:image/svg+xml;base64,')[1:]
    assert len(images) == 2
    decoded = base64.b64decode(images[0].split('"', 1)[0]).decode()
    assert decoded == svg
    assert 'class="chart wide" data-file="f.svg"' in html
    assert 'class="chart" data-file="roc.svg"' in html
    assert "No insight was recorded" in render_report(result(), [], None)
    failed = RequestResult(request_id="r", state=RequestState.FAILED)
    assert 'id="insight"' not in render_report(failed, [], None)


# Real jobs -------------------------------------------------------------------------------


def train(store: MlflowStore, body: dict[str, Any]) -> tuple[str, RequestResult]:
    """Run one training attempt in this process, as the trainer does; the winner's run id
    and the result the worker would record."""
    request = AutoMLRequest.model_validate(body)
    client = store.client
    parent = client.create_run(store.experiment_id).info.run_id
    budget = Budget(request.limits.timeout_seconds, time.time())
    best = run_attempt(client, store.uri, store.experiment_id, parent, request, 1, budget=budget)
    done = RequestResult(
        request_id=str(body["request_id"]),
        state=RequestState.SUCCEEDED,
        task=request.task,
        best_run_id=best,
    )
    return best, done


@pytest.mark.slow
def test_a_classification_job_logs_insight_the_report_draws(mlflow_store: MlflowStore) -> None:
    """A real binary job with test rows: the winner's run holds a confusion matrix that
    counts every test row, ROC and precision-recall curves and permutation importance
    with a worst-area-like column at the top, and the report shows them."""
    best, done = train(
        mlflow_store,
        {
            "request_id": "insight-c",
            "task": "classification",
            "training_data": "sample:breast_cancer",
            "target_column_name": "target",
            "limits": {"timeout_seconds": 10, "max_trials": 3},  # the search ends at 3 trials
            "training": {"enable_vote_ensemble": False},
            "validation": {"test_data_size": 0.25},
        },
    )
    found = download_insight(mlflow_store.uri, best)
    assert found is not None
    assert [c.file for c in found.charts] == [
        "confusion_matrix.svg",
        "roc_curve.svg",
        "precision_recall_curve.svg",
        "permutation_importance.svg",
    ]
    assert found.rows.startswith("the 143 test rows")
    counts = found.numbers["confusion"]["counts"]
    assert sum(map(sum, counts)) == 143
    assert counts[0][0] + counts[1][1] > 0.85 * 143
    assert found.numbers["roc_auc"] > 0.9
    ranked = found.numbers["importance"]["columns"]
    assert len(ranked) == 30 and ranked[0]["mean"] > 0
    html = render_report(done, [], found)
    assert html.count("data:image/svg+xml;base64,") == 4
    assert "Confusion matrix" in html and "Permutation importance" in html


@pytest.mark.slow
def test_a_regression_job_without_explainability_draws_residuals_only(
    mlflow_store: MlflowStore,
) -> None:
    """A real regression job under cross-validation with explainability off: the
    winner's out-of-fold predictions against actual values and its residuals, and the
    importance said to be skipped."""
    best, done = train(
        mlflow_store,
        {
            "request_id": "insight-r",
            "task": "regression",
            "training_data": "sample:diabetes",
            "target_column_name": "target",
            "limits": {"timeout_seconds": 10, "max_trials": 3},  # the search ends at 3 trials
            "training": {"enable_model_explainability": False},
        },
    )
    artifacts = [a.path for a in MlflowClient(mlflow_store.uri).list_artifacts(best, "insight")]
    assert "insight/permutation_importance.svg" not in artifacts
    found = download_insight(mlflow_store.uri, best)
    assert found is not None
    assert [c.file for c in found.charts] == ["predicted_vs_actual.svg", "residuals.svg"]
    assert found.numbers["residuals"]["rows"] == 442  # every row, out of fold
    assert "training.enable_model_explainability is false" in " ".join(found.notes)
    html = render_report(done, [], found)
    assert html.count("data:image/svg+xml;base64,") == 2
    assert "Predicted against actual" in html


@pytest.mark.slow
def test_a_many_series_job_draws_the_windows_of_its_largest_series(
    mlflow_store: MlflowStore,
) -> None:
    """A real job on the grunfeld panel: the winner's insight draws the backtest windows of
    the 4 firms with the largest investment, one panel each, with their quantile band;
    the report shows the chart."""
    best, done = train(
        mlflow_store,
        {
            "request_id": "insight-p",
            "task": "forecasting",
            "training_data": "sample:grunfeld",
            "target_column_name": "invest",
            "forecasting": {
                "time_column_name": "year",
                "forecast_horizon": 3,
                "time_series_id_column_names": ["firm"],
                "forecast_quantiles": [0.1, 0.9],
            },
            # Baselines only: the job ends once they are scored, well within the limit.
            "training": {"allowed_algorithms": ["Naive", "ExponentialSmoothing"]},
            "limits": {"timeout_seconds": 20},
        },
    )
    found = download_insight(mlflow_store.uri, best)
    assert found is not None
    assert [c.file for c in found.charts] == ["forecast_windows.svg"]
    assert "of 4 of its 11 series (the largest)" in found.rows
    drawn = found.numbers["series"]
    assert [s["series"] for s in drawn] == [
        "firm='General Motors'",
        "firm='US Steel'",
        "firm='General Electric'",
        "firm='Chrysler'",
    ]
    for series in drawn:
        assert [len(w["actual"]) for w in series["windows"]] == [3, 3, 3]
        assert sorted(series["windows"][0]["quantiles"]) == ["0.1", "0.9"]
    latest = drawn[0]["windows"][0]
    assert latest["times"][-1].startswith("1954")
    html = render_report(done, [], found)
    assert html.count("data:image/svg+xml;base64,") == 1
    assert "per backtest window and series" in html
