"""Batch scoring of a registered model (``automl-service predict``), on either backend.

A CSV or Parquet file (chosen by suffix: ``.csv``, ``.parquet``, ``.pq``) is read and
scored ``chunk_rows`` rows at a time (pandas' ``chunksize`` for CSV, pyarrow record
batches for Parquet), and each scored chunk is appended to the output before the next is
read, so memory stays bounded whatever the file's size. The output holds the input's
columns, then the model's: ``prediction`` (the label or value) and, for a classifier, one
``proba_<class>`` column per class. It is written beside its final name and moved there
once complete: a failed run leaves no partial file.

The model is ``NAME`` (its latest version), ``NAME:VERSION`` or ``NAME@ALIAS``; its MLflow
model folder comes from the backend's ``ModelFiles`` (the local store's own folder, or on
Azure a download kept in the data folder's cache). Bad input raises InvalidRequest (exit
2): an unknown model or version, an unsupported format, input columns the model needs and
the file lacks (all named), rows the model refuses.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from ...errors import InvalidRequest
from ...model_ref import ModelRef, parse_model_ref
from ..base import ModelFiles
from .column_types import NotNumbers, not_numbers, number_columns
from .model_files import MlflowModelFiles
from .model_loading import load_model_at, model_columns
from .probabilities import PREDICTION_COLUMN

__all__ = ["ModelRef", "Scored", "parse_model_ref", "predict_file", "predict_with", "score_file"]

#: Rows read, scored and written at a time.
CHUNK_ROWS = 50_000

Format = Literal["csv", "parquet"]
_FORMATS: dict[str, Format] = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}

Progress = Callable[[int], object]


@dataclass(frozen=True)
class Scored:
    """What a batch run wrote."""

    model: str
    version: str
    output: Path
    rows: int
    columns: list[str]

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "output": str(self.output),
            "rows": self.rows,
            "columns": self.columns,
        }


def table_format(path: Path) -> Format:
    """The file's format by its suffix; InvalidRequest for another."""
    found = _FORMATS.get(path.suffix.lower())
    if found is None:
        raise InvalidRequest(
            f"{path}: unsupported format {path.suffix or '(no suffix)'!r}; "
            f"use {', '.join(sorted(_FORMATS))}"
        )
    return found


def file_columns(path: Path, fmt: Format) -> list[str]:
    """The column names of the file, read from its header or schema alone."""
    if fmt == "csv":
        with path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
            return next(csv.reader(handle), [])
    import pyarrow.parquet as pq

    return list(pq.ParquetFile(path).schema_arrow.names)


def read_chunks(path: Path, fmt: Format, rows: int) -> Iterator[pd.DataFrame]:
    """The file's rows, ``rows`` at a time."""
    if fmt == "csv":
        with pd.read_csv(path, chunksize=rows, encoding="utf-8-sig") as reader:
            yield from reader
        return
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(path).iter_batches(batch_size=rows):
        yield batch.to_pandas()


