"""A request's outcome as one self-contained HTML page (pure: records in, a string out).

The page holds the chosen run and why (with its metrics on the test rows, when there
were any), its every canonical metric beside the runner-up's, its settings and, for an
ensemble, its members and weights, the chosen run's model insight (the charts of its
``insight/`` artifacts, see ``insight_files``), an inline SVG plot of every trial's
selection metric over time with the best-so-far line, the leaderboard, the registered
model and the endpoint. No scripts, no external fonts, styles or images: it opens offline,
from a mail attachment or a build artefact. Every text that comes from data is escaped;
the insight charts are embedded as ``data:`` URI images, so that nothing in an artifact
runs and each chart's styles and ids stay its own.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape

from .insight_files import ModelInsight
from .metrics import METRIC_GOALS, Goal, goal_of
from .results import RequestResult
from .runs import RunRecord
from .selection import ineligible, select_best

# Plot geometry, in SVG user units.
WIDTH, HEIGHT = 720, 360
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 72, 24, 36, 52
TICKS = 5


@dataclass(frozen=True)
class Ranking:
    """The runs in leaderboard order, the ones that could not take part, and the goal."""

    metric: str | None
    goal: Goal | None
    ranked: tuple[RunRecord, ...]
    rejected: tuple[tuple[RunRecord, str], ...]


@dataclass(frozen=True)
class Point:
    """One trial on the plot: when it ran (seconds from the first start) and its value."""

    run: RunRecord
    start: float
    end: float
    value: float


def render_report(
    result: RequestResult, runs: list[RunRecord], insight: ModelInsight | None = None
) -> str:
    """The HTML report for ``result``, whose AutoML job produced the child runs ``runs``,
    with ``insight``, the chosen run's model insight, when it has one.

    ``runs`` may be empty (e.g. the job's store is gone): the leaderboard then comes from
    ``result.leaderboard`` and the plot is left out. Never raises on odd data (missing
    metrics, NaN, runs without times); such runs are listed as not eligible.
    """
    ranking = rank_runs(result, runs)
    chosen = result.best_run_id or (ranking.ranked[0].run_id if ranking.ranked else None)
    title = f"AutoML report: {result.request_id}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{escape(title)}</h1>",
        _summary(result, ranking),
        _choice(result, ranking, chosen),
        _model_details(result, ranking, chosen),
        _insight(insight, chosen),
        '<section id="plot"><h2>Trials over time</h2>',
        _plot(ranking, chosen),
        "</section>",
        _leaderboard(result, ranking, chosen),
        _not_eligible(ranking),
        "</body>",
        "</html>",
    ]
    return "\n".join(part for part in parts if part) + "\n"


def rank_runs(result: RequestResult, runs: Sequence[RunRecord]) -> Ranking:
    """The eligible runs best first (as the selection ranks them) and the rest with reasons.

    The goal is the one the result recorded; a result recorded before goals were kept
    takes it from the metric table, or for a metric the table does not know, from the
    order of ``result.leaderboard``; failing all, runs keep the leaderboard's (or their
    own) order.
    """
    metric = result.metric
    goal = _goal(result)
    eligible: list[RunRecord] = []
    rejected: list[tuple[RunRecord, str]] = []
    for run in runs:
        reason = _ineligible(run, metric)
        if reason:
            rejected.append((run, reason))
        else:
            eligible.append(run)
    if eligible and metric and goal:
        ranked = select_best(eligible, metric, goal).leaderboard
    else:
        order = {row.run_id: i for i, row in enumerate(result.leaderboard)}
        ranked = tuple(sorted(eligible, key=lambda r: order.get(r.run_id, len(order))))
    return Ranking(metric, goal, ranked, tuple(sorted(rejected, key=lambda x: x[0].run_id)))


def trial_points(ranking: Ranking) -> list[Point]:
    """The plot's points: runs with a start or end time, seconds from the first start."""
    if not ranking.metric:
        return []
    timed = [r for r in ranking.ranked if r.start_time_ms is not None or r.end_time_ms is not None]
    if not timed:
        return []
    origin = min(_start_ms(r) for r in timed)
    points = [
        Point(
            run,
            (_start_ms(run) - origin) / 1000.0,
            (_end_ms(run) - origin) / 1000.0,
            float(run.metrics[ranking.metric]),
        )
        for run in timed
    ]
    return sorted(points, key=lambda p: (p.end, p.run.run_id))


