"""A large table in a compact form before the search copies it (pure).

From ``COMPACT_ROWS`` rows on, feature columns of text become pandas categories and 64-bit
floats become 32-bit: on a 1.1-million-row, 21-column table this cut the trainer's peak
memory by about a quarter (FLAML and its learners copy the table several times). The
target and the columns a forecast is keyed by are left as they are; smaller tables are
left whole, so their models see exactly the types they were read with.

A large file is read in chunks (``datasets.load_table`` with ``keep``): each chunk is made
compact as it arrives (``compact_part``) and the chunks are joined column by column
(``joined``), so the table never exists in memory at full width.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

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
        if name in keep:
            continue
        made = _compact_column(frame[name])
        if made is not None:
            columns[name] = made
            changed.append(str(name))
    if not changed:
        return frame, []
    return frame.assign(**columns), changed


def compact_part(part: pd.DataFrame, keep: Collection[str]) -> dict[str, pd.Series]:
    """One chunk of a large table, column by column, made compact (``keep`` left as it
    is): 64-bit floats 32-bit, every text column a category (whether it stays one is
    decided by ``joined``, over all chunks). Each column owns its memory, so the chunk it
    came from can go."""
    columns: dict[str, pd.Series] = {}
    for name in part.columns:
        column = part[name]
        if name not in keep and column.dtype == np.float64:
            columns[name] = column.astype(np.float32)
        elif name not in keep and _is_text(column):
            columns[name] = column.astype("category")
        else:
            columns[name] = column.copy()
    return columns


def joined(parts: Sequence[dict[str, pd.Series]], keep: Collection[str]) -> pd.DataFrame:
    """The table of ``parts`` (from ``compact_part``, in order), joined one column at a
    time and emptied as it goes. A column that is a category in every chunk keeps the
    union of their categories, unless it has too many distinct values (then it is text
    again); a column whose type differs between chunks is joined as pandas would read it
    whole and then made compact."""
    if not parts:
        return pd.DataFrame()
    rows = sum(len(next(iter(part.values()), ())) for part in parts)
    # Columns go in one at a time: a frame built from a dict would copy them all into
    # one block while they are still held here.
    table = pd.DataFrame(index=pd.RangeIndex(rows))
    for name in list(parts[0]):
        pieces = [part.pop(name) for part in parts]
        if all(isinstance(piece.dtype, pd.CategoricalDtype) for piece in pieces):
            values = union_categoricals(pieces, ignore_order=True)
            column = pd.Series(values, name=name)
            if len(values.categories) > MAX_CATEGORY_SHARE * rows:
                column = column.astype(values.categories.dtype)
        else:
            plain = [_uncategorized(piece) for piece in pieces]
            column = pd.concat(plain, ignore_index=True)
            made = None if name in keep else _compact_column(column)
            if made is not None:
                column = made
        del pieces
        table[name] = column.to_numpy() if isinstance(column.dtype, np.dtype) else column.array
    return table


def _compact_column(column: pd.Series) -> pd.Series | None:
    """``column`` made compact, or None when it stays as it is."""
    if column.dtype == np.float64:
        return column.astype(np.float32)
    if _is_text(column) and column.nunique(dropna=True) <= MAX_CATEGORY_SHARE * len(column):
        return column.astype("category")
    return None


def _uncategorized(piece: pd.Series) -> pd.Series:
    if isinstance(piece.dtype, pd.CategoricalDtype):
        return piece.astype(piece.cat.categories.dtype)
    return piece


def _is_text(column: pd.Series) -> bool:
    return bool(column.dtype == object or pd.api.types.is_string_dtype(column.dtype))
