"""The request schema: what is accepted, what is refused and how ids are derived."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from automl_service.errors import InvalidRequest
from automl_service.metrics import Goal
from automl_service.request import MAX_MESSAGE_BYTES, parse_request, request_from


def body(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "task": "classification",
        "training_data": "sample:iris",
        "target_column_name": "target",
    }
    base.update(changes)
    return base


def parse(data: dict[str, Any]) -> Any:
    return parse_request(json.dumps(data))


def test_minimal_request_gets_task_defaults() -> None:
    """A request naming only task, data and target gets the task's default metric."""
    request = parse(body())
    assert request.metric == "accuracy"
    assert request.selection_goal is Goal.MAXIMIZE
    assert request.job_name == f"automl-{request.id}"


def test_identical_content_gives_the_same_id() -> None:
    """Re-sending the same content, in any key order, names the same request."""
    a = parse(body(primary_metric="AUC_weighted"))
    reordered = dict(reversed(list(body(primary_metric="AUC_weighted").items())))
    assert parse(reordered).id == a.id
    assert parse(body(primary_metric="accuracy")).id != a.id


def test_explicit_id_wins() -> None:
    """A given request_id is used as it is."""
    assert parse(body(request_id="churn-2026-11")).id == "churn-2026-11"


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"colour": "blue"}, "colour: unknown field"),
        ({"task": "clustering"}, "task: Input should be"),
        ({"primary_metric": "r2_score"}, "is not a classification metric"),
        ({"selection": {"metric": "my_metric"}}, "unknown metric 'my_metric'"),
        ({"selection": {"metric": "accuracy", "goal": "minimize"}}, "always maximized"),
        ({"limits": {"timeout_seconds": "soon"}}, "limits.timeout_seconds"),
        ({"forecasting": {"time_column_name": "d", "forecast_horizon": 3}}, "do not apply"),
        ({"request_id": "has spaces"}, "request_id"),
        (
            {"training": {"allowed_algorithms": ["LightGBM"], "blocked_algorithms": ["LightGBM"]}},
            "both allowed and blocked",
        ),
        ({"validation": {"validation_size": 0.2, "n_cross_validations": 3}}, "one way"),
    ],
)
def test_bad_requests_name_the_problem(changes: dict[str, Any], fragment: str) -> None:
    """Each kind of bad input is refused with a message that points at the problem."""
    with pytest.raises(InvalidRequest) as caught:
        parse(body(**changes))
    assert fragment in str(caught.value)


def test_forecasting_needs_its_block() -> None:
    """A forecasting request without time column and horizon is refused."""
    with pytest.raises(InvalidRequest, match="needs a 'forecasting' block"):
        parse(body(task="forecasting"))


def test_unknown_metric_with_explicit_goal_is_accepted() -> None:
    """A custom metric is fine when its goal is stated."""
    request = parse(body(selection={"metric": "profit", "goal": "maximize"}))
    assert request.selection_metric == "profit"
    assert request.selection_goal is Goal.MAXIMIZE


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        (b"\xff\xfe", "not UTF-8"),
        ("{" + " " * MAX_MESSAGE_BYTES + "}", "limit is"),
    ],
)
def test_unparseable_messages(text: str | bytes, fragment: str) -> None:
    """Garbage, non-objects and oversized messages are refused with the reason."""
    with pytest.raises(InvalidRequest, match=fragment):
        parse_request(text)


HOSTILE_BODIES = [
    pytest.param('{"a":' * 5000, "nests 5000 levels", id="deep-object"),
    pytest.param("[" * 100_000, "limit is", id="too-large-and-deep"),
    pytest.param("[" * 40 + "]" * 40, "nests 40 levels", id="deep-array"),
    pytest.param("1" * 5000, "5000-digit number", id="huge-number"),
    pytest.param('{"request_id": -' + "9" * 4400 + "}", "4400-digit number", id="huge-field"),
    pytest.param('{"task": NaN}', "NaN is not a JSON value", id="nan"),
    pytest.param("\ud800", "not UTF-8", id="lone-surrogate"),
    pytest.param(b'{"task": "\xc3\x28"}', "not UTF-8", id="bad-utf8"),
    pytest.param("", "not JSON", id="empty"),
    pytest.param('"a string"', "JSON object", id="string"),
    pytest.param('{"task": "classification", "tags": {"a": 1}}', "invalid request", id="schema"),
]


