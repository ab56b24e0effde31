"""Local online endpoints: LocalDeployer on a real MLflow registry, ScoringServer over real
HTTP on 127.0.0.1, and the worker end to end with a ``deployment`` block."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
from mlflow.pyfunc.model import PythonModel
from sklearn.linear_model import LogisticRegression

from automl_service.backends import build_queue, build_scoring_server, build_worker
from automl_service.engines.base import Deployer
from automl_service.engines.local.datasets import load_sample
from automl_service.engines.local.deployer import LocalDeployer
from automl_service.engines.local.endpoint_decisions import compare_with_live, deployment_name
from automl_service.engines.local.endpoint_store import DeploymentRecord, DeploymentState
from automl_service.engines.local.model_loading import load_registered
from automl_service.engines.local.registry import MlflowRegistry
from automl_service.engines.local.serving import (
    BadInput,
    ScoringServer,
    parse_scoring_body,
    predictions_json,
)
from automl_service.errors import PermanentError
from automl_service.metrics import Goal
from automl_service.request import AutoMLRequest
from automl_service.results import RequestState
from automl_service.runs import ModelVersion, RunRecord, RunStatus
from automl_service.selection import select_best
from automl_service.settings import LocalSettings, Settings
from automl_service.waiting import wait_for_results

pytest_plugins = ["fixtures_local"]

ENDPOINT = "iris-live"
MODEL = "iris-model"

#: Explicit requirements: MLflow's own inference loads the model in a subprocess (seconds).
PINS = ["scikit-learn", "mlflow"]


# Building blocks -------------------------------------------------------------------------


def iris() -> tuple[pd.DataFrame, pd.Series]:
    table = load_sample("iris")
    return table.drop(columns=["target"]), table["target"]


def make_request(request_id: str, *, only_if_better: bool = False) -> AutoMLRequest:
    return AutoMLRequest.model_validate(
        {
            "request_id": request_id,
            "task": "classification",
            "training_data": "sample:iris",
            "target_column_name": "target",
            "registration": {"model_name": MODEL},
            "deployment": {"endpoint_name": ENDPOINT, "only_if_better": only_if_better},
        }
    )


def register(
    settings: LocalSettings,
    tmp_path: Path,
    request: AutoMLRequest,
    model: Any,
    accuracy: float,
    *,
    python_model: bool = False,
) -> ModelVersion:
    """Save ``model`` in a finished run and register it through MlflowRegistry."""
    uri = settings.mlflow_uri
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    found = client.get_experiment_by_name("endpoints")
    experiment_id = (
        found.experiment_id
        if found
        else client.create_experiment(
            "endpoints", artifact_location=settings.artifact_root.as_uri()
        )
    )
    run_id = client.create_run(experiment_id).info.run_id
    saved = tmp_path / f"saved-{request.id}"
    if python_model:
        mlflow.pyfunc.save_model(str(saved), python_model=model, pip_requirements=PINS)
    else:
        features, _ = iris()
        mlflow.sklearn.save_model(
            model, str(saved), input_example=features.head(3), pip_requirements=PINS
        )
    client.log_artifacts(run_id, str(saved), "model")
    client.log_metric(run_id, "accuracy", accuracy)
    client.set_terminated(run_id, "FINISHED")
    selection = select_best(
        [RunRecord(run_id, RunStatus.FINISHED, {"accuracy": accuracy})], "accuracy", Goal.MAXIMIZE
    )
    return MlflowRegistry(uri).register(request, selection)


def small_model() -> LogisticRegression:
    features, target = iris()
    return LogisticRegression(max_iter=500).fit(features, target)


def two_class_model() -> LogisticRegression:
    """Predicts only classes 0 and 1, unlike ``small_model``."""
    features, target = iris()
    return LogisticRegression(max_iter=500).fit(features, target.clip(upper=1))


class Refuses(PythonModel):
    """A model that loads but cannot score anything."""

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        raise ValueError("this model refuses every input")


def call(url: str, body: bytes | None = None) -> tuple[int, Any]:
    """(status, parsed JSON) of GET ``url``, or POST ``body`` to it."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    request.add_header("Content-Type", "application/json")
    try:
        with opener.open(request, timeout=60) as response:
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), json.loads(exc.read())


def input_data(frame: pd.DataFrame) -> bytes:
    return json.dumps(
        {"input_data": {"columns": list(frame.columns), "data": frame.to_numpy().tolist()}}
    ).encode()


