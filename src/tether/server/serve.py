"""Start the service: refuse an open server off loopback, then run uvicorn (one process, or N)."""

from __future__ import annotations

import logging
import os

from tether.core.errors import ConfigurationError
from tether.server.settings import ServerSettings
from tether.stores import open_store


def check_bind(settings: ServerSettings) -> bool:
    """True if the store holds API keys. Without any, only a loopback bind may serve (open mode)."""
    store = open_store(settings.store_url)
    try:
        keyed = bool(store.list_api_keys())
    finally:
        store.close()
    if not keyed and not settings.loopback:
        raise ConfigurationError(
            f"refusing to serve on {settings.host} without API keys: create one with "
            "`tether keys create --user NAME`, or bind to 127.0.0.1"
        )
    return keyed


def serve(settings: ServerSettings, port: int, workers: int = 1) -> None:
    import uvicorn

    if workers < 1:
        raise ConfigurationError(f"--workers must be at least 1, got {workers}")
    check_bind(settings)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    if workers == 1:
        from tether.server.app import create_app

        uvicorn.run(create_app(settings), host=settings.host, port=port, log_level="info")
        return
    os.environ.update(settings.to_env())  # the worker processes build the app from these
    uvicorn.run(
        "tether.server.app:app_from_env", factory=True, host=settings.host, port=port, workers=workers
    )
