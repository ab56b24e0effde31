"""The operator's policy: caps refused by name or clamped and recorded, data folders with
symlinks resolved, computes, endpoints and reply queues; at submit and at receive."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_cli import cli

from automl_service.errors import InvalidRequest
from automl_service.policy import enforce
from automl_service.request import AutoMLRequest, parse_request
from automl_service.settings import PolicySettings


def request(**changes: Any) -> AutoMLRequest:
    body: dict[str, Any] = {
        "task": "classification",
        "training_data": "sample:iris",
        "target_column_name": "target",
    }
    body.update(changes)
    return parse_request(json.dumps(body))


@pytest.mark.parametrize(
    ("limits", "policy", "fragment"),
    [
        ({"timeout_seconds": 7200}, {"max_timeout_seconds": 3600}, "policy.max_timeout_seconds"),
        ({"max_trials": 500}, {"max_trials": 100}, "limits.max_trials is 500; this service"),
        ({"max_concurrent_trials": 9}, {}, "at most 8 (policy.max_concurrent_trials)"),
        (
            {"trial_timeout_seconds": 60},
            {"max_trial_timeout_seconds": 30},
            "policy.max_trial_timeout_seconds",
        ),
    ],
)
def test_limits_over_a_cap_are_refused_naming_the_cap(
    limits: dict[str, int], policy: dict[str, int], fragment: str
) -> None:
    """A limit above the operator's cap is refused with the cap's setting named."""
    with pytest.raises(InvalidRequest, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        enforce(request(limits=limits), PolicySettings(**policy))


def test_clamping_lowers_limits_records_it_and_is_stable() -> None:
    """With clamp_limits the request runs at the caps and says what changed; applying the
    policy again (a redelivery, or the worker after `submit`) changes nothing more, so
    the request keeps one id."""
    policy = PolicySettings(max_timeout_seconds=600, clamp_limits=True)
    original = request(limits={"timeout_seconds": 7200, "max_trials": 50})
    applied = enforce(original, policy)
    assert applied.request.limits.timeout_seconds == 600
    assert applied.request.limits.max_trials == 50
    assert applied.changes == ("limits.timeout_seconds lowered from 7200 to 600 (policy)",)
    again = enforce(applied.request, policy)
    assert again.changes == () and again.request.id == applied.request.id
    assert enforce(original, policy).request.id == applied.request.id


def test_within_the_caps_nothing_changes() -> None:
    """A request inside every cap comes back as it was."""
    original = request(limits={"timeout_seconds": 60})
    applied = enforce(original, PolicySettings())
    assert applied.changes == ()
    assert applied.request.model_dump(exclude={"request_id"}) == original.model_dump(
        exclude={"request_id"}
    )


def test_local_data_must_resolve_inside_a_root(tmp_path: Path) -> None:
    """Paths are resolved against the working folder, symlinks followed: a file under a
    root is allowed (and made absolute), one outside it, or a link out of it, is not."""
    root = tmp_path / "data"
    root.mkdir()
    (root / "ok.csv").write_text("a,b\n1,2\n")
    secret = tmp_path / "secret.csv"
    secret.write_text("x\n")
    (root / "link.csv").symlink_to(secret)
    policy = PolicySettings(data_roots=[root])

    applied = enforce(request(training_data="data/ok.csv"), policy, cwd=tmp_path)
    assert applied.request.training_data == str(root / "ok.csv")
    for ref in ("data/link.csv", str(secret), f"file://{secret}", "data/../secret.csv"):
        with pytest.raises(InvalidRequest, match="outside the data folders"):
            enforce(request(training_data=ref), policy, cwd=tmp_path)
    with pytest.raises(InvalidRequest, match=r"validation_data .* outside"):
        enforce(request(validation={"validation_data": str(secret)}), policy, cwd=tmp_path)
    assert enforce(request(), policy).request.training_data == "sample:iris"


def test_remote_data_must_start_with_an_allowed_prefix() -> None:
    """Remote references are checked against the allowed prefixes."""
    policy = PolicySettings(allowed_data_prefixes=["azureml://datastores/training/"])
    good = "azureml://datastores/training/paths/churn.csv"
    assert enforce(request(training_data=good), policy).request.training_data == good
    with pytest.raises(InvalidRequest, match=r"policy\.allowed_data_prefixes"):
        enforce(request(training_data="https://elsewhere.example/x.csv"), policy)


def test_computes_endpoints_instances_and_reply_queues_are_checked() -> None:
    """Compute, endpoint name prefix, instance type and count, and reply queue each have
    a rule, named in the refusal."""
    policy = PolicySettings(
        allowed_computes=["cpu-cluster"],
        endpoint_name_prefix="team-a-",
        allowed_reply_queues=["results-a"],
    )
    assert enforce(request(compute="azureml:cpu-cluster"), policy).changes == ()
    with pytest.raises(InvalidRequest, match=r"policy\.allowed_computes"):
        enforce(request(compute="gpu-cluster"), policy)
    with pytest.raises(InvalidRequest, match=r"policy\.endpoint_name_prefix"):
        enforce(request(deployment={"endpoint_name": "other-endpoint"}), policy)
    deploy = {"endpoint_name": "team-a-churn", "instance_type": "Standard_NC6", "instance_count": 3}
    with pytest.raises(InvalidRequest, match=r"azure\.allowed_instance_types"):
        enforce(request(deployment=deploy), policy, instance_types=["Standard_DS3_v2"])
    with pytest.raises(InvalidRequest, match=r"at most 2 \(azure.max_instance_count\)"):
        enforce(request(deployment=deploy), policy, max_instance_count=2)
    with pytest.raises(InvalidRequest, match=r"policy\.allowed_reply_queues"):
        enforce(request(reply_to="results-b"), policy)


def _cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The command run from ``tmp_path`` with its stores in ``tmp_path/store``."""
    store = str(tmp_path / "store")
    return cli(tmp_path, *args, cwd=tmp_path, AUTOML_SERVICE_LOCAL__DATA_DIR=store, **env)


