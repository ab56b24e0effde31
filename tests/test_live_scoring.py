"""A live model scored on newer rows (testset.score_or_error), as "only if better" does."""

from __future__ import annotations

import pytest
from fixtures_models import fitted_flaml, iris_named, register_pyfunc
from flaml.automl.model import LGBMEstimator

from automl_service.engines.local.model_loading import load_registered
from automl_service.engines.local.testset import score_or_error
from automl_service.metrics import Task
from automl_service.settings import LocalSettings

pytest_plugins = ["fixtures_local", "fixtures_mlflow_store"]


@pytest.mark.slow
def test_a_live_model_is_scored_or_its_missing_columns_named(
    local_settings: LocalSettings,
) -> None:
    """Rows with the live model's columns give its metrics; rows that lack some of them
    give an error naming those columns, not pandas' KeyError."""
    X, y = iris_named()
    register_pyfunc(local_settings, fitted_flaml(X, y, LGBMEstimator), "live", "live-1")
    live = load_registered(local_settings.mlflow_uri, "live", "1")

    scores = score_or_error(live, Task.CLASSIFICATION, X, y)
    assert isinstance(scores, dict) and scores["accuracy"] > 0.9

    newer = X.drop(columns=["petal width (cm)", "sepal width (cm)"]).assign(height=1.0)
    refused = score_or_error(live, Task.CLASSIFICATION, newer, y)
    assert isinstance(refused, Exception)
    assert str(refused) == (
        "these rows lack its input column(s) sepal width (cm), petal width (cm)"
    )
