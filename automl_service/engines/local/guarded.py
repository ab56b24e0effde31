"""FLAML learners whose failing fit is recorded on the estimator instead of ending the search.

FLAML runs a trial as: build the learner, ``fit`` it, then call the custom metric. An
exception in ``fit`` (a statsmodels model that cannot be specified for a configuration,
say) would end ``AutoML.fit`` and with it the whole job. A guarded learner is a subclass
whose ``fit`` catches the exception and keeps it in ``fit_error``; the metric then logs the
trial as failed and answers an infinite loss, and the search goes on. Registered under the
learner's own name (FLAML's ``add_learner``), so search spaces and names are unchanged.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

#: The attribute a guarded fit sets: None, or the error of the failed fit.
FIT_ERROR = "fit_error"

_GUARDED: dict[type, type] = {}


def guarded(base: type) -> type:
    """The guarded subclass of the FLAML learner class ``base`` (one per class)."""
    found = _GUARDED.get(base)
    if found is not None:
        return found

    base_fit = base.fit  # type: ignore[attr-defined]  # every FLAML learner has one

    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        setattr(self, FIT_ERROR, None)
        try:
            return base_fit(self, *args, **kwargs)
        except Exception as exc:  # a learner's own failure, recorded for the trial log
            setattr(self, FIT_ERROR, f"{type(exc).__name__}: {exc}")
            return 0.0

    made = type(f"Guarded{base.__name__}", (base,), {"fit": fit, "guarded_base": base})
    _GUARDED[base] = made
    return made


def guard_learners(automl: Any, task_name: str, names: Iterable[str]) -> None:
    """Register each of FLAML's built-in learners ``names`` on ``automl``, guarded."""
    from flaml.automl.task.factory import task_factory

    task = task_factory(task_name)
    for name in names:
        automl.add_learner(name, guarded(task.estimator_class_from_str(name)))


def fit_error(estimator: Any) -> str | None:
    """The error of the estimator's failed fit, or None."""
    error = getattr(estimator, FIT_ERROR, None)
    return None if error is None else str(error)


def unguarded(estimator: Any) -> Any:
    """A deep copy of ``estimator`` as its plain FLAML class (what a saved model holds, so
    loading it needs no guarded class)."""
    made = copy.deepcopy(estimator)
    base = getattr(type(made), "guarded_base", None)
    if base is not None:
        made.__class__ = base
        vars(made).pop(FIT_ERROR, None)
    return made
