"""What a classification model answers: the label and one probability column per class.

A classifier's pyfunc ``predict`` returns a table: ``prediction`` (the label) and
``proba_<class>`` for each class the model knows (``proba_no``, ``proba_yes``), in the
classes' sorted order; each row's probabilities sum to 1. The label is the likeliest
class, or, for two classes with a decision threshold, the second class in sorted order
(the positive class: ``1`` of ``0``/``1``, ``yes`` of ``no``/``yes``) when its
probability is at least the threshold, the first otherwise.

Models registered before probabilities were answered return labels alone (an array);
``split_output`` reads both shapes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

PREDICTION_COLUMN = "prediction"
PROBA_PREFIX = "proba_"


@dataclass(frozen=True)
class Scored:
    """A model's answer before it becomes a table: the labels (or values) of the rows,
    and for a classifier each row's probabilities (summing to 1), one column per class of
    ``classes``."""

    values: Any
    proba: np.ndarray[Any, Any] | None = None
    classes: tuple[Any, ...] = ()


def proba_column(label: Any) -> str:
    """The name of a class's probability column."""
    return f"{PROBA_PREFIX}{label}"


def decide(
    proba: np.ndarray[Any, Any], classes: np.ndarray[Any, Any], threshold: float | None
) -> Any:
    """Each row's label: the likeliest class, or with ``threshold`` and two classes the
    positive (second) class when its probability reaches the threshold."""
    if threshold is not None and len(classes) == 2:
        return np.where(proba[:, 1] >= threshold, classes[1], classes[0])
    return classes[np.argmax(proba, axis=1)]


def labelled(
    labels: Any, proba: np.ndarray[Any, Any], classes: Sequence[Any], index: Any = None
) -> pd.DataFrame:
    """The answer table: ``prediction`` then one ``proba_<class>`` column per class."""
    table = pd.DataFrame({PREDICTION_COLUMN: np.asarray(labels)}, index=index)
    for i, label in enumerate(classes):
        table[proba_column(label)] = np.asarray(proba[:, i], dtype=float)
    return table


def normalized(proba: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Rows scaled to sum to 1 (a row of zeros stays zeros)."""
    proba = np.asarray(proba, dtype=float)
    totals = proba.sum(axis=1, keepdims=True)
    scaled: np.ndarray[Any, Any] = np.divide(
        proba, totals, out=np.zeros_like(proba), where=totals > 0
    )
    return scaled


def probability_columns(output: Any) -> dict[Any, str]:
    """A classifier's output's probability columns and the class each is of, in order;
    empty for any other output."""
    if not isinstance(output, pd.DataFrame) or PREDICTION_COLUMN not in output.columns:
        return {}
    return {
        c: str(c)[len(PROBA_PREFIX) :] for c in output.columns if str(c).startswith(PROBA_PREFIX)
    }


def split_output(output: Any) -> tuple[Any, pd.DataFrame | None]:
    """(labels or values, the probability columns renamed to their classes or None) of
    a model's output; any other output passes through whole, without probabilities."""
    classes = probability_columns(output)
    if not classes:
        return output, None
    return output[PREDICTION_COLUMN], output[list(classes)].rename(columns=classes)
