"""A large CSV file is searched on a sample read without holding the whole table: the
same rows a table in memory gives, every row again for the refit, and memory that follows
the sample, not the file."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fixtures_models import search_csv, separable_table

from automl_service.engines.local import compact as compact_module
from automl_service.engines.local import datasets, large_csv, sampling
from automl_service.engines.local.column_medians import column_medians
from automl_service.engines.local.compact import compact
from automl_service.engines.local.large_csv import read_sampled
from automl_service.engines.local.sampling import search_sample
from automl_service.metrics import Task


def table(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = pd.DataFrame(
        {
            "x": rng.normal(size=rows),
            "n": rng.integers(0, 5, size=rows),
            "color": rng.choice(["red", "green", "blue"], size=rows),
            "note": [f"free text {i}" for i in range(rows)],
        }
    )
    # Three classes, one rare, and some rows without a class.
    classes = np.array(["a", "b", "rare", None], dtype=object)
    data["y"] = rng.choice(classes, size=rows, p=[0.6, 0.3, 0.05, 0.05])
    return data


@pytest.fixture
def small_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    """A table of thousands of rows counts as large and is searched on 800 of them."""
    monkeypatch.setattr(compact_module, "COMPACT_ROWS", 500)
    monkeypatch.setattr(datasets, "LARGE_CSV_BYTES", 0)
    monkeypatch.setattr(large_csv, "LARGE_CSV_BYTES", 0)
    monkeypatch.setattr(large_csv, "CSV_CHUNK_ROWS", 300)
    monkeypatch.setattr(sampling, "MIN_SEARCH_ROWS", 800)
    monkeypatch.setattr(sampling, "ROWS_PER_SEARCH_SECOND", 1)


def in_memory(path: Path, ignored: list[str]) -> pd.DataFrame:
    """The rows with a class, as the whole table read and made compact gives them."""
    whole = datasets.load_table(str(path), keep=["y"]).drop(columns=ignored)
    whole, _ = compact(whole, keep=["y"])
    return whole.dropna(subset=["y"])


def test_the_sample_read_from_the_file_is_the_sample_of_the_table_in_memory(
    tmp_path: Path, small_limits: None
) -> None:
    data = table(3_000)
    data.to_csv(tmp_path / "t.csv", index=False)
    read = read_sampled(tmp_path / "t.csv", "y", ["note"], ["y"], Task.CLASSIFICATION, lambda: 1)
    assert read is not None
    sample, rows = read
    expected = search_sample(in_memory(tmp_path / "t.csv", ["note"]), "y", 1, by_class=True)
    assert len(sample) == 800 and list(sample.columns) == ["x", "n", "color", "y"]
    assert sample.index.tolist() == expected.index.tolist()  # the very same rows
    pd.testing.assert_frame_equal(sample, expected, check_categorical=False, check_index_type=False)
    assert sample["x"].dtype == np.float32 and isinstance(
        sample["color"].dtype, pd.CategoricalDtype
    )
    # Each class keeps its share of the rows with a class, the rare one included.
    labelled = data["y"].dropna()
    shares = sample["y"].value_counts(normalize=True)
    for name, share in labelled.value_counts(normalize=True).items():
        assert shares[name] == pytest.approx(share, abs=0.01)
    assert rows.count == len(labelled)


def test_the_refit_reads_every_row_with_a_class(tmp_path: Path, small_limits: None) -> None:
    table(2_000, seed=1).to_csv(tmp_path / "t.csv", index=False)
    read = read_sampled(tmp_path / "t.csv", "y", ["note"], ["y"], Task.CLASSIFICATION, lambda: 1)
    assert read is not None
    X, y = read[1].read()
    expected = in_memory(tmp_path / "t.csv", ["note"])
    assert len(X) == len(y) == read[1].count == len(expected)
    pd.testing.assert_frame_equal(
        X, expected.drop(columns=["y"]), check_categorical=False, check_index_type=False
    )
    assert y.tolist() == expected["y"].tolist()


def test_a_table_that_fits_its_search_or_is_small_is_read_whole(
    tmp_path: Path, small_limits: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    table(700).to_csv(tmp_path / "t.csv", index=False)  # fewer rows than the search gets
    assert read_sampled(tmp_path / "t.csv", "y", [], ["y"], Task.CLASSIFICATION, lambda: 1) is None
    monkeypatch.setattr(compact_module, "COMPACT_ROWS", 10_000)
    table(3_000).to_csv(tmp_path / "t.csv", index=False)  # not large
    assert read_sampled(tmp_path / "t.csv", "y", [], ["y"], Task.CLASSIFICATION, lambda: 1) is None


def test_reading_the_sample_holds_memory_for_the_sample_not_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading 2,000 of 40,000 rows of 30 numbers allocates at its peak under a third of
    what reading the table whole does (the target column is read whole)."""
    monkeypatch.setattr(compact_module, "COMPACT_ROWS", 1_000)
    monkeypatch.setattr(large_csv, "LARGE_CSV_BYTES", 0)
    monkeypatch.setattr(large_csv, "CSV_CHUNK_ROWS", 2_000)
    monkeypatch.setattr(sampling, "MIN_SEARCH_ROWS", 2_000)
    monkeypatch.setattr(sampling, "ROWS_PER_SEARCH_SECOND", 1)
    rng = np.random.default_rng(2)
    rows = 40_000
    data = pd.DataFrame({f"x{i}": rng.normal(size=rows) for i in range(30)})
    data["y"] = rng.integers(0, 2, size=rows)
    data.to_csv(tmp_path / "t.csv", index=False, float_format="%.4f")
    peaks = []
    for read in (
        lambda: read_sampled(tmp_path / "t.csv", "y", [], ["y"], Task.CLASSIFICATION, lambda: 1),
        lambda: pd.read_csv(tmp_path / "t.csv"),
    ):
        tracemalloc.start()
        try:
            assert read() is not None
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    assert peaks[0] < peaks[1] / 3, peaks


