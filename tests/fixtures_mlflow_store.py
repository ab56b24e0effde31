"""A real MLflow tracking store and registry (SQLite file) with real sklearn models.

Nothing here touches MLflow's process-wide tracking URI: every call goes through an
``MlflowClient`` bound to the temporary store.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import mlflow.sklearn
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression


@dataclass
class MlflowStore:
    """A temporary store: its URI, a client on it, and one experiment."""

    uri: str
    client: mlflow.MlflowClient
    experiment_id: str
    model_dir: Path  # an MLflow model saved on disk, ready to upload

    def run_with_model(self, *, logged_model: bool = False, name: str = "child") -> str:
        """A finished run carrying the saved model: under the run's ``model`` folder, or
        (``logged_model``) as an MLflow 3 logged model named ``model`` of that run."""
        run = self.client.create_run(self.experiment_id, run_name=name)
        run_id: str = run.info.run_id
        self.client.log_metric(run_id, "accuracy", 0.9)
        if logged_model:
            model = self.client.create_logged_model(
                self.experiment_id, name="model", source_run_id=run_id
            )
            self.client.log_model_artifacts(model.model_id, str(self.model_dir))
            self.client.finalize_logged_model(model.model_id, "READY")
        else:
            self.client.log_artifacts(run_id, str(self.model_dir), "model")
        self.client.set_terminated(run_id, "FINISHED")
        return run_id

    def run_without_model(self) -> str:
        """A finished run with metrics but no model at all."""
        run = self.client.create_run(self.experiment_id, run_name="no-model")
        self.client.log_metric(run.info.run_id, "accuracy", 0.5)
        self.client.set_terminated(run.info.run_id, "FINISHED")
        return str(run.info.run_id)


@pytest.fixture(scope="session")
def saved_sklearn_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow model of a small sklearn classifier saved on disk once per session (tests
    only read it). Its requirements are given: MLflow's own inference loads the model in a
    subprocess (seconds)."""
    features = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    model = LogisticRegression().fit(features, [0, 0, 1, 1])
    model_dir = tmp_path_factory.mktemp("sklearn-model") / "saved-model"
    mlflow.sklearn.save_model(model, str(model_dir), pip_requirements=["scikit-learn", "mlflow"])
    return model_dir


@pytest.fixture(scope="module")
def mlflow_store(
    tmp_path_factory: pytest.TempPathFactory, mlflow_db_template: Path, saved_sklearn_model: Path
) -> Iterator[MlflowStore]:
    """One SQLite-backed store per test module, with a saved sklearn model to upload."""
    root = tmp_path_factory.mktemp("mlflow")
    shutil.copyfile(mlflow_db_template, root / "mlflow.db")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment_id = client.create_experiment(
        "tests", artifact_location=(root / "artifacts").as_uri()
    )
    yield MlflowStore(uri, client, experiment_id, saved_sklearn_model)