@pytest.fixture
def deployer(local_settings: LocalSettings) -> LocalDeployer:
    return LocalDeployer(local_settings)


@pytest.fixture
def server(local_settings: LocalSettings) -> Iterator[ScoringServer]:
    """A scoring server on a free port of 127.0.0.1, over the same records as ``deployer``."""
    with build_scoring_server(local_settings, port=0) as made:
        yield made


# Pure decisions ----------------------------------------------------------------------------


def live_record(metric: str, value: float | None) -> DeploymentRecord:
    return DeploymentRecord(
        endpoint="e",
        name="m-v1",
        model_name="m",
        model_version="1",
        model_uri="models:/m/1",
        metric=metric,
        metric_value=value,
        goal=Goal.MINIMIZE,
        input_columns=(),
        request_id="r",
        state=DeploymentState.LIVE,
        created_at=0.0,
    )


def test_only_a_strictly_better_value_replaces_the_live_one() -> None:
    """Better (by the goal's direction) promotes; equal or worse does not."""
    live = live_record("normalized_root_mean_squared_error", 0.2)
    metric = live.metric
    assert compare_with_live(0.1, metric, Goal.MINIMIZE, live).promote
    assert not compare_with_live(0.2, metric, Goal.MINIMIZE, live).promote
    worse = compare_with_live(0.3, metric, Goal.MINIMIZE, live)
    assert not worse.promote
    assert "not better" in worse.reason
    assert compare_with_live(0.3, "r2_score", Goal.MAXIMIZE, live_record("r2_score", 0.2)).promote


def test_incomparable_live_deployments_are_replaced() -> None:
    """No live deployment, another metric, or no value: the new model is promoted."""
    assert compare_with_live(0.5, "accuracy", Goal.MAXIMIZE, None).promote
    other = compare_with_live(0.1, "accuracy", Goal.MAXIMIZE, live_record("r2_score", 0.9))
    assert other.promote
    assert "no accuracy to compare" in other.reason
    assert compare_with_live(0.1, "accuracy", Goal.MAXIMIZE, live_record("accuracy", None)).promote


def test_deployment_names_follow_the_model_version() -> None:
    """The same version always names the same deployment; another version another one."""
    assert deployment_name("m", "3") == deployment_name("m", "3") == "m-v3"
    assert deployment_name("m", "4") != deployment_name("m", "3")


def test_every_scoring_format_gives_the_same_table() -> None:
    """input_data, dataframe_split and dataframe_records parse to equal tables."""
    columns, rows = ["a", "b"], [[1.0, "x"], [2.5, "y"]]
    split = parse_scoring_body(json.dumps({"input_data": {"columns": columns, "data": rows}}))
    other = parse_scoring_body(json.dumps({"dataframe_split": {"columns": columns, "data": rows}}))
    records = [dict(zip(columns, row, strict=True)) for row in rows]
    listed = parse_scoring_body(json.dumps({"dataframe_records": records}))
    for frame in (other, listed):
        pd.testing.assert_frame_equal(frame, split)
    assert list(split["a"]) == [1.0, 2.5]


def test_bodies_python_writes_with_nan_and_big_integers_are_read() -> None:
    """What Python's json.dumps writes and strict JSON parsers refuse (NaN, Infinity, an
    integer past 64 bits) is read as the json module reads it; strings come through as
    strings and numbers as numbers."""
    rows = [[math.nan, 1, "é"], [math.inf, 2**70, "b"]]
    frame = parse_scoring_body(
        json.dumps({"input_data": {"columns": ["a", "b", "c"], "data": rows}})
    )
    assert math.isnan(frame["a"][0]) and frame["a"][1] == math.inf
    assert list(frame["b"]) == [1, 2**70] and list(frame["c"]) == ["é", "b"]
    plain = parse_scoring_body(b'{"input_data": {"columns": ["a"], "data": [[1.5], [-2e3]]}}')
    assert list(plain["a"]) == [1.5, -2000.0]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"inputs": []}', "exactly one of"),
        (b'{"input_data": {"columns": ["a"], "data": [[1, 2]]}}', "every row must have 1"),
        (b'{"dataframe_split": {"columns": ["a"], "data": []}}', "no rows"),
        (b'{"dataframe_records": [1, 2]}', "list of objects"),
    ],
)
def test_bad_bodies_are_refused_with_a_reason(body: bytes, says: str) -> None:
    """A body that is not a readable table raises BadInput saying what is wrong."""
    with pytest.raises(BadInput, match=says):
        parse_scoring_body(body)