def test_medians_fitted_a_column_at_a_time_are_the_same_in_less_memory() -> None:
    from sklearn.impute import SimpleImputer

    rng = np.random.default_rng(3)
    X = rng.normal(size=(40_001, 12)).astype(np.float32)
    X[rng.random(X.shape) < 0.02] = np.nan
    X[:, 5] = np.nan  # a column with no value at all
    peaks, fitted = [], []
    for lean in (False, True):
        imputer = SimpleImputer(strategy="median", keep_empty_features=True)
        tracemalloc.start()
        try:
            if lean:
                with column_medians():
                    imputer.fit(X)
            else:
                imputer.fit(X)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        fitted.append(imputer)
    whole, by_column = fitted
    assert type(by_column) is SimpleImputer
    assert by_column.statistics_.dtype == whole.statistics_.dtype
    np.testing.assert_array_equal(by_column.statistics_, whole.statistics_)
    np.testing.assert_array_equal(by_column.transform(X), whole.transform(X))
    assert peaks[1] < peaks[0] / 2, peaks
    assert SimpleImputer._dense_fit is not None  # put back after the block
    assert "by_column" not in SimpleImputer._dense_fit.__qualname__


@pytest.mark.slow
def test_a_large_file_is_searched_on_its_sample_and_the_leader_refitted_on_every_row(
    tmp_path: Path, small_limits: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """...and LightGBM bins its searched rows from a sample of them, recorded with the
    trial's parameters."""
    from automl_service.engines.local import search as search_module
    from automl_service.tags import SEARCHED_ROWS_TAG

    data = separable_table(3_000)
    data.loc[::100, "y"] = None  # 30 rows without a class: not trained on
    data.to_csv(tmp_path / "t.csv", index=False)
    monkeypatch.setattr(search_module, "LIGHTGBM_BIN_SAMPLE_ROWS", 300)  # of 640 searched
    client, parent, record, model = search_csv(tmp_path / "t.csv")
    assert client.get_run(parent).data.tags[SEARCHED_ROWS_TAG] == "800"
    assert record.params["bin_construct_sample_cnt"] == "300"
    assert model.fitted_rows == 2_970 and model.refit_error is None
    assert record.metrics["accuracy"] > 0.9
    answer = model.predict(None, data.drop(columns=["y"]).head(50))
    assert (answer["prediction"] == data["y"].head(50)).sum() >= 45
