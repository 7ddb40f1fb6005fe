"""The public API changes only on purpose: `tether.__all__` is pinned here, and so is the error tree."""

from __future__ import annotations

import subprocess
import sys

import tether
from tests.support import subprocess_env

PUBLIC_API = [
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


def test_all_is_pinned() -> None:
    assert sorted(tether.__all__) == PUBLIC_API


def test_every_public_name_exists() -> None:
    missing = [name for name in tether.__all__ if not hasattr(tether, name)]
    assert missing == []


def test_the_error_tree_is_as_documented() -> None:
    expected = {
        "NotFound": "TetherError",
        "InvalidTransition": "TetherError",
        "ConflictError": "TetherError",
        "LeaseLost": "ConflictError",
        "NotClaimable": "ConflictError",
        "ValidationError": "TetherError",
        "PayloadTooLarge": "ValidationError",
        "StoreUnavailable": "TetherError",
        "SchemaMismatch": "TetherError",
        "ConfigurationError": "TetherError",
        "DecryptionError": "TetherError",
        "AuthError": "TetherError",
    }
    for name, parent in expected.items():
        cls = getattr(tether, name)
        assert cls.__mro__[1] is getattr(tether, parent), name
        assert name in (tether.core.errors.__doc__ or "")
    assert issubclass(tether.ValidationError, ValueError)


def test_import_tether_loads_no_database_driver_or_server() -> None:
    probe = (
        "import sys, tether; "
        "print(' '.join(m for m in ('psycopg', 'psycopg_pool', 'redis', 'fastapi', 'uvicorn', 'httpx', "
        "'cryptography') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], env=subprocess_env(), capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
