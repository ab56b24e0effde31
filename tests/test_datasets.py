"""Tables by reference: bundled samples, CSV / Parquet files, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from automl_service.engines.local.datasets import SAMPLES, load_part, load_table
from automl_service.errors import PermanentError


@pytest.mark.parametrize(
    ("name", "rows", "label"),
    [
        ("breast_cancer", 569, "target"),
        ("iris", 150, "target"),
        ("wine", 178, "target"),
        ("diabetes", 442, "target"),
    ],
)
def test_sklearn_samples_have_a_target_column(name: str, rows: int, label: str) -> None:
    """Each bundled sklearn table loads whole, with its label in a column named ``target``."""
    table = load_table(f"sample:{name}")
    assert len(table) == rows
    assert label in table.columns
    assert table[label].notna().all()


@pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")
def test_co2_sample_is_a_regular_monthly_series() -> None:
    """The co2 sample is monthly, gap-free, with ``date`` and ``co2`` columns."""
    table = load_table("sample:co2")
    assert list(table.columns) == ["date", "co2"]
    assert pd.infer_freq(pd.DatetimeIndex(table["date"])) == "MS"
    assert table["co2"].notna().all()
    assert 300 < table["co2"].mean() < 400


@pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")
@pytest.mark.parametrize("name", ["sunspots", "macrodata"])
def test_short_series_samples_have_regular_dates(name: str) -> None:
    """The short forecasting samples have a ``date`` column on a regular frequency."""
    table = load_table(f"sample:{name}")
    assert pd.infer_freq(pd.DatetimeIndex(table["date"])) is not None
    assert 150 < len(table) < 400


def test_every_listed_sample_loads() -> None:
    """Every name in SAMPLES loads into a non-empty table."""
    for name in SAMPLES:
        assert len(load_table(f"sample:{name}")) > 0


def test_unknown_sample_lists_the_known_ones() -> None:
    """An unknown sample name is a PermanentError naming the known samples."""
    with pytest.raises(PermanentError, match=r"unknown sample 'nope'.*breast_cancer.*iris"):
        load_table("sample:nope")


def test_csv_and_parquet_paths_and_file_uris_load(tmp_path: Path) -> None:
    """The same table reads back from CSV, Parquet, and a file:// URI."""
    table = pd.DataFrame({"x": [1.0, 2.0, 3.0], "target": ["a", "b", "a"]})
    csv, parquet = tmp_path / "t.csv", tmp_path / "t.parquet"
    table.to_csv(csv, index=False)
    table.to_parquet(parquet)
    for ref in (str(csv), str(parquet), parquet.as_uri(), csv.as_uri()):
        loaded = load_table(ref)
        assert loaded["x"].tolist() == [1.0, 2.0, 3.0]
        assert loaded["target"].tolist() == ["a", "b", "a"]


def test_missing_file_is_permanent(tmp_path: Path) -> None:
    """A path that does not exist is a PermanentError naming the path."""
    missing = tmp_path / "absent.csv"
    with pytest.raises(PermanentError, match=r"not found.*absent\.csv"):
        load_table(str(missing))


def test_unsupported_format_is_permanent(tmp_path: Path) -> None:
    """A file with an unknown suffix is a PermanentError listing the supported ones."""
    path = tmp_path / "table.xlsx"
    path.write_text("not really")
    with pytest.raises(PermanentError, match=r"unsupported file format '\.xlsx'.*\.csv"):
        load_table(str(path))


def test_remote_schemes_are_refused() -> None:
    """A reference with a remote scheme is a PermanentError, never a download."""
    with pytest.raises(PermanentError, match="unsupported data reference"):
        load_table("https://example.com/table.csv")


def test_a_part_of_a_table_reads_only_the_rows_and_columns_asked(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": range(100), "b": [x / 2 for x in range(100)], "c": ["t"] * 100})
    frame.to_csv(tmp_path / "t.csv", index=False)
    head = load_part(str(tmp_path / "t.csv"), rows=5)
    pd.testing.assert_frame_equal(head, frame.head(5))
    column = load_part(str(tmp_path / "t.csv"), columns=["b", "missing"])
    assert list(column.columns) == ["b"] and len(column) == 100
    frame.to_parquet(tmp_path / "t.parquet")  # other formats are read whole and cut
    both = load_part(str(tmp_path / "t.parquet"), rows=3, columns=["c", "a"])
    assert list(both.columns) == ["a", "c"] and len(both) == 3
    assert len(load_part("sample:iris", rows=7)) == 7