@pytest.mark.parametrize(("text", "fragment"), HOSTILE_BODIES)
def test_hostile_bodies_are_refused_with_a_reason(text: str | bytes, fragment: str) -> None:
    """Bodies that break the JSON decoder itself (recursion, digit limits, encodings) are
    refused as invalid requests naming the limit, never with another exception."""
    with pytest.raises(InvalidRequest, match=fragment):
        parse_request(text)


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    """A tag value full of brackets is text, not depth."""
    request = parse(body(tags={"note": "[" * 100 + "{" * 100}))
    assert request.tags["note"].startswith("[[[")


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=30,
)


def _parses_or_refuses(text: str | bytes) -> None:
    try:
        request = parse_request(text)
    except InvalidRequest as exc:
        assert str(exc)
        return
    assert request.id and request.limits.timeout_seconds <= 7 * 24 * 3600


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_parse_or_are_refused(raw: bytes) -> None:
    """Whatever bytes arrive, the parser returns a request or refuses with a reason."""
    _parses_or_refuses(raw)


@settings(max_examples=300, deadline=None)
@given(_JSON.map(lambda value: json.dumps(value, allow_nan=True)))
def test_any_json_parses_or_is_refused(text: str) -> None:
    """Any JSON value, NaN and infinities included, parses or is refused with a reason."""
    _parses_or_refuses(text)


@settings(max_examples=200, deadline=None)
@given(
    st.fixed_dictionaries(
        {
            "task": st.sampled_from(["classification", "regression", "forecasting", "x"]),
            "training_data": st.text(max_size=30),
            "target_column_name": st.text(max_size=10),
        },
        optional={
            "limits": st.dictionaries(
                st.sampled_from(["timeout_seconds", "max_trials", "max_concurrent_trials"]),
                st.integers() | st.floats() | st.text(max_size=5),
            ),
            "primary_metric": st.text(max_size=30) | st.sampled_from(["accuracy", "r2_score"]),
            "request_id": st.text(max_size=70),
            "forecasting": st.dictionaries(st.text(max_size=20), _JSON, max_size=3),
        },
    )
)
def test_request_shaped_json_parses_or_is_refused(data: dict[str, object]) -> None:
    """Bodies that look like requests, with any values in their fields, parse into a
    request within the schema's caps or are refused with a reason."""
    _parses_or_refuses(json.dumps(data))


@pytest.mark.parametrize(
    ("data", "target", "name"),
    [
        ("sample:iris", "target", "automl-service-iris-target"),
        ("/srv/data/churn.csv", "is churned", "automl-service-churn-is_churned"),
        ("azureml://datastores/t/paths/sales.parquet", "units", "automl-service-sales-units"),
    ],
)
def test_unnamed_models_are_named_by_data_and_target(data: str, target: str, name: str) -> None:
    """Without registration.model_name, unrelated requests get models of their own."""
    assert parse(body(training_data=data, target_column_name=target)).model_name == name


def test_cli_v2_yaml_names_are_read_as_the_request_names() -> None:
    """``timeout_minutes``, ``*_training_algorithms`` and a top-level ``n_cross_validations``
    (the CLI v2 job YAML's names) land in the request's own fields."""
    request = parse(
        body(
            n_cross_validations="auto",
            limits={"timeout_minutes": 90, "trial_timeout_minutes": 2},
            training={"allowed_training_algorithms": ["LightGBM"]},
        )
    )
    assert request.limits.timeout_seconds == 5400
    assert request.limits.trial_timeout_seconds == 120
    assert request.training.allowed_algorithms == ["LightGBM"]
    assert request.validation.n_cross_validations == "auto"
    assert request.validation.folds is None
    assert parse(body(n_cross_validations=4)).validation.folds == 4


def test_new_settings_default_to_unset() -> None:
    """Settings Azure has its own defaults for stay unset unless the request gives them."""
    request = parse(body())
    assert request.training.enable_stack_ensemble is None
    assert request.training.enable_model_explainability is None
    assert request.limits.exit_score is None
    assert request.limits.max_cores_per_trial is None
    assert request.resources is None
    assert request.featurization_settings.mode == "auto"


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"limits": {"timeout_minutes": 5, "timeout_seconds": 300}}, "not both"),
        ({"n_cross_validations": 3, "validation": {"n_cross_validations": 3}}, "given twice"),
        ({"limits": {"max_cores_per_trial": 0}}, "all cores"),
        ({"featurization": {"blocked_transformers": ["TfIdf"]}}, "mode 'custom'"),
        ({"featurization": {"mode": "custom", "column_name_and_types": []}}, "column_name_and"),
        ({"validation": {"n_cross_validations": "some"}}, "validation.n_cross_validations"),
        ({"resources": {"instance_count": 0}}, "resources.instance_count"),
        ({"log_verbosity": "loud"}, "log_verbosity"),
    ],
)
def test_bad_azure_settings_name_the_problem(changes: dict[str, Any], fragment: str) -> None:
    """Contradictory or malformed Azure settings are refused naming the setting."""
    with pytest.raises(InvalidRequest) as caught:
        parse(body(**changes))
    assert fragment in str(caught.value)


