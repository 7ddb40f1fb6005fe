"""Tether: durable, supervised sessions for AI agents.

from tether import SessionManager
manager = SessionManager()            # ./tether.db, or TETHER_STORE_URL
s = manager.create("tutor", "user-1")
manager.checkpoint(s.session_id, "task_received", {"task": 42})

`AsyncSessionManager` is the same API for asyncio, every method awaited. `Client("http://…")` and
`AsyncClient` are the same API again, against a `tether serve` process.
"""

from typing import TYPE_CHECKING, Any

from tether.core.clock import Clock, ManualClock, SystemClock
from tether.core.errors import (
    AuthError,
    ConfigurationError,
    ConflictError,
    DecryptionError,
    InvalidTransition,
    LeaseLost,
    NotClaimable,
    NotFound,
    PayloadTooLarge,
    SchemaMismatch,
    StoreUnavailable,
    TetherError,
    ValidationError,
)
from tether.core.model import Checkpoint, Failure, Liveness, Page, Session, State
from tether.core.policy import OnTimeout, Policies, Policy
from tether.core.sealing import FernetCodec, PayloadCodec
from tether.events.bus import Event
from tether.flows.seed import from_seed_dict, to_seed_dict
from tether.front.aio import AsyncSessionManager
from tether.front.manager import SessionManager
from tether.stores import Beat, Store, open_store

if TYPE_CHECKING:
    from tether.client import AsyncClient, Client

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """`tether.Client` / `tether.AsyncClient` import httpx on first use, so `import tether` stays light."""
    if name in ("Client", "AsyncClient"):
        import tether.client

        return getattr(tether.client, name)
    raise AttributeError(f"module 'tether' has no attribute {name!r}")


__all__ = [
    "AsyncClient",
    "AsyncSessionManager",
    "AuthError",
    "Beat",
    "Checkpoint",
    "Client",
    "Clock",
    "ConfigurationError",
    "ConflictError",
    "DecryptionError",
    "Event",
    "Failure",
    "FernetCodec",
    "InvalidTransition",
    "LeaseLost",
    "Liveness",
    "ManualClock",
    "NotClaimable",
    "NotFound",
    "OnTimeout",
    "Page",
    "PayloadCodec",
    "PayloadTooLarge",
    "Policies",
    "Policy",
    "SchemaMismatch",
    "Session",
    "SessionManager",
    "State",
    "Store",
    "StoreUnavailable",
    "SystemClock",
    "TetherError",
    "ValidationError",
    "from_seed_dict",
    "open_store",
    "to_seed_dict",
]
