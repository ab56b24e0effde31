"""Many series in one table: splitting, windows, the global model's features, and
forecasters answering one forecast per row for its own series and date."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from automl_service.engines.local.datasets import load_sample
from automl_service.engines.local.evaluate import compute_metrics
from automl_service.engines.local.horizon import OutsideHorizon
from automl_service.engines.local.lag_models import GLOBAL_CONFIGS
from automl_service.engines.local.panel import (
    OneStepAhead,
    Panel,
    Series,
    cutoffs,
    lag_path,
    lag_rows,
    split_panel,
    window_rows,
)
from automl_service.engines.local.panel_forecasters import PanelBaseline
from automl_service.engines.local.search import search
from automl_service.engines.local.trials import Objective, TrialLog
from automl_service.errors import PermanentError
from automl_service.metrics import Goal, Task
from automl_service.request import AutoMLRequest
from automl_service.runs import RunStatus

NRMSE = "normalized_root_mean_squared_error"


def two_series(short: int = 12) -> pd.DataFrame:
    """Store "a" (values 1..20) and store 7 (100, 200, ...) monthly, 7 with ``short`` months."""
    a = pd.DataFrame(
        {"store": "a", "month": pd.date_range("2020-01-01", periods=20, freq="MS"),
         "sales": np.arange(1.0, 21.0)}
    )  # fmt: skip
    b = pd.DataFrame(
        {"store": 7, "month": pd.date_range("2020-01-01", periods=short, freq="MS"),
         "sales": 100.0 * np.arange(1.0, short + 1.0)}
    )  # fmt: skip
    return pd.concat([b, a], ignore_index=True).sample(frac=1.0, random_state=0)


def test_series_are_split_by_id_and_sorted_by_time() -> None:
    """Each id gets its own series in time order, whatever the row order of the table."""
    panel = split_panel(two_series(), ["store"], "month", "sales")
    by_key = {s.key: s for s in panel.series}
    assert set(by_key) == {("a",), ("7",)}
    assert by_key[("a",)].values.tolist() == list(np.arange(1.0, 21.0))
    assert by_key[("7",)].times.is_monotonic_increasing


def test_a_series_too_short_for_the_horizon_is_refused_by_name() -> None:
    """The windows are as many as the shortest series has room for; a series without room
    for one is refused naming it and its length."""
    assert len(split_panel(two_series(14), ["store"], "month", "sales").windows(3)) == 3
    assert len(split_panel(two_series(11), ["store"], "month", "sales").windows(3)) == 2
    panel = split_panel(two_series(7), ["store"], "month", "sales")
    with pytest.raises(PermanentError, match="series store='7' has 7 points: too short"):
        panel.windows(3)


def test_cv_step_size_sets_each_series_window_origins_apart() -> None:
    """With a step of 2 every series' windows start 2 periods apart, counted from its own
    end; a step too large for the shortest series is refused naming the field and it."""
    panel = split_panel(two_series(14), ["store"], "month", "sales")
    windows = panel.windows(3, step=2)
    assert [w.cutoff for w in windows] == [11, 9, 7]
    by_series = [cutoffs(panel, w) for w in windows]  # store 7 (14 months), then "a" (20)
    assert by_series == [[11, 17], [9, 15], [7, 13]]
    with pytest.raises(PermanentError) as caught:
        panel.windows(3, step=4)
    assert str(caught.value).startswith(
        "forecasting.cv_step_size = 4 leaves room for 2 backtest window(s) of 3 in series "
        "store='7' (14 points), not 3"
    )


def test_window_rows_name_each_pooled_row_series_and_time() -> None:
    """A window's pooled rows are series after series, each its own last points: their
    series and times line up with the values the folds pool."""
    panel = split_panel(two_series(14), ["store"], "month", "sales")
    windows = panel.windows(3)
    times, labels = window_rows(panel, windows)
    assert labels[0].tolist() == ["store='7'"] * 3 + ["store='a'"] * 3
    assert [str(t)[:7] for t in times[1]] == [
        "2020-09", "2020-10", "2020-11", "2021-03", "2021-04", "2021-05"
    ]  # fmt: skip


def test_global_training_rows_never_see_past_the_cutoff() -> None:
    """The global model's training rows read nothing at or after each series' cutoff (values
    there are NaN here), and every origin and step before it gives one row."""
    panel = split_panel(two_series(), ["store"], "month", "sales")
    cutoffs = [6, 10]
    hidden = Panel(
        panel.id_columns,
        tuple(
            Series(s.key, s.times, np.where(np.arange(len(s.values)) < c, s.values, np.nan))
            for s, c in zip(panel.series, cutoffs, strict=True)
        ),
    )
    X, y = lag_rows(hidden, cutoffs, lags=3, horizon=2)
    assert np.isfinite(X).all() and np.isfinite(y).all()
    # Origins 2..cutoff-2; the last origin has room for one step only.
    assert len(y) == sum(2 * (c - 4) + 1 for c in cutoffs)


class _NextIsLastPlusOne:
    """A regressor whose forecast is the first feature (the latest lag) plus one."""

    def predict(self, rows: np.ndarray) -> np.ndarray:
        return rows[:, 0] + 1.0


def test_one_step_ahead_models_learn_raw_values_and_feed_back_their_forecasts() -> None:
    """Unscaled rows of one step hold the raw lags (latest first) and the raw next value;
    a one-step model forecasts each further step from its own forecasts, several series
    at once as one by one."""
    panel = split_panel(two_series(), ["store"], "month", "sales")
    X, y = lag_rows(panel, [12, 20], lags=3, horizon=1, scaled=False)
    assert X[0, :4].tolist() == [300.0, 200.0, 100.0, 1.0]  # store 7's lags, step 1
    assert y[0] == 400.0
    model = OneStepAhead(_NextIsLastPlusOne())
    dates = pd.date_range("2021-01-01", periods=3, freq="MS")
    assert lag_path(model, np.array([1.0, 2.0, 5.0]), 3, 0, dates).tolist() == [6.0, 7.0, 8.0]
    both = model.paths([np.array([1.0, 5.0]), np.array([9.0, 10.0])], 2, [0, 1], [dates] * 2)
    assert [p.tolist() for p in both] == [[6.0, 7.0, 8.0], [11.0, 12.0, 13.0]]


def baseline() -> PanelBaseline:
    panel = split_panel(two_series(), ["store"], "month", "sales")
    return PanelBaseline(
        "Naive",
        {s.key: s.values for s in panel.series},
        1,
        time_column="month",
        id_columns=("store",),
        freq="MS",
        horizon=3,
        ends={s.key: s.times[-1] for s in panel.series},
    )


def test_each_row_gets_its_own_series_forecast_for_its_own_date() -> None:
    """Rows of two series mixed, ids as text or numbers, dates as strings: each row is
    its series' forecast for its date (Naive: the series' last value)."""
    model = baseline()
    rows = pd.DataFrame(
        {
            "store": ["a", 7, "7", "a"],
            "month": ["2021-09-01", "2021-01-01", "2021-03-01", "2021-10-01"],
        }
    )
    assert model.predict(None, rows).tolist() == [20.0, 1200.0, 1200.0, 20.0]


@pytest.mark.parametrize(
    ("store", "month", "says"),
    [
        ("b", "2021-09-01", "series store='b' is not one this model was trained on"),
        ("a", "2021-08-01", "series store='a': '2021-08-01' is at or before the end"),
        ("7", "2021-04-01", "series store='7': '2021-04-01' is beyond the forecast horizon"),
    ],
)
def test_unknown_series_and_dates_are_refused_by_name(store: str, month: str, says: str) -> None:
    """An id the model was not trained on, or a date outside a series' horizon, raises
    OutsideHorizon naming it (what an endpoint answers with a 400)."""
    rows = pd.DataFrame({"store": ["a", store], "month": ["2021-09-01", month]})
    with pytest.raises(OutsideHorizon, match=says):
        baseline().predict(None, rows)


@pytest.mark.slow
def test_grunfeld_trains_a_global_model_and_baselines_over_all_firms(tmp_path: Path) -> None:
    """On the grunfeld panel (11 firms, 20 years) the global LightGBM and the baselines are
    each one child run scored on 3 windows, every firm's forecasts pooled per window; the
    leader forecasts each firm from its own level."""
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.create_experiment("panel", artifact_location=(tmp_path / "a").as_uri())
    parent = client.create_run(experiment).info.run_id
    request = AutoMLRequest.model_validate(
        {
            "task": "forecasting",
            "training_data": "sample:grunfeld",
            "target_column_name": "invest",
            "forecasting": {
                "time_column_name": "year",
                "forecast_horizon": 3,
                "time_series_id_column_names": ["firm"],
            },
            "limits": {"timeout_seconds": 5},
        }
    )
    log = TrialLog(client, experiment, parent, "panel", 1, [Objective(NRMSE, Goal.MINIMIZE)])
    [(leader, model)] = search(request, log)

    runs = [r for r in log.records if r.status == RunStatus.FINISHED]
    finished = {r.algorithm: r for r in runs}
    assert {"LightGBM", "Naive", "ExponentialSmoothing"} <= set(finished)
    lightgbm = [r for r in runs if r.algorithm == "LightGBM"]
    assert {r.params["model"] for r in lightgbm} == {"global"}
    # LightGBM's defaults first, then other configurations in their order while the time
    # allows (how many depends on the machine's speed). The recursive configuration on raw
    # values is for one series only.
    configs = [r.params["config"] for r in lightgbm]
    assert configs == [name for name, _ in GLOBAL_CONFIGS][: len(configs)]
    assert configs[0] == "defaults"
    table = load_sample("grunfeld").sort_values(["firm", "year"])
    for i in range(3):  # Naive's window i pools every firm's last value before the window
        truth, guess = [], []
        for _, rows in table.groupby("firm"):
            y = rows["invest"].to_numpy()
            end = len(y) - 3 * i
            truth.append(y[end - 3 : end])
            guess.append(np.full(3, y[end - 4]))
        expected = compute_metrics(Task.FORECASTING, np.concatenate(truth), np.concatenate(guess))
        assert finished["Naive"].metrics[f"{NRMSE}_window_{i}"] == pytest.approx(expected[NRMSE])
    for record in runs:
        windows = [record.metrics[f"{NRMSE}_window_{i}"] for i in range(3)]
        assert record.metrics[NRMSE] == pytest.approx(np.mean(windows))
    assert leader.metrics[NRMSE] == min(r.metrics[NRMSE] for r in runs)

    rows = pd.DataFrame({"firm": ["IBM", "General Motors"], "year": ["1955-01-01", "1955-01-01"]})
    ibm, gm = model.predict(None, rows)
    last = table.groupby("firm")["invest"].last()
    assert 0.5 * last["IBM"] < ibm < 2 * last["IBM"]
    assert 0.5 * last["General Motors"] < gm < 2 * last["General Motors"]
