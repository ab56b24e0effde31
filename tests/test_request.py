"""The request schema: what is accepted, what is refused and how ids are derived."""

from __future__ import annotations

import json
from typing import Any

import pytest

from automl_service.errors import InvalidRequest
from automl_service.metrics import Goal
from automl_service.request import MAX_MESSAGE_BYTES, parse_request


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
        (b"\xff\xfe", "not JSON"),
        ("{" + " " * MAX_MESSAGE_BYTES + "}", "limit is"),
    ],
)
def test_unparseable_messages(text: str | bytes, fragment: str) -> None:
    """Garbage, non-objects and oversized messages are refused with the reason."""
    with pytest.raises(InvalidRequest, match=fragment):
        parse_request(text)
