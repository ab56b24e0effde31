"""Tables by reference: bundled samples, local CSV / Parquet files and file:// URIs.

``load_table`` is blocking and reads only local files; every failure it raises on purpose
is a PermanentError (a missing file or an unknown sample never heals by retrying).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote, urlparse

import pandas as pd

from ...errors import PermanentError

SAMPLE_PREFIX: Final = "sample:"
#: A CSV file of at least this size is read in chunks when the reader names the columns
#: to keep (see ``load_table``).
LARGE_CSV_BYTES: Final = 16 << 20
#: Rows read at a time from such a file: a chunk is held at full width while it is made
#: compact, so smaller chunks mean a lower peak (and a little more time).
CSV_CHUNK_ROWS: Final = 25_000


def _sklearn_frame(loader_name: str) -> pd.DataFrame:
    from sklearn import datasets

    bunch = getattr(datasets, loader_name)(as_frame=True)
    frame: pd.DataFrame = bunch.frame.copy()
    return frame


def _co2() -> pd.DataFrame:
    from statsmodels.datasets import co2

    weekly = co2.load_pandas().data["co2"]
    monthly = weekly.resample("MS").mean().interpolate()
    return pd.DataFrame({"date": monthly.index, "co2": monthly.to_numpy()})


def _sunspots() -> pd.DataFrame:
    from statsmodels.datasets import sunspots

    data = sunspots.load_pandas().data
    dates = pd.to_datetime(data["YEAR"].astype(int).astype(str), format="%Y")
    return pd.DataFrame({"date": dates, "sunspots": data["SUNACTIVITY"].to_numpy()})


def _macrodata() -> pd.DataFrame:
    from statsmodels.datasets import macrodata

    data = macrodata.load_pandas().data
    dates = pd.PeriodIndex.from_fields(
        year=data["year"].astype(int), quarter=data["quarter"].astype(int), freq="Q"
    ).to_timestamp()
    return pd.DataFrame(
        {"date": dates, "realgdp": data["realgdp"].to_numpy(), "cpi": data["cpi"].to_numpy()}
    )


def _grunfeld() -> pd.DataFrame:
    from statsmodels.datasets import grunfeld

    data = grunfeld.load_pandas().data
    years = pd.to_datetime(data["year"].astype(int).astype(str), format="%Y")
    return pd.DataFrame(
        {"firm": data["firm"].astype(str), "year": years, "invest": data["invest"].to_numpy()}
    )


_LOADERS: Final[dict[str, tuple[str, Callable[[], pd.DataFrame]]]] = {
    "breast_cancer": (
        "binary classification, 569 rows, 30 numeric features, label 'target'",
        lambda: _sklearn_frame("load_breast_cancer"),
    ),
    "iris": (
        "3-class classification, 150 rows, 4 features, label 'target'",
        lambda: _sklearn_frame("load_iris"),
    ),
    "wine": (
        "3-class classification, 178 rows, 13 features, label 'target'",
        lambda: _sklearn_frame("load_wine"),
    ),
    "diabetes": (
        "regression, 442 rows, 10 features, label 'target'",
        lambda: _sklearn_frame("load_diabetes"),
    ),
    "co2": (
        "monthly forecasting, Mauna Loa CO2 1958-2001, columns 'date', 'co2'",
        _co2,
    ),
    "sunspots": (
        "yearly forecasting, 309 rows, columns 'date', 'sunspots'",
        _sunspots,
    ),
    "macrodata": (
        "quarterly forecasting, US macro data 1959-2009, columns 'date', 'realgdp', 'cpi'",
        _macrodata,
    ),
    "grunfeld": (
        "yearly forecasting of 11 series, firms' investment 1935-1954, "
        "columns 'firm' (series id), 'year', 'invest'",
        _grunfeld,
    ),
}

#: Sample name -> short description.
SAMPLES: Final[dict[str, str]] = {name: desc for name, (desc, _) in _LOADERS.items()}


def _read_csv(path: Path, **options: Any) -> pd.DataFrame:
    """A CSV file (``options`` for ``pandas.read_csv``); a header naming a column twice is
    refused (pandas would rename the copy ``name.1`` and a model could train on the
    target's own copy)."""
    refuse_repeated_names(path, options)
    return pd.read_csv(path, **options)


def _read_csv_compact(path: Path, keep: Collection[str]) -> pd.DataFrame:
    """A CSV file as ``_read_csv`` reads it, but read ``CSV_CHUNK_ROWS`` rows at a time
    and, once it has reached ``COMPACT_ROWS`` rows, made compact chunk by chunk (``keep``
    left as it is), so the table never exists in memory at full width. A file with fewer
    rows is read again whole, exactly as ``_read_csv`` reads it."""
    from .compact import COMPACT_ROWS, compact_part, joined

    refuse_repeated_names(path, {})
    parts: list[dict[str, pd.Series]] = []
    waiting: list[pd.DataFrame] = []  # chunks read before the table is known to be large
    rows = 0
    with pd.read_csv(path, chunksize=CSV_CHUNK_ROWS) as chunks:
        for chunk in chunks:
            rows += len(chunk)
            waiting.append(chunk)
            del chunk
            if rows >= COMPACT_ROWS:
                parts.extend(compact_part(raw, keep) for raw in waiting)
                waiting.clear()
    if not parts:
        del waiting
        return pd.read_csv(path)
    return joined(parts, keep)


def refuse_repeated_names(path: Path, options: dict[str, Any]) -> None:
    delimiter = options.get("sep", ",")
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
        header = next(csv.reader(handle, delimiter=delimiter), [])
    if options.get("header", 0) is None:
        header = []
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise PermanentError(
            f"{path} names column(s) {', '.join(map(repr, repeated))} more than once; "
            "rename or drop the copies"
        )


_READERS: Final[dict[str, Callable[[Path], pd.DataFrame]]] = {
    ".csv": _read_csv,
    ".parquet": pd.read_parquet,
    ".pq": pd.read_parquet,
}


def load_table(ref: str, keep: Collection[str] | None = None) -> pd.DataFrame:
    """The table named by ``ref``: ``sample:NAME``, a local path or a ``file://`` URI.

    With ``keep`` (the columns to leave as read), a CSV file of at least
    ``LARGE_CSV_BYTES`` is read in chunks, each made compact as it arrives (see
    compact.py): the trainer's peak memory then holds one chunk at full width, not the
    whole table.

    Raises PermanentError for an unknown sample, a missing file or an unsupported format.
    """
    ref = ref.strip()
    if ref.startswith(SAMPLE_PREFIX):
        return load_sample(ref[len(SAMPLE_PREFIX) :])
    path = to_path(ref)
    if keep is not None and path.suffix.lower() == ".csv" and _size(path) >= LARGE_CSV_BYTES:
        try:
            return _read_csv_compact(path, keep)
        except (ValueError, OSError) as exc:
            raise PermanentError(f"cannot read {path}: {exc}") from exc
    return read_file(path)


def load_part(
    ref: str, *, rows: int | None = None, columns: list[str] | None = None
) -> pd.DataFrame:
    """The first ``rows`` rows and/or only ``columns`` of the table named by ``ref``: a
    CSV file reads no more than that (for a sample to check a model with, or one column
    to check), other tables are read whole and cut. A column that is not there is left
    out, not refused."""
    ref = ref.strip()
    path = None if ref.startswith(SAMPLE_PREFIX) else to_path(ref)
    if path is not None and path.suffix.lower() == ".csv" and path.is_file():
        refuse_repeated_names(path, {})
        wanted = None if columns is None else (lambda name: name in columns)
        try:
            return pd.read_csv(path, nrows=rows, usecols=wanted)
        except (ValueError, OSError) as exc:
            raise PermanentError(f"cannot read {path}: {exc}") from exc
    table = load_table(ref)
    if columns is not None:
        table = table[[name for name in table.columns if name in columns]]
    return table if rows is None else table.head(rows)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # read_file says what is wrong with it


def load_sample(name: str) -> pd.DataFrame:
    """A bundled sample table by name (see SAMPLES)."""
    entry = _LOADERS.get(name)
    if entry is None:
        raise PermanentError(
            f"unknown sample {name!r}; known samples: {', '.join(sorted(_LOADERS))}"
        )
    return entry[1]()


def to_path(ref: str) -> Path:
    """A local path from a plain path or a ``file://`` URI; other schemes are refused."""
    parsed = urlparse(ref)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise PermanentError(f"file URI with a remote host is not supported: {ref}")
        return Path(unquote(parsed.path))
    if len(parsed.scheme) > 1:  # one letter is a Windows drive
        raise PermanentError(
            f"unsupported data reference {ref!r}: use sample:NAME, a local path or file://"
        )
    return Path(ref).expanduser()


def read_file(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet file chosen by its suffix, or an MLTable folder."""
    from .mltable import is_mltable_folder, read_mltable

    if is_mltable_folder(path):
        return read_mltable(path, _read_csv)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise PermanentError(
            f"unsupported file format {path.suffix or '(no suffix)'!r} for {path}; "
            f"supported: {', '.join(sorted(_READERS))}"
        )
    if not path.is_file():
        raise PermanentError(f"data file not found: {path}")
    try:
        return reader(path)
    except (ValueError, OSError) as exc:
        raise PermanentError(f"cannot read {path}: {exc}") from exc