def best_so_far(points: Sequence[Point], goal: Goal) -> list[tuple[float, float]]:
    """(time, best value up to then) at each trial's end, in end order."""
    steps: list[tuple[float, float]] = []
    best: float | None = None
    for point in sorted(points, key=lambda p: (p.end, p.run.run_id)):
        better = (
            best is None
            or (goal is Goal.MAXIMIZE and point.value > best)
            or (goal is Goal.MINIMIZE and point.value < best)
        )
        if better:
            best = point.value
        assert best is not None
        steps.append((point.end, best))
    return steps


# Sections --------------------------------------------------------------------------------


def _summary(result: RequestResult, ranking: Ranking) -> str:
    goal = f" ({ranking.goal.value})" if ranking.goal else ""
    rows = [
        ("State", result.state.value),
        ("Task", result.task),
        ("AutoML job", result.job_name),
        ("Parent run", result.parent_run_id),
        ("Selection metric", f"{result.metric}{goal}" if result.metric else None),
        ("Trials", str(len(ranking.ranked) + len(ranking.rejected)) if ranking.metric else None),
        ("Model", _model(result)),
        ("Endpoint", result.endpoint),
        ("Scoring URI", result.scoring_uri),
        ("Deployment", result.deployment_note),
        ("Decision threshold", threshold_text(result)),
        ("Error", result.error),
        ("Failed attempts", str(result.attempts) if result.attempts else None),
        ("Updated", _when(result.updated_at * 1000)),
    ]
    body = "".join(
        f'<tr><th scope="row">{escape(name)}</th><td>{escape(value)}</td></tr>'
        for name, value in rows
        if value
    )
    return f'<section id="summary"><h2>Summary</h2><table class="facts">{body}</table></section>'


def _choice(result: RequestResult, ranking: Ranking, chosen: str | None) -> str:
    if not chosen:
        return '<section id="choice"><h2>Chosen run</h2><p>No run was chosen.</p></section>'
    lines = [f'<p>Run <code class="chosen-run">{escape(chosen)}</code>']
    run = next((r for r in ranking.ranked if r.run_id == chosen), None)
    if run is not None and run.algorithm:
        lines.append(f" ({escape(run.algorithm)})")
    if result.best_value is not None and result.metric:
        lines.append(f" with {escape(result.metric)} = {escape(_fmt(result.best_value))}")
    lines.append(".</p>")
    if result.selection_reason:
        lines.append(f'<p class="reason">{escape(result.selection_reason)}</p>')
    if result.engine_best_run_id and result.engine_best_run_id != chosen:
        lines.append(
            '<p class="note">The AutoML engine\'s own pick was '
            f"<code>{escape(result.engine_best_run_id)}</code>; it ranks by its primary "
            "metric, not by the selection metric.</p>"
        )
    test = result.test_metrics.get(result.metric or "")
    if test is not None:
        lines.append(
            f'<p class="test">On the test rows, which took no part in training or choosing '
            f"it: {escape(result.metric or '')} = {escape(_fmt(test))}.</p>"
        )
    model = _model(result)
    if model:
        lines.append(f'<p>Registered as <span class="model">{escape(model)}</span>.</p>')
    if result.endpoint:
        where = f" at <code>{escape(result.scoring_uri)}</code>" if result.scoring_uri else ""
        lines.append(
            f'<p>Served by endpoint <span class="endpoint">{escape(result.endpoint)}</span>'
            f"{where}.</p>"
        )
    return '<section id="choice"><h2>Chosen run</h2>' + "".join(lines) + "</section>"


