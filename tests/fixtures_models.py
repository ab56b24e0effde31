"""Real FLAML models on bundled tables, logged as the trainer logs them and registered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from automl_service.engines.local.datasets import load_sample
from automl_service.engines.local.model import FlamlModel, log_pyfunc
from automl_service.engines.local.registry import MlflowRegistry
from automl_service.metrics import Goal
from automl_service.request import AutoMLRequest
from automl_service.runs import ModelVersion, RunRecord, RunStatus
from automl_service.selection import select_best
from automl_service.settings import LocalSettings

IRIS_CLASSES = np.array(["setosa", "versicolor", "virginica"])


def iris_named() -> tuple[pd.DataFrame, pd.Series]:
    """Iris features and its species as strings."""
    table = load_sample("iris")
    return table.drop(columns=["target"]), pd.Series(IRIS_CLASSES[table["target"]])


def breast_cancer() -> tuple[pd.DataFrame, pd.Series]:
    """Breast cancer features and its diagnosis, ``malignant`` (0) or ``benign`` (1)."""
    table = load_sample("breast_cancer")
    names = np.array(["malignant", "benign"])
    return table.drop(columns=["target"]), pd.Series(names[table["target"]])


def flaml_model(X: pd.DataFrame, y: pd.Series, learner: str, budget: float = 3.0) -> FlamlModel:
    """A FLAML classifier of one learner fitted within ``budget`` seconds."""
    from flaml.automl import AutoML

    automl: Any = AutoML()  # type: ignore[no-untyped-call]
    automl.fit(X, y, task="classification", estimator_list=[learner], max_iter=3,
               time_budget=budget, verbose=0, mlflow_logging=False, seed=1)  # fmt: skip
    return FlamlModel(
        automl.model,
        automl._state.task,
        automl._transformer,
        automl._label_transformer,
        list(X.columns),
    )


def fitted_flaml(
    X: pd.DataFrame, y: pd.Series, learner: Any, task_name: str = "classification"
) -> FlamlModel:
    """``learner`` (a FLAML estimator class) fitted by FLAML's own transform on ``X`` in
    well under a second: 8 trees, one thread, no search."""
    from flaml.automl.data import DataTransformer
    from flaml.automl.task.factory import task_factory

    task = task_factory(task_name)
    transformer: Any = DataTransformer()
    X_t, y_t = transformer.fit_transform(X.copy(), y, task)
    estimator = learner(task=task_name, n_estimators=8, n_jobs=1)
    estimator.fit(X_t, y_t)
    return FlamlModel(estimator, task, transformer, transformer.label_transformer, list(X.columns))


def register_pyfunc(
    settings: LocalSettings, model: Any, model_name: str, request_id: str, **request: Any
) -> ModelVersion:
    """Log ``model`` as a finished run's pyfunc (as the trainer does) and register it."""
    uri = settings.mlflow_uri
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    found = client.get_experiment_by_name("models")
    experiment_id = (
        found.experiment_id
        if found
        else client.create_experiment("models", artifact_location=settings.artifact_root.as_uri())
    )
    run_id = client.create_run(experiment_id).info.run_id
    client.log_metric(run_id, "accuracy", 0.9)
    log_pyfunc(uri, run_id, model)
    client.set_terminated(run_id, "FINISHED")
    body = {
        "request_id": request_id,
        "task": "classification",
        "training_data": "sample:iris",
        "target_column_name": "target",
        "registration": {"model_name": model_name},
        **request,
    }
    selection = select_best(
        [RunRecord(run_id, RunStatus.FINISHED, {"accuracy": 0.9})], "accuracy", Goal.MAXIMIZE
    )
    return MlflowRegistry(uri).register(AutoMLRequest.model_validate(body), selection)


def separable_table(rows: int) -> pd.DataFrame:
    """Two numbers and a yes/no class ``y`` that the first all but decides (seed 0)."""
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"a": rng.normal(size=rows), "b": rng.normal(size=rows)})
    data["y"] = np.where(data["a"] + 0.1 * rng.normal(size=rows) > 0, "yes", "no")
    return data


def search_csv(path: Path) -> tuple[Any, str, RunRecord, Any]:
    """The local search of a LightGBM classification of ``y`` in the CSV ``path`` (3
    trials, no ensemble), logged to an MLflow store beside it: the client, the parent
    run's id, and the single leader's run record and model."""
    from automl_service.engines.local.search import search
    from automl_service.engines.local.trials import Objective, TrialLog

    request = AutoMLRequest.model_validate(
        {
            "task": "classification",
            "training_data": str(path),
            "target_column_name": "y",
            "limits": {"timeout_seconds": 15, "max_trials": 3},
            "training": {"allowed_algorithms": ["LightGBM"], "enable_vote_ensemble": False},
        }
    )
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{path.parent}/mlflow.db")
    experiment = client.create_experiment("s", artifact_location=(path.parent / "a").as_uri())
    parent = client.create_run(experiment).info.run_id
    log = TrialLog(client, experiment, parent, "s", 1, [Objective("accuracy", Goal.MAXIMIZE)])
    ((record, model),) = search(request, log)
    return client, parent, record, model
