"""A loaded model as the scoring server keeps it, and how it answers a body's table.

A FLAML model whose features are all numbers (``numeric_scoring``) scores the body's rows
as a numpy matrix: no table is built, and MLflow's pyfunc wrapper (which checks the input
against a signature these models do not have) is stepped over. Its answer is the one its
pyfunc ``predict`` gives, to the bit (tests compare them). Every other model, and every
body that is not all numbers, goes through the pyfunc ``predict`` on a table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .answers import answer_bytes, answer_json, scored_body
from .column_types import NotNumbers, not_numbers, number_columns
from .model import FlamlModel
from .numeric_scoring import NumericScorer
from .scoring_body import Rows


@dataclass(frozen=True)
class Served:
    """A loaded pyfunc ``model``; for a FLAML model of numbers, that model and its
    scorer."""

    model: Any
    flaml: FlamlModel | None = None
    scorer: NumericScorer | None = None
    #: The input columns the model reads as numbers (``column_types``).
    numbers: tuple[str, ...] = ()

    @classmethod
    def of(cls, model: Any) -> Served:
        """``model`` (a loaded pyfunc model, or any object with ``predict``) made ready."""
        numbers = number_columns(model)
        try:
            inner = model.unwrap_python_model()
        except Exception:  # not a python model, or not a pyfunc model at all
            return cls(model, numbers=numbers)
        if not isinstance(inner, FlamlModel):
            return cls(model, numbers=numbers)
        return cls(model, inner, inner.numeric_scorer(), numbers)

    def answer(self, table: Rows, input_columns: Sequence[str], deployment: str) -> bytes:
        """The scoring answer for ``table`` from ``deployment``, as JSON (keys sorted), of
        which the model sees ``input_columns`` (every column when empty). Raises NotNumbers
        for text in a column the model reads as numbers, else whatever the model raises."""
        extra = {"deployment": deployment}
        values = self._numbers(table, input_columns)
        if values is not None and self.flaml is not None and self.scorer is not None:
            return scored_body(self.flaml.scored_numbers(values, self.scorer), extra)
        frame = table.frame()
        if input_columns:
            frame = frame[list(input_columns)]
        found = not_numbers(frame, self.numbers)
        if found:
            raise NotNumbers(found)
        return answer_bytes({**answer_json(self.model.predict(frame)), **extra})

    def _numbers(self, table: Rows, input_columns: Sequence[str]) -> np.ndarray[Any, Any] | None:
        """The scorer's columns of ``table`` as numbers, when the model's pyfunc
        ``predict`` would score exactly those columns as numbers; else None."""
        if self.flaml is None or self.scorer is None:
            return None
        seen = set(input_columns) if input_columns else set(table.columns)
        chosen = tuple(c for c in self.flaml.feature_columns if c in seen)
        if chosen != self.scorer.columns:
            return None
        return table.numbers(chosen)
