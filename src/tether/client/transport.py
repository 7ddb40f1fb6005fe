"""How a client reaches the server: where and as whom (TETHER_URL, TETHER_API_KEY), and when to retry.

Retries are limited to the two cases that are safe for every request, writes included:
- the connection was never made (refused, no route, connect timeout): the server saw nothing;
- the server answered `503 store_unavailable`: the library raises StoreUnavailable only when nothing
  was written (the answer's `Retry-After` sets the wait).
Anything else is raised at once: a read timeout or a connection dropped mid-answer may have left the
write done, and repeating it blindly (a second checkpoint, say) is worse than telling the caller.
After the last try the caller gets StoreUnavailable, which worker loops already wait out.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from functools import cache
from typing import TypeVar

import certifi
import httpx

from tether.client.calls import Call, answer
from tether.core.errors import ConfigurationError, StoreUnavailable

T = TypeVar("T")

DEFAULT_URL = "http://127.0.0.1:8000"
RETRIES = 3  # tries after the first
BACKOFF = 0.2  # seconds before the first retry, doubled each time
MAX_WAIT = 5.0  # the longest wait, whatever Retry-After says
TIMEOUT = httpx.Timeout(30.0, connect=5.0)
NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout)


def server_url(url: str | None) -> str:
    """The given URL, else TETHER_URL, else the `tether serve` default."""
    chosen = (url or os.environ.get("TETHER_URL") or DEFAULT_URL).rstrip("/")
    if not chosen.startswith(("http://", "https://")):
        raise ConfigurationError(f"the Tether server URL must start with http:// or https://, got {chosen!r}")
    return chosen


@cache
def tls() -> ssl.SSLContext:
    """httpx's default verification (certifi's CAs), built once per process: loading the CA bundle
    is most of what making a client costs."""
    return ssl.create_default_context(cafile=certifi.where())


def auth_headers(api_key: str | None) -> dict[str, str]:
    """`Authorization: Bearer <key>` from the given key, else TETHER_API_KEY (none: open mode)."""
    key = api_key if api_key is not None else os.environ.get("TETHER_API_KEY")
    return {"Authorization": f"Bearer {key}"} if key else {}


@dataclass(frozen=True, slots=True)
class Retry:
    """Send the call again after `delay` seconds."""

    delay: float


def settle(
    call: Call[T],
    attempt: int,
    response: httpx.Response | None,
    error: httpx.TransportError | None,
    retries: int,
) -> T | Retry:
    """What try number `attempt` (0 first) of a call came to: its result, its exception, or a retry."""
    if error is not None:
        if isinstance(error, NEVER_SENT) and attempt < retries:
            return Retry(BACKOFF * 2**attempt)
        sent = "" if isinstance(error, NEVER_SENT) else " (the request may have reached it)"
        raise StoreUnavailable(f"cannot reach the Tether server{sent}: {error!r}") from error
    assert response is not None
    if response.status_code == 503 and attempt < retries:
        return Retry(min(MAX_WAIT, _retry_after(response) or BACKOFF * 2**attempt))
    return answer(call, response)


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return None
