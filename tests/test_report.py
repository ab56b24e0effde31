"""The HTML report: content, escaping, self-containment, and how a real browser reads it."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from automl_service.insight_files import Chart, ModelInsight
from automl_service.metrics import Goal, Task
from automl_service.report import best_so_far, rank_runs, render_report, trial_points
from automl_service.results import LeaderboardRow, RequestResult, RequestState
from automl_service.runs import RunRecord, RunStatus
from automl_service.scan import scan_child_runs
from automl_service.selection import select_best

if TYPE_CHECKING:
    from fixtures_mlflow_store import MlflowStore

pytest_plugins = ["fixtures_mlflow_store"]

T0 = 1_760_000_000_000  # ms since the epoch


def run(
    run_id: str,
    value: float | None,
    start_s: float,
    end_s: float | None,
    *,
    status: str = "FINISHED",
    algorithm: str = "lgbm",
) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        status=RunStatus(status),
        metrics={} if value is None else {"accuracy": value},
        tags={"algorithm": algorithm},
        start_time_ms=T0 + int(start_s * 1000),
        end_time_ms=None if end_s is None else T0 + int(end_s * 1000),
    )


RUNS = [
    run("run-a", 0.80, 0, 10, algorithm="lgbm"),
    run("run-b", 0.91, 5, 20, algorithm="rf"),
    run("run-c", 0.85, 12, 30, algorithm="xgboost"),
    run("run-d", 0.93, 25, 45, algorithm="extra_tree"),
    run("run-e", None, 30, 50, algorithm="lrl1"),
    run("run-f", 0.99, 40, None, status="RUNNING", algorithm="kneighbor"),
    run("run-g", float("nan"), 44, 52, algorithm="catboost"),
]


def result_for(runs: list[RunRecord], **changes: object) -> RequestResult:
    """The result the worker records for these runs (selection by accuracy)."""
    selection = select_best(runs, "accuracy", Goal.MAXIMIZE)
    result = RequestResult(
        request_id="req-report",
        state=RequestState.SUCCEEDED,
        task="classification",
        job_name="automl-req-report",
        parent_run_id="parent-1",
        metric="accuracy",
        best_run_id=selection.winner.run_id,
        best_value=selection.value,
        engine_best_run_id=selection.winner.run_id,
        selection_reason=selection.explain(),
        leaderboard=[
            LeaderboardRow(run_id=r.run_id, algorithm=r.algorithm, value=r.metrics["accuracy"])
            for r in selection.leaderboard
        ],
        model_name="churn-model",
        model_version="7",
        endpoint="churn-endpoint",
        scoring_uri="http://127.0.0.1:5001/invocations",
    )
    return result.model_copy(update=changes)


# A small DOM reader --------------------------------------------------------------------


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    text: str = ""
    children: list[Element] = field(default_factory=list)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())


class DomReader(HTMLParser):
    """Every element with its attributes and own text, in document order."""

    VOID = {"meta", "link", "br", "img", "input", "hr", "col", "source"}

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self._open: list[Element] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        if self._open:
            self._open[-1].children.append(element)
        self.elements.append(element)
        if tag not in self.VOID:
            self._open.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID:
            self._open.pop()

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i].tag == tag:
                del self._open[i:]
                return

    def handle_data(self, data: str) -> None:
        if self._open:
            self._open[-1].text += data

    def find(self, tag: str, cls: str | None = None) -> list[Element]:
        return [e for e in self.elements if e.tag == tag and (cls is None or cls in e.classes)]

    def all_text(self) -> str:
        return " ".join(e.text for e in self.elements)

    def rows(self, table: str) -> list[list[str]]:
        """The cells' text of each row with data cells of the one ``tag.class`` table."""
        tag, _, cls = table.partition(".")
        (found,) = self.find(tag, cls or None)
        out = []
        for row in _walk(found):
            cells = [c for c in row.children if c.tag in ("td", "th")] if row.tag == "tr" else []
            if any(c.tag == "td" for c in cells):
                out.append([_text(c).strip() for c in cells])
        return out


def _walk(element: Element) -> list[Element]:
    return [element, *(e for child in element.children for e in _walk(child))]


def _text(element: Element) -> str:
    return element.text + "".join(_text(child) for child in element.children)


