"""Batch scoring (``automl-service predict``): a real FLAML VotingEnsemble registered in a
real MLflow store scores CSV and Parquet files chunk by chunk."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fixtures_models import IRIS_CLASSES, flaml_model, iris_named, register_pyfunc

from automl_service.cli import main
from automl_service.engines.local.batch import ModelRef, parse_model_ref, predict_file, score_file
from automl_service.engines.local.ensemble import EnsembleModel
from automl_service.engines.local.model_loading import load_registered
from automl_service.errors import InvalidRequest
from automl_service.settings import LocalSettings

pytest_plugins = ["fixtures_local"]

MODEL = "iris-batch"
PROBA = [f"proba_{c}" for c in IRIS_CLASSES]


@pytest.fixture(scope="module")
def ensemble() -> EnsembleModel:
    """A VotingEnsemble of two real FLAML models on iris (species as strings)."""
    X, y = iris_named()
    return EnsembleModel([flaml_model(X, y, "lgbm"), flaml_model(X, y, "rf")], [2, 1], True)


@pytest.fixture
def registered(
    local_settings: LocalSettings, ensemble: EnsembleModel, monkeypatch: pytest.MonkeyPatch
) -> LocalSettings:
    """The ensemble registered as MODEL version 1; the CLI pointed at its store."""
    register_pyfunc(local_settings, ensemble, MODEL, "batch-1")
    monkeypatch.setenv("AUTOML_SERVICE_LOCAL__DATA_DIR", str(local_settings.data_dir))
    return local_settings


def noisy_iris(rows: int, seed: int = 0) -> pd.DataFrame:
    """``rows`` iris rows with a little noise, and a ``row_id`` the model does not use."""
    X, _ = iris_named()
    rng = np.random.default_rng(seed)
    picked = X.iloc[rng.integers(0, len(X), rows)].reset_index(drop=True)
    noisy = picked + rng.normal(scale=0.05, size=picked.shape)
    return noisy.assign(row_id=np.arange(rows))


def test_model_references_name_a_version_or_an_alias() -> None:
    """NAME, NAME:VERSION and NAME@ALIAS parse; other shapes are refused."""
    assert parse_model_ref("churn") == ModelRef("churn")
    assert parse_model_ref("churn:3") == ModelRef("churn", "3")
    assert parse_model_ref("churn@champion") == ModelRef("churn", alias="champion")
    for bad in ("", "churn:", "churn:x", "churn@", "churn:3@live"):
        with pytest.raises(InvalidRequest, match="--model"):
            parse_model_ref(bad)


@pytest.mark.slow
def test_predict_scores_200000_csv_rows_with_probabilities(
    registered: LocalSettings, ensemble: EnsembleModel, tmp_path: Path
) -> None:
    """Every input row comes out once, in order, with its columns, the ensemble's label
    and one probability per species summing to 1 whose largest is the label."""
    rows = noisy_iris(200_000)
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    rows.to_csv(source, index=False)
    began = time.monotonic()
    assert main(["predict", "--model", MODEL, "--input", str(source), "--output", str(target)]) == 0
    took = time.monotonic() - began

    out = pd.read_csv(target)
    assert list(out.columns) == [*rows.columns, "prediction", *PROBA]
    assert len(out) == len(rows)
    assert out["row_id"].tolist() == list(range(len(rows)))
    proba = out[PROBA].to_numpy()
    assert proba.sum(axis=1) == pytest.approx(np.ones(len(out)))
    assert (IRIS_CLASSES[proba.argmax(axis=1)] == out["prediction"].to_numpy()).all()
    sample = rows.iloc[::997]
    direct = ensemble.predict(None, sample.drop(columns=["row_id"]))
    assert out["prediction"].iloc[::997].tolist() == direct["prediction"].tolist()
    assert out[PROBA].iloc[::997].to_numpy() == pytest.approx(direct[PROBA].to_numpy())
    assert not list(tmp_path.glob(".*partial")), "no partial file is left"
    assert took < 60


@pytest.mark.slow
def test_parquet_is_scored_in_chunks_into_the_same_answers(
    registered: LocalSettings, tmp_path: Path
) -> None:
    """Parquet in, Parquet out, 1,000 rows at a time: the chunks are scored one after
    another and the answers equal the CSV path's."""
    rows = noisy_iris(4_500, seed=1)
    parquet, csv = tmp_path / "in.parquet", tmp_path / "in.csv"
    rows.to_parquet(parquet, index=False)
    rows.to_csv(csv, index=False)
    seen: list[int] = []
    scored = predict_file(
        registered.mlflow_uri,
        f"{MODEL}:1",
        parquet,
        tmp_path / "out.parquet",
        chunk_rows=1_000,
        progress=seen.append,
    )
    assert seen == [1_000, 2_000, 3_000, 4_000, 4_500]
    assert (scored.rows, scored.version) == (4_500, "1")
    predict_file(registered.mlflow_uri, MODEL, csv, tmp_path / "out.csv", chunk_rows=2_000)
    from_parquet = pd.read_parquet(tmp_path / "out.parquet")
    from_csv = pd.read_csv(tmp_path / "out.csv")
    assert from_parquet["prediction"].tolist() == from_csv["prediction"].tolist()
    assert from_parquet[PROBA].to_numpy() == pytest.approx(from_csv[PROBA].to_numpy())