def test_predictions_are_plain_json() -> None:
    """numpy values become Python values and non-finite floats become null."""
    out = predictions_json(np.array([1.5, np.nan, np.inf]))
    assert out == [1.5, None, None]
    assert predictions_json(pd.Series(np.array([1, 2], dtype=np.int64))) == [1, 2]
    table = pd.DataFrame({"yhat": [1.0, math.nan]})
    assert predictions_json(table) == [{"yhat": 1.0}, {"yhat": None}]
    json.dumps(out, allow_nan=False)


# Deploy and score --------------------------------------------------------------------------


def test_deploy_then_score_over_http(
    local_settings: LocalSettings,
    deployer: LocalDeployer,
    server: ScoringServer,
    tmp_path: Path,
) -> None:
    """A deployed version answers over HTTP with the registered model's own predictions."""
    request = make_request("r1")
    version = register(local_settings, tmp_path, request, small_model(), 0.9)
    contract: Deployer = deployer
    endpoint = contract.deploy(request, version, 0.9)

    assert endpoint.promoted
    assert endpoint.deployment == f"{MODEL}-v{version.version}"
    assert endpoint.scoring_uri == f"http://127.0.0.1:8090/endpoints/{ENDPOINT}/score"
    features, _ = iris()
    rows = features.iloc[::15]
    expected = load_registered(local_settings.mlflow_uri, MODEL, version.version).predict(rows)
    url = f"{server.url}/endpoints/{ENDPOINT}/score"

    status, answer = call(url, input_data(rows))
    assert status == 200, answer
    assert answer == {"predictions": list(map(int, expected)), "deployment": endpoint.deployment}
    records = json.dumps({"dataframe_records": rows.to_dict(orient="records")}).encode()
    assert call(url, records)[1]["predictions"] == answer["predictions"]
    assert server.models.loads == 1  # loaded once per model version

    status, listed = call(f"{server.url}/endpoints")
    assert status == 200
    [entry] = listed["endpoints"]
    assert entry["deployment"] == endpoint.deployment
    assert entry["live"]["model_uri"] == f"models:/{MODEL}/{version.version}"
    assert entry["live"]["metric"] == "accuracy"
    assert entry["live"]["metric_value"] == 0.9
    assert entry["live"]["input_columns"] == list(features.columns)
    assert call(f"{server.url}/healthz") == (200, {"status": "ok"})


def test_redeploying_the_same_version_changes_nothing(
    local_settings: LocalSettings, deployer: LocalDeployer, tmp_path: Path
) -> None:
    """Deploying a version that is already live is a no-op that says so."""
    request = make_request("r1")
    version = register(local_settings, tmp_path, request, small_model(), 0.9)
    first = deployer.deploy(request, version, 0.9)
    before = deployer.store.get(ENDPOINT)
    again = LocalDeployer(local_settings).deploy(request, version, 0.9)

    assert again.deployment == first.deployment
    assert again.promoted
    assert "already live" in again.reason
    assert deployer.store.get(ENDPOINT) == before
    assert len(deployer.store.deployments(ENDPOINT)) == 1


def test_a_better_model_replaces_the_live_one_and_the_old_is_retired(
    local_settings: LocalSettings,
    deployer: LocalDeployer,
    server: ScoringServer,
    tmp_path: Path,
) -> None:
    """With only_if_better, a model better on the same held-out rows goes live, carrying
    the registry alias ``champion``; the old one is retired, and a running server answers
    with the new one without a restart."""
    old_request, new_request = make_request("r1"), make_request("r2", only_if_better=True)
    old = register(local_settings, tmp_path, old_request, two_class_model(), 0.8)
    new = register(local_settings, tmp_path, new_request, small_model(), 0.95)
    deployer.deploy(old_request, old, 0.8)
    client = mlflow.MlflowClient(local_settings.mlflow_uri, local_settings.mlflow_uri)
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == old.version
    url = f"{server.url}/endpoints/{ENDPOINT}/score"
    features, _ = iris()
    body = input_data(features)
    assert call(url, body)[1]["deployment"] == f"{MODEL}-v{old.version}"

    endpoint = deployer.deploy(new_request, new, 0.95)

    assert endpoint.promoted
    assert endpoint.deployment == f"{MODEL}-v{new.version}"
    assert "on the same 30 held-out rows" in endpoint.reason
    assert "better, promoted" in endpoint.reason
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == new.version
    record = deployer.store.get(ENDPOINT)
    assert record is not None
    assert record.previous_deployment == f"{MODEL}-v{old.version}"
    states = {d.name: d.state for d in deployer.store.deployments(ENDPOINT)}
    assert states == {
        f"{MODEL}-v{old.version}": DeploymentState.RETIRED,
        f"{MODEL}-v{new.version}": DeploymentState.LIVE,
    }
    status, answer = call(url, body)
    assert status == 200
    assert answer["deployment"] == endpoint.deployment
    assert answer["predictions"] == small_model().predict(features).tolist()
    assert len(set(answer["predictions"])) == 3  # the new model's answers, not the old model's