class ChunkWriter:
    """Appends scored chunks to a CSV or Parquet file (``close`` ends it)."""

    def __init__(self, path: Path, fmt: Format) -> None:
        self.path = path
        self.fmt = fmt
        self._parquet: Any = None
        self._started = False

    def write(self, chunk: pd.DataFrame) -> None:
        if self.fmt == "csv":
            chunk.to_csv(self.path, mode="a" if self._started else "w", header=not self._started,
                          index=False)  # fmt: skip
            self._started = True
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(chunk, preserve_index=False)
        if self._parquet is None:
            self._parquet = pq.ParquetWriter(self.path, table.schema)
        elif not table.schema.equals(self._parquet.schema):
            table = self._cast(table)
        self._parquet.write_table(table)

    def _cast(self, table: Any) -> Any:
        import pyarrow as pa

        schema = self._parquet.schema
        try:
            return table.cast(schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
            changed = [
                f"{field.name} ({schema.field(field.name).type} then {field.type})"
                for field in table.schema
                if field.name in schema.names and schema.field(field.name).type != field.type
            ]
            raise InvalidRequest(
                f"column types change between chunks: {', '.join(changed) or exc}; "
                "give the input as Parquet, or write CSV"
            ) from None

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
        elif not self._started and self.fmt == "csv":
            self.path.write_text("")


def score_file(
    model: Any,
    source: Path,
    target: Path,
    *,
    chunk_rows: int = CHUNK_ROWS,
    progress: Progress | None = None,
) -> tuple[int, list[str]]:
    """Score ``source`` into ``target`` chunk by chunk (see the module docstring); returns
    the rows written and the output's columns."""
    source_format, target_format = table_format(source), table_format(target)
    if not source.is_file():
        raise InvalidRequest(f"input file not found: {source}")
    present = file_columns(source, source_format)
    needed = model_columns(model)
    numbers = number_columns(model)
    missing = [c for c in needed if c not in present]
    if missing:
        raise InvalidRequest(
            f"{source} lacks the model's input column(s): {', '.join(missing)} "
            f"(the model needs: {', '.join(needed)})"
        )
    partial = target.with_name(f".{target.name}.partial")
    writer = ChunkWriter(partial, target_format)
    rows, columns = 0, list(present)
    try:
        for chunk in read_chunks(source, source_format, chunk_rows):
            scored = _score_chunk(model, chunk, needed, numbers, rows, source)
            writer.write(scored)
            rows += len(chunk)
            columns = [str(c) for c in scored.columns]
            if progress is not None:
                progress(rows)
        writer.close()
        os.replace(partial, target)
    except BaseException:
        writer.close()
        partial.unlink(missing_ok=True)
        raise
    return rows, columns


def _score_chunk(
    model: Any,
    chunk: pd.DataFrame,
    needed: tuple[str, ...],
    numbers: tuple[str, ...],
    first_row: int,
    source: Path,
) -> pd.DataFrame:
    """The chunk's rows followed by the model's answer for each; text in a column the
    model reads as numbers is refused naming the column, the row and the value."""
    features = chunk[list(needed)] if needed else chunk
    found = not_numbers(features, numbers)
    if found:
        raise InvalidRequest(f"{source}: {NotNumbers(found, first_row)}") from None
    try:
        output = model.predict(features)
    except Exception as exc:  # the model refused these rows
        last = first_row + len(chunk)
        raise InvalidRequest(
            f"rows {first_row + 1}-{last} of {source} could not be scored: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    answer = (
        output.reset_index(drop=True)
        if isinstance(output, pd.DataFrame)
        else pd.DataFrame({PREDICTION_COLUMN: list(output)})
    )
    clash = [str(c) for c in answer.columns if c in chunk.columns]
    if clash:
        raise InvalidRequest(
            f"{source} already has column(s) {', '.join(clash)} that the model's answer "
            "would write; rename them"
        )
    return pd.concat([chunk.reset_index(drop=True), answer], axis=1)


def predict_with(
    files: ModelFiles,
    model: str,
    source: Path,
    target: Path,
    *,
    chunk_rows: int = CHUNK_ROWS,
    progress: Progress | None = None,
) -> Scored:
    """Score ``source`` with registered ``model`` (``NAME[:VERSION|@ALIAS]``), its files
    had from ``files`` (a backend's registry), into ``target``. Raises InvalidRequest for
    bad input (see the module docstring), PermanentError when the model cannot be had or
    loaded, TransientError when the registry is busy or unreachable."""
    ref = parse_model_ref(model)
    table_format(source)  # both checked before anything is fetched
    table_format(target)
    if not source.is_file():
        raise InvalidRequest(f"input file not found: {source}")
    fetched = files.fetch(ref)
    loaded = load_model_at(fetched.path, f"model {fetched.name} version {fetched.version}")
    rows, columns = score_file(loaded, source, target, chunk_rows=chunk_rows, progress=progress)
    return Scored(fetched.name, fetched.version, target, rows, columns)


def predict_file(
    tracking_uri: str,
    model: str,
    source: Path,
    target: Path,
    *,
    chunk_rows: int = CHUNK_ROWS,
    progress: Progress | None = None,
) -> Scored:
    """``predict_with`` a model of the local registry at ``tracking_uri``."""
    return predict_with(
        MlflowModelFiles(tracking_uri),
        model,
        source,
        target,
        chunk_rows=chunk_rows,
        progress=progress,
    )
