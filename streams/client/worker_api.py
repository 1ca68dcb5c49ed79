"""Reading the worker's web API from the command line (``profile``, ``models``,
``clusters``): one GET, JSON back, and a one-line error when the worker can't answer."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

from streams.errors import UserError

__all__ = ["default_worker", "get_json"]


def default_worker() -> str:
    """``SEGSTREAM_WORKER_URL``, or the worker's default address."""
    return os.environ.get("SEGSTREAM_WORKER_URL", "http://127.0.0.1:6066")


def get_json(worker: str, path: str, timeout: float = 10.0) -> dict[str, Any]:
    """``GET worker + path`` as a dict; :class:`urllib.error.HTTPError` passes through
    (the caller knows what a 404 means), no answer at all is a :class:`UserError`."""
    url = f"{worker.rstrip('/')}{path}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError:
        raise
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UserError(f"cannot reach the worker at {worker} ({reason})") from exc