def _model_details(result: RequestResult, ranking: Ranking, chosen: str | None) -> str:
    """The chosen run's every canonical metric beside the runner-up's, its settings, and
    for an ensemble its members and weights. Empty without the runs."""
    runs = list(ranking.ranked)
    winner = next((r for r in runs if r.run_id == chosen), None)
    if winner is None:
        return ""
    runner_up = next((r for r in runs if r.run_id != chosen), None)
    tables = [METRIC_GOALS[result.task]] if result.task else list(METRIC_GOALS.values())
    known = dict.fromkeys(name for table in tables for name in table)
    names = [name for name in known if name in winner.metrics]
    tested = result.test_metrics
    head = "<tr><th>metric</th><th>chosen run</th>"
    head += "<th>runner-up</th>" if runner_up is not None else ""
    head += "<th>chosen run, test rows</th></tr>" if tested else "</tr>"
    rows = []
    for name in names:
        cells = f"<td>{escape(name)}</td><td>{escape(_fmt(winner.metrics[name]))}</td>"
        if runner_up is not None:
            cells += f"<td>{_cell(runner_up.metrics.get(name))}</td>"
        if tested:
            cells += f"<td>{_cell(tested.get(name))}</td>"
        rows.append(f"<tr>{cells}</tr>")
    parts = [
        '<section id="model"><h2>The chosen model</h2>',
        "<p>Metrics on the validation rows the search was scored on"
        + (", and the chosen run's on the test rows." if tested else ".")
        + "</p>",
        f'<table class="metrics"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>',
    ]
    members = _members(winner, {r.run_id: r for r in runs})
    if members:
        parts.append(f"<h3>Ensemble members</h3>{members}")
    settings = {k: v for k, v in winner.params.items() if not k.startswith("ensemble")}
    if settings:
        items = "".join(
            f"<tr><th>{escape(k)}</th><td><code>{escape(v)}</code></td></tr>"
            for k, v in sorted(settings.items())
        )
        parts.append(f'<h3>Settings</h3><table class="facts settings">{items}</table>')
    parts.append("</section>")
    return "".join(parts)


def _cell(value: float | None) -> str:
    return "-" if value is None else escape(_fmt(value))


def _members(winner: RunRecord, by_id: dict[str, RunRecord]) -> str:
    """An ensemble's member runs, their algorithms and weights (from its params)."""
    try:
        ids = json.loads(winner.params.get("ensembled_iterations", "[]"))
        weights = json.loads(winner.params.get("ensemble_weights", "[]"))
    except ValueError:
        return ""
    if not isinstance(ids, list) or not isinstance(weights, list) or len(ids) != len(weights):
        return ""
    rows = []
    for run_id, weight in zip(ids, weights, strict=True):
        member = by_id.get(str(run_id))
        algorithm = member.algorithm if member is not None else None
        rows.append(
            f"<tr><td><code>{escape(str(run_id))}</code></td>"
            f"<td>{escape(algorithm or '?')}</td><td>{escape(str(weight))}</td></tr>"
        )
    if not rows:
        return ""
    head = "<tr><th>run</th><th>algorithm</th><th>weight</th></tr>"
    return f'<table class="members"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def _leaderboard(result: RequestResult, ranking: Ranking, chosen: str | None) -> str:
    metric = escape(ranking.metric or "value")
    head = (
        f"<tr><th>#</th><th>Run</th><th>Algorithm</th><th>{metric}</th>"
        "<th>Status</th><th>Started (UTC)</th><th>Duration</th></tr>"
    )
    rows: list[str] = []
    if ranking.ranked:
        for rank, run in enumerate(ranking.ranked, start=1):
            value = run.metrics[ranking.metric] if ranking.metric else math.nan
            rows.append(
                _row(
                    rank,
                    run.run_id,
                    run.algorithm,
                    value,
                    run.status,
                    _when(run.start_time_ms),
                    _duration(run),
                    run.run_id == chosen,
                )
            )
    else:  # no child runs at hand: what the result kept
        for rank, row in enumerate(result.leaderboard, start=1):
            rows.append(
                _row(rank, row.run_id, row.algorithm, row.value, "", "", "", row.run_id == chosen)
            )
    if not rows:
        return (
            '<section id="leaderboard"><h2>Leaderboard</h2>'
            "<p>No run has a usable value of the selection metric.</p></section>"
        )
    return (
        '<section id="leaderboard"><h2>Leaderboard</h2>'
        f'<table class="leaderboard"><thead>{head}</thead><tbody>{"".join(rows)}</tbody>'
        "</table></section>"
    )


