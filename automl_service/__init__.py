"""automl_service: queue-driven AutoML with best-run selection, registration and deployment."""

from .errors import (
    AutoMLServiceError,
    ConfigurationError,
    InvalidRequest,
    JobFailed,
    NoEligibleRun,
    NotReady,
    PermanentError,
    TransientError,
)
from .metrics import Goal, Task
from .request import AutoMLRequest, parse_request
from .runs import RunRecord
from .selection import Selection, select_best

__version__ = "0.1.0"

__all__ = [
    "AutoMLRequest",
    "AutoMLServiceError",
    "ConfigurationError",
    "Goal",
    "InvalidRequest",
    "JobFailed",
    "NoEligibleRun",
    "NotReady",
    "PermanentError",
    "RunRecord",
    "Selection",
    "Task",
    "TransientError",
    "__version__",
    "parse_request",
    "select_best",
]
