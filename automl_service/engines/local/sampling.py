"""The rows a search sees when the table is larger than its time allows (pure).

A search of ``s`` seconds is given at most ``search_rows(s)`` rows: a larger table is
searched on a random sample of that many (stratified by class for classification, with a
fixed seed), and the leaders are refitted on every row afterwards when the time limit
allows (``search.refit_tabular``). FLAML grows its own sample up to the whole table
otherwise: one trial on a million rows can take longer than a minute's budget, and every
copy the search makes is of the whole table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: The search sees at most this many rows for each second it is given: on 2 cores FLAML
#: fits LightGBM on a hundred thousand rows in a second or two and tries dozens of
#: configurations in a minute. On a million generated rows with a minute's limit, 3,000
#: rows a second (138,000) scored as well on new rows as 5,000 (230,000; accuracy 0.842
#: against 0.841, two runs each) at 406 MB of peak memory against 442...
ROWS_PER_SEARCH_SECOND = 3_000
#: ...and never fewer than this many rows.
MIN_SEARCH_ROWS = 100_000
SEED = 0


def search_rows(search_seconds: float) -> int:
    """How many rows a search of ``search_seconds`` is given."""
    return max(MIN_SEARCH_ROWS, int(search_seconds * ROWS_PER_SEARCH_SECOND))


def sample_positions(n: int, wanted: int, classes: np.ndarray | None = None) -> np.ndarray:
    """``wanted`` of the positions ``0..n-1``, sorted, drawn at random (fixed seed). With
    ``classes`` (a class code per row, negative for none), each class keeps its share of
    the rows (at least one row each, when the class has one)."""
    rng = np.random.default_rng(SEED)
    if wanted >= n:
        return np.arange(n)
    if classes is None:
        return np.sort(rng.choice(n, size=wanted, replace=False))
    order = np.argsort(classes, kind="stable")
    counts = np.bincount(classes[classes >= 0]) if (classes >= 0).any() else np.array([], int)
    start = int((classes < 0).sum())  # rows without a class sort first and are left out
    labelled = n - start
    chosen = []
    for count in counts:
        members = order[start : start + count]
        start += count
        if count:
            take = min(int(count), max(1, round(wanted * int(count) / labelled)))
            chosen.append(rng.choice(members, size=take, replace=False))
    return np.sort(np.concatenate(chosen)) if chosen else np.arange(0)


def sampled_rows(target: pd.Series, wanted: int, by_class: bool) -> np.ndarray | None:
    """The positions in ``target`` of the ``wanted`` rows the search sees, drawn among the
    rows with a target value (``by_class`` keeps each class in its share); None when those
    rows all fit. A table in memory and a file read a column at a time
    (``large_csv.read_sampled``) get the same rows from the same target column."""
    labelled = np.flatnonzero(target.notna().to_numpy())
    if len(labelled) <= wanted:
        return None
    classes = pd.factorize(target.iloc[labelled])[0] if by_class else None
    chosen: np.ndarray = labelled[sample_positions(len(labelled), wanted, classes)]
    return chosen


def search_sample(
    frame: pd.DataFrame, target: str, search_seconds: float, by_class: bool
) -> pd.DataFrame:
    """The rows of ``frame`` (every row with a ``target`` value) the search sees, all of
    them when they fit ``search_rows``; ``by_class`` keeps each class of ``target`` in its
    share."""
    rows = sampled_rows(frame[target], search_rows(search_seconds), by_class)
    return frame if rows is None else frame.iloc[rows]