def test_a_retirement_cut_short_is_finished_by_the_next_deploy(
    local_settings: LocalSettings, deployer: LocalDeployer, tmp_path: Path
) -> None:
    """A process stopped between the switch and the retirement leaves the old deployment
    ready; deploying the live version again retires it and changes nothing else."""
    old_request, new_request = make_request("r1"), make_request("r2")
    old = register(local_settings, tmp_path, old_request, small_model(), 0.8)
    new = register(local_settings, tmp_path, new_request, two_class_model(), 0.9)
    deployer.deploy(old_request, old, 0.8)
    ready = deployer.make_ready(new_request, new, 0.9, deployment_name(MODEL, new.version))
    deployer.store.put_ready(ready)
    deployer.store.switch(
        ENDPOINT, ready.name, lambda live: compare_with_live(0.9, "accuracy", Goal.MAXIMIZE, live)
    )
    states = {d.name: d.state for d in deployer.store.deployments(ENDPOINT)}
    assert states[f"{MODEL}-v{old.version}"] is DeploymentState.LIVE  # never retired

    endpoint = deployer.deploy(new_request, new, 0.9)

    assert endpoint.deployment == ready.name and "already live" in endpoint.reason
    states = {d.name: d.state for d in deployer.store.deployments(ENDPOINT)}
    assert states == {
        f"{MODEL}-v{old.version}": DeploymentState.RETIRED,
        ready.name: DeploymentState.LIVE,
    }


def test_a_worse_model_with_only_if_better_leaves_the_endpoint(
    local_settings: LocalSettings, deployer: LocalDeployer, tmp_path: Path
) -> None:
    """A model worse than the live one on the same held-out rows is not deployed, though
    its own recorded score (0.99) beats the live one's (0.9); the reason gives both
    models' scores on those rows."""
    live_request, worse_request = make_request("r1"), make_request("r2", only_if_better=True)
    live = register(local_settings, tmp_path, live_request, small_model(), 0.9)
    worse = register(local_settings, tmp_path, worse_request, two_class_model(), 0.99)
    deployer.deploy(live_request, live, 0.9)
    before = deployer.store.get(ENDPOINT)

    endpoint = deployer.deploy(worse_request, worse, 0.99)

    assert not endpoint.promoted
    assert endpoint.deployment == f"{MODEL}-v{live.version}"
    assert "on the same 30 held-out rows" in endpoint.reason
    assert "new accuracy = 0.666667 vs live" in endpoint.reason
    assert "0.966667: not better" in endpoint.reason
    assert deployer.store.get(ENDPOINT) == before
    assert [d.name for d in deployer.store.deployments(ENDPOINT)] == [endpoint.deployment]


def test_without_only_if_better_a_worse_model_still_replaces(
    local_settings: LocalSettings, deployer: LocalDeployer, tmp_path: Path
) -> None:
    """Without only_if_better the newest model goes live whatever its metric."""
    live_request, worse_request = make_request("r1"), make_request("r2")
    live = register(local_settings, tmp_path, live_request, small_model(), 0.9)
    worse = register(local_settings, tmp_path, worse_request, two_class_model(), 0.7)
    deployer.deploy(live_request, live, 0.9)
    endpoint = deployer.deploy(worse_request, worse, 0.7)
    assert endpoint.promoted
    assert endpoint.deployment == f"{MODEL}-v{worse.version}"


