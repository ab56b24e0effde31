"""Pure promotion decision: does a new model replace the one an endpoint serves?"""

from __future__ import annotations

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
