"""Freed memory handed back to the system after a large step, so the trainer's resident
memory (and its peak, which the next step adds to) follows what it still holds."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
from typing import Any


@functools.cache
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


def release() -> None:
    """Collect garbage, then ask glibc's allocator to return its free pages
    (``malloc_trim(0)``); only the first where there is no glibc."""
    gc.collect()
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
