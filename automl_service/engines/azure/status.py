"""Pure decisions about Azure ML jobs: status mapping, polling rhythm, iteration runs."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from ...runs import RunRecord
from ..base import JobState

#: Every status Azure ML reports for a job, onto the engine's states.
AZURE_STATES: Final[dict[str, JobState]] = {
    "NotStarted": JobState.QUEUED,
    "Queued": JobState.QUEUED,
    "Preparing": JobState.QUEUED,
    "Starting": JobState.QUEUED,
    "Provisioning": JobState.QUEUED,
    "Paused": JobState.QUEUED,  # waits for capacity or a resume; not an end
    "Running": JobState.RUNNING,
    "NotResponding": JobState.RUNNING,  # heartbeats missing; the service may recover it
    "Finalizing": JobState.FINISHING,
    "CancelRequested": JobState.FINISHING,  # on its way to Canceled
    "Completed": JobState.COMPLETED,
    "Failed": JobState.FAILED,
    "Canceled": JobState.CANCELED,
}


def map_status(status: str | None) -> JobState:
    """The engine state for an Azure job status; an unknown one counts as running."""
    if status is None:
        return JobState.QUEUED
    return AZURE_STATES.get(status, JobState.RUNNING)


@dataclass(frozen=True)
class PollSchedule:
    """How often a running job's status is fetched: a tenth of its age, within bounds.

    A one-hour job costs about 45 status calls, a day-long one about 320, instead of one
    per worker re-check.
    """

    min_seconds: float = 15.0
    max_seconds: float = 300.0
    fraction_of_age: float = 0.1

    def interval(self, age_seconds: float) -> float:
        return min(self.max_seconds, max(self.min_seconds, age_seconds * self.fraction_of_age))

    def polls_until(self, duration_seconds: float) -> int:
        """How many status calls a job running ``duration_seconds`` costs (one at submit)."""
        polls, t = 1, 0.0
        while t < duration_seconds:
            t += self.interval(t)
            polls += 1
        return polls


def iteration_filter(parent_run_id: str) -> Callable[[RunRecord], bool]:
    """Keeps the training iterations ``<parent>_<n>``; drops ``_setup``, ``_featurize``,
    ``_ModelExplain`` and the like, which carry no primary metric."""
    pattern = re.compile(re.escape(parent_run_id) + r"_\d+")

    def keep(run: RunRecord) -> bool:
        return pattern.fullmatch(run.run_id) is not None

    return keep
