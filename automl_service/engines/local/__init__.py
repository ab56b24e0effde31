"""The local backend's engine: FLAML in a detached child process, MLflow child runs.

``LocalEngine`` is imported lazily so the trainer process starts (and takes its locks)
before MLflow and FLAML are loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .engine import LocalEngine

__all__ = ["LocalEngine"]


def __getattr__(name: str) -> Any:
    if name == "LocalEngine":
        from .engine import LocalEngine

        return LocalEngine
    raise AttributeError(name)
