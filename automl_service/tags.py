"""Tag keys the service writes on runs, jobs and model versions, in both backends.

Idempotence depends on them: a request's job is found again by ``JOB_TAG`` (MLflow) or by
its name (Azure ML) and recognised by ``REQUEST_TAG``; its model version is found again by
``REQUEST_TAG``; the engine's own choice of best child is read from ``BEST_CHILD_TAG``.
Changing a value strands everything written under the old one, so these are written
once, here, and imported everywhere else.
"""

from __future__ import annotations

from typing import Final

#: The request id, on AutoML parent runs/jobs, model versions and deployments.
REQUEST_TAG: Final = "automl_service.request_id"
#: The request's job name, on local parent runs and on model versions.
JOB_TAG: Final = "automl_service.job_name"
#: The child run whose model a version holds.
RUN_TAG: Final = "automl_service.run_id"
#: The metric the winner was chosen on, its value (``repr`` of a float) and its goal.
METRIC_TAG: Final = "automl_service.metric"
METRIC_VALUE_TAG: Final = "automl_service.metric_value"
GOAL_TAG: Final = "automl_service.goal"
#: The winner's value of that metric on the request's test rows, when it has test rows.
TEST_METRIC_VALUE_TAG: Final = "automl_service.test_metric_value"
#: What a child run's metric on the test rows is logged as: ``test_accuracy``.
TEST_METRIC_PREFIX: Final = "test_"
#: The parent run's tag naming the engine's own best child (the name Azure AutoML uses;
#: the local trainer writes the same one).
BEST_CHILD_TAG: Final = "automl_best_child_run_id"
#: The fingerprint of the data a request trained on (lineage), where it read local files.
DATA_TAG: Final = "automl_service.data_fingerprint"
#: On a local job's parent run: how many rows the search saw, when it saw a sample.
SEARCHED_ROWS_TAG: Final = "automl_service.searched_rows"
#: A binary classifier's decision threshold (``repr`` of a float), on its run and model
#: version, and when it was chosen on the validation rows, how (a sentence).
THRESHOLD_TAG: Final = "automl_service.decision_threshold"
THRESHOLD_REASON_TAG: Final = "automl_service.decision_threshold_reason"
#: On an Azure ML deployment: the model version it replaced (``name:version``), written
#: when the deployment is created, so ``automl-service rollback`` knows where to go back.
PREVIOUS_MODEL_TAG: Final = "automl_service.previous_model"
#: The alias of the version an endpoint serves: MLflow's registry alias on the local
#: backend; on Azure ML, whose models have no aliases, the tag ``alias_tag("champion")``.
CHAMPION_ALIAS: Final = "champion"
#: On Azure ML, a model version carries alias ``a`` as the tag ``automl_service.alias.a``,
#: its value the time it was given (``repr`` of a Unix time): the newest holds it.
ALIAS_TAG_PREFIX: Final = "automl_service.alias."


def alias_tag(alias: str) -> str:
    """The tag key of a model-version alias on Azure ML."""
    return ALIAS_TAG_PREFIX + alias
