"""Shared fixtures. Stores are chosen by URL; real PostgreSQL and Redis, never mocks.

PostgreSQL and Redis tests skip with a reason when the server is not reachable, unless
TETHER_REQUIRE_SERVICES=1 (set by .ci/run), which turns the skip into a failure.
"""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest

from tether import ManualClock, OnTimeout, Policies, Policy, SessionManager
from tether.stores import Store, open_store

POSTGRES_URL = os.environ.get("TETHER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TETHER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE_SERVICES = os.environ.get("TETHER_REQUIRE_SERVICES") == "1"


def service_missing(name: str, reason: str) -> None:
    """Skip locally; fail in CI, where every service must be there."""
    message = f"{name} not reachable ({reason})"
    if REQUIRE_SERVICES:
        pytest.fail(message + " and TETHER_REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(message)


STORE_KINDS = ["memory", "sqlite", "postgres"]

# Schemas made by fresh_postgres_url in this process, dropped when the run ends.
_POSTGRES_SCHEMAS: list[str] = []


def make_store_url(kind: str, tmp_path: object) -> str:
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path}/tether.db"
    if kind == "postgres":
        return fresh_postgres_url()
    raise ValueError(kind)


@cache
def _postgres_unreachable() -> str | None:
    """Why the test server cannot be used, or None; asked once per run."""
    try:
        import psycopg

        with psycopg.connect(POSTGRES_URL, connect_timeout=3):
            return None
    except ImportError:
        return "psycopg is not installed: pip install 'tether[postgres]'"
    except Exception as exc:
        return f"{POSTGRES_URL}: {exc}".strip()


def postgres_admin() -> Any:
    """An autocommit connection to the test database (skips or fails if there is none)."""
    reason = _postgres_unreachable()
    if reason is not None:
        service_missing("PostgreSQL", reason)
    import psycopg

    return psycopg.connect(POSTGRES_URL, autocommit=True)


# t_<host>_<pid>_<random>: a later run on this host drops the schemas of runs that died.
_SCHEMA_PREFIX = f"t_{hashlib.sha1(socket.gethostname().encode()).hexdigest()[:4]}_"


def fresh_postgres_url(**query: str) -> str:
    """A store URL on a new, empty schema of the test database, so no run sees another's data."""
    schema = f"{_SCHEMA_PREFIX}{os.getpid()}_{uuid.uuid4().hex[:10]}"
    with postgres_admin() as conn:
        _drop_schemas_of_dead_runs(conn)
        conn.execute(f"CREATE SCHEMA {schema}")
    _POSTGRES_SCHEMAS.append(schema)
    options = "&".join([f"options=-csearch_path%3D{schema}", *(f"{k}={v}" for k, v in query.items())])
    return f"{POSTGRES_URL}{'&' if '?' in POSTGRES_URL else '?'}{options}"


_SWEPT: list[bool] = []


def _drop_schemas_of_dead_runs(conn: Any) -> None:
    """Once per process: drop this host's test schemas whose process is gone (killed runs)."""
    if _SWEPT:
        return
    _SWEPT.append(True)
    rows = conn.execute("SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s)", (_SCHEMA_PREFIX,))
    for (schema,) in rows.fetchall():
        pid = int(schema[len(_SCHEMA_PREFIX) :].split("_")[0])
        if not _alive(pid):
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@pytest.fixture(scope="session", autouse=True)
def _drop_postgres_schemas() -> Iterator[None]:
    yield
    if _POSTGRES_SCHEMAS:
        with postgres_admin() as conn:
            for schema in _POSTGRES_SCHEMAS:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture(params=STORE_KINDS)
def store_url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    return make_store_url(request.param, tmp_path)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store(store_url: str, clock: ManualClock) -> Iterator[Store]:
    s = open_store(store_url, clock)
    yield s
    s.close()


# The agent types the contract suite relies on: "tutor" and any other type get the default
# (60 s lease, suspect after 30 s, 3 recoveries); "fragile" may be recovered once; "strict" never.
TEST_POLICIES = Policies(
    default=Policy(timeout=60.0, suspect_after=30.0, max_recoveries=3),
    by_type={
        "fragile": Policy(timeout=60.0, suspect_after=30.0, max_recoveries=1),
        "strict": Policy(timeout=60.0, suspect_after=30.0, on_timeout=OnTimeout.FAIL),
    },
)


@pytest.fixture
def policies() -> Policies:
    return TEST_POLICIES


@pytest.fixture
def manager(store: Store, policies: Policies) -> Iterator[SessionManager]:
    m = SessionManager(store, policies=policies, worker_id="worker-a")
    yield m
