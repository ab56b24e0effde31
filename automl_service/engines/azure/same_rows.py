"""The new model and the live one scored on the same test rows, on this machine.

``SameRowsComparison`` is what the Azure deployer calls with "only if better": both model
versions are fetched as MLflow model folders (``ModelFiles``: downloaded once per
version, then cached), the request's ``validation.test_data`` is read (``AzureTestRows``),
and both models are scored on those rows with the selection metric by the local backend's
own scoring code. The answer is a ``Verdict`` with both values in its reason, or a plain
sentence saying why the rows could not decide (the deployer then compares the values
recorded at training, and says so). The scoring code (pandas, scikit-learn, MLflow) is
imported only when a comparison is made.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ...errors import PermanentError, TransientError
from ...logs import get_logger
from ...metrics import Task
from ...model_ref import ModelRef
from ...promotion import Verdict, compare_scores
from ...request import AutoMLRequest
from ...runs import ModelVersion
from ..base import ModelFiles

if TYPE_CHECKING:
    import pandas as pd

log = get_logger(__name__)

#: What a comparison answers: a verdict on the same rows, or why there is none.
Outcome = Verdict | str
#: The deployer's view of a comparison: (request, new model, live model) -> outcome.
Comparison = Callable[[AutoMLRequest, ModelVersion, ModelVersion], Outcome]


def why_no_rows(request: AutoMLRequest) -> str | None:
    """Why the request gives no rows to score both models on (pure), or None when it
    names test rows (``validation.test_data``) and its task can be scored on them."""
    if request.task is Task.FORECASTING:
        return "forecasts are not scored on test rows here"
    if request.validation.test_data is not None:
        return None
    if request.validation.test_data_size is not None:
        return (
            "Azure ML held the test_data_size rows out inside the job, where the live "
            "model never sees them; give validation.test_data to compare on the same rows"
        )
    if request.deployment is not None and request.deployment.only_if_better:
        return (
            "the training data is not a local file the service uploads, so no rows were "
            "held out here; give validation.test_data to compare on the same rows"
        )
    return "the request names no validation.test_data to score both models on"


def where(rows: int) -> str:
    return f"on the same {rows} test rows"


class SameRowsComparison:
    """Implements ``Comparison`` with models from ``model_files`` and test tables read by
    ``read_rows`` (None for a reference it does not read)."""

    def __init__(
        self, model_files: ModelFiles, read_rows: Callable[[str], pd.DataFrame | None]
    ) -> None:
        self._files = model_files
        self._read = read_rows

    def __call__(self, request: AutoMLRequest, new: ModelVersion, live: ModelVersion) -> Outcome:
        """Raises TransientError when the workspace or storage is busy, PermanentError
        when the new model or the test rows cannot be had."""
        from ..local.model_loading import load_model_at
        from ..local.testset import score, score_or_error

        why = why_no_rows(request)
        if why is not None:
            return why
        reference = request.validation.test_data
        assert reference is not None  # why_no_rows said so
        table = self._read(reference)
        if table is None:
            return f"the test rows at {reference} are not read here"
        X, y = features_and_target(table, request)
        if y.empty:
            return f"the test rows at {reference} have no target values"
        label = f"{live.name}:{live.version}"
        fetched = self._files.fetch(ModelRef(new.name, new.version))
        challenger = load_model_at(fetched.path, f"model {new.name}:{new.version}")
        new_scores = score(challenger.predict, request.task, X, y)
        live_scores: dict[str, float] | Exception
        try:
            held = self._files.fetch(ModelRef(live.name, live.version))
            champion = load_model_at(held.path, f"model {label}")
        except TransientError:
            raise
        except Exception as exc:  # a live model that cannot be had is stale
            live_scores = exc
        else:
            live_scores = score_or_error(champion, request.task, X, y)
        verdict = compare_scores(
            new_scores, live_scores, request.selection_metric, request.selection_goal, label,
            margin=request.deployment.min_improvement if request.deployment else 0.0,
            where=where(len(y)),
        )  # fmt: skip
        if verdict is None:
            return f"the new model gives no {request.selection_metric} on the test rows"
        log.info("azure.compared_on_rows", live=label, rows=len(y), reason=verdict.reason)
        return verdict


def features_and_target(
    table: pd.DataFrame, request: AutoMLRequest
) -> tuple[pd.DataFrame, pd.Series]:
    """(features, target) of a test table: the request's ignored columns left out, rows
    without a target dropped (pure)."""
    from ..local.testset import features_and_target as split

    target = request.target_column_name
    if target not in table.columns:
        raise PermanentError(f"the test rows have no target column {target!r}")
    return split(table.drop(columns=list(request.ignored_columns), errors="ignore"), target)
