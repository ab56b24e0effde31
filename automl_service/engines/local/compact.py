"""A large table in a compact form before the search copies it (pure).

From ``COMPACT_ROWS`` rows on, feature columns of text become pandas categories and 64-bit
floats become 32-bit: on a 1.1-million-row, 21-column table this cut the trainer's peak
memory by about a quarter (FLAML and its learners copy the table several times). The
target and the columns a forecast is keyed by are left as they are; smaller tables are
left whole, so their models see exactly the types they were read with.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd

#: Tables with at least this many rows are made compact.
COMPACT_ROWS = 100_000
#: A text column with more distinct values than this share of its rows stays text (ids,
#: free text), where categories would save nothing.
MAX_CATEGORY_SHARE = 0.5


def compact(frame: pd.DataFrame, keep: Collection[str]) -> tuple[pd.DataFrame, list[str]]:
    """``frame`` with its feature columns made compact (``keep`` left as they are), and
    the names of the columns changed; a table under ``COMPACT_ROWS`` rows comes back as
    it is."""
    if len(frame) < COMPACT_ROWS:
        return frame, []
    changed: list[str] = []
    columns: dict[str, pd.Series] = {}
    for name in frame.columns:
        column = frame[name]
        if name in keep:
            continue
        if column.dtype == np.float64:
            columns[name] = column.astype(np.float32)
        elif _is_text(column) and column.nunique(dropna=True) <= MAX_CATEGORY_SHARE * len(column):
            columns[name] = column.astype("category")
        else:
            continue
        changed.append(str(name))
    if not changed:
        return frame, []
    return frame.assign(**columns), changed


def _is_text(column: pd.Series) -> bool:
    return bool(column.dtype == object or pd.api.types.is_string_dtype(column.dtype))
