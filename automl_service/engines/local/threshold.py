"""The decision threshold of a binary classifier (``training.decision_threshold``).

Asked for, it is set on every model the trainer logs (``decision_threshold``: the label is
the positive class, the second of the two in sorted order, when its probability reaches
the threshold; see ``probabilities``) and recorded in the ``automl_service.decision_threshold``
tag of their runs. Unset, the label stays the likeliest class.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...errors import PermanentError
from ...metrics import Task
from ...request import AutoMLRequest
from ...runs import RunRecord

THRESHOLD_TAG = "automl_service.decision_threshold"


def refuse_misplaced_threshold(request: AutoMLRequest) -> None:
    """Raise PermanentError when a threshold is asked of a task without classes."""
    if request.training.decision_threshold is not None and request.task is not Task.CLASSIFICATION:
        raise PermanentError(
            f"training.decision_threshold applies to classification, not {request.task.value}"
        )


def check_two_classes(request: AutoMLRequest) -> None:
    """Raise PermanentError when a threshold is asked and the target has other than two
    classes (a missing target is left for the search to report)."""
    if request.training.decision_threshold is None:
        return
    from .datasets import load_part

    target = request.target_column_name
    table = load_part(request.training_data, columns=[target])
    if target not in table.columns:
        return
    classes = table[target].dropna().unique()
    if len(classes) != 2:
        raise PermanentError(
            f"training.decision_threshold needs two classes; the target {target!r} has "
            f"{len(classes)}"
        )


def record_threshold(
    client: Any, request: AutoMLRequest, leaders: Sequence[tuple[RunRecord, Any]]
) -> None:
    """Set the request's threshold on each leader's model and tag its run; blocking."""
    threshold = request.training.decision_threshold
    if threshold is None:
        return
    for record, model in leaders:
        if model is None:
            continue
        model.decision_threshold = threshold
        client.set_tag(record.run_id, THRESHOLD_TAG, repr(threshold))
