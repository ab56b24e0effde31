"""Large tables made compact before the search: features only, and the models trained on
them still answer the rows callers send (text and 64-bit floats)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from automl_service.engines.local import compact as compact_module
from automl_service.engines.local.compact import COMPACT_ROWS, compact


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
