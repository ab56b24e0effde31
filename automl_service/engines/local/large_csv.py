"""A large CSV table searched on a sample without ever being held whole (I/O).

When a table's search is given fewer rows than it has (``sampling``), the trainer does
not need the whole table until the leaders are refitted on every row, and that refit
only happens when the time limit leaves room for it. So a large CSV file is read twice,
never whole: first its target column alone, from which ``sampling.sampled_rows`` picks
the very rows it would pick from the table in memory; then the file in chunks, keeping
only those rows, each chunk made compact as it arrives (``compact.compact_part``). The
refit reads it a third time, every row made compact, only when it is about to happen
(``SampledTable.all_rows``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import PermanentError
from ...metrics import Task
from . import compact as compact_module
from .compact import compact_part, joined
from .datasets import (
    CSV_CHUNK_ROWS,
    LARGE_CSV_BYTES,
    SAMPLE_PREFIX,
    refuse_repeated_names,
    to_path,
)
from .sampling import sampled_rows, search_rows
from .table_checks import check_columns, check_trainable


@dataclass(frozen=True)
class FileRows:
    """Every row of a large CSV file with a target value, read when they are needed."""

    path: Path
    #: The columns read (the file's, less the ignored ones), in the file's order.
    columns: list[str]
    target: str
    #: Columns left as read (see ``compact``).
    keep: list[str]
    #: How many rows have a target value.
    count: int
    #: Seconds reading the search's sample took: about what reading every row takes.
    read_seconds: float

    def read(self) -> tuple[pd.DataFrame, pd.Series]:
        """Every row with a target value, compact, as (features, target)."""
        table = read_rows(self.path, self.columns, self.keep)
        y = table.pop(self.target)
        present = y.notna().to_numpy()
        if not present.all():
            table, y = table[present], y[present]
        return table, y


def large_csv(ref: str) -> Path | None:
    """The local CSV file ``ref`` names when it is large enough to be read in chunks."""
    if ref.strip().startswith(SAMPLE_PREFIX):
        return None
    try:
        path = to_path(ref.strip())
        large = path.suffix.lower() == ".csv" and path.stat().st_size >= LARGE_CSV_BYTES
    except (OSError, PermanentError):
        return None
    return path if large else None


def read_sampled(
    path: Path,
    target: str,
    ignored: list[str],
    keep: list[str],
    task: Task,
    search_seconds: Callable[[], float],
) -> tuple[pd.DataFrame, FileRows] | None:
    """The rows of ``path`` a search of ``search_seconds()`` sees, compact and indexed by
    their position in the file, read without holding the whole table, and the file's
    rows for a refit; None when the table has fewer than ``COMPACT_ROWS`` rows or its
    rows with a target value all fit the search (it is then read whole, as before).
    Raises PermanentError for missing columns or a target that cannot train (as for the
    table in memory)."""
    header = read_header(path)
    check_columns(header, [target], "target")
    check_columns(header, ignored, "ignored")
    columns = [str(name) for name in header.columns if name not in ignored]
    started = time.monotonic()
    labels = read_column(path, target)
    if len(labels) < compact_module.COMPACT_ROWS:
        return None
    check_trainable(labels.to_frame(), target, task)
    rows = sampled_rows(labels, search_rows(search_seconds()), task is Task.CLASSIFICATION)
    if rows is None:
        return None
    labelled = int(labels.notna().sum())
    del labels
    sample = read_rows(path, columns, keep, rows)
    took = time.monotonic() - started
    return sample, FileRows(path, columns, target, keep, labelled, took)


def read_header(path: Path) -> pd.DataFrame:
    """The file's columns, as an empty table (pandas' names for them)."""
    refuse_repeated_names(path, {})
    try:
        return pd.read_csv(path, nrows=0)
    except (ValueError, OSError) as exc:
        raise PermanentError(f"cannot read {path}: {exc}") from exc


def read_column(path: Path, name: str) -> pd.Series:
    """One column of the file, every row, typed as a whole read types it."""
    try:
        return pd.read_csv(path, usecols=[name])[name]
    except (ValueError, OSError) as exc:
        raise PermanentError(f"cannot read {path}: {exc}") from exc


def read_rows(
    path: Path, columns: list[str], keep: Collection[str], rows: np.ndarray | None = None
) -> pd.DataFrame:
    """``columns`` of the file at the positions ``rows`` (sorted; every row when None),
    read ``CSV_CHUNK_ROWS`` rows at a time, each chunk cut to its rows and made compact
    before the next is read (``keep`` left as read), then joined column by column and
    indexed by position: only one chunk is ever held at full width."""
    parts: list[dict[str, pd.Series]] = []
    start = 0
    try:
        with pd.read_csv(path, usecols=columns, chunksize=CSV_CHUNK_ROWS) as chunks:
            for chunk in chunks:
                end = start + len(chunk)
                if rows is not None:
                    first, last = np.searchsorted(rows, [start, end])
                    chunk = chunk.iloc[rows[first:last] - start]
                start = end
                if len(chunk):
                    parts.append(compact_part(chunk, keep))
                del chunk
    except (ValueError, OSError) as exc:
        raise PermanentError(f"cannot read {path}: {exc}") from exc
    table = joined(parts, keep)
    if rows is not None:
        table.index = pd.Index(rows)
    return table
