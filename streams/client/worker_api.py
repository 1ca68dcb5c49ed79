"""Reading the worker's web API from the command line (``profile``, ``models``,
``clusters``): one GET, JSON back, the worker's token sent and its CA trusted, and a
one-line error when the worker can't answer or refuses the token."""

from __future__ import annotations

import http.client
import json
import os
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams.errors import UserError
from streams.kafka_config import Secret

__all__ = ["WebAccess", "default_worker", "get_json", "said"]


@dataclass(frozen=True)
class WebAccess:
    """How to reach a worker's API: its bearer token (``--web-token``) and, for an
    ``https://`` address, the CA that signed its certificate (None: the system's)."""

    token: Secret | None = field(default=None, repr=False)
    ca: Path | None = None

    def request(self, url: str) -> tuple[urllib.request.Request, ssl.SSLContext | None]:
        from streams.web_auth import client_context

        headers = {} if self.token is None else {"Authorization": f"Bearer {self.token}"}
        context = client_context(self.ca) if url.startswith("https:") else None
        return urllib.request.Request(url, headers=headers), context


def default_worker() -> str:
    """``SEGSTREAM_WORKER_URL``, or the worker's default address."""
    return os.environ.get("SEGSTREAM_WORKER_URL", "http://127.0.0.1:6066")


def said(error: urllib.error.HTTPError) -> str:
    """``': <the error the worker gave>'`` from a JSON error body, or ``''``."""
    try:
        message = json.loads(error.read()).get("error")
    except (ValueError, AttributeError, OSError):
        return ""
    return f": {message}" if isinstance(message, str) else ""


def get_json(worker: str, path: str, timeout: float = 10.0,
             access: WebAccess | None = None) -> dict[str, Any]:
    """``GET worker + path`` as a dict; :class:`urllib.error.HTTPError` passes through
    (the caller knows what a 404 means) except a refused token; that, and no answer
    at all, are a :class:`UserError`."""
    url = f"{worker.rstrip('/')}{path}"
    request, context = (access or WebAccess()).request(url)
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            raise UserError(f"the worker at {worker} needs a token: give --web-token, "
                            "--web-token-file or SEGSTREAM_WEB_TOKEN") from None
        if exc.code == 403:
            raise UserError(f"the worker at {worker} refused the token (--web-token)"
                            ) from None
        raise
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        hint = ""
        if isinstance(reason, ssl.SSLCertVerificationError):
            hint = ": give the CA that signed its certificate as --web-ca"
        elif isinstance(reason, ssl.SSLError):
            hint = ": it does not answer in TLS; is its address http://...?"
        elif url.startswith("http:") and isinstance(exc, ConnectionResetError):
            hint = ": if it serves TLS (--web-cert), its address is https://..."
        raise UserError(f"cannot reach the worker at {worker} ({reason}){hint}") from None