@pytest.mark.process
def test_submit_applies_the_policy_before_the_queue(tmp_path: Path) -> None:
    """`submit` refuses a request over a cap (exit 2, naming it) and enqueues nothing;
    with clamping it says what it lowered, and a relative path goes on the queue absolute."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "t.csv").write_text("a,target\n1,0\n")
    body = {
        "request_id": "capped",
        "task": "classification",
        "training_data": "data/t.csv",
        "target_column_name": "target",
        "limits": {"timeout_seconds": 7200},
    }
    (tmp_path / "r.json").write_text(json.dumps(body))
    env = {"AUTOML_SERVICE_POLICY__MAX_TIMEOUT_SECONDS": "900"}

    refused = _cli(tmp_path, "submit", "r.json", **env)
    assert refused.returncode == 2
    assert "policy.max_timeout_seconds" in refused.stderr
    assert json.loads(_cli(tmp_path, "status", "--json").stdout) == []

    clamped = _cli(tmp_path, "submit", "r.json", AUTOML_SERVICE_POLICY__CLAMP_LIMITS="true", **env)
    assert clamped.returncode == 0, clamped.stderr
    assert "timeout_seconds lowered from 7200 to 900" in clamped.stderr
    from automl_service.queues.sqlite import SqliteQueue

    [message] = SqliteQueue(tmp_path / "store" / "queue.db", "automl-requests").receive(1, 30)
    sent = parse_request(message.body)
    assert (sent.id, sent.limits.timeout_seconds) == ("capped", 900)
    assert sent.training_data == str(tmp_path / "data" / "t.csv")


CAPS = PolicySettings(
    max_timeout_seconds=600, max_trials=50, max_trial_timeout_seconds=60, max_concurrent_trials=2
)


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {
            "task": st.just("regression"),
            "training_data": st.sampled_from(["sample:diabetes", "data.csv", "file:///x.csv"]),
            "target_column_name": st.just("target"),
            "limits": st.fixed_dictionaries(
                {},
                optional={
                    "timeout_seconds": st.integers(-5, 10**6),
                    "max_trials": st.integers(-5, 20_000),
                    "trial_timeout_seconds": st.integers(-5, 10**5),
                    "max_concurrent_trials": st.integers(-5, 100),
                },
            ),
        }
    ),
    st.booleans(),
)
def test_any_request_meets_every_cap_or_is_refused(data: dict[str, Any], clamp: bool) -> None:
    """Whatever limits a body asks for, parsing and the policy together either give a
    request within every cap or refuse it with a reason."""
    policy = CAPS.model_copy(update={"clamp_limits": clamp})
    try:
        applied = enforce(parse_request(json.dumps(data)), policy)
    except InvalidRequest as exc:
        assert str(exc)
        return
    limits = applied.request.limits
    assert limits.timeout_seconds <= 600 and limits.max_concurrent_trials <= 2
    assert limits.max_trials is None or limits.max_trials <= 50
    assert limits.trial_timeout_seconds is None or limits.trial_timeout_seconds <= 60


def test_serverless_training_resources_are_checked() -> None:
    """Serverless jobs need "serverless" among the allowed computes when computes are
    restricted, and their VM size and node count are capped by name."""
    policy = PolicySettings(
        allowed_computes=["cpu-cluster"],
        allowed_training_instance_types=["Standard_DS3_v2"],
        max_training_instance_count=2,
    )
    serverless = {"instance_type": "Standard_DS3_v2", "instance_count": 2}
    with pytest.raises(InvalidRequest, match="serverless compute"):
        enforce(request(resources=serverless), policy)
    open_policy = policy.model_copy(update={"allowed_computes": ["cpu-cluster", "serverless"]})
    assert enforce(request(resources=serverless), open_policy).changes == ()
    with pytest.raises(InvalidRequest, match=r"policy\.allowed_training_instance_types"):
        enforce(request(resources={"instance_type": "Standard_NC24"}), open_policy)
    with pytest.raises(InvalidRequest, match=r"at most 2 \(policy\.max_training_instance_count\)"):
        enforce(request(resources={"instance_count": 3}), open_policy)


def test_on_azure_a_model_name_must_be_one_azure_accepts() -> None:
    """MLflow takes dots in a model name, Azure ML does not: on the azure backend such a
    name is refused before anything is submitted; derived names never have one."""
    dotted = request(registration={"model_name": "churn.v2"})
    assert enforce(dotted, PolicySettings()).request.model_name == "churn.v2"  # local
    with pytest.raises(InvalidRequest, match=r"'churn.v2' is not a valid Azure ML model name"):
        enforce(dotted, PolicySettings(), azure=True)
    derived = request(target_column_name="price.usd", experiment_name="team.a")
    assert "." not in derived.model_name
    assert enforce(derived, PolicySettings(), azure=True).request.model_name == derived.model_name
