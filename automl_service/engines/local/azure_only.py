"""Which request settings the local backend cannot honour, and how it honours the rest.

A request that sets one of them fails at once, before anything is created, with a message
naming every such field: they are Azure-only, kept and sent as they are by the azure
backend. Settings left unset, or set to the value that means "none" (``use_stl: none``,
``enable_dnn_training: false``), are no request to do anything and pass.
"""

from __future__ import annotations

from ...errors import PermanentError
from ...request import AutoMLRequest, Limits

#: Forecasting settings the local models have no equivalent for, with the values that
#: ask for nothing.
_FORECASTING: dict[str, tuple[object, ...]] = {
    "target_lags": (),
    "target_rolling_window_size": (),
    "feature_lags": ("none",),
    "country_or_region_for_holidays": (),
    "short_series_handling_config": ("none",),
    "target_aggregate_function": ("none",),
    "use_stl": ("none",),
    "features_unknown_at_forecast_time": (),
}


def azure_only_settings(request: AutoMLRequest) -> list[str]:
    """The request's fields (dotted paths) that ask for something only Azure does."""
    found: list[str] = []
    if request.compute is not None:
        found.append("compute")
    if request.resources is not None:
        found.append("resources")
    if request.log_verbosity is not None:
        found.append("log_verbosity")
    training = request.training
    for name in (
        "enable_dnn_training",
        "enable_stack_ensemble",
        "enable_onnx_compatible_models",
    ):
        if getattr(training, name):
            found.append(f"training.{name}")
    if request.featurization_settings.mode == "custom":
        found.append("featurization (mode 'custom')")
    fc = request.forecasting
    if fc is not None:
        if fc.forecast_horizon == "auto":
            found.append("forecasting.forecast_horizon ('auto')")
        for name, nothing in _FORECASTING.items():
            value = getattr(fc, name)
            if value is not None and value not in nothing:
                found.append(f"forecasting.{name}")
    return found


def refuse_azure_only(request: AutoMLRequest) -> None:
    """Raise PermanentError naming every setting the local backend cannot honour."""
    found = azure_only_settings(request)
    if found:
        raise PermanentError(
            f"Azure-only settings the local backend cannot honour: {', '.join(found)}; "
            "remove them or use the azure backend"
        )


def flaml_n_jobs(limits: Limits) -> int:
    """FLAML's ``n_jobs``: ``max_concurrent_trials``, capped by ``max_cores_per_trial``
    unless that is -1 (all cores)."""
    cores = limits.max_cores_per_trial
    if cores is None or cores < 1:
        return limits.max_concurrent_trials
    return min(limits.max_concurrent_trials, cores)
