"""Tether: durable, supervised sessions for AI agents.

from tether import SessionManager
manager = SessionManager()            # ./tether.db, or TETHER_STORE_URL
s = manager.create("tutor", "user-1")
manager.checkpoint(s.session_id, "task_received", {"task": 42})

`AsyncSessionManager` is the same API for asyncio, every method awaited.
"""

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

__version__ = "0.1.0"

__all__ = [
    "AsyncSessionManager",
    "AuthError",
    "Beat",
    "Checkpoint",
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
