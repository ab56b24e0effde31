"""A request's time limit as one training attempt's deadline (pure).

``limits.timeout_seconds`` bounds the whole job, as Azure's experiment timeout does: the
trainer's start-up, reading the data, the baselines, the search, the ensemble, refitting
the leaders on every row and logging their models all come out of it. The search gets
what is left once a reserve for the steps after it is set aside; those steps then run
only while time is left, except logging the winners' models, without which there is no
result.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

#: Share of the budget kept for the steps after the search (ensemble, refit, logging)...
RESERVE_FRACTION = 0.1
#: ...at least this many seconds, and never more than half of what is left.
MIN_RESERVE_SECONDS = 1.5
#: The search always gets at least this long (FLAML needs a moment for one trial).
MIN_SEARCH_SECONDS = 1.0
#: The search a refused budget is told it would get with the time limit suggested.
SUGGESTED_SEARCH_SECONDS = 10.0


@dataclass(frozen=True)
class Budget:
    """``seconds`` from ``started_at`` (``clock()`` time) for one training attempt."""

    seconds: float
    started_at: float
    clock: Callable[[], float] = field(default=time.time, compare=False)

    @property
    def deadline(self) -> float:
        return self.started_at + self.seconds

    def left(self) -> float:
        """Seconds until the deadline (negative once it has passed)."""
        return self.deadline - self.clock()

    def search_seconds(self) -> float:
        """The search's own time budget: what is left, less the reserve for the steps
        after it."""
        left = self.left()
        reserve = min(max(MIN_RESERVE_SECONDS, RESERVE_FRACTION * self.seconds), left / 2)
        return max(MIN_SEARCH_SECONDS, left - reserve)

    def allows(self, seconds: float) -> bool:
        """Whether ``seconds`` more of work ends before the deadline."""
        return self.clock() + seconds <= self.deadline

    def spent(self) -> float:
        """Seconds since the start."""
        return self.clock() - self.started_at

    def suggested_seconds(self, search: float = SUGGESTED_SEARCH_SECONDS) -> int:
        """The smallest whole time limit that, with what is spent so far spent again,
        leaves ``search`` seconds for the search after the reserve."""
        spent = max(0.0, self.spent())
        fraction = (spent + search) / (1 - RESERVE_FRACTION)
        return math.ceil(max(spent + search + MIN_RESERVE_SECONDS, fraction))

    def too_small(self, doing: str, took: float) -> str | None:
        """Why the time limit leaves no time to search once ``doing`` (e.g. "starting and
        reading 1,000,000 rows"), whose own part took ``took`` seconds, is done, with the
        limit that would; None while time is left, or when ``doing`` itself took less than
        half the limit (a slow start on a busy machine is not the data's fault: the search
        then gets its minimum and a search without any trial says the same)."""
        if self.left() > 0 or took < self.seconds / 2:
            return None
        return (
            f"limits.timeout_seconds = {self.seconds:g} is too small for this data: "
            f"{doing} took {self.spent():.1f} s, which leaves no time to search; a time "
            f"limit of at least {self.suggested_seconds()} s leaves "
            f"{SUGGESTED_SEARCH_SECONDS:g} s for the search"
        )

    def for_search(self) -> Budget:
        """The search's share from now: ``search_seconds``, on the same clock."""
        return Budget(self.search_seconds(), self.clock(), self.clock)
