"""Is the service's model at least as good as what a user gets by hand in the same time?

For each bundled table, one test split is held out from everything. On the rest, at the
same time budget:

- service: the local engine (FLAML plus, for forecasting, simple baselines), then the
  service's own best-run selection; the chosen run's MLflow model is loaded and scored;
- FLAML alone: ``flaml.AutoML.fit`` with the same budget and its defaults;
- LightGBM with default parameters (forecasting: recursive on lags of the target);
- forecasting only: the naive last-value forecast, and the seasonal naive one (the value
  a season before; for yearly data, whose season is one period, the naive forecast).

Many series (``grunfeld``, 11 firms): every origin is counted from each series' own end;
naive and seasonal naive are per series; LightGBM and FLAML alone are each one global
model over every series, as one writes it by hand: rows of the last lags of a series' own
values and its number, the next value as target, forecast recursively (LightGBM with its
defaults, FLAML's regression search with the whole budget on the same rows). Every
competitor's forecasts of an origin are scored pooled over the series, as the service
scores many series.

Each is scored on the held-out test split with the service's canonical metric. Run:

    python benchmarks/quality_benchmark.py --budget 20 --repeats 6 --origins 3 [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from automl_service.engines.local.datasets import load_sample
from automl_service.engines.local.engine import LocalEngine
from automl_service.engines.local.evaluate import compute_metrics
from automl_service.metrics import Goal, Task, goal_of
from automl_service.request import AutoMLRequest
from automl_service.selection import select_best
from automl_service.settings import LocalSettings


@dataclass(frozen=True)
class Case:
    sample: str
    task: Task
    target: str
    metric: str
    time_column: str | None = None
    horizon: int = 0
    frequency: str | None = None
    #: Many series: the series id columns.
    series_ids: tuple[str, ...] = ()


NRMSE = "normalized_root_mean_squared_error"
CASES = [
    Case("breast_cancer", Task.CLASSIFICATION, "target", "accuracy"),
    Case("wine", Task.CLASSIFICATION, "target", "accuracy"),
    Case("diabetes", Task.REGRESSION, "target", "normalized_root_mean_squared_error"),
    Case("co2", Task.FORECASTING, "co2", NRMSE, "date", 12, "MS"),
    Case("macrodata", Task.FORECASTING, "realgdp", NRMSE, "date", 8, "QS"),
    Case("sunspots", Task.FORECASTING, "sunspots", NRMSE, "date", 10, "YS"),
    Case("grunfeld", Task.FORECASTING, "invest", NRMSE, "year", 3, "YS", ("firm",)),
]


def splits(
    case: Case, frame: pd.DataFrame, repeats: int, origins: int = 1
) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """Tables: ``repeats`` random 75/25 splits (small test sets are noisy: one row of
    wine's test set is 2 points of accuracy). Forecasting: a rolling origin, the last
    ``origins`` horizons in turn (latest first), each forecast from the series before it:
    one window of 8 quarters is one economic episode, not a forecaster's skill."""
    if case.task is Task.FORECASTING:
        assert case.time_column
        ids, h = list(case.series_ids), case.horizon
        frame = frame[[*ids, case.time_column, case.target]]
        frame = frame.sort_values([*ids, case.time_column]).reset_index(drop=True)
        # Each row's place counted from its series' end (0 is the last).
        back = frame.groupby(ids).cumcount(ascending=False) if ids else frame.index[::-1]
        back = np.asarray(back)
        return [(frame[back >= (k + 1) * h], frame[(back >= k * h) & (back < (k + 1) * h)])
                for k in range(origins)]  # fmt: skip
    from sklearn.model_selection import train_test_split

    stratify = frame[case.target] if case.task is Task.CLASSIFICATION else None
    return [
        tuple(train_test_split(frame, test_size=0.25, random_state=seed, stratify=stratify))
        for seed in range(repeats)
    ]


def score(case: Case, y_true: Any, y_pred: Any) -> float:
    return compute_metrics(case.task, np.asarray(y_true), np.asarray(y_pred)).get(
        case.metric, float("nan")
    )


# Competitors ------------------------------------------------------------------------


#: Where each service job's trainer log is copied (``--trainer-logs``), when given.
TRAINER_LOGS: list[Path] = []


def by_service(case: Case, train: pd.DataFrame, test: pd.DataFrame, budget: int) -> Any:
    import shutil

    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "train.csv"
        train.to_csv(data, index=False)
        body: dict[str, Any] = {
            "request_id": f"quality-{case.sample}-{len(train)}",
            "task": case.task.value,
            "training_data": str(data),
            "target_column_name": case.target,
            "primary_metric": case.metric,
            "limits": {"timeout_seconds": budget},
        }
        if case.task is Task.FORECASTING:
            body["forecasting"] = {
                "time_column_name": case.time_column,
                "forecast_horizon": case.horizon,
                "frequency": case.frequency,
                "time_series_id_column_names": list(case.series_ids),
            }
        request = AutoMLRequest.model_validate(body)
        settings = LocalSettings(data_dir=Path(tmp) / "data")
        engine = LocalEngine(settings)
        status = engine.ensure_job(request)
        while not status.state.terminal:
            time.sleep(1.0)
            status = engine.ensure_job(request)
        for folder in TRAINER_LOGS:
            folder.mkdir(parents=True, exist_ok=True)
            log = settings.data_dir / "jobs" / request.job_name / "trainer.log"
            shutil.copyfile(log, folder / f"{request.job_name}.log")
        if status.error:
            raise RuntimeError(status.error)
        runs = engine.child_runs(request.job_name)
        chosen = select_best(runs, request.selection_metric, request.selection_goal)
        mlflow.set_tracking_uri(settings.mlflow_uri)
        model = mlflow.pyfunc.load_model(f"runs:/{chosen.winner.run_id}/model")
        features = test.drop(columns=[case.target])
        answer = model.predict(features)
        if isinstance(answer, pd.DataFrame) and "prediction" in answer.columns:
            answer = answer["prediction"]  # a classifier's label, beside its probabilities
        return answer, chosen.winner.algorithm


def by_flaml(case: Case, train: pd.DataFrame, test: pd.DataFrame, budget: int) -> Any:
    from flaml import AutoML

    automl = AutoML()
    X, y = train.drop(columns=[case.target]), train[case.target]
    if case.series_ids:
        fit = lambda X, y: automl.fit(  # noqa: E731
            X, y, task="regression", time_budget=budget, verbose=0, mlflow_logging=False
        )
        return _global_recursive(case, train, test, fit, automl), automl.best_estimator
    if case.task is Task.FORECASTING:
        automl.fit(
            X_train=X,
            y_train=y,
            task="ts_forecast",
            period=case.horizon,
            time_budget=budget,
            verbose=0,
            mlflow_logging=False,
        )
    else:
        automl.fit(X, y, task=case.task.value, time_budget=budget, verbose=0, mlflow_logging=False)
    return automl.predict(test.drop(columns=[case.target])), automl.best_estimator


def by_lightgbm(case: Case, train: pd.DataFrame, test: pd.DataFrame, budget: int) -> Any:
    import lightgbm as lgb

    if case.series_ids:
        model = lgb.LGBMRegressor(verbose=-1)
        return _global_recursive(case, train, test, model.fit, model), "lgbm"
    if case.task is Task.FORECASTING:
        return _recursive_lightgbm(train[case.target].to_numpy(float), case.horizon), "lgbm"
    X, y = train.drop(columns=[case.target]), train[case.target]
    model: Any = (
        lgb.LGBMClassifier(verbose=-1)
        if case.task is Task.CLASSIFICATION
        else lgb.LGBMRegressor(verbose=-1)
    )
    model.fit(X, y)
    return model.predict(test.drop(columns=[case.target])), "lgbm"


def _recursive_lightgbm(history: np.ndarray[Any, Any], horizon: int, lags: int = 12) -> Any:
    import lightgbm as lgb

    rows = np.array([history[i - lags : i] for i in range(lags, len(history))])
    model = lgb.LGBMRegressor(verbose=-1).fit(rows, history[lags:])
    path = list(history)
    for _ in range(horizon):
        path.append(float(model.predict(np.array([path[-lags:]]))[0]))
    return np.array(path[-horizon:])


def _histories(case: Case, train: pd.DataFrame) -> list[np.ndarray[Any, Any]]:
    """Each series' training values in time order, in the order of the test rows (which
    ``splits`` sorts by series, then time)."""
    if not case.series_ids:
        return [train[case.target].to_numpy(float)]
    groups = train.groupby(list(case.series_ids), sort=True)
    return [rows[case.target].to_numpy(float) for _, rows in groups]


def _global_recursive(
    case: Case, train: pd.DataFrame, test: pd.DataFrame, fit: Any, model: Any
) -> Any:
    """One model over every series: rows of a series' last ``lags`` values (at most 12, at
    most half the shortest series) and the series' number, the next value as target;
    each series forecast recursively for its ``horizon`` test rows."""
    histories = _histories(case, train)
    lags = max(1, min(12, min(len(h) for h in histories) // 2))
    rows, targets = [], []
    for code, history in enumerate(histories):
        for i in range(lags, len(history)):
            rows.append([*history[i - lags : i], code])
            targets.append(history[i])
    fit(np.array(rows), np.array(targets))
    out = []
    for code, history in enumerate(histories):
        path = list(history)
        for _ in range(case.horizon):
            path.append(float(model.predict(np.array([[*path[-lags:], code]]))[0]))
        out.extend(path[-case.horizon :])
    assert len(out) == len(test)
    return np.array(out)


def by_naive(case: Case, train: pd.DataFrame, test: pd.DataFrame, budget: int) -> Any:
    """Each series' last value."""
    out = [np.repeat(h[-1], case.horizon) for h in _histories(case, train)]
    return np.concatenate(out), "naive"


def by_seasonal_naive(case: Case, train: pd.DataFrame, test: pd.DataFrame, budget: int) -> Any:
    """Each series' last season repeated; for a season of one period (yearly data) that
    is the naive forecast."""
    from automl_service.engines.local.baselines import forecast, season_length

    season = season_length(case.frequency)
    kind = "SeasonalNaive" if season > 1 else "Naive"
    out = [forecast(kind, h, case.horizon, season) for h in _histories(case, train)]
    return np.concatenate(out), "seasonal_naive" if season > 1 else "naive (season 1)"


#: Competitors only forecasts have.
FORECAST_ONLY = ("naive", "seasonal_naive")

COMPETITORS: dict[str, Callable[..., Any]] = {
    "service": by_service,
    "flaml": by_flaml,
    "lightgbm": by_lightgbm,
    "naive": by_naive,
    "seasonal_naive": by_seasonal_naive,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=30, help="seconds per AutoML search")
    parser.add_argument("--samples", nargs="*", help="only these samples")
    parser.add_argument("--repeats", type=int, default=3, help="random splits per table")
    parser.add_argument(
        "--origins", type=int, default=1, help="forecast origins per series (latest first)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--trainer-logs", type=Path, help="copy each service job's trainer log here"
    )
    args = parser.parse_args(argv)
    if args.trainer_logs:
        TRAINER_LOGS.append(args.trainer_logs)

    rows = []
    for case in CASES:
        if args.samples and case.sample not in args.samples:
            continue
        goal = goal_of(case.metric, case.task)
        row: dict[str, Any] = {"sample": case.sample, "metric": case.metric}
        for name, run in COMPETITORS.items():
            if name in FORECAST_ONLY and case.task is not Task.FORECASTING:
                continue
            scores, chosen = [], []
            for train, test in splits(case, load_sample(case.sample), args.repeats, args.origins):
                predictions, model = run(case, train, test, args.budget)
                scores.append(score(case, test[case.target], predictions))
                chosen.append(str(model))
                print(f"{case.sample:<14} {name:<9} {scores[-1]:.4f} ({model})", file=sys.stderr)
            row[name] = float(np.mean(scores))
            row[f"{name}_scores"] = scores
            row[f"{name}_model"] = ", ".join(sorted(set(chosen)))
        others = [row[n] for n in COMPETITORS if n != "service" and n in row]
        best_other = max(others) if goal is Goal.MAXIMIZE else min(others)
        row["service_at_least_as_good"] = (
            row["service"] >= best_other if goal is Goal.MAXIMIZE else row["service"] <= best_other
        )
        rows.append(row)

    print_table(rows, args.budget, args.repeats, args.origins)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, default=str))
    return 0


def paired(row: dict[str, Any], other: str) -> tuple[float, float] | None:
    """Mean and standard error of (service - other) over the same splits; None for a
    single split. The splits are shared, so the split-to-split swing cancels out."""
    service, theirs = row.get("service_scores", []), row.get(f"{other}_scores", [])
    if len(service) < 2 or len(service) != len(theirs):
        return None
    diffs = np.asarray(service) - np.asarray(theirs)
    return float(diffs.mean()), float(diffs.std(ddof=1) / np.sqrt(len(diffs)))


def print_table(rows: list[dict[str, Any]], budget: int, repeats: int, origins: int) -> None:
    print(
        f"budget {budget}s per search; tables: mean over {repeats} random splits; "
        f"forecasts: mean over {origins} origins\n"
    )
    print(
        "| sample | metric (test) | service | FLAML alone | LightGBM defaults | naive | "
        "seasonal naive | service ≥ best other |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        naive, seasonal = (f"{row[name]:.4f}" if name in row else "-" for name in FORECAST_ONLY)
        print(
            f"| {row['sample']} | {row['metric']} | {row['service']:.4f} ({row['service_model']}) "
            f"| {row['flaml']:.4f} | {row['lightgbm']:.4f} | {naive} | {seasonal} | "
            f"{'yes' if row['service_at_least_as_good'] else 'no'} |"
        )
    print("\nservice minus the other on the same splits (mean ± standard error):\n")
    for row in rows:
        for other in ("flaml", "lightgbm", *FORECAST_ONLY):
            diff = paired(row, other)
            if diff is not None:
                print(f"- {row['sample']} vs {other}: {diff[0]:+.4f} ± {diff[1]:.4f}")


if __name__ == "__main__":
    raise SystemExit(main())