def check_report_dom(dom: DomReader) -> None:
    """The assertions shared by the parsed HTML and the browser's DOM."""
    rows = dom.find("tr", "run")
    assert [r.attrs["data-run-id"] for r in rows] == ["run-d", "run-b", "run-c", "run-a"]
    assert [r.attrs["data-run-id"] for r in dom.find("tr", "chosen")] == ["run-d"]
    rejected = {r.attrs["data-run-id"] for r in dom.find("tr", "rejected")}
    assert rejected == {"run-e", "run-f", "run-g"}
    assert len(dom.find("svg", "trials")) == 1
    circles = [c for c in dom.find("circle", "trial") if "data-run-id" in c.attrs]
    assert sorted(c.attrs["data-run-id"] for c in circles) == ["run-a", "run-b", "run-c", "run-d"]
    assert [c.attrs["data-run-id"] for c in circles if "chosen" in c.classes] == ["run-d"]
    assert len(dom.find("line", "span")) == 4
    lines = [p for p in dom.find("polyline", "best-so-far")]
    assert len(lines) == 1
    assert len(lines[0].attrs["points"].split()) >= 4
    text = dom.all_text()
    assert "churn-model version 7" in text
    assert "churn-endpoint" in text
    assert "highest accuracy" in text  # the selection's reason


# Content -------------------------------------------------------------------------------


def test_report_has_leaderboard_plot_and_choice() -> None:
    """The report lists eligible runs best first, the rest apart, and plots each trial."""
    html = render_report(result_for(RUNS), RUNS)
    check_report_dom(DomReader(html))


def test_best_so_far_only_improves() -> None:
    """The best-so-far line follows trials in end order and never gets worse."""
    ranking = rank_runs(result_for(RUNS), RUNS)
    points = trial_points(ranking)
    assert [p.run.run_id for p in points] == ["run-a", "run-b", "run-c", "run-d"]
    assert [p.end for p in points] == [10, 20, 30, 45]
    assert best_so_far(points, Goal.MAXIMIZE) == [(10, 0.8), (20, 0.91), (30, 0.91), (45, 0.93)]
    assert best_so_far(points, Goal.MINIMIZE) == [(10, 0.8), (20, 0.8), (30, 0.8), (45, 0.8)]


def test_minimized_metric_ranks_lowest_first() -> None:
    """For an error metric, the leaderboard puts the lowest value first."""
    runs = [
        RunRecord(
            "r1", RunStatus.FINISHED, {"normalized_root_mean_squared_error": 0.3}, {}, {}, T0, T0
        ),
        RunRecord(
            "r2", RunStatus.FINISHED, {"normalized_root_mean_squared_error": 0.1}, {}, {}, T0, T0
        ),
    ]
    result = RequestResult(
        request_id="r",
        state=RequestState.SUCCEEDED,
        task="regression",
        metric="normalized_root_mean_squared_error",
    )
    dom = DomReader(render_report(result, runs))
    assert [r.attrs["data-run-id"] for r in dom.find("tr", "run")] == ["r2", "r1"]
    assert [r.attrs["data-run-id"] for r in dom.find("tr", "chosen")] == ["r2"]


def test_stored_goal_ranks_a_metric_the_table_does_not_know() -> None:
    """A result's recorded goal orders the runs for a custom metric, whatever order its
    stored leaderboard has."""
    runs = [
        RunRecord("r1", RunStatus.FINISHED, {"custom_loss": 0.3}, {}, {}, T0, T0),
        RunRecord("r2", RunStatus.FINISHED, {"custom_loss": 0.1}, {}, {}, T0, T0),
    ]
    result = RequestResult(
        request_id="r",
        state=RequestState.SUCCEEDED,
        task=Task.REGRESSION,
        metric="custom_loss",
        goal=Goal.MINIMIZE,
        leaderboard=[
            LeaderboardRow(run_id="r1", value=0.3),
            LeaderboardRow(run_id="r2", value=0.1),
        ],
    )
    ranking = rank_runs(result, runs)
    assert ranking.goal is Goal.MINIMIZE
    assert [r.run_id for r in ranking.ranked] == ["r2", "r1"]


def test_a_result_recorded_without_a_goal_still_loads() -> None:
    """JSON written before results kept their goal loads, with the goal taken from the
    metric table."""
    old = (
        '{"request_id": "old", "state": "succeeded", "task": "regression",'
        ' "metric": "r2_score", "updated_at": 1.0}'
    )
    result = RequestResult.model_validate_json(old)
    assert result.goal is None and result.task is Task.REGRESSION
    assert rank_runs(result, []).goal is Goal.MAXIMIZE


