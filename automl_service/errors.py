"""One error hierarchy; each class tells the worker what to do with the request."""

from __future__ import annotations


class AutoMLServiceError(Exception):
    """Base of every error the service raises on purpose."""


class TransientError(AutoMLServiceError):
    """Try again later: the attempt counts as a failure, the message comes back.

    ``retry_after`` (seconds), when known, is how long the backend asked us to wait.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(AutoMLServiceError):
    """The request can never succeed as it is: it ends as failed with this reason."""


class InvalidRequest(PermanentError):
    """The message is not a valid request (not JSON, schema errors, too large).

    It goes to the poison queue at once, with this reason.
    """


class JobFailed(PermanentError):
    """The AutoML job ended failed or canceled."""


class NoEligibleRun(PermanentError):
    """No child run finished with a finite value of the selection metric."""


class ConfigurationError(AutoMLServiceError):
    """Settings are missing or contradict each other: the service itself cannot work."""


class NotReady(AutoMLServiceError):
    """The step is under way (a job running, a deployment provisioning): check again later.

    Not a failure: it never counts towards the poison threshold. ``recheck_after``
    (seconds), when known, is when the backend expects the step to have moved on.
    """

    def __init__(self, message: str, *, recheck_after: float | None = None) -> None:
        super().__init__(message)
        self.recheck_after = recheck_after


class StaleReceipt(AutoMLServiceError):
    """The receipt no longer holds the message: its visibility ran out and another receiver
    took it, or it was moved to the poison queue. Let go of the message; never retry the
    same call with this receipt."""
