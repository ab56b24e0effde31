"""Plain-text views of results for the terminal (pure: strings in, strings out)."""

from __future__ import annotations

from typing import Any

from .results import RequestResult


def result_summary(result: RequestResult, *, leaderboard_rows: int = 5) -> str:
    lines = [f"request {result.request_id}: {result.state.value}"]
    fields = [
        ("task", result.task),
        ("job", result.job_name),
        ("parent run", result.parent_run_id),
        ("best run", result.best_run_id),
        (
            "metric",
            f"{result.metric} = {result.best_value:.6g}"
            if result.metric and result.best_value is not None
            else None,
        ),
        (
            "model",
            f"{result.model_name} version {result.model_version}" if result.model_name else None,
        ),
        (
            "on test rows",
            f"{result.metric} = {result.test_metrics[result.metric]:.6g}"
            if result.metric in result.test_metrics
            else None,
        ),
        (
            "threshold",
            f"{result.decision_threshold:.6g} "
            f"({result.decision_threshold_reason or 'set by the request'})"
            if result.decision_threshold is not None
            else None,
        ),
        ("endpoint", f"{result.endpoint} ({result.scoring_uri})" if result.endpoint else None),
        ("deployment", result.deployment_note),
        ("policy", "; ".join(result.policy_changes) or None),
        ("progress", None if result.state.terminal else progress_text(result.progress)),
        ("error", result.error),
        ("failed attempts", str(result.attempts) if result.attempts else None),
        ("attempt", str(result.attempt) if result.attempt > 1 else None),
    ]
    lines += [f"  {name:<16}{value}" for name, value in fields if value]
    for earlier in result.earlier_attempts:
        why = f": {earlier.error}" if earlier.error else ""
        lines.append(f"  attempt {earlier.attempt:<8}{earlier.state.value}{why}")
    if result.leaderboard:
        lines.append(f"  leaderboard ({result.metric}):")
        lines += [
            f"    {rank:>2}. {row.value:<12.6g} {row.algorithm or '?':<24} {row.run_id}"
            for rank, row in enumerate(result.leaderboard[:leaderboard_rows], start=1)
        ]
    if result.selection_reason:
        lines.append(f"  chosen because: {result.selection_reason}")
    return "\n".join(lines)


def result_table(results: list[RequestResult]) -> str:
    if not results:
        return "no requests yet"
    header = f"{'request':<28} {'state':<12} {'model':<40} {'error'}"
    rows = [
        f"{r.request_id:<28} {r.state.value:<12} "
        f"{(f'{r.model_name}:{r.model_version}' if r.model_name else '-'):<40} "
        f"{(r.error or '')[:60]}"
        for r in results
    ]
    return "\n".join([header, *rows])


def progress_text(progress: dict[str, Any] | None) -> str | None:
    """``37 trials, best accuracy = 0.91, 12 s left`` from a running job's progress
    (``..., finishing`` once its search is over)."""
    if not progress:
        return None
    parts = [f"{progress.get('trials', 0)} trials"]
    if progress.get("best") is not None and progress.get("metric"):
        parts.append(f"best {progress['metric']} = {progress['best']:.6g}")
    if progress.get("seconds_left") is not None:
        parts.append(f"{progress['seconds_left']} s left")
    if progress.get("stage") == "finishing":
        parts.append("finishing")
    return ", ".join(parts)