def test_report_without_runs_uses_the_stored_leaderboard() -> None:
    """With no child runs at hand, the leaderboard comes from the result and no plot is drawn."""
    dom = DomReader(render_report(result_for(RUNS), []))
    assert [r.attrs["data-run-id"] for r in dom.find("tr", "run")] == [
        "run-d",
        "run-b",
        "run-c",
        "run-a",
    ]
    assert dom.find("svg") == []
    assert dom.find("p", "empty")


def test_failed_request_renders() -> None:
    """A failed request with no metric and no runs still renders its error."""
    result = RequestResult(request_id="req-x", state=RequestState.FAILED, error="job failed")
    dom = DomReader(render_report(result, []))
    assert "job failed" in dom.all_text()
    assert "No run was chosen." in dom.all_text()


def test_equal_values_and_missing_times_do_not_break_the_plot() -> None:
    """Runs with one equal value, or without times, give finite coordinates."""
    runs = [
        RunRecord("a", RunStatus.FINISHED, {"accuracy": 0.5}, {}, {}, T0, T0),
        RunRecord("b", RunStatus.FINISHED, {"accuracy": 0.5}, {}, {}, T0, T0),
        RunRecord("c", RunStatus.FINISHED, {"accuracy": 0.5}),
    ]
    result = RequestResult(
        request_id="r", state=RequestState.SUCCEEDED, task="classification", metric="accuracy"
    )
    dom = DomReader(render_report(result, runs))
    circles = [c for c in dom.find("circle", "trial") if "data-run-id" in c.attrs]
    assert len(circles) == 2
    for circle in circles:
        assert all(v not in circle.attrs["cx"] + circle.attrs["cy"] for v in ("nan", "inf"))
    assert len(dom.find("tr", "run")) == 3


# Safety --------------------------------------------------------------------------------

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def hostile_report() -> str:
    runs = [*RUNS[:3], run("run-h", 0.95, 1, 2, algorithm=HOSTILE)]
    result = result_for(
        runs,
        selection_reason=HOSTILE,
        model_name=HOSTILE,
        error=HOSTILE,
        deployment_note=HOSTILE,
        scoring_uri='"><script>alert(2)</script>',
    )
    return render_report(result, runs)


def test_data_is_escaped() -> None:
    """Text from runs and results shows as text: no element or attribute comes from data."""
    html = hostile_report()
    dom = DomReader(html)
    assert dom.find("script") == []
    assert dom.find("img") == []
    assert HOSTILE in dom.all_text()
    assert all(not name.startswith("on") for e in dom.elements for name in e.attrs)


def test_report_is_self_contained() -> None:
    """The page loads nothing: no scripts, links, images, imports or remote URLs in it."""
    html = render_report(result_for(RUNS), RUNS)
    dom = DomReader(html)
    assert {e.tag for e in dom.elements} <= {
        "html", "head", "meta", "title", "style", "body", "h1", "h2", "section", "table",
        "thead", "tbody", "tr", "th", "td", "p", "code", "span", "svg", "rect", "line", "text",
        "polyline", "circle", "g",
    }  # fmt: skip
    for element in dom.elements:
        for name, value in element.attrs.items():
            assert name not in ("src", "href") or not value, (element.tag, name)
    style = "".join(e.text for e in dom.find("style"))
    assert "url(" not in style and "@import" not in style
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "").replace(
        "http://127.0.0.1:5001/invocations", ""
    )


def test_report_with_insight_loads_nothing_either() -> None:
    """The insight charts are images whose only source is their own data: URI."""
    dom = DomReader(render_report(result_for(RUNS), RUNS, insight_for_report()))
    images = dom.find("img")
    assert len(images) == 3
    for element in dom.elements:
        for name, value in element.attrs.items():
            if name in ("src", "href") and value:
                assert element.tag == "img" and value.startswith("data:image/svg+xml;base64,")
    assert dom.find("script") == []


# A real store and a real browser -------------------------------------------------------


