"""A forecasting request's table checked before it is queued, where reading it is cheap.

``submit`` on the local backend reads a local CSV, Parquet file or MLTable folder of at
most ``MAX_CHECK_BYTES`` and refuses (InvalidRequest, exit 2) a forecasting request whose
time column, series id columns or target are not in it, or whose shortest series is too
short for the horizon plus one backtest window (or the windows asked for), naming the
series, its length and what it needs. Everything else, and data it does not read (samples,
remote data, larger files), is left to training, which refuses the same with the same
message.
"""

from __future__ import annotations

from pathlib import Path

from ...errors import InvalidRequest, PermanentError
from ...policy import local_path
from ...request import AutoMLRequest
from .backtest import min_train_rows, plan_windows
from .datasets import read_file
from .panel import split_panel
from .table_checks import check_columns

#: Larger tables are not read at submit: training checks them.
MAX_CHECK_BYTES = 64 * 1024 * 1024


def size_of(path: Path) -> int:
    """Bytes of a file, or of every file under a folder."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def check_series(request: AutoMLRequest) -> None:
    """InvalidRequest naming a missing column or the shortest series when a forecasting
    request's local table cannot give a horizon and one backtest window; nothing when
    the request is not forecasting or its table is not read here."""
    fc = request.forecasting
    if fc is None or fc.forecast_horizon == "auto" or request.validation.validation_data:
        return
    path = local_path(request.training_data)
    try:
        if path is None or not path.exists() or size_of(path) > MAX_CHECK_BYTES:
            return
        frame = read_file(path)
    except (OSError, PermanentError):
        return  # unreadable here: training says why
    ids = list(fc.time_series_id_column_names)
    try:
        check_columns(frame, ids, "time_series_id_column_names")
        check_columns(frame, [fc.time_column_name], "time")
        check_columns(frame, [request.target_column_name], "target")
        if not ids:
            rows = int(frame[request.target_column_name].notna().sum())
            plan_windows(rows, fc.horizon, request.validation.folds, fc.cv_step_size)
            return
        panel = split_panel(frame, ids, fc.time_column_name, request.target_column_name)
        try:
            panel.windows(fc.horizon, request.validation.folds, fc.cv_step_size)
        except PermanentError as exc:
            needed = _least_points(fc.horizon, request.validation.folds, fc.cv_step_size)
            short = [s for s in panel.series if len(s.values) < needed]
            count = f"{len(short)} of {len(panel.series)} series have fewer than {needed} points"
            raise PermanentError(f"{exc}; {count}" if short else str(exc)) from None
    except PermanentError as exc:
        raise InvalidRequest(f"training_data {request.training_data!r}: {exc}") from None


def _least_points(horizon: int, windows: int | None, step: int | None) -> int:
    """The fewest points a series needs for ``windows`` backtest windows (one when not
    asked for) of ``horizon``, ``step`` (default ``horizon``) apart."""
    stride = horizon if step is None else step
    return horizon + stride * ((windows or 1) - 1) + min_train_rows(horizon)
