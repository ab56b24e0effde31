"""The service's exit codes, one table for every command and the worker loop.

A supervisor reads them: 2 means "do not restart until someone changes the settings or
the input"; 3 means "a store or the queue could not be reached: restart later".
"""

from __future__ import annotations

EXIT_OK = 0
#: A request ended failed (``submit --wait``), the health check failed, or the loop broke.
EXIT_FAILED = 1
#: Bad input or bad settings.
EXIT_USAGE = 2
#: The queue, a store or the backend could not be reached.
EXIT_UNREACHABLE = 3
