"""Large tables made compact before the search: features only, and the models trained on
them still answer the rows callers send (text and 64-bit floats)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from automl_service.engines.local import compact as compact_module
from automl_service.engines.local import datasets
from automl_service.engines.local.compact import COMPACT_ROWS, compact
from automl_service.errors import PermanentError


def table(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "x": rng.normal(size=rows),
            "n": rng.integers(0, 5, size=rows),
            "color": rng.choice(["red", "green", "blue"], size=rows),
            "note": [f"free text {i}" for i in range(rows)],
            "y": rng.normal(size=rows),
        }
    )


def test_only_large_tables_features_are_made_compact() -> None:
    small = table(100)
    assert compact(small, keep=["y"]) == (small, [])
    large = table(COMPACT_ROWS)
    made, changed = compact(large, keep=["y"])
    assert changed == ["x", "color"]
    assert made["x"].dtype == np.float32 and isinstance(made["color"].dtype, pd.CategoricalDtype)
    assert made["y"].dtype == np.float64  # the target is left as it is
    assert made["note"].dtype == large["note"].dtype  # ids and free text stay text
    assert made["n"].dtype == large["n"].dtype
    assert made.memory_usage(deep=True).sum() < large.memory_usage(deep=True).sum()


def test_a_large_file_read_in_chunks_is_the_whole_file_made_compact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compact_module, "COMPACT_ROWS", 500)
    monkeypatch.setattr(datasets, "LARGE_CSV_BYTES", 0)
    data = table(1800)
    data["late"] = [None] * 1000 + ["a", "b"] * 400  # empty in the first two chunks
    data["mixed"] = [1] * 600 + [1.5] * 1200  # whole numbers first, then fractions
    data.to_csv(tmp_path / "t.csv", index=False)
    whole = pd.read_csv(tmp_path / "t.csv")
    read = datasets.load_table(str(tmp_path / "t.csv"), keep=["y"])
    expected, _ = compact(whole, keep=["y"])
    assert list(read.columns) == list(whole.columns)
    assert dict(read.dtypes) == dict(expected.dtypes)
    pd.testing.assert_frame_equal(read, expected, check_categorical=False)
    assert sorted(read["color"].cat.categories) == ["blue", "green", "red"]
    assert read["y"].dtype == np.float64  # what is kept stays as read
    # A file of one chunk is read as it is.
    whole.head(400).to_csv(tmp_path / "small.csv", index=False)
    small = datasets.load_table(str(tmp_path / "small.csv"), keep=["y"])
    pd.testing.assert_frame_equal(small, pd.read_csv(tmp_path / "small.csv"))


def test_a_limit_spent_on_reading_is_refused_before_the_search(tmp_path: Path) -> None:
    from mlflow import MlflowClient

    from automl_service.engines.local.budget import Budget
    from automl_service.engines.local.search import search
    from automl_service.engines.local.trials import Objective, TrialLog
    from automl_service.metrics import Goal
    from automl_service.request import AutoMLRequest

    table(300).to_csv(tmp_path / "t.csv", index=False)
    request = AutoMLRequest.model_validate(
        {
            "task": "regression",
            "training_data": str(tmp_path / "t.csv"),
            "target_column_name": "y",
            "limits": {"timeout_seconds": 5},
        }
    )
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.create_experiment("c", artifact_location=(tmp_path / "a").as_uri())
    parent = client.create_run(experiment).info.run_id
    log = TrialLog(client, experiment, parent, "c", 1, [Objective("r2_score", Goal.MAXIMIZE)])
    # A limit far shorter than reading the table takes (the request's own minimum is 5 s;
    # the budget is built directly here so that reading 300 rows exceeds it).
    tiny = Budget(0.002, started_at=time.time())
    with pytest.raises(PermanentError, match=r"reading 300 rows took \d+\.\d s.*at least \d+ s"):
        search(request, log, tiny)
    assert log.records == []
    # A slow start alone (the limit spent before reading began) is not refused: the
    # search gets its minimum.
    slow_start = Budget(5, started_at=time.time() - 7)
    assert slow_start.too_small("starting and reading 300 rows", took=0.01) is None


@pytest.mark.slow
def test_a_model_trained_on_a_compact_table_answers_plain_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    from automl_service.engines.local.search import search
    from automl_service.engines.local.trials import Objective, TrialLog
    from automl_service.metrics import Goal
    from automl_service.request import AutoMLRequest

    monkeypatch.setattr(compact_module, "COMPACT_ROWS", 500)
    monkeypatch.setattr(datasets, "LARGE_CSV_BYTES", 0)  # read in chunks of 500 rows
    data = table(2000)
    data["y"] = np.where(data["color"] == "red", "yes", "no")
    data.to_csv(tmp_path / "t.csv", index=False)
    request = AutoMLRequest.model_validate(
        {
            "task": "classification",
            "training_data": str(tmp_path / "t.csv"),
            "target_column_name": "y",
            "ignored_columns": ["note"],
            "limits": {"timeout_seconds": 10, "max_trials": 2},
        }
    )
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.create_experiment("c", artifact_location=(tmp_path / "a").as_uri())
    parent = client.create_run(experiment).info.run_id
    log = TrialLog(client, experiment, parent, "c", 1, [Objective("accuracy", Goal.MAXIMIZE)])
    ((record, model),) = search(request, log)
    assert record.metrics["accuracy"] > 0.95
    rows = data.drop(columns=["y", "note"]).head(50)  # float64 and text, as callers send
    answer = model.predict(None, rows)
    assert (answer["prediction"] == data["y"].head(50)).mean() > 0.9
