"""Pure promotion decision: does a new model replace the one an endpoint serves?"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .metrics import Goal


@dataclass(frozen=True)
class Verdict:
    promote: bool
    reason: str


def compare_values(
    new_value: float,
    live_value: float,
    metric: str,
    goal: Goal,
    live_label: str,
    *,
    margin: float = 0.0,
    where: str = "",
) -> Verdict:
    """Only a value better by more than ``margin`` (in the metric's units) replaces the
    live model; the reason gives both values, ``where`` they were measured, and why."""
    if goal is Goal.MAXIMIZE:
        better = new_value > live_value + margin
    else:
        better = new_value < live_value - margin
    relation = f"new {metric} = {new_value:.6g} vs live {live_label} = {live_value:.6g}"
    relation = f"{where}: {relation}" if where else relation
    needed = f" by more than {margin:g}" if margin else ""
    if better:
        return Verdict(True, f"{relation}: better{needed}, promoted")
    return Verdict(False, f"{relation}: not better{needed}, endpoint left as it is")


def compare_scores(
    new_scores: Mapping[str, float],
    live_scores: Mapping[str, float] | BaseException,
    metric: str,
    goal: Goal,
    live_label: str,
    *,
    margin: float = 0.0,
    where: str,
) -> Verdict | None:
    """The verdict of a new model and the live one scored on the same rows (``where``
    names them): ``live_scores`` is the live model's metrics there, or what it raised
    trying. None when the new model gives no ``metric`` there (the caller compares the
    values recorded at training instead). A live model that cannot score the rows, or
    gives no ``metric`` there, is replaced."""
    if metric not in new_scores:
        return None
    if isinstance(live_scores, BaseException):
        error = str(live_scores)[:200]
        return Verdict(True, f"{where}, the live {live_label} cannot score: {error}; replaced")
    if metric not in live_scores:
        return Verdict(True, f"{where}, the live {live_label} gives no {metric}; replaced")
    return compare_values(
        new_scores[metric], live_scores[metric], metric, goal, live_label,
        margin=margin, where=where,
    )  # fmt: skip
