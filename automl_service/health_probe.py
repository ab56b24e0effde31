"""The client side of the health endpoints (``automl-service health``), for a container
HEALTHCHECK."""

from __future__ import annotations

import urllib.error
import urllib.request
from http import HTTPStatus
from urllib.parse import urlsplit

from .health import HEALTHZ_PATH


def check_health(url: str, timeout: float) -> int:
    """0 when ``GET url`` answers 200 within ``timeout`` seconds, else 1. Never raises.

    A URL without a path checks ``/healthz``.
    """
    if urlsplit(url).path in ("", "/"):
        url = url.rstrip("/") + HEALTHZ_PATH
    # No proxies: the server is on this host, and a proxy from the environment would
    # answer for it.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:
            healthy = response.status == HTTPStatus.OK
            print(f"{'healthy' if healthy else 'unhealthy'}: {url} answered {response.status}")
            return 0 if healthy else 1
    except urllib.error.HTTPError as exc:
        print(f"unhealthy: {url} answered {exc.code}")
        return 1
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        print(f"unhealthy: no answer from {url} ({reason})")
        return 1
