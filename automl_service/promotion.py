"""Pure promotion decision: does a new model replace the one an endpoint serves?"""

from __future__ import annotations

from dataclasses import dataclass

from .metrics import Goal


@dataclass(frozen=True)
class Verdict:
    promote: bool
    reason: str


def compare_values(
    new_value: float, live_value: float, metric: str, goal: Goal, live_label: str
) -> Verdict:
    """Only a strictly better value replaces the live model; the reason says why."""
    better = new_value > live_value if goal is Goal.MAXIMIZE else new_value < live_value
    relation = f"new {metric} = {new_value:.6g} vs live {live_label} = {live_value:.6g}"
    if better:
        return Verdict(True, f"{relation}: better, promoted")
    return Verdict(False, f"{relation}: not better, endpoint left as it is")