def _row(
    rank: int,
    run_id: str,
    algorithm: str | None,
    value: float,
    status: str,
    started: str,
    duration: str,
    chosen: bool,
) -> str:
    cls = "run chosen" if chosen else "run"
    mark = ' <span class="badge">chosen</span>' if chosen else ""
    cells = [
        str(rank),
        f"<code>{escape(run_id)}</code>{mark}",
        escape(algorithm or "unknown"),
        escape(_fmt(value)),
        escape(status),
        escape(started),
        escape(duration),
    ]
    tds = "".join(f"<td>{cell}</td>" for cell in cells)
    return f'<tr class="{cls}" data-run-id="{escape(run_id)}">{tds}</tr>'


def _not_eligible(ranking: Ranking) -> str:
    if not ranking.rejected:
        return ""
    rows = "".join(
        f'<tr class="rejected" data-run-id="{escape(run.run_id)}">'
        f"<td><code>{escape(run.run_id)}</code></td><td>{escape(run.algorithm or 'unknown')}"
        f"</td><td>{escape(run.status)}</td><td>{escape(reason)}</td></tr>"
        for run, reason in ranking.rejected
    )
    return (
        '<section id="not-eligible"><h2>Not eligible</h2><table class="rejected">'
        "<thead><tr><th>Run</th><th>Algorithm</th><th>Status</th><th>Why</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></section>"
    )


# Model insight ---------------------------------------------------------------------------

#: An SVG this wide (in its own units) or wider spans the page; others sit two abreast.
WIDE_CHART = 600.0


def _insight(insight: ModelInsight | None, chosen: str | None) -> str:
    """The chosen run's insight charts, two abreast, each with its title and caption,
    and what was skipped and why. Empty without a chosen run."""
    if not chosen:
        return ""
    head = '<section id="insight"><h2>Model insight</h2>'
    if insight is None or (not insight.charts and not insight.notes):
        return (
            f'{head}<p class="empty">No insight was recorded for the chosen run (the local '
            "backend records it when the time limit leaves room).</p></section>"
        )
    parts = [head]
    if insight.rows:
        parts.append(f'<p class="rows">Computed on {escape(insight.rows)}.</p>')
    figures = []
    for chart in insight.charts:
        wide = " wide" if _svg_width(chart.svg) >= WIDE_CHART else ""
        data = base64.b64encode(chart.svg.encode("utf-8")).decode("ascii")
        caption = f" {escape(chart.caption)}" if chart.caption else ""
        figures.append(
            f'<figure class="chart{wide}" data-file="{escape(chart.file)}">'
            f'<img src="data:image/svg+xml;base64,{data}" alt="{escape(chart.title)}">'
            f"<figcaption><strong>{escape(chart.title)}</strong>.{caption}</figcaption></figure>"
        )
    if figures:
        parts.append(f'<div class="charts">{"".join(figures)}</div>')
    if insight.notes:
        items = "".join(f"<li>{escape(note)}</li>" for note in insight.notes)
        parts.append(f'<p>Not shown:</p><ul class="skipped">{items}</ul>')
    parts.append("</section>")
    return "".join(parts)


def _svg_width(svg: str) -> float:
    """The width of an SVG's outer element in its own units (0 when not given)."""
    found = re.search(r"<svg\b[^>]*?\bwidth=\"([0-9.]+)", svg)
    try:
        return float(found.group(1)) if found else 0.0
    except ValueError:
        return 0.0


# The plot --------------------------------------------------------------------------------