@pytest.mark.slow
def test_a_missing_column_exits_2_naming_it(
    registered: LocalSettings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An input without a column the model needs is refused with exit 2 naming the
    column, and no output is written."""
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    noisy_iris(10).drop(columns=["petal width (cm)"]).to_csv(source, index=False)
    code = main(
        ["--json", "predict", "--model", MODEL, "--input", str(source), "--output", str(target)]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "lacks the model's input column(s): petal width (cm)" in err
    assert not target.exists()


def test_text_in_a_number_column_exits_2_naming_the_column_row_and_value(
    registered: LocalSettings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A value that is not a number in a column the ensemble's members read as numbers is
    refused naming the column, the data row and the value (not the model's own error);
    no output is written."""
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    rows = noisy_iris(10).astype({"sepal width (cm)": object})
    rows.loc[6, "sepal width (cm)"] = "wide"
    rows.to_csv(source, index=False)
    code = main(
        ["--json", "predict", "--model", MODEL, "--input", str(source), "--output", str(target)]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "column 'sepal width (cm)' needs numbers; row 7 has 'wide'" in err
    assert not target.exists()


@pytest.mark.slow
def test_unknown_models_and_formats_exit_2(
    registered: LocalSettings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown model or version and an unsupported suffix are input errors (exit 2)."""
    source = tmp_path / "in.csv"
    noisy_iris(5).to_csv(source, index=False)
    out = str(tmp_path / "out.csv")
    assert main(["predict", "--model", "nope", "--input", str(source), "--output", out]) == 2
    assert "no registered model named 'nope'" in capsys.readouterr().err
    assert main(["predict", "--model", f"{MODEL}:9", "--input", str(source), "--output", out]) == 2
    assert f"no registered model {MODEL}:9" in capsys.readouterr().err
    assert main(["predict", "--model", MODEL, "--input", str(source), "--output", "o.xlsx"]) == 2
    assert "unsupported format '.xlsx'" in capsys.readouterr().err
    assert (
        main(["--json", "predict", "--model", MODEL, "--input", str(source), "--output", out]) == 0
    )
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["rows"] == 5


@pytest.mark.slow
def test_memory_follows_the_chunk_not_the_file(registered: LocalSettings, tmp_path: Path) -> None:
    """Scoring 40,000 rows 4,000 at a time allocates at its peak under half of what
    scoring them in one chunk does."""
    import tracemalloc

    source = tmp_path / "in.csv"
    noisy_iris(40_000, seed=2).to_csv(source, index=False)
    model = load_registered(registered.mlflow_uri, MODEL, "1")
    peaks = []
    for chunk_rows in (4_000, 40_000):
        tracemalloc.start()
        try:
            score_file(model, source, tmp_path / f"out-{chunk_rows}.csv", chunk_rows=chunk_rows)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    assert peaks[0] < peaks[1] / 2, peaks
