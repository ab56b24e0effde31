"""A forecasting request whose table cannot give a horizon and a backtest window is
refused at submit, naming the column or the series and the lengths."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from automl_service.cli import main
from automl_service.engines.local.series_checks import check_series
from automl_service.errors import InvalidRequest
from automl_service.exit_codes import EXIT_OK, EXIT_USAGE
from automl_service.request import AutoMLRequest


def stores(lengths: dict[str, int]) -> pd.DataFrame:
    """Monthly sales of each store, ``lengths[store]`` months each."""
    frames = [
        pd.DataFrame(
            {
                "store": store,
                "month": pd.date_range("2020-01-01", periods=n, freq="MS"),
                "sales": np.arange(float(n)),
            }
        )
        for store, n in lengths.items()
    ]
    return pd.concat(frames, ignore_index=True)


def request(path: Path, windows: int | None = None, **forecasting: object) -> AutoMLRequest:
    return AutoMLRequest.model_validate(
        {
            "task": "forecasting",
            "training_data": str(path),
            "target_column_name": "sales",
            "forecasting": {"time_column_name": "month", "forecast_horizon": 3,
                            "time_series_id_column_names": ["store"], **forecasting},
            **({"n_cross_validations": windows} if windows else {}),
        }
    )  # fmt: skip


def test_a_series_too_short_is_refused_naming_it_and_the_lengths(tmp_path: Path) -> None:
    """Horizon 3 needs 3 + 5 points for one window: store 'b' with 7 is refused by name,
    with how many series are short; with enough points the request passes."""
    path = tmp_path / "sales.csv"
    stores({"a": 30, "b": 7, "c": 6}).to_csv(path, index=False)
    with pytest.raises(InvalidRequest) as caught:
        check_series(request(path))
    text = str(caught.value)
    assert "series store='c' has 6 points: too short to forecast 3" in text
    assert "(needs 8)" in text and "2 of 3 series have fewer than 8 points" in text
    stores({"a": 30, "b": 8}).to_csv(path, index=False)
    check_series(request(path))


def test_missing_columns_and_one_short_series_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "sales.parquet"
    stores({"a": 30}).to_parquet(path)
    with pytest.raises(InvalidRequest, match="time_series_id_column_names column\\(s\\) 'shop'"):
        check_series(request(path, time_series_id_column_names=["shop"]))
    with pytest.raises(InvalidRequest, match="time column\\(s\\) 'date' not in the data"):
        check_series(request(path, time_column_name="date"))
    alone = stores({"a": 10}).drop(columns="store")
    alone.to_parquet(path)
    with pytest.raises(InvalidRequest, match="series has 10 points: room for 1 backtest"):
        check_series(request(path, windows=3, time_series_id_column_names=[]))


def test_a_step_too_large_for_the_windows_is_refused_naming_it(tmp_path: Path) -> None:
    """A ``cv_step_size`` that leaves the shortest series room for fewer windows than asked
    is refused at submit naming the field; a step that fits passes."""
    path = tmp_path / "sales.csv"
    stores({"a": 30, "b": 14}).to_csv(path, index=False)
    check_series(request(path, windows=3, cv_step_size=2))
    with pytest.raises(InvalidRequest, match=r"cv_step_size = 4 .* store='b' \(14 points\)"):
        check_series(request(path, windows=3, cv_step_size=4))


def test_submit_refuses_before_queueing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`submit` exits 2 with the message and queues nothing; a good table is queued."""
    monkeypatch.setenv("AUTOML_SERVICE_LOCAL__DATA_DIR", str(tmp_path / "data"))
    data = tmp_path / "sales.csv"
    stores({"a": 30, "b": 5}).to_csv(data, index=False)
    body = tmp_path / "request.json"
    body.write_text(request(data).model_dump_json(exclude_defaults=True))
    assert main(["submit", str(body)]) == EXIT_USAGE
    assert "series store='b' has 5 points" in capsys.readouterr().err
    assert main(["status", "--json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out) == []
    stores({"a": 30, "b": 9}).to_csv(data, index=False)
    assert main(["submit", str(body)]) == EXIT_OK