def test_report_from_a_real_mlflow_scan(mlflow_store: MlflowStore) -> None:
    """Runs scanned from a real MLflow store render with their recorded times and values."""
    client = mlflow_store.client
    experiment_id = mlflow_store.experiment_id
    parent = client.create_run(experiment_id, run_name="parent").info.run_id
    values = [0.7, 0.9, 0.8]
    for i, value in enumerate(values):
        child = client.create_run(
            experiment_id,
            tags={"mlflow.parentRunId": parent, "algorithm": f"algo-{i}"},
            start_time=T0 + i * 1000,
        ).info.run_id
        client.log_metric(child, "accuracy", value)
        client.set_terminated(child, "FINISHED", end_time=T0 + i * 1000 + 500)
    runs = scan_child_runs(client, [experiment_id], parent)
    assert len(runs) == 3
    html = render_report(result_for(runs), runs)
    dom = DomReader(html)
    rows = dom.find("tr", "run")
    assert [r.children[3].text for r in rows] == ["0.9", "0.8", "0.7"]
    circles = [c for c in dom.find("circle", "trial") if "data-run-id" in c.attrs]
    assert len(circles) == 3
    xs = sorted(float(c.attrs["cx"]) for c in circles)
    assert xs[0] < xs[1] < xs[2]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is required in CI (apt-get install chromium)")
    pytest.skip("chromium is not installed (apt-get install chromium)")