def test_forecasting_modes_are_read_in_any_case() -> None:
    """Forecasting mode values are read case-insensitively, as the SDK's YAML loader reads
    them, and kept in its spelling."""
    fc = parse(
        body(
            task="forecasting",
            primary_metric=None,
            forecasting={
                "time_column_name": "d",
                "forecast_horizon": "Auto",
                "use_stl": "SeasonTrend",
                "target_lags": [1, 7],
            },
        )
    ).forecasting
    assert (fc.forecast_horizon, fc.use_stl, fc.target_lags) == ("auto", "seasontrend", [1, 7])
    with pytest.raises(ValueError, match="chosen by Azure"):
        _ = fc.horizon


def test_fields_at_their_defaults_do_not_change_the_id() -> None:
    """A request spelling out defaults names the same request as one leaving them out,
    so optional fields added later keep today's ids; a changed value changes it."""
    plain = parse(body())
    spelled = parse(body(limits={"timeout_seconds": 600}, featurization="auto", tags={}))
    assert spelled.id == plain.id
    assert parse(body(limits={"timeout_seconds": 601})).id != plain.id


def test_ignored_columns_cannot_name_what_training_needs() -> None:
    """The target, the time column and series ids are never left out; a name given
    twice is refused too, each with a reason."""
    base = {"task": "classification", "training_data": "t.csv", "target_column_name": "y"}
    assert parse_request(json.dumps({**base, "ignored_columns": ["id"]})).ignored_columns == ["id"]
    for ignored, reason in ((["y"], "the target"), (["id", "id"], "'id' twice")):
        with pytest.raises(InvalidRequest, match=reason):
            parse_request(json.dumps({**base, "ignored_columns": ignored}))
    forecast = {
        **base,
        "task": "forecasting",
        "forecasting": {"time_column_name": "t", "forecast_horizon": 3,
                        "time_series_id_column_names": ["store"]},
    }  # fmt: skip
    for ignored, reason in ((["t"], "the time column"), (["store"], "a series id")):
        with pytest.raises(InvalidRequest, match=reason):
            parse_request(json.dumps({**forecast, "ignored_columns": ignored}))


def test_test_rows_are_a_table_or_a_fraction_not_both() -> None:
    base = {"task": "classification", "training_data": "t.csv", "target_column_name": "y"}
    both = {"test_data": "u.csv", "test_data_size": 0.2}
    with pytest.raises(InvalidRequest, match="test_data or test_data_size"):
        parse_request(json.dumps({**base, "validation": both}))
    job = request_from({**base, "test_data_size": 0.25})  # a job document's top-level key
    assert job.validation.test_data_size == 0.25


def test_frequency_is_a_pandas_offset_alias_old_spellings_included() -> None:
    """A frequency pandas does not know is refused at submit; the spellings older pandas
    took (and Azure's documentation uses) are read as today's."""
    base = {
        "task": "forecasting",
        "training_data": "t.csv",
        "target_column_name": "y",
        "forecasting": {"time_column_name": "d", "forecast_horizon": 3},
    }

    def alias(frequency: str) -> str | None:
        body = {**base, "forecasting": {**base["forecasting"], "frequency": frequency}}  # type: ignore[dict-item]
        forecasting = parse_request(json.dumps(body)).forecasting
        assert forecasting is not None and forecasting.frequency == frequency  # sent as given
        return forecasting.offset_alias

    assert [alias(f) for f in ("D", "M", "MS", "H", "15T", "Q-DEC", "W-MON", "A")] == [
        "D", "ME", "MS", "h", "15min", "QE-DEC", "W-MON", "YE",
    ]  # fmt: skip
    with pytest.raises(InvalidRequest, match="'fortnightly' is not a pandas offset alias"):
        alias("fortnightly")
