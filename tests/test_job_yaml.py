"""An Azure ML AutoML job file (CLI v2 YAML) is a request, and an MLTable folder is a table
the local backend reads."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from automl_service.cli import main
from automl_service.engines.local.datasets import load_table
from automl_service.errors import InvalidRequest, PermanentError
from automl_service.exit_codes import EXIT_OK, EXIT_USAGE
from automl_service.queues.sqlite import SqliteQueue
from automl_service.request import request_from
from automl_service.yaml_files import load_yaml

JOB = """\
$schema: https://azuremlschemas.azureedge.net/latest/autoMLJob.schema.json
type: automl
experiment_name: churn
description: Churn from the monthly extract
compute: azureml:cpu-cluster
task: classification
primary_metric: AUC_weighted
target_column_name: churned
training_data:
  path: ./churn-train
  type: mltable
validation_data:
  path: azureml:churn-valid:2
  type: mltable
limits:
  timeout_minutes: 15
  max_trials: 20
training:
  blocked_training_algorithms: [KNN]
"""


def test_a_job_document_is_read_with_the_cli_names() -> None:
    request = request_from(load_yaml(JOB.encode(), "job.yml"))
    assert request.training_data == "./churn-train"
    assert request.validation.validation_data == "azureml:churn-valid:2"
    assert request.limits.timeout_seconds == 15 * 60 and request.limits.max_trials == 20
    assert request.training.blocked_algorithms == ["KNN"]
    assert request.compute == "azureml:cpu-cluster" and request.experiment_name == "churn"
    named = request_from({**load_yaml(JOB.encode(), "job.yml"), "name": "churn-2026-12"})
    assert named.id == "churn-2026-12"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"type": "command"}, "only an AutoML job"),
        ({"$schema": "https://example.org/other.json"}, "is not an AutoML job's"),
        ({"training_data": {"path": "x", "type": "custom_model"}}, "input type 'custom_model'"),
        ({"training_data": {"type": "mltable"}}, "the input has no path"),
        ({"validation": {"validation_data": "v.csv"}}, "validation_data or validation"),
        ({"outputs": {"best_model": {"type": "mlflow_model"}}}, "outputs: unknown field"),
    ],
)
def test_what_a_job_document_cannot_say_is_refused_with_a_reason(
    change: dict[str, object], reason: str
) -> None:
    with pytest.raises(InvalidRequest, match=reason):
        request_from({**load_yaml(JOB.encode(), "job.yml"), **change})


def test_yaml_aliases_and_oversized_or_broken_files_are_refused() -> None:
    bomb = b'a: &a ["x", "x"]\nb: &b [*a, *a]\nc: [*b, *b]\n'
    with pytest.raises(InvalidRequest, match="aliases"):
        load_yaml(bomb, "bomb.yml")
    with pytest.raises(InvalidRequest, match="the limit is"):
        load_yaml(b"a: " + b"x" * 300_000, "big.yml")
    with pytest.raises(InvalidRequest, match="not valid YAML"):
        load_yaml(b"a: [1, 2\n", "broken.yml")


def write_mltable(folder: Path, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "MLTable").write_text(text)


def test_an_mltable_folder_is_read_with_its_transformations(tmp_path: Path) -> None:
    folder = tmp_path / "churn-train"
    folder.mkdir()
    pd.DataFrame({"id": [1, 2], "plan": ["a", "b"], "churned": ["no", "yes"]}).to_csv(
        folder / "part-1.csv", sep=";", index=False
    )
    pd.DataFrame({"id": [3], "plan": ["c"], "churned": ["no"]}).to_csv(
        folder / "part-2.csv", sep=";", index=False
    )
    write_mltable(
        folder,
        "paths:\n  - pattern: ./part-*.csv\ntransformations:\n"
        "  - read_delimited:\n      delimiter: ';'\n      encoding: utf8\n"
        "      header: all_files_same_headers\n  - drop_columns: [id]\n",
    )
    table = load_table(str(folder))
    assert list(table.columns) == ["plan", "churned"] and list(table["plan"]) == ["a", "b", "c"]

    pd.DataFrame({"x": [1.0, 2.0], "y": [0, 1]}).to_parquet(tmp_path / "t.parquet")
    write_mltable(tmp_path / "pq", f"paths:\n  - file: {tmp_path / 't.parquet'}\n"
                                   "transformations:\n  - read_parquet\n  - take: 1\n")  # fmt: skip
    assert load_table(str(tmp_path / "pq")).to_dict("list") == {"x": [1.0], "y": [0]}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("paths:\n  - file: https://x/y.csv\ntransformations: [read_delimited]\n", "not a local"),
        ("paths:\n  - file: ./nope.csv\ntransformations: [read_delimited]\n", "no such file"),
        ("paths:\n  - file: ./t.csv\ntransformations:\n  - read_json_lines: {}\n", "must read"),
        ("paths:\n  - file: ./t.csv\ntransformations:\n  - read_delimited\n  - filter: x\n",
         "'filter' is not applied locally"),
    ],
)  # fmt: skip
def test_an_mltable_the_local_backend_cannot_read_is_refused_by_name(
    tmp_path: Path, text: str, reason: str
) -> None:
    write_mltable(tmp_path / "m", text)
    (tmp_path / "m" / "t.csv").write_text("a,b\n1,2\n")
    with pytest.raises(PermanentError, match=reason):
        load_table(str(tmp_path / "m"))


def test_submit_reads_a_job_file_its_paths_from_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("AUTOML_SERVICE_LOCAL__DATA_DIR", str(data))
    project = tmp_path / "project"
    project.mkdir()
    job = project / "job.yml"
    job.write_text(JOB.replace("compute: azureml:cpu-cluster\n", ""))
    monkeypatch.chdir(tmp_path)  # elsewhere: the path is still the job file's neighbour
    assert main(["submit", str(job)]) == EXIT_OK
    (message,) = SqliteQueue(data / "queue.db", "automl-requests").receive(1, 30)
    sent = json.loads(message.body)
    assert sent["training_data"] == str(project / "churn-train")
    assert sent["validation"]["validation_data"] == "azureml:churn-valid:2"
    capsys.readouterr()
    job.write_text("a: &a [1]\nb: *a\n")
    assert main(["submit", str(job)]) == EXIT_USAGE
    assert "aliases" in capsys.readouterr().err