def headless(html: str, tmp_path: Path, *action: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium run on ``html`` loaded as a file, with ``action`` flags."""
    page = tmp_path / "report.html"
    page.write_text(html, encoding="utf-8")
    profile = tmp_path / "profile"
    command = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        *action,
        page.as_uri(),
    ]
    env = {**os.environ, "HOME": str(tmp_path)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def dump_dom(html: str, tmp_path: Path) -> str:
    """The DOM headless Chromium builds from ``html`` loaded as a file."""
    done = headless(html, tmp_path, "--dump-dom")
    assert "<svg" in done.stdout, done.stderr[-2000:]
    return done.stdout


@pytest.mark.process
def test_report_in_headless_chromium(tmp_path: Path) -> None:
    """Chromium builds the leaderboard rows and the plot's SVG elements from the file."""
    started = time.monotonic()
    dom = DomReader(dump_dom(render_report(result_for(RUNS), RUNS), tmp_path))
    check_report_dom(dom)
    assert time.monotonic() - started < 120


@pytest.mark.process
def test_hostile_report_in_headless_chromium(tmp_path: Path) -> None:
    """In the browser, hostile text stays text: no script or image element appears."""
    dom = DomReader(dump_dom(hostile_report(), tmp_path))
    assert dom.find("script") == []
    assert dom.find("img") == []
    assert '<script>alert("x")</script>' in dom.all_text()


def test_the_chosen_model_section_shows_metrics_settings_and_ensemble_members() -> None:
    """Every canonical metric beside the runner-up's, the winner's settings, and for an
    ensemble its members by algorithm with their weights."""
    members = [
        run("m-1", 0.91, 0, 5, algorithm="LightGBM"),
        run("m-2", 0.90, 1, 6, algorithm="RandomForest"),
    ]
    ensemble = RunRecord(
        run_id="ens",
        status=RunStatus.FINISHED,
        metrics={"accuracy": 0.95, "AUC_weighted": 0.97, "test_accuracy": 0.5},
        tags={"algorithm": "VotingEnsemble"},
        params={
            "ensembled_iterations": '["m-1", "m-2"]',
            "ensemble_weights": "[0.75, 0.25]",
            "learner": "ensemble",
        },
        start_time_ms=T0,
        end_time_ms=T0 + 7000,
    )
    runs = [*members, ensemble]
    dom = DomReader(render_report(result_for(runs, test_metrics={"accuracy": 0.5}), runs))
    metrics = dom.rows("table.metrics")
    assert metrics[0] == ["accuracy", "0.95", "0.91", "0.5"]  # chosen, runner-up, test rows
    assert ["AUC_weighted", "0.97", "-", "-"] in metrics
    assert "On the test rows, which took no part in training or choosing it: accuracy = 0.5" in (
        dom.all_text()
    )
    assert all(row[0] != "test_accuracy" for row in metrics)  # test rows are apart
    assert dom.rows("table.members") == [
        ["m-1", "LightGBM", "0.75"],
        ["m-2", "RandomForest", "0.25"],
    ]
    assert dom.rows("table.settings") == [["learner", "ensemble"]]


def insight_for_report() -> ModelInsight:
    """Real charts of a binary model (drawn by matplotlib, as the trainer draws them)."""
    from automl_service.engines.local import insight, insight_charts

    matrix = insight.confusion(
        ["no"] * 80 + ["yes"] * 40, ["no"] * 75 + ["yes"] * 45, ["no", "yes"]
    )
    roc = insight.Curve([0.0, 0.1, 0.3, 1.0], [0.0, 0.7, 0.9, 1.0], 0.9)
    ranking = [insight.Importance(f"feature_{i}", 0.2 / (i + 1), 0.01) for i in range(8)]
    return ModelInsight(
        rows="the 120 test rows, which took no part in training or choosing the model",
        charts=[
            Chart("confusion_matrix.svg", "Confusion matrix", "By class.",
                  insight_charts.confusion_chart(matrix)),
            Chart("roc_curve.svg", "ROC curve", "", insight_charts.roc_chart(roc, "yes")),
            Chart("permutation_importance.svg", "Permutation importance", "",
                  insight_charts.importance_chart(ranking, "accuracy")),
        ],
        notes=["ROC and precision-recall curves: drawn for two classes only"],
    )  # fmt: skip


@pytest.mark.process
def test_report_screenshot_at_1280_pixels_is_drawn(tmp_path: Path) -> None:
    """A 1280-pixel-wide screenshot of a report with every section shows a page drawn
    in colour: text, the chosen row's green, the plot's blue and orange, and the model
    insight's charts (the confusion matrix's dark blue, found nowhere else); Chromium's
    DOM holds the insight section with each chart as an image."""
    from matplotlib.image import imread

    members = [run("m-1", 0.91, 0, 5, algorithm="LightGBM"), run("m-2", 0.9, 1, 6)]
    ensemble = RunRecord(
        run_id="ens",
        status=RunStatus.FINISHED,
        metrics={"accuracy": 0.95},
        tags={"algorithm": "VotingEnsemble"},
        params={"ensembled_iterations": '["m-1", "m-2"]', "ensemble_weights": "[0.5, 0.5]"},
        start_time_ms=T0 + 6000,
        end_time_ms=T0 + 7000,
    )
    runs = [*RUNS, *members, ensemble]
    result = result_for(runs, test_metrics={"accuracy": 0.93}, best_run_id="ens")
    html = render_report(result, runs, insight_for_report())
    shot = tmp_path / "report.png"
    headless(html, tmp_path, "--window-size=1280,3200", f"--screenshot={shot}")
    pixels = imread(shot)
    assert pixels.shape[:2] == (3200, 1280)
    rgb = pixels[..., :3]
    drawn = (rgb.min(axis=2) < 0.9).mean()  # not white
    assert 0.02 < drawn < 0.5, drawn
    reds, greens, blues = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    assert ((greens - reds > 0.2) & (greens - blues > 0.1)).any()  # the chosen badge
    assert (blues - reds > 0.3).any()  # the trials
    assert (reds - blues > 0.4).any()  # the best-so-far line
    navy = (reds < 0.1) & (greens < 0.25) & (blues > 0.35)  # the confusion matrix's cells
    assert navy.sum() > 5000, navy.sum()
    rows = np.nonzero(navy.any(axis=1))[0]
    assert rows.min() > 300  # below the summary, within the page
    dom = DomReader(dump_dom(html, tmp_path))
    (section,) = [e for e in dom.find("section") if e.attrs.get("id") == "insight"]
    images = [e for e in _walk(section) if e.tag == "img"]
    assert [i.attrs["alt"] for i in images] == [
        "Confusion matrix",
        "ROC curve",
        "Permutation importance",
    ]
    assert all(i.attrs["src"].startswith("data:image/svg+xml;base64,") for i in images)
    assert "Model insight" in dom.all_text()


def test_a_runs_duration_reads_in_milliseconds_below_a_second() -> None:
    from automl_service.report import _duration
    from automl_service.runs import RunRecord, RunStatus

    def run(ms: int) -> RunRecord:
        return RunRecord("r", RunStatus.FINISHED, start_time_ms=1_000, end_time_ms=1_000 + ms)

    assert [_duration(run(ms)) for ms in (0, 63, 2_500, 300_000)] == [
        "0 ms",
        "63 ms",
        "2.5 s",
        "5.0 min",
    ]