def _plot(ranking: Ranking, chosen: str | None) -> str:
    points = trial_points(ranking)
    if not points or not ranking.metric:
        return '<p class="empty">No trial has both a time and a value to plot.</p>'
    x_max = max(p.end for p in points)
    x_lo, x_hi = _domain([0.0, x_max])
    y_lo, y_hi = _domain([p.value for p in points])
    minutes = x_hi > 180
    unit = 60.0 if minutes else 1.0
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM

    def sx(seconds: float) -> float:
        return MARGIN_LEFT + (seconds - x_lo) / (x_hi - x_lo) * plot_w

    def sy(value: float) -> float:
        return MARGIN_TOP + (y_hi - value) / (y_hi - y_lo) * plot_h

    metric = escape(ranking.metric)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="trials" width="{WIDTH}" '
        f'height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{metric} of each trial over time">',
        f"<title>{metric} of each trial over time</title>",
        f'<rect class="frame" x="{MARGIN_LEFT}" y="{MARGIN_TOP}" width="{plot_w}" '
        f'height="{plot_h}"/>',
    ]
    for tick in _ticks(x_lo, x_hi):
        x = sx(tick)
        out.append(
            f'<line class="grid" x1="{x:.2f}" y1="{MARGIN_TOP}" x2="{x:.2f}" '
            f'y2="{MARGIN_TOP + plot_h}"/>'
            f'<text class="tick x" x="{x:.2f}" y="{MARGIN_TOP + plot_h + 16}" '
            f'text-anchor="middle">{escape(_fmt(tick / unit))}</text>'
        )
    for tick in _ticks(y_lo, y_hi):
        y = sy(tick)
        out.append(
            f'<line class="grid" x1="{MARGIN_LEFT}" y1="{y:.2f}" x2="{MARGIN_LEFT + plot_w}" '
            f'y2="{y:.2f}"/>'
            f'<text class="tick y" x="{MARGIN_LEFT - 6}" y="{y + 4:.2f}" '
            f'text-anchor="end">{escape(_fmt(tick))}</text>'
        )
    out.append(
        f'<text class="axis-label" x="{MARGIN_LEFT + plot_w / 2:.2f}" y="{HEIGHT - 10}" '
        f'text-anchor="middle">{"minutes" if minutes else "seconds"} since the first trial '
        "started</text>"
        f'<text class="axis-label" transform="translate(16 {MARGIN_TOP + plot_h / 2:.2f}) '
        f'rotate(-90)" text-anchor="middle">{metric}</text>'
    )
    if ranking.goal is not None:
        steps = best_so_far(points, ranking.goal)
        coords: list[str] = []
        for i, (t, best) in enumerate(steps):
            if i:
                coords.append(f"{sx(t):.2f},{sy(steps[i - 1][1]):.2f}")
            coords.append(f"{sx(t):.2f},{sy(best):.2f}")
        coords.append(f"{sx(x_hi):.2f},{sy(steps[-1][1]):.2f}")
        out.append(f'<polyline class="best-so-far" points="{" ".join(coords)}"/>')
    for point in points:
        is_chosen = point.run.run_id == chosen
        y = sy(point.value)
        tip = (
            f"{point.run.run_id} ({point.run.algorithm or 'unknown'}): "
            f"{ranking.metric} = {_fmt(point.value)}"
        )
        out.append(
            f'<line class="span" x1="{sx(point.start):.2f}" y1="{y:.2f}" '
            f'x2="{sx(point.end):.2f}" y2="{y:.2f}"/>'
            f'<circle class="{"trial chosen" if is_chosen else "trial"}" '
            f'data-run-id="{escape(point.run.run_id)}" cx="{sx(point.end):.2f}" cy="{y:.2f}" '
            f'r="{6 if is_chosen else 4}"><title>{escape(tip)}</title></circle>'
        )
    legend_y = 14  # above the frame, clear of the data
    legend_x = MARGIN_LEFT + 4
    out.append(
        f'<g class="legend"><circle class="trial" cx="{legend_x}" cy="{legend_y}" r="4"/>'
        f'<text x="{legend_x + 10}" y="{legend_y + 4}">trial (line: start to end)</text>'
        f'<circle class="trial chosen" cx="{legend_x + 190}" cy="{legend_y}" r="6"/>'
        f'<text x="{legend_x + 200}" y="{legend_y + 4}">chosen</text>'
    )
    if ranking.goal is not None:
        out.append(
            f'<line class="best-so-far" x1="{legend_x + 260}" y1="{legend_y}" '
            f'x2="{legend_x + 285}" y2="{legend_y}"/>'
            f'<text x="{legend_x + 292}" y="{legend_y + 4}">best so far</text>'
        )
    out.append("</g></svg>")
    return "".join(out)


