"""Every training row of a table, for refitting the leaders, made only when a refit is
about to happen: a sample's table in memory cut to its features, a large file read again
(``large_csv.FileRows``), or the search's own split joined (pure)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from .large_csv import FileRows
    from .search import Split


@dataclass(frozen=True)
class AllRows:
    """``count`` rows given by ``read()`` as (features, target), which takes about
    ``read_seconds``."""

    count: int
    read: Callable[[], tuple[pd.DataFrame, pd.Series]]
    read_seconds: float = 0.0


def table_rows(frame: pd.DataFrame, target: str) -> AllRows:
    """The rows of ``frame`` (each with a ``target`` value), held until they are read."""
    return AllRows(len(frame), lambda: (frame.drop(columns=[target]), frame[target]))


def file_rows(rows: FileRows) -> AllRows:
    """The rows of a large file, read again when they are needed."""
    return AllRows(rows.count, rows.read, rows.read_seconds)


def split_rows(split: Split) -> AllRows:
    """The training and validation rows of a split, joined when they are needed."""
    count = len(split.X_train) + (0 if split.X_val is None else len(split.X_val))
    return AllRows(count, split.all_rows)
