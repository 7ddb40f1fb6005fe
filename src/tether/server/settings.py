"""How a `tether serve` process is configured: from `tether serve`'s options, or (for uvicorn's worker
processes, which import the app by name) the same values from TETHER_SERVE_* environment variables."""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass

from tether.core import config

MIB = 1024 * 1024
MAX_BODY_BYTES = 4 * MIB  # a request body (each JSON payload in it: the library's limit, 1 MiB)
IMPORT_MAX_BYTES = 64 * MIB  # the body limit of POST /v1/import (seed JSONL)


@dataclass(frozen=True, slots=True)
class ServerSettings:
    store_url: str
    redis_url: str | None = None
    host: str = "127.0.0.1"
    max_depth: int = 512  # JSON nesting levels in a request body (the library keeps 200-deep data)
    ring_size: int = 10_000  # events kept for Last-Event-ID resumption
    ping_seconds: float = 15.0
    supervise: bool = True
    sweep_interval: float | None = None  # default: a quarter of the shortest policy timeout

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)

    def to_env(self) -> dict[str, str]:
        env = {"TETHER_STORE_URL": self.store_url, "TETHER_SERVE_HOST": self.host}
        if self.redis_url:
            env["TETHER_REDIS_URL"] = self.redis_url
        if self.sweep_interval is not None:
            env["TETHER_SERVE_SWEEP_INTERVAL"] = str(self.sweep_interval)
        return env

    @classmethod
    def from_env(cls) -> ServerSettings:
        interval = os.environ.get("TETHER_SERVE_SWEEP_INTERVAL")
        return cls(
            store_url=config.store_url(),
            redis_url=config.redis_url(),
            host=os.environ.get("TETHER_SERVE_HOST", "127.0.0.1"),
            sweep_interval=float(interval) if interval else None,
        )


def is_loopback(host: str) -> bool:
    """True if every address the host name resolves to is a loopback one."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(str(info[4][0])).is_loopback for info in infos)