def test_a_model_failing_its_check_never_takes_traffic(
    local_settings: LocalSettings, deployer: LocalDeployer, tmp_path: Path
) -> None:
    """A model that cannot score the training sample fails for good; the live one stays."""
    live_request, broken_request = make_request("r1"), make_request("r2")
    live = register(local_settings, tmp_path, live_request, small_model(), 0.9)
    broken = register(local_settings, tmp_path, broken_request, Refuses(), 0.99, python_model=True)
    deployer.deploy(live_request, live, 0.9)
    with pytest.raises(PermanentError, match="refuses every input"):
        deployer.deploy(broken_request, broken, 0.99)
    record = deployer.store.get(ENDPOINT)
    assert record is not None and record.deployment == f"{MODEL}-v{live.version}"


def test_client_mistakes_get_clear_4xx_answers(
    local_settings: LocalSettings,
    deployer: LocalDeployer,
    server: ScoringServer,
    tmp_path: Path,
) -> None:
    """Unknown endpoint 404, bad JSON or missing columns 400 (naming them), GET on score 405."""
    request = make_request("r1")
    deployer.deploy(request, register(local_settings, tmp_path, request, small_model(), 0.9), 0.9)
    url = f"{server.url}/endpoints/{ENDPOINT}/score"

    status, answer = call(f"{server.url}/endpoints/nope/score", b"{}")
    assert (status, answer["error"]) == (404, "no endpoint named 'nope'")
    status, answer = call(url, b"{not json")
    assert status == 400 and "not JSON" in answer["error"]
    features, _ = iris()
    status, answer = call(url, input_data(features.drop(columns=["petal width (cm)"]).head(2)))
    assert status == 400
    assert answer["missing_columns"] == ["petal width (cm)"]
    bad_values = features.head(2).astype(object)
    bad_values.iloc[0, 0] = "tall"
    status, answer = call(url, input_data(bad_values))
    assert status == 400 and answer["mistyped_columns"] == ["sepal length (cm)"]
    assert answer["error"] == "column 'sepal length (cm)' needs numbers; row 1 has 'tall'"
    assert call(url)[0] == 405
    status, one = call(f"{server.url}/endpoints/{ENDPOINT}")
    assert status == 200 and one["name"] == ENDPOINT and one["live"]["state"] == "live"
    assert call(f"{server.url}/elsewhere")[0] == 404


# The command and the worker ----------------------------------------------------------------


