"""The AutoML request: the JSON message producers put on the queue.

Unknown fields and wrong types are rejected; so is a metric that does not belong to the
task. A request without ``request_id`` gets one derived from its content, so re-sending an
identical message names the same request (and so the same job and model version).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import InvalidRequest
from .metrics import PRIMARY_METRICS, Goal, Task, resolve_goal

#: Largest message accepted, in bytes of UTF-8 (Azure Storage Queue's own limit).
MAX_MESSAGE_BYTES = 64 * 1024
#: Deepest nesting of JSON arrays and objects accepted (a request needs four).
MAX_JSON_DEPTH = 32
#: Longest integer literal accepted, in digits.
MAX_INT_DIGITS = 32
#: Attempts one request may have (``automl-service retry`` adds one).
MAX_ATTEMPTS = 100

#: ``$schema`` of an Azure ML AutoML job document (CLI v2).
JOB_SCHEMA = re.compile(r"^https://azuremlschemas\.azureedge\.net/[^/]+/autoMLJob\.schema\.json$")
#: A job document's top-level validation settings and their place in a request.
JOB_VALIDATION_KEYS = {
    "validation_data": "validation_data",
    "test_data": "test_data",
    "validation_data_size": "validation_size",
    "test_data_size": "test_data_size",
}
#: Input types a job document may give its tables as.
JOB_INPUT_TYPES = ("mltable", "uri_file", "uri_folder")

RequestId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Limits(_Strict):
    """How long and how wide the search may run.

    ``timeout_minutes`` and ``trial_timeout_minutes`` (the CLI v2 YAML's names) are read as
    the seconds fields.
    """

    timeout_seconds: int = Field(600, ge=5, le=7 * 24 * 3600)
    trial_timeout_seconds: int | None = Field(None, ge=1)
    max_trials: int | None = Field(None, ge=1, le=10_000)
    max_concurrent_trials: int = Field(1, ge=1, le=64)
    #: Cores each trial may use; -1 means all of a node's cores.
    max_cores_per_trial: int | None = Field(None, ge=-1)
    #: Stop the search once the primary metric reaches this score.
    exit_score: float | None = Field(None, allow_inf_nan=False)
    enable_early_termination: bool = True

    @model_validator(mode="before")
    @classmethod
    def _minutes(cls, data: Any) -> Any:
        return _renamed(
            data,
            {
                "timeout_minutes": "timeout_seconds",
                "trial_timeout_minutes": "trial_timeout_seconds",
            },
            scale=60,
        )

    @model_validator(mode="after")
    def _cores(self) -> Limits:
        if self.max_cores_per_trial == 0:
            raise ValueError("max_cores_per_trial must be -1 (all cores) or at least 1")
        return self


#: Metrics a binary classifier's decision threshold may be chosen for (Azure's names).
ThresholdMetric = Literal[
    "f1_score_binary",
    "f1_score_macro",
    "f1_score_weighted",
    "balanced_accuracy",
    "norm_macro_recall",
    "accuracy",
    "matthews_correlation",
]


class Training(_Strict):
    """Which algorithms the search may use (Azure AutoML's names, e.g. ``LightGBM``), and
    which extras it runs. Unset switches are left to Azure's defaults.

    ``allowed_training_algorithms`` and ``blocked_training_algorithms`` (the CLI v2 YAML's
    names) are read as ``allowed_algorithms`` and ``blocked_algorithms``.
    """

    allowed_algorithms: list[str] | None = None
    blocked_algorithms: list[str] | None = None
    enable_stack_ensemble: bool | None = None
    enable_vote_ensemble: bool = True
    enable_onnx_compatible_models: bool = False
    enable_model_explainability: bool | None = None
    enable_dnn_training: bool | None = None
    #: Two classes: the positive (second, sorted) class's probability from which it is
    #: the label; unset, the likeliest class (local backend).
    decision_threshold: float | None = Field(None, gt=0.0, lt=1.0)
    #: Two classes: choose the threshold on the validation rows to maximize this metric
    #: instead of giving one (local backend).
    decision_threshold_metric: ThresholdMetric | None = None

    @model_validator(mode="before")
    @classmethod
    def _yaml_names(cls, data: Any) -> Any:
        return _renamed(
            data,
            {
                "allowed_training_algorithms": "allowed_algorithms",
                "blocked_training_algorithms": "blocked_algorithms",
            },
        )

    @model_validator(mode="after")
    def _not_both(self) -> Training:
        both = set(self.allowed_algorithms or ()) & set(self.blocked_algorithms or ())
        if both:
            raise ValueError(f"algorithms both allowed and blocked: {sorted(both)}")
        if self.decision_threshold is not None and self.decision_threshold_metric is not None:
            raise ValueError(
                "give decision_threshold (a fixed threshold) or decision_threshold_metric "
                "(a threshold chosen on the validation rows for that metric), not both"
            )
        return self

    @property
    def thresholded(self) -> bool:
        """Whether the request sets a decision threshold or asks for one to be chosen."""
        return self.decision_threshold is not None or self.decision_threshold_metric is not None


class ColumnTransformer(_Strict):
    """One transformer's parameters for some columns (``featurization.transformer_params``)."""

    fields: list[str] = Field(min_length=1)
    parameters: dict[str, str | int | float] | None = None


class Featurization(_Strict):
    """Feature engineering: ``auto``, ``off``, or ``custom`` with the settings below."""

    mode: Literal["auto", "off", "custom"] = "auto"
    #: Column name to its purpose, e.g. ``{"plan": "Categorical"}``.
    column_name_and_types: dict[str, str] | None = None
    #: Transformer name (``imputer``, ``hash_one_hot_encoder``) to its column settings.
    transformer_params: dict[str, list[ColumnTransformer]] | None = None
    blocked_transformers: list[str] | None = None

    @model_validator(mode="after")
    def _custom_only(self) -> Featurization:
        given = [name for name in _CUSTOM_FEATURIZATION if getattr(self, name) is not None]
        if given and self.mode != "custom":
            raise ValueError(f"{' and '.join(given)} need featurization mode 'custom'")
        return self


_CUSTOM_FEATURIZATION = ("column_name_and_types", "transformer_params", "blocked_transformers")


class Resources(_Strict):
    """Serverless compute for the job (Azure only): the VM size and how many nodes."""

    instance_type: str | None = Field(None, min_length=1)
    instance_count: int | None = Field(None, ge=1, le=1000)


Auto = Literal["auto"]


#: Offset aliases older pandas took (and Azure's documentation uses), by today's name.
_OLD_FREQUENCIES = {
    "M": "ME",
    "BM": "BME",
    "SM": "SME",
    "CBM": "CBME",
    "Q": "QE",
    "BQ": "BQE",
    "A": "YE",
    "Y": "YE",
    "BA": "BYE",
    "BY": "BYE",
    "AS": "YS",
    "BAS": "BYS",
    "H": "h",
    "BH": "bh",
    "CBH": "cbh",
    "T": "min",
    "S": "s",
    "L": "ms",
    "U": "us",
    "N": "ns",
}


#: pandas' offset units (its ``to_offset`` names), and the anchors some of them take.
_UNITS = frozenset(
    {"D", "B", "C", "W", "ME", "MS", "BME", "BMS", "SME", "SMS", "CBME", "CBMS", "QE", "QS",
     "BQE", "BQS", "YE", "YS", "BYE", "BYS", "h", "bh", "cbh", "min", "s", "ms", "us", "ns"}
)  # fmt: skip
_ANCHORS = frozenset(
    {"MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN",
     "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}
)  # fmt: skip
_FREQUENCY = re.compile(r"^(\d*)([A-Za-z]+)(?:-([A-Za-z]{3}))?$")


class Forecasting(_Strict):
    """Settings only forecasting requests take, with the SDK's names and values. Unset
    settings are left to Azure's defaults."""

    time_column_name: str
    forecast_horizon: Annotated[int, Field(ge=1, le=10_000)] | Auto
    time_series_id_column_names: list[str] = Field(default_factory=list)
    frequency: str | None = None
    #: Quantiles the local model forecasts beside the point forecast, e.g. [0.1, 0.9].
    forecast_quantiles: list[Annotated[float, Field(gt=0.0, lt=1.0)]] | None = Field(
        None, min_length=1, max_length=9
    )
    seasonality: int | Literal["auto"] = "auto"
    target_lags: Annotated[int, Field(ge=1)] | list[Annotated[int, Field(ge=1)]] | Auto | None = (
        None
    )
    target_rolling_window_size: Annotated[int, Field(ge=2)] | Auto | None = None
    feature_lags: Literal["auto", "none"] | None = None
    country_or_region_for_holidays: str | None = Field(None, min_length=2)
    short_series_handling_config: Literal["auto", "pad", "drop", "none"] | None = None
    target_aggregate_function: Literal["sum", "max", "min", "mean", "none"] | None = None
    use_stl: Literal["season", "seasontrend", "none"] | None = None
    features_unknown_at_forecast_time: list[str] | None = None
    cv_step_size: int | None = Field(None, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _lower_case_modes(cls, data: Any) -> Any:
        """The SDK's YAML loader reads these settings' values in any case."""
        if not isinstance(data, dict):
            return data
        modes = (
            "feature_lags",
            "short_series_handling_config",
            "target_aggregate_function",
            "use_stl",
            "forecast_horizon",
            "target_lags",
            "target_rolling_window_size",
            "seasonality",
        )
        return {
            key: value.lower() if key in modes and isinstance(value, str) else value
            for key, value in data.items()
        }

    @model_validator(mode="after")
    def _known_frequency(self) -> Forecasting:
        if self.frequency is not None:
            self.offset_alias  # noqa: B018 - raises ValueError for an unknown alias
        return self

    @property
    def offset_alias(self) -> str | None:
        """``frequency`` as today's pandas names it (``M`` is ``ME``, ``H`` is ``h``...),
        or None when unset. Raises ValueError when it is not a pandas offset alias (read
        here without pandas: a multiple, a unit pandas knows, an anchor)."""
        if self.frequency is None:
            return None
        match = _FREQUENCY.match(self.frequency)
        unit = match.group(2) if match else ""
        unit = _OLD_FREQUENCIES.get(unit, unit)
        anchor = match.group(3) if match else None
        if match is None or unit not in _UNITS or (anchor and anchor.upper() not in _ANCHORS):
            raise ValueError(
                f"frequency {self.frequency!r} is not a pandas offset alias "
                "(D, B, W, W-MON, MS, ME, QS, QE, YS, YE, h, 15min, s...)"
            )
        return (match.group(1) or "") + unit + (f"-{anchor.upper()}" if anchor else "")

    @property
    def horizon(self) -> int:
        """The horizon in periods (the local engine refuses ``auto`` before it trains)."""
        if self.forecast_horizon == "auto":
            raise ValueError("forecast_horizon 'auto' is chosen by Azure; give a number")
        return self.forecast_horizon


class Validation(_Strict):
    """How trials are scored: a validation table, a holdout fraction, or k-fold CV
    (``n_cross_validations``: a number of folds, or ``auto`` for the engine's choice)."""

    validation_data: str | None = None
    validation_size: float | None = Field(None, gt=0.0, lt=1.0)
    n_cross_validations: Annotated[int, Field(ge=2, le=20)] | Auto | None = None
    #: Rows the winner is scored on once chosen, never used to train or choose it: a
    #: table, or a fraction of the training rows held out before training.
    test_data: str | None = None
    test_data_size: float | None = Field(None, gt=0.0, lt=1.0)

    @model_validator(mode="after")
    def _one_way(self) -> Validation:
        if self.test_data is not None and self.test_data_size is not None:
            raise ValueError("give test_data or test_data_size, not both")
        given = [
            name
            for name in ("validation_data", "validation_size", "n_cross_validations")
            if getattr(self, name) is not None
        ]
        if len(given) > 1:
            raise ValueError(f"choose one way to validate, not {' and '.join(given)}")
        return self

    @property
    def folds(self) -> int | None:
        """The number of folds asked for; None when the engine chooses (unset or ``auto``)."""
        return None if self.n_cross_validations == "auto" else self.n_cross_validations


class Selection(_Strict):
    """How the best child run is chosen, when not by the primary metric."""

    metric: str
    goal: Goal | None = None


class Registration(_Strict):
    """How the chosen model is registered."""

    model_name: Name | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    description: str | None = Field(None, max_length=5000)


class Deployment(_Strict):
    """Put the registered model behind an online endpoint."""

    endpoint_name: Annotated[str, Field(pattern=r"^[a-zA-Z][a-zA-Z0-9-]{1,30}[a-zA-Z0-9]$")]
    instance_type: str = "Standard_DS3_v2"
    instance_count: int = Field(1, ge=1, le=20)
    auth_mode: Literal["key", "aml_token", "aad_token"] = "key"
    #: Replace the live model only when the new one scores better (locally: both scored
    #: on the same held-out rows), by more than ``min_improvement`` in the metric's units.
    only_if_better: bool = False
    min_improvement: float = Field(0.0, ge=0.0, allow_inf_nan=False)


class AutoMLRequest(_Strict):
    """One request: train, pick the best run, register (and maybe deploy) its model."""

    request_id: RequestId | None = None
    task: Task
    training_data: str = Field(min_length=1, max_length=2048)
    target_column_name: str = Field(min_length=1)
    primary_metric: str | None = None
    selection: Selection | None = None
    limits: Limits = Field(default_factory=Limits)
    training: Training = Field(default_factory=Training)
    validation: Validation = Field(default_factory=Validation)
    forecasting: Forecasting | None = None
    featurization: Literal["auto", "off"] | Featurization = "auto"
    experiment_name: Name = "automl-service"
    #: The job's name as people see it (Azure ML studio; locally a tag of the parent run);
    #: the job's own name stays ``job_name``.
    display_name: str | None = Field(None, min_length=1, max_length=255)
    #: The job's description (the registered model's is ``registration.description``).
    description: str | None = Field(None, max_length=5000)
    log_verbosity: Literal["not_set", "debug", "info", "warning", "error", "critical"] | None = None
    #: A compute cluster's name, plain or ``azureml:``-prefixed as in the CLI v2 YAML.
    compute: str | None = None
    #: Serverless compute for the job; without ``compute`` the job runs serverless.
    resources: Resources | None = None
    registration: Registration = Field(default_factory=Registration)
    deployment: Deployment | None = None
    reply_to: str | None = Field(None, pattern=r"^[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])?$")
    tags: dict[str, str] = Field(default_factory=dict)
    #: Columns that are not features (ids, free text): left out of training, and not
    #: asked of the model's callers.
    ignored_columns: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list, max_length=1000
    )
    #: Set by ``submit`` (or the worker) from the data's content: see ``fingerprint.py``.
    data_fingerprint: str | None = Field(None, pattern=r"^sha256:[0-9a-f]{32}$")
    #: Set by ``automl-service retry``: the request runs again as this attempt, in a job
    #: of its own, under the same id.
    attempt: int = Field(1, ge=1, le=MAX_ATTEMPTS)

    @model_validator(mode="before")
    @classmethod
    def _azure_job_document(cls, data: Any) -> Any:
        """An Azure ML AutoML job (the CLI v2 YAML, or the same as JSON) is a request:
        its ``$schema`` and ``type: automl`` are dropped, a data input ``{type, path}`` is
        read as its path, the top-level ``validation_data``, ``test_data`` and
        ``validation_data_size`` go to the ``validation`` block, and ``name`` is the
        request id."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        schema = data.pop("$schema", None)
        if schema is not None and not (isinstance(schema, str) and JOB_SCHEMA.match(schema)):
            raise ValueError(f"$schema {schema!r} is not an AutoML job's")
        kind = data.pop("type", None)
        if kind is not None and kind != "automl":
            raise ValueError(f"type {kind!r}: only an AutoML job (type 'automl') is a request")
        for key in ("training_data", "validation_data", "test_data"):
            if isinstance(data.get(key), dict):
                data[key] = _input_path(key, data[key])
        for key, own in JOB_VALIDATION_KEYS.items():
            validation = data.get("validation") or {}
            if key not in data or not isinstance(validation, dict):
                continue
            if own in validation:
                raise ValueError(f"give {key} or validation.{own}, not both")
            data["validation"] = {**validation, own: data.pop(key)}
        if "name" in data:
            if "request_id" in data:
                raise ValueError("give name or request_id, not both")
            data["request_id"] = data.pop("name")
        return data

    @model_validator(mode="before")
    @classmethod
    def _top_level_cross_validation(cls, data: Any) -> Any:
        """``n_cross_validations`` at the top level (as in the CLI v2 YAML) is
        ``validation.n_cross_validations``."""
        if not isinstance(data, dict) or "n_cross_validations" not in data:
            return data
        data = dict(data)
        folds = data.pop("n_cross_validations")
        validation = data.get("validation") or {}
        if isinstance(validation, dict):
            if "n_cross_validations" in validation:
                raise ValueError(
                    "n_cross_validations is given twice: at the top level and in 'validation'"
                )
            data["validation"] = {**validation, "n_cross_validations": folds}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> AutoMLRequest:
        allowed = PRIMARY_METRICS[self.task]
        if self.primary_metric is not None and self.primary_metric not in allowed:
            raise ValueError(
                f"primary_metric {self.primary_metric!r} is not a {self.task.value} metric; "
                f"use one of {', '.join(allowed)}"
            )
        if self.selection is not None:
            resolve_goal(self.selection.metric, self.selection.goal, self.task)
        self._check_ignored_columns()
        if self.task is Task.FORECASTING and self.forecasting is None:
            raise ValueError("a forecasting request needs a 'forecasting' block")
        if self.task is not Task.FORECASTING and self.forecasting is not None:
            raise ValueError(f"'forecasting' settings do not apply to {self.task.value}")
        return self

    def _check_ignored_columns(self) -> None:
        needed = {self.target_column_name: "the target"}
        if self.forecasting is not None:
            needed[self.forecasting.time_column_name] = "the time column"
            for name in self.forecasting.time_series_id_column_names:
                needed[name] = "a series id column"
        for name in self.ignored_columns:
            if name in needed:
                raise ValueError(f"ignored_columns names {name!r}, {needed[name]}")
        twice = sorted({n for n in self.ignored_columns if self.ignored_columns.count(n) > 1})
        if twice:
            raise ValueError(f"ignored_columns names {', '.join(map(repr, twice))} twice")

    # Derived values -----------------------------------------------------------------

    @property
    def featurization_settings(self) -> Featurization:
        """The featurization block, the short ``"auto"`` / ``"off"`` form included."""
        if isinstance(self.featurization, Featurization):
            return self.featurization
        return Featurization(mode=self.featurization)

    @property
    def id(self) -> str:
        """The request id, given or derived from the content."""
        return self.request_id or content_id(self)

    def data_refs(self) -> list[str]:
        """The data this request reads: training, then validation and test, when given."""
        refs = [self.training_data, self.validation.validation_data, self.validation.test_data]
        return [ref for ref in refs if ref is not None]

    @property
    def digest(self) -> str:
        """A digest of everything but ``request_id`` and ``attempt``: the same for a
        redelivered message, different when the content or the data's fingerprint changed."""
        return content_id(self).removeprefix("req-")

    @property
    def settings_digest(self) -> str:
        """A digest of the settings alone (the data's fingerprint left out too): a retry
        may read new data under the same id, not run other settings."""
        return _digest(self, exclude={"request_id", "attempt", "data_fingerprint"})

    def refuse_reused_id(self, stored_digest: str | None) -> None:
        """Raise InvalidRequest when this id was used before (``stored_digest``, from its
        result) for other content or data: one id names one request."""
        if stored_digest is not None and stored_digest != self.digest:
            raise InvalidRequest(
                f"request id {self.id!r} was sent before with other settings or other "
                "data; send this one with a new request_id, or without one to have an id "
                "derived from its content and data"
            )

    @property
    def metric(self) -> str:
        """The primary metric, with the task's default when none was given."""
        if self.primary_metric:
            return self.primary_metric
        defaults = {
            Task.CLASSIFICATION: "accuracy",
            Task.REGRESSION: "normalized_root_mean_squared_error",
            Task.FORECASTING: "normalized_root_mean_squared_error",
        }
        return defaults[self.task]

    @property
    def selection_metric(self) -> str:
        return self.selection.metric if self.selection else self.metric

    @property
    def selection_goal(self) -> Goal:
        goal = self.selection.goal if self.selection else None
        return resolve_goal(self.selection_metric, goal, self.task)

    @property
    def job_name(self) -> str:
        """The AutoML job's name: one per request and attempt, so submission is
        get-or-create."""
        base = f"automl-{self.id}"
        return base if self.attempt == 1 else f"{base}-attempt-{self.attempt}"

    @property
    def model_name(self) -> str:
        """The registered model's name: as given, or from the experiment, the data's name
        and the target (``automl-service-churn-churned``), so that unrelated requests do
        not become versions of one model."""
        if self.registration.model_name:
            return self.registration.model_name
        stem = re.split(r"[/:\\]", self.training_data.rstrip("/"))[-1].split(".")[0]
        name = f"{self.experiment_name}-{_slug(stem)}-{_slug(self.target_column_name)}"
        return name.replace(".", "-")[:255]  # valid for Azure ML too (no dots)


def _renamed(data: Any, names: dict[str, str], *, scale: int = 1) -> Any:
    """``data`` with each key of ``names`` (another spelling) renamed to its value, values
    multiplied by ``scale``; giving both spellings is an error."""
    if not isinstance(data, dict):
        return data
    data = dict(data)
    for other, own in names.items():
        if other not in data:
            continue
        if own in data:
            raise ValueError(f"give {own} or {other}, not both")
        value = data.pop(other)
        is_number = isinstance(value, int) and not isinstance(value, bool)
        data[own] = value * scale if is_number and scale != 1 else value
    return data


def _input_path(key: str, value: dict[str, Any]) -> Any:
    """The path of a job input written as ``{type: mltable, path: ...}``."""
    extra = sorted(set(value) - {"type", "path", "mode"})
    if extra:
        raise ValueError(f"{key}: unknown input field(s) {', '.join(extra)}")
    kind = value.get("type", "mltable")
    if kind not in JOB_INPUT_TYPES:
        raise ValueError(f"{key}: input type {kind!r}; use one of {', '.join(JOB_INPUT_TYPES)}")
    if "path" not in value:
        raise ValueError(f"{key}: the input has no path")
    return value["path"]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.-")[:60] or "data"


def content_id(request: AutoMLRequest) -> str:
    """A stable id from the request's content (all fields but ``request_id`` and
    ``attempt``).

    Fields left at their defaults are not hashed, so a new optional field added to the
    schema leaves the ids of requests that do not use it as they were, and a field spelled
    out at its default names the same request as one that leaves it out.
    """
    return "req-" + _digest(request, exclude={"request_id", "attempt"})


def _digest(request: AutoMLRequest, *, exclude: set[str]) -> str:
    body = request.model_dump(mode="json", exclude=exclude, exclude_defaults=True)
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:20]


def parse_request(text: str | bytes) -> AutoMLRequest:
    """Parse one message, or raise InvalidRequest with a reason a person can act on.

    Every failure of decoding or validating, whatever the bytes, is an InvalidRequest.
    """
    return request_from(load_json(text))


def request_from(data: Any) -> AutoMLRequest:
    """The request ``data`` (decoded JSON or YAML) describes, or InvalidRequest."""
    if not isinstance(data, dict):
        raise InvalidRequest(f"message must be a JSON object, not {type(data).__name__}")
    try:
        return AutoMLRequest.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(describe_validation_error(exc)) from None
    except (ValueError, TypeError, RecursionError) as exc:  # a validator's own failure
        raise InvalidRequest(f"invalid request: {exc}") from None


def load_json(text: str | bytes) -> Any:
    """Decode one message's JSON within the size, depth and number limits, or raise
    InvalidRequest saying which limit or rule the text breaks. Never raises anything else."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    decoded = decode_text(raw, "message", MAX_MESSAGE_BYTES)
    depth = json_depth(decoded)
    if depth > MAX_JSON_DEPTH:
        raise InvalidRequest(f"message nests {depth} levels deep; the limit is {MAX_JSON_DEPTH}")
    try:
        return json.loads(decoded, parse_int=_bounded_int, parse_constant=_no_constant)
    except InvalidRequest:
        raise
    except (ValueError, RecursionError) as exc:
        raise InvalidRequest(f"message is not JSON: {exc}") from None


def decode_text(raw: bytes, name: str, limit: int) -> str:
    """``raw`` as UTF-8 text of at most ``limit`` bytes, or InvalidRequest saying which
    rule it breaks (``name`` says what it is: ``message``, a file's name)."""
    if len(raw) > limit:
        raise InvalidRequest(f"{name} is {len(raw)} bytes; the limit is {limit}")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        where = f"{exc.reason} at byte {exc.start}"
        raise InvalidRequest(f"{name} is not UTF-8 text: {where}") from None


def json_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in ``text``, brackets inside strings aside.

    Linear in the text and correct for valid JSON; for invalid text it is a bound that the
    decoder's own error message then explains.
    """
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _bounded_int(literal: str) -> int:
    digits = len(literal.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        limit = MAX_INT_DIGITS
        raise InvalidRequest(f"message holds a {digits}-digit number; the limit is {limit}")
    return int(literal)


def _no_constant(name: str) -> float:
    raise InvalidRequest(f"message is not JSON: {name} is not a JSON value")


def describe_validation_error(exc: ValidationError) -> str:
    """One line per problem: where it is and what is wrong."""
    lines = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(part) for part in err["loc"]) or "request"
        message = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        lines.append(f"{where}: {message}")
    return "invalid request: " + "; ".join(lines)
