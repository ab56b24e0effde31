"""Early, clear refusals of training data that can never train: pure, on the loaded table.

Each message says what is wrong and what to change, instead of a library's error minutes
into the search ("Forced splits file includes feature index 0", "index 1 is out of
bounds").
"""

from __future__ import annotations

import pandas as pd

from ...errors import PermanentError
from ...metrics import Task

#: Fewest rows with a target value a table needs to be cross-validated and refitted.
MIN_TABLE_ROWS = 10


def check_trainable(frame: pd.DataFrame, target: str, task: Task) -> None:
    """Raise PermanentError when ``frame`` cannot train a ``task`` model on ``target``:
    a target with no values, too few rows with one, or a classification target with a
    single class."""
    values = frame[target].dropna()
    if values.empty:
        raise PermanentError(
            f"the target column {target!r} has no values in {len(frame)} rows; "
            "fill it in or name another target_column_name"
        )
    if task is Task.FORECASTING:
        return
    if len(values) < MIN_TABLE_ROWS:
        raise PermanentError(
            f"{len(values)} row(s) have a value in {target!r}; training needs at least "
            f"{MIN_TABLE_ROWS}"
        )
    if task is Task.CLASSIFICATION:
        classes = values.unique()
        if len(classes) < 2:
            raise PermanentError(
                f"the target column {target!r} has one class ({classes[0]!r}) in "
                f"{len(values)} rows; a classifier needs at least two"
            )


def check_columns(frame: pd.DataFrame, needed: list[str], what: str) -> None:
    """PermanentError naming the missing columns and the ones present."""
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise PermanentError(
            f"{what} column(s) {', '.join(map(repr, missing))} not in the data; "
            f"columns present: {', '.join(map(str, frame.columns))}"
        )
