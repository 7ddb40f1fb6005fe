"""What a `postgresql://` URL says: libpq's connection string, and the pool settings Tether reads
from its query (the rest of the query goes to libpq). Used by the store and the event bridge."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from tether.core.errors import ConfigurationError

# URL query parameters the store consumes; everything else goes to libpq (sslmode, options, …).
POOL_DEFAULTS = {"pool_min": 1, "pool_max": 10, "pool_timeout": 10.0}
# Bounded waits, in seconds (0: none), sent to the server as its own settings: how long a statement
# waits for a row lock another transaction holds (one stuck session must not stall its callers for
# good), and how long any statement may run.
TIMEOUT_DEFAULTS = {"lock_timeout": 5.0, "statement_timeout": 60.0}
# Timestamps come back in UTC, as the store contract asks, without converting each one.
UTC_OPTION = "-c TimeZone=UTC"


@dataclass(frozen=True, slots=True)
class PoolSettings:
    conninfo: str
    min_size: int
    max_size: int
    timeout: float
    lock_timeout: float = TIMEOUT_DEFAULTS["lock_timeout"]

    @classmethod
    def from_url(cls, url: str) -> PoolSettings:
        """`postgresql://user@host/db?pool_max=20&pool_timeout=5&lock_timeout=2&sslmode=…`."""
        parts = urlsplit(url)
        libpq, pool, waits = {}, dict(POOL_DEFAULTS), dict(TIMEOUT_DEFAULTS)
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key in POOL_DEFAULTS:
                pool[key] = _number(key, value)
            elif key in TIMEOUT_DEFAULTS:
                waits[key] = _number(key, value)
            else:
                libpq[key] = value
        min_size, max_size = int(pool["pool_min"]), int(pool["pool_max"])
        if not 0 <= min_size <= max_size or max_size < 1:
            raise ConfigurationError(f"need 0 <= pool_min <= pool_max and pool_max >= 1 in {url!r}")
        server = " ".join(f"-c {key}={round(seconds * 1000)}" for key, seconds in waits.items())
        libpq["options"] = " ".join(filter(None, (server, libpq.get("options"), UTC_OPTION)))
        conninfo = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(libpq, quote_via=quote), ""))
        return cls(conninfo, min_size, max_size, float(pool["pool_timeout"]), waits["lock_timeout"])


def redacted(url: str) -> str:
    """The URL as shown to people (`tether migrate`, logs): the password replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _number(key: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ConfigurationError(f"{key} must be a number, got {value!r}") from None
    if number < 0:
        raise ConfigurationError(f"{key} must not be negative, got {value!r}")
    return number
