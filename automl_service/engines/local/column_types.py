"""Which of a model's input columns hold numbers, and the first value in each of them that
is not one: so a scoring request or a batch file with text in a number column is refused
naming the column, the row and the value, not with the model's own error."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .model_loading import named_inputs

#: MLflow signature types that are numbers.
NUMBER_TYPES = frozenset({"double", "float", "long", "integer"})


@dataclass(frozen=True)
class NotANumber:
    """The first value of ``column`` that is not a number: at ``row`` (0-based)."""

    column: str
    row: int
    value: Any

    def describe(self, first_row: int = 0) -> str:
        return (
            f"column '{self.column}' needs numbers; row {first_row + self.row + 1} "
            f"has {self.value!r}"
        )


class NotNumbers(ValueError):
    """Values that are not numbers in columns a model reads as numbers."""

    def __init__(self, found: Sequence[NotANumber], first_row: int = 0) -> None:
        self.found = list(found)
        self.columns = [f.column for f in self.found]
        super().__init__("; ".join(f.describe(first_row) for f in self.found))


def number_columns(model: Any) -> tuple[str, ...]:
    """The input columns ``model`` (a loaded pyfunc model) reads as numbers: those its
    FLAML members fitted as numeric, else those its signature types as numbers; () when it
    says neither."""
    try:
        inner = model.unwrap_python_model()
    except Exception:  # not a python model, or not a pyfunc model at all
        inner = None
    named: list[str] = []
    for member in getattr(inner, "members", None) or [inner]:
        transformer = getattr(member, "transformer", None)
        for column in getattr(transformer, "_num_columns", None) or ():
            if str(column) not in named:
                named.append(str(column))
    return tuple(named) if named else _signature_numbers(model)


def not_numbers(frame: pd.DataFrame, columns: Sequence[str]) -> list[NotANumber]:
    """For each of ``columns`` in ``frame`` whose values are not all numbers (or missing),
    the first value that is not."""
    found = []
    for column in columns:
        if column not in frame.columns:
            continue
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values):
            continue
        coerced = pd.to_numeric(values, errors="coerce")
        bad = np.flatnonzero((values.notna() & coerced.isna()).to_numpy())
        if len(bad):
            found.append(NotANumber(str(column), int(bad[0]), values.iloc[int(bad[0])]))
    return found


def _signature_numbers(model: Any) -> tuple[str, ...]:
    schema = named_inputs(model)
    if schema is None:
        return ()
    return tuple(
        str(spec.name)
        for spec in schema.inputs
        if getattr(getattr(spec, "type", None), "name", None) in NUMBER_TYPES
    )