def _domain(values: Sequence[float]) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    if hi == lo:
        pad = abs(lo) * 0.05 or 1.0
        return lo - pad, hi + pad
    pad = (hi - lo) * 0.05
    return lo - pad, hi + pad


def _ticks(lo: float, hi: float) -> list[float]:
    """About TICKS round numbers between lo and hi."""
    raw = (hi - lo) / TICKS
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(lo / step) * step
    ticks: list[float] = []
    value = first
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


# Helpers ---------------------------------------------------------------------------------


def _goal(result: RequestResult) -> Goal | None:
    if not result.metric:
        return None
    if result.goal is not None:
        return result.goal
    # A result recorded before the goal was kept.
    known = goal_of(result.metric, result.task)
    if known is not None:
        return known
    values = [row.value for row in result.leaderboard]
    if len(values) >= 2 and values[0] != values[-1]:
        return Goal.MAXIMIZE if values[0] > values[-1] else Goal.MINIMIZE
    return None


def _ineligible(run: RunRecord, metric: str | None) -> str | None:
    return ineligible(run, metric) if metric else "no selection metric"


def _start_ms(run: RunRecord) -> float:
    return float(run.start_time_ms if run.start_time_ms is not None else run.end_time_ms or 0)


def _end_ms(run: RunRecord) -> float:
    return float(run.end_time_ms if run.end_time_ms is not None else _start_ms(run))


def threshold_text(result: RequestResult) -> str | None:
    """The winner's decision threshold and how it came to be, or None without one."""
    if result.decision_threshold is None:
        return None
    how = result.decision_threshold_reason or "set by the request"
    return f"{_fmt(result.decision_threshold)} ({how})"


def _model(result: RequestResult) -> str | None:
    if not result.model_name:
        return None
    version = f" version {result.model_version}" if result.model_version else ""
    return f"{result.model_name}{version}"


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def _when(ms: float | None) -> str:
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000.0, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _duration(run: RunRecord) -> str:
    if run.start_time_ms is None or run.end_time_ms is None:
        return ""
    seconds = max(0.0, (run.end_time_ms - run.start_time_ms) / 1000.0)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"  # a baseline or a blend takes milliseconds
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;
max-width:60rem;padding:0 1rem;color:#1d2430;line-height:1.45}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #d7dce3}
table{border-collapse:collapse;width:100%;font-size:.9rem;table-layout:auto}
td code{overflow-wrap:anywhere}h3{font-size:1rem;margin-top:1.25rem}
th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #eceff3;vertical-align:top}
table.facts th{width:11rem;color:#4b5566;font-weight:600}
tr.chosen{background:#e8f4ea;font-weight:600}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.85em}
.badge{background:#2f7d3b;color:#fff;border-radius:.6rem;padding:0 .45rem;font-size:.75rem}
.reason{background:#f5f7fa;border-left:3px solid #2f7d3b;padding:.5rem .75rem}
.note{color:#8a5a00}.empty{color:#6b7280}
svg.trials{max-width:100%;height:auto;font-size:11px;fill:#1d2430}
svg .frame{fill:none;stroke:#c4cad3}svg .grid{stroke:#eceff3}
svg .span{stroke:#7ea6d8;stroke-width:2;opacity:.6}
svg circle.trial{fill:#2b6cb0;stroke:#fff;stroke-width:1}
svg circle.trial.chosen{fill:#2f7d3b;stroke:#1d2430;stroke-width:1.5}
svg .best-so-far{fill:none;stroke:#d9480f;stroke-width:2}
svg .axis-label{font-size:12px;fill:#4b5566}
.charts{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:1rem}
figure.chart{margin:0;border:1px solid #eceff3;padding:.5rem}figure.chart.wide{grid-column:1/-1}
figure.chart img{width:100%;height:auto;display:block}
figcaption{font-size:.85rem;color:#4b5566;margin-top:.25rem}ul.skipped{color:#6b7280}
"""
