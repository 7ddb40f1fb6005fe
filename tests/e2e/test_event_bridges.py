"""Events across processes: Redis pub/sub and PostgreSQL LISTEN/NOTIFY, against the real servers."""

from __future__ import annotations

import queue
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import POSTGRES_URL, REDIS_URL, service_missing
from tests.support import subprocess_env
from tether import Event, SessionManager
from tether.core.errors import ConfigurationError
from tether.events.bus import EventBus, bridge
from tether.events.postgres import MAX_CHANNEL, channel_name

WAIT = 5.0


@pytest.fixture(params=["redis", "postgres"])
def events_url(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        import redis

        try:
            redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
        except redis.RedisError as exc:
            service_missing("Redis", str(exc))
        return REDIS_URL
    import psycopg

    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=2).close()
    except psycopg.Error as exc:
        service_missing("PostgreSQL", str(exc))
    return POSTGRES_URL


@pytest.fixture
def namespace() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def received(events_url: str, namespace: str) -> Iterator[queue.Queue[Event]]:
    """Events that reach a listening manager of its own, as another process's would."""
    listener = SessionManager("memory://", worker_id="listener")
    inbox: queue.Queue[Event] = queue.Queue()
    listener.subscribe(inbox.put)
    with bridge(listener.events, events_url, namespace):
        yield inbox


def _next(inbox: queue.Queue[Event], kind: str) -> Event:
    while True:
        event = inbox.get(timeout=WAIT)
        if event.kind == kind:
            return event


def test_another_managers_events_arrive_and_heartbeats_stay_home(
    events_url: str, namespace: str, received: queue.Queue[Event]
) -> None:
    with SessionManager("memory://", worker_id="w1") as worker, bridge(worker.events, events_url, namespace):
        session = worker.create("tutor", "u1")
        worker.heartbeat(session.session_id, epoch=1)
        worker.checkpoint(session.session_id, "task_received", {"task": 1}, epoch=1)
    created = _next(received, "created")
    assert created.session_id == session.session_id
    assert created.data["owner"] == "w1"
    checkpoint = _next(received, "checkpoint")
    assert (checkpoint.seq, checkpoint.data["name"]) == (1, "task_received")
    assert received.empty()  # the heartbeat was not broadcast


def test_a_bridge_does_not_hear_its_own_events_twice(events_url: str, namespace: str) -> None:
    manager = SessionManager("memory://")
    inbox: queue.Queue[Event] = queue.Queue()
    manager.subscribe(inbox.put)
    with bridge(manager.events, events_url, namespace):
        manager.create("tutor", "u1")
        assert inbox.get(timeout=WAIT).kind == "created"
        with pytest.raises(queue.Empty):
            inbox.get(timeout=0.5)


def test_events_namespaces_do_not_mix(events_url: str, received: queue.Queue[Event]) -> None:
    with SessionManager("memory://") as worker, bridge(worker.events, events_url, "another-namespace"):
        worker.create("tutor", "u1")
    with pytest.raises(queue.Empty):
        received.get(timeout=0.5)


def test_events_from_a_separate_process_arrive(
    events_url: str, namespace: str, received: queue.Queue[Event], tmp_path: Path
) -> None:
    script = textwrap.dedent(
        f"""
        from tether import SessionManager
        from tether.events.bus import bridge
        with SessionManager("memory://", worker_id="child") as m:
            with bridge(m.events, {events_url!r}, {namespace!r}):
                s = m.create("alert", "u9")
                m.complete(s.session_id, epoch=1)
        """
    )
    subprocess.run([sys.executable, "-c", script], env=subprocess_env(), cwd=tmp_path, check=True, timeout=60)
    assert _next(received, "created").data["owner"] == "child"
    assert _next(received, "completed").data["state"] == "completed"


def test_long_postgres_channel_names_are_hashed_to_fit() -> None:
    long_a, long_b = "x" * 80 + "a", "x" * 80 + "b"
    assert channel_name("tether") == "tether_events:tether"
    assert len(channel_name(long_a).encode()) <= MAX_CHANNEL
    assert channel_name(long_a) != channel_name(long_b)


def test_bridge_needs_a_redis_or_postgres_url() -> None:
    with pytest.raises(ConfigurationError):
        bridge(EventBus(), "sqlite:///x.db", "sqlite:///x.db")


@pytest.mark.parametrize("events_url", ["postgres"], indirect=True)  # only NOTIFY limits a size
def test_an_event_too_big_for_notify_arrives_without_its_data(
    events_url: str, namespace: str, received: queue.Queue[Event]
) -> None:
    with SessionManager("memory://") as worker, bridge(worker.events, events_url, namespace) as sender:
        sender.bus.publish(Event("s1", "checkpoint", worker.store.now(), 1, {"blob": "x" * 10_000}))
    assert _next(received, "checkpoint").data == {"truncated": True}
