"""A binary classifier's decision threshold chosen for a metric (pure: arrays in).

Each candidate threshold labels a row positive when its positive-class probability is at
least the threshold; the candidates are the midpoints between the distinct probabilities
seen (at most ``MAX_CANDIDATES``, evenly spread by rank) and 0.5. The best value of the
metric wins; among equal values, the threshold nearest 0.5.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Most thresholds tried.
MAX_CANDIDATES = 512


@dataclass(frozen=True)
class ThresholdChoice:
    """The chosen threshold, the metric there and at 0.5, and on how many rows."""

    metric: str
    threshold: float
    value: float
    value_at_half: float
    rows: int

    def reason(self) -> str:
        """The sentence the run, the model version and the report carry."""
        return (
            f"chosen on {self.rows} validation rows to maximize {self.metric}: "
            f"{self.value:.4g} there, {self.value_at_half:.4g} at 0.5"
        )


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def _f1(tp: float, fp: float, fn: float) -> float:
    return _ratio(2 * tp, 2 * tp + fp + fn)


def _mcc(tp: float, fp: float, fn: float, tn: float) -> float:
    denominator = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return _ratio(tp * tn - fp * fn, denominator)


#: Each supported metric from the counts of one labelling.
METRICS: dict[str, Callable[[float, float, float, float], float]] = {
    "f1_score_binary": lambda tp, fp, fn, tn: _f1(tp, fp, fn),
    "f1_score_macro": lambda tp, fp, fn, tn: (_f1(tp, fp, fn) + _f1(tn, fn, fp)) / 2,
    "f1_score_weighted": lambda tp, fp, fn, tn: _ratio(
        (tp + fn) * _f1(tp, fp, fn) + (tn + fp) * _f1(tn, fn, fp), tp + fp + fn + tn
    ),
    "balanced_accuracy": lambda tp, fp, fn, tn: (_ratio(tp, tp + fn) + _ratio(tn, tn + fp)) / 2,
    "norm_macro_recall": lambda tp, fp, fn, tn: _ratio(tp, tp + fn) + _ratio(tn, tn + fp) - 1,
    "accuracy": lambda tp, fp, fn, tn: _ratio(tp + tn, tp + fp + fn + tn),
    "matthews_correlation": _mcc,
}


def metric_at(metric: str, positive: Any, score: Any, threshold: float) -> float:
    """``metric`` of the labels ``score >= threshold`` against ``positive`` (booleans)."""
    truth = np.asarray(positive, dtype=bool)
    predicted = np.asarray(score, dtype=float) >= threshold
    tp = float(np.sum(truth & predicted))
    fp = float(np.sum(~truth & predicted))
    fn = float(np.sum(truth & ~predicted))
    tn = float(np.sum(~truth & ~predicted))
    return METRICS[metric](tp, fp, fn, tn)


def candidates(score: Any) -> np.ndarray[Any, Any]:
    """Midpoints between the distinct scores (at most ``MAX_CANDIDATES``), and 0.5,
    strictly between 0 and 1."""
    seen = np.unique(np.asarray(score, dtype=float))
    middles = (seen[:-1] + seen[1:]) / 2 if len(seen) > 1 else seen
    if len(middles) > MAX_CANDIDATES:
        middles = middles[np.linspace(0, len(middles) - 1, MAX_CANDIDATES).round().astype(int)]
    found = np.unique(np.append(middles, 0.5))
    return found[(found > 0.0) & (found < 1.0)]


def choose_threshold(metric: str, positive: Any, score: Any) -> ThresholdChoice:
    """The threshold on the positive-class probability ``score`` that maximizes ``metric``
    for the true labels ``positive`` (booleans); ties go to the one nearest 0.5."""
    if metric not in METRICS:
        raise ValueError(f"no threshold is chosen for {metric!r}; known: {sorted(METRICS)}")
    truth = np.asarray(positive, dtype=bool)
    values = [(metric_at(metric, truth, score, t), float(t)) for t in candidates(score)]
    value, threshold = max(values, key=lambda v: (v[0], -abs(v[1] - 0.5)))
    return ThresholdChoice(
        metric, threshold, value, metric_at(metric, truth, score, 0.5), len(truth)
    )
