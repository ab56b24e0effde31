"""The table in a scoring body: ``{"input_data": {"columns": [...], "data": [[...]]}}``,
``{"dataframe_split": {"columns": [...], "data": [[...]]}}`` or
``{"dataframe_records": [{...}, ...]}`` (``input_data`` may also be a list of records).

``read_scoring_body`` gives ``Rows``, the table before pandas: a model of numbers scores
them as a numpy matrix (``Rows.numbers``) and anything else as a table (``Rows.frame``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pandas as pd


class BadInput(ValueError):
    """The scoring body cannot be read as a table; the message says why."""


@dataclass(frozen=True)
class Rows:
    """A scoring body's table: column names and one list of values per row (or, for
    records, the records themselves); ``booleans`` when the body may hold true or false."""

    columns: list[str]
    rows: list[list[Any]]
    index: list[Any] | None = None
    records: list[dict[str, Any]] | None = None
    booleans: bool = True

    def frame(self) -> pd.DataFrame:
        """The table as pandas reads it."""
        if self.records is not None:
            return pd.DataFrame.from_records(self.records)
        return pd.DataFrame(self.rows, columns=self.columns, index=self.index)

    def numbers(self, wanted: Sequence[str]) -> np.ndarray[Any, Any] | None:
        """The ``wanted`` columns as a float64 matrix, in that order, when every value of
        the body is a number (JSON true and false aside: pandas keeps them apart); else
        None, and the table takes the pandas path."""
        if self.booleans or len(set(self.columns)) != len(self.columns):
            return None
        position = {c: i for i, c in enumerate(self.columns)}
        if not all(c in position for c in wanted):
            return None
        try:
            matrix = np.array(self.rows)
        except (ValueError, TypeError):
            return None
        if matrix.ndim != 2 or matrix.dtype.kind not in "iuf":
            return None
        picked = [position[c] for c in wanted]
        if picked == list(range(len(self.columns))):
            return np.ascontiguousarray(matrix, dtype=np.float64)
        return np.ascontiguousarray(matrix[:, picked], dtype=np.float64)


def _parsed(body: str | bytes) -> Any:
    """The body's JSON: by orjson (a thousand rows of numbers in a tenth of the standard
    library's time), else by the standard library, which also reads what orjson refuses
    and Python's own ``json.dumps`` writes (``NaN``, ``Infinity``, integers past 64 bits)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInput(f"body is not JSON: {exc}") from None


def read_scoring_body(body: str | bytes) -> Rows:
    """The table in a scoring body. Raises BadInput with a reason a client can act on."""
    data = _parsed(body)
    if not isinstance(data, dict):
        raise BadInput(f"body must be a JSON object, not {type(data).__name__}")
    keys = [k for k in ("input_data", "dataframe_split", "dataframe_records") if k in data]
    if len(keys) != 1:
        raise BadInput(
            "body must have exactly one of 'input_data', 'dataframe_split', 'dataframe_records'"
        )
    key = keys[0]
    value = data[key]
    text = body if isinstance(body, bytes) else body.encode("utf-8", "surrogatepass")
    booleans = b"true" in text or b"false" in text
    if key == "dataframe_records" or (key == "input_data" and isinstance(value, list)):
        return _records(key, value, booleans)
    return _split(key, value, booleans)


def parse_scoring_body(body: str | bytes) -> pd.DataFrame:
    """The table in a scoring body, as pandas reads it (see ``read_scoring_body``)."""
    return read_scoring_body(body).frame()


def missing_columns(columns: Sequence[Any], expected: Sequence[str]) -> list[str]:
    """The expected columns a table of ``columns`` lacks, in the expected order."""
    present = {str(c) for c in columns}
    return [c for c in expected if c not in present]


def _records(key: str, value: Any, booleans: bool) -> Rows:
    if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
        raise BadInput(f"'{key}' must be a list of objects, one per row")
    if not value:
        raise BadInput(f"'{key}' has no rows")
    columns = list(value[0])
    if any(list(row) != columns for row in value):  # pandas fills the gaps: never numbers
        columns = pd.DataFrame.from_records(value).columns.tolist()
        return Rows(columns, [], records=value, booleans=True)
    rows = [list(row.values()) for row in value]
    return Rows(columns, rows, records=value, booleans=booleans)


def _split(key: str, value: Any, booleans: bool) -> Rows:
    if not isinstance(value, dict):
        raise BadInput(f"'{key}' must be an object with 'columns' and 'data'")
    columns, rows = value.get("columns"), value.get("data")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise BadInput(f"'{key}.columns' must be a list of column names")
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise BadInput(f"'{key}.data' must be a list of rows, each a list of values")
    if not rows:
        raise BadInput(f"'{key}.data' has no rows")
    widths = {len(row) for row in rows}
    if widths != {len(columns)}:
        raise BadInput(
            f"'{key}': every row must have {len(columns)} values, one per column; "
            f"found rows of {sorted(widths)}"
        )
    index = value.get("index")
    if index is not None and (not isinstance(index, list) or len(index) != len(rows)):
        raise BadInput(f"'{key}.index' must be a list with one entry per row")
    return Rows(columns, rows, index, booleans=booleans)
