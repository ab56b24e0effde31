"""The decision threshold of a binary classifier (``training.decision_threshold``, or
one chosen for ``training.decision_threshold_metric``).

Asked for, it is set on every model the trainer logs (``decision_threshold``: the label is
the positive class, the second of the two in sorted order, when its probability reaches
the threshold; see ``probabilities``) and recorded in the ``automl_service.decision_threshold``
tag of their runs. A threshold chosen for a metric is each leader's own, chosen on its
validation predictions (pooled out of fold under cross-validation), with the reason in
``automl_service.decision_threshold_reason``. Unset, the label stays the likeliest class.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ...errors import PermanentError
from ...logs import get_logger
from ...metrics import Task
from ...request import AutoMLRequest
from ...runs import RunRecord
from ...tags import THRESHOLD_REASON_TAG as THRESHOLD_REASON_TAG
from ...tags import THRESHOLD_TAG as THRESHOLD_TAG  # the tests and the registry read it here
from .predictions import Fold
from .threshold_choice import choose_threshold


def _field(request: AutoMLRequest) -> str:
    training = request.training
    name = (
        "decision_threshold"
        if training.decision_threshold is not None
        else ("decision_threshold_metric")
    )
    return f"training.{name}"


def refuse_misplaced_threshold(request: AutoMLRequest) -> None:
    """Raise PermanentError when a threshold is asked of a task without classes."""
    if request.training.thresholded and request.task is not Task.CLASSIFICATION:
        raise PermanentError(
            f"{_field(request)} applies to classification, not {request.task.value}"
        )


def check_two_classes(request: AutoMLRequest) -> None:
    """Raise PermanentError when a threshold is asked and the target has other than two
    classes (a missing target is left for the search to report)."""
    if not request.training.thresholded:
        return
    from .datasets import load_part

    target = request.target_column_name
    table = load_part(request.training_data, columns=[target])
    if target not in table.columns:
        return
    classes = table[target].dropna().unique()
    if len(classes) != 2:
        raise PermanentError(
            f"{_field(request)} needs two classes; the target {target!r} has {len(classes)}"
        )


def record_threshold(
    client: Any,
    request: AutoMLRequest,
    leaders: Sequence[tuple[RunRecord, Any]],
    validation: Mapping[str, Any] | None = None,
) -> None:
    """Set the request's threshold, or one chosen on each leader's ``validation``
    predictions (by run id) for the request's metric, on each leader's model and tag its
    run; blocking. A leader without two-class validation probabilities keeps the
    likeliest class, saying why."""
    fixed = request.training.decision_threshold
    metric = request.training.decision_threshold_metric
    for record, model in leaders:
        if model is None:
            continue
        if fixed is not None:
            model.decision_threshold = fixed
            client.set_tag(record.run_id, THRESHOLD_TAG, repr(fixed))
            continue
        if metric is None:
            continue
        fold = (validation or {}).get(record.run_id)
        if not isinstance(fold, Fold) or fold.proba is None or not fold.classes:
            _not_chosen(client, record, "its validation probabilities were not kept")
            continue
        if len(fold.classes) != 2:
            _not_chosen(client, record, f"its validation rows hold {len(fold.classes)} classes")
            continue
        positive = np.asarray(fold.y_true) == fold.classes[1]
        choice = choose_threshold(metric, positive, np.asarray(fold.proba)[:, 1])
        model.decision_threshold = choice.threshold
        client.set_tag(record.run_id, THRESHOLD_TAG, repr(choice.threshold))
        client.set_tag(record.run_id, THRESHOLD_REASON_TAG, choice.reason())
        get_logger("automl_service.trainer").info(
            "trainer.threshold_chosen", run_id=record.run_id, threshold=choice.threshold,
            metric=metric, value=choice.value, value_at_half=choice.value_at_half,
        )  # fmt: skip


def _not_chosen(client: Any, record: RunRecord, why: str) -> None:
    reason = f"not chosen: {why}; the label is the likeliest class"
    client.set_tag(record.run_id, THRESHOLD_REASON_TAG, reason)
    get_logger("automl_service.trainer").info(
        "trainer.threshold_not_chosen", run_id=record.run_id, reason=reason
    )
