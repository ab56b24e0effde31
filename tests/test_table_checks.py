"""Training data that can never train is refused early, saying what to change."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fixtures_local import make_request, wait_terminal

from automl_service.engines.base import JobState
from automl_service.engines.local import LocalEngine
from automl_service.engines.local.datasets import read_file
from automl_service.engines.local.table_checks import MIN_TABLE_ROWS, check_trainable
from automl_service.errors import PermanentError
from automl_service.metrics import Task

pytest_plugins = ["fixtures_local"]


def table(target: list[object]) -> pd.DataFrame:
    return pd.DataFrame({"x": range(len(target)), "y": target})


@pytest.mark.parametrize(
    ("target", "task", "fragment"),
    [
        ([np.nan] * 30, Task.REGRESSION, "'y' has no values in 30 rows"),
        ([np.nan] * 30, Task.FORECASTING, "has no values"),
        (
            [1.0],
            Task.REGRESSION,
            f"1 row(s) have a value in 'y'; training needs at least {MIN_TABLE_ROWS}",
        ),
        ([1, 2, np.nan] + [np.nan] * 20, Task.CLASSIFICATION, "2 row(s) have a value"),
        (["yes"] * 30, Task.CLASSIFICATION, "'y' has one class ('yes') in 30 rows"),
    ],
)
def test_untrainable_targets_are_refused_saying_why(
    target: list[object], task: Task, fragment: str
) -> None:
    """Each kind of target that cannot train has its own message."""
    with pytest.raises(PermanentError) as caught:
        check_trainable(table(target), "y", task)
    assert fragment in str(caught.value)


def test_trainable_targets_pass() -> None:
    """Two classes in enough rows, or any numbers for regression, pass."""
    check_trainable(table(["a", "b"] * 10), "y", Task.CLASSIFICATION)
    check_trainable(table([float(i) for i in range(MIN_TABLE_ROWS)]), "y", Task.REGRESSION)
    check_trainable(table([1.0, 2.0]), "y", Task.FORECASTING)


def test_a_csv_naming_a_column_twice_is_refused(tmp_path: Path) -> None:
    """A header with the target twice is refused naming it, not trained on 'target.1'."""
    path = tmp_path / "dup.csv"
    path.write_text("a,target,b,target\n1,0,2,0\n")
    with pytest.raises(PermanentError, match="names column\\(s\\) 'target' more than once"):
        read_file(path)
    ok = tmp_path / "ok.csv"
    ok.write_text("a,target\n1,0\n")
    assert list(read_file(ok).columns) == ["a", "target"]


@pytest.mark.process
def test_a_one_class_table_fails_the_job_with_the_reason(
    engine: LocalEngine, tmp_path: Path
) -> None:
    """A job on a table whose target has one class ends FAILED at once with the message,
    no trial run."""
    path = tmp_path / "one-class.csv"
    table(["no"] * 40).to_csv(path, index=False)
    request = make_request(
        "classification", request_id="t-oneclass", training_data=str(path),
        target_column_name="y", primary_metric="accuracy",
    )  # fmt: skip
    engine.ensure_job(request)
    status = wait_terminal(engine, request.job_name, timeout=120)
    assert status.state is JobState.FAILED
    assert "has one class ('no') in 40 rows" in (status.error or "")
    assert engine.child_runs(request.job_name) == []