@pytest.mark.process
def test_serve_command_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    """`automl-service serve --port 0` prints its URL, answers, and exits 0 on SIGTERM."""
    env = {
        "PATH": "/usr/bin:/bin",
        "AUTOML_SERVICE_LOCAL__DATA_DIR": str(tmp_path / "data"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'stray.db'}",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "automl_service", "serve", "--port", "0", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = json.loads(process.stdout.readline())["url"]
        assert call(f"{url}/healthz") == (200, {"status": "ok"})
        assert call(f"{url}/endpoints") == (200, {"endpoints": []})
        began = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert time.monotonic() - began < 10
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


@pytest.mark.slow
def test_worker_deploys_a_request_and_it_scores_over_http(settings: Settings) -> None:
    """A request with a deployment block ends succeeded with an endpoint that scores."""
    queue = build_queue(settings)
    worker = build_worker(settings, queue=queue)
    body = {
        "request_id": "deploy-e2e",
        "task": "classification",
        "training_data": "sample:iris",
        "target_column_name": "target",
        "primary_metric": "accuracy",
        "limits": {"timeout_seconds": 10, "max_trials": 6},
        "registration": {"model_name": "iris-deployed"},
        "deployment": {"endpoint_name": "iris-e2e"},
    }
    queue.send(json.dumps(body))
    stop = threading.Event()
    ended = wait_for_results(
        worker.results,
        ["deploy-e2e"],
        timeout=240,
        step=lambda: worker.run_once(stop),
        interval=0.3,
    )
    result = ended["deploy-e2e"]
    assert result.state is RequestState.SUCCEEDED, result
    assert result.endpoint == "iris-e2e"
    assert result.scoring_uri and result.scoring_uri.endswith("/endpoints/iris-e2e/score")

    features, _ = iris()
    version = result.model_version or ""
    expected = load_registered(settings.local.mlflow_uri, "iris-deployed", version).predict(
        features
    )
    with build_scoring_server(settings.local, port=0) as server:
        status, answer = call(f"{server.url}/endpoints/iris-e2e/score", input_data(features))
    assert status == 200, answer
    assert answer["deployment"] == f"iris-deployed-v{version}"
    assert answer["predictions"] == expected["prediction"].tolist()
    assert [sorted(row) for row in answer["probabilities"]] == [["0", "1", "2"]] * len(features)


def run_worker_until_done(settings: Settings, body: dict[str, Any]) -> Any:
    """Send ``body`` through a real worker on the local backend; its terminal result."""
    queue = build_queue(settings)
    worker = build_worker(settings, queue=queue)
    queue.send(json.dumps(body))
    stop = threading.Event()
    ends = time.monotonic() + 240
    result = None
    while time.monotonic() < ends:
        worker.run_once(stop)
        result = worker.results.get(body["request_id"])
        if result is not None and result.state.terminal:
            break
        time.sleep(0.3)
    return result


def string_dates(dates: list[str]) -> bytes:
    return json.dumps({"input_data": {"columns": ["date"], "data": [[d] for d in dates]}}).encode()


@pytest.mark.slow
def test_a_deployed_forecaster_answers_for_the_dates_sent_as_strings(
    settings: Settings,
) -> None:
    """A FLAML forecaster trained, registered and deployed by the worker forecasts over HTTP
    for the JSON date strings sent: each date gets its own step's forecast whatever the
    order or company, and a date at the end of training is refused naming it."""
    body = {
        "request_id": "forecast-e2e",
        "task": "forecasting",
        "training_data": "sample:co2",
        "target_column_name": "co2",
        "forecasting": {"time_column_name": "date", "forecast_horizon": 6},
        "training": {"allowed_algorithms": ["LightGBM"]},
        "limits": {"timeout_seconds": 10, "max_trials": 2},
        "registration": {"model_name": "co2-forecast"},
        "deployment": {"endpoint_name": "co2-e2e"},
    }
    result = run_worker_until_done(settings, body)
    assert result is not None and result.state is RequestState.SUCCEEDED, result
    series = load_sample("co2")
    assert series["date"].iloc[-1] == pd.Timestamp("2001-12-01")
    dates = [f"2002-0{m}-01" for m in range(1, 7)]
    with build_scoring_server(settings.local, port=0) as server:
        url = f"{server.url}/endpoints/co2-e2e/score"
        status, described = call(f"{server.url}/endpoints/co2-e2e")
        assert status == 200 and described["live"]["input_columns"] == ["date"], described
        status, answer = call(url, string_dates(dates))
        assert status == 200, answer
        ahead = answer["predictions"]
        assert len(ahead) == 6 and all(isinstance(v, float) for v in ahead)
        assert len(set(ahead)) > 1, "one forecast per step, not one value for all"
        shuffled = [3, 0, 5, 1, 4, 2]
        status, again = call(url, string_dates([dates[i] for i in shuffled]))
        assert status == 200, again
        assert again["predictions"] == pytest.approx([ahead[i] for i in shuffled])
        for k, date in enumerate(dates, start=1):
            status, alone = call(url, string_dates([date]))
            assert status == 200 and alone["predictions"] == pytest.approx([ahead[k - 1]]), k
        status, refused = call(url, string_dates(["2002-01-01", "2001-12-01"]))
        assert status == 400, refused
        assert "'2001-12-01'" in refused["error"] and "end of the training data" in refused["error"]
        status, refused = call(url, string_dates(["2002-07-01"]))
        assert status == 400 and "'2002-07-01' is beyond the forecast horizon" in refused["error"]

    version = result.model_version or ""
    model = load_registered(settings.local.mlflow_uri, "co2-forecast", version)
    as_datetimes = pd.DataFrame({"date": pd.to_datetime(dates)})
    assert np.asarray(model.predict(as_datetimes)).tolist() == pytest.approx(ahead)


def firm_years(rows: list[tuple[str, str]]) -> bytes:
    return json.dumps(
        {"input_data": {"columns": ["firm", "year"], "data": [list(r) for r in rows]}}
    ).encode()


@pytest.mark.slow
def test_a_deployed_many_series_forecaster_answers_per_series_over_http(
    settings: Settings,
) -> None:
    """A request with a series id column (grunfeld's firms) trains, registers and deploys;
    the endpoint answers rows of two firms at once with each firm's own forecast for each
    date sent as a string, and refuses a firm it was not trained on with a 400 naming it."""
    body = {
        "request_id": "panel-e2e",
        "task": "forecasting",
        "training_data": "sample:grunfeld",
        "target_column_name": "invest",
        "forecasting": {
            "time_column_name": "year",
            "forecast_horizon": 2,
            "time_series_id_column_names": ["firm"],
        },
        "limits": {"timeout_seconds": 5},
        "registration": {"model_name": "grunfeld-forecast"},
        "deployment": {"endpoint_name": "grunfeld-e2e"},
    }
    result = run_worker_until_done(settings, body)
    assert result is not None and result.state is RequestState.SUCCEEDED, result
    asked = [
        ("IBM", "1956-01-01"),
        ("General Motors", "1955-01-01"),
        ("IBM", "1955-01-01"),
        ("General Motors", "1956-01-01"),
    ]
    with build_scoring_server(settings.local, port=0) as server:
        url = f"{server.url}/endpoints/grunfeld-e2e/score"
        status, described = call(f"{server.url}/endpoints/grunfeld-e2e")
        assert status == 200 and described["live"]["input_columns"] == ["firm", "year"]
        status, answer = call(url, firm_years(asked))
        assert status == 200, answer
        ibm_2, gm_1, ibm_1, gm_2 = answer["predictions"]
        last = load_sample("grunfeld").groupby("firm")["invest"].last()
        for value, firm in [(ibm_1, "IBM"), (ibm_2, "IBM"), (gm_1, "General Motors")]:
            assert 0.5 * last[firm] < value < 2 * last[firm], (firm, value)
        # GM's last value is 11 times IBM's: a row answered from the other firm's level
        # would turn the ratio over.
        assert gm_2 > 5 * ibm_2, "each row is forecast from its own firm's level"
        for row, expected in zip(asked, answer["predictions"], strict=True):
            status, alone = call(url, firm_years([row]))
            assert status == 200 and alone["predictions"] == pytest.approx([expected]), row
        status, refused = call(url, firm_years([("IBM", "1955-01-01"), ("Apple", "1955-01-01")]))
        assert status == 400, refused
        assert "series firm='Apple' is not one this model was trained on" in refused["error"]
        status, refused = call(url, firm_years([("IBM", "1957-01-01")]))
        assert status == 400 and "'1957-01-01' is beyond the forecast horizon" in refused["error"]


def test_min_improvement_asks_for_more_than_a_better_score() -> None:
    """A new model must beat the live one by more than ``min_improvement``, in the
    metric's units and direction; the reason says what was needed."""
    from automl_service.promotion import compare_values

    up = compare_values(0.93, 0.9, "accuracy", Goal.MAXIMIZE, "v1", margin=0.05)
    assert not up.promote and "not better by more than 0.05" in up.reason
    assert compare_values(0.96, 0.9, "accuracy", Goal.MAXIMIZE, "v1", margin=0.05).promote
    down = compare_values(0.08, 0.1, "normalized_root_mean_squared_error", Goal.MINIMIZE,
                          "v1", margin=0.01, where="on the same 30 held-out rows")  # fmt: skip
    assert down.promote and down.reason.startswith("on the same 30 held-out rows: new")


def test_rollback_puts_the_previous_deployment_back_and_twice_returns(
    local_settings: LocalSettings, deployer: LocalDeployer, tmp_path: Path
) -> None:
    """A rollback makes the previous deployment live again (the alias ``champion`` with
    it) and retires the one rolled back from; a second rollback undoes the first."""
    first_request, second_request = make_request("r1"), make_request("r2")
    first = register(local_settings, tmp_path, first_request, small_model(), 0.9)
    second = register(local_settings, tmp_path, second_request, two_class_model(), 0.8)
    deployer.deploy(first_request, first, 0.9)
    deployer.deploy(second_request, second, 0.8)
    client = mlflow.MlflowClient(local_settings.mlflow_uri, local_settings.mlflow_uri)
    names = {v: f"{MODEL}-v{v}" for v in (first.version, second.version)}

    back = deployer.rollback(ENDPOINT)

    assert back.deployment == names[first.version]
    assert back.reason == f"rolled back from {names[second.version]}"
    states = {d.name: d.state for d in deployer.store.deployments(ENDPOINT)}
    assert states == {
        names[first.version]: DeploymentState.LIVE,
        names[second.version]: DeploymentState.RETIRED,
    }
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == first.version
    assert deployer.rollback(ENDPOINT).deployment == names[second.version]
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == second.version
    with pytest.raises(PermanentError, match="no endpoint 'nope'"):
        deployer.rollback("nope")
