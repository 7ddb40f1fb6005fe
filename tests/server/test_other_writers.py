"""Writes by another process on the same store reach a live server: its /v1/events, its gauges and its
dashboard charts. The other process is an embedded `SessionManager` in this test process that bridges
its events the way `tether demo`'s workers and `tether watch` do (`bridge(events, url,
manager.store.url)`): by the one namespace rule, every process of a store meets in the same place,
whatever spelling of the store's URL it was given."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import REDIS_URL, fresh_postgres_url, postgres_admin
from tests.live_server import LiveServer, live_server
from tests.server.sse import frames, take
from tether import SessionManager
from tether.events.bus import bridge, namespace

STREAM = httpx.Timeout(30.0, connect=5.0)
GAUGE_REFRESH = 5.0  # tether.server.metrics.REFRESH


@pytest.fixture(params=["sqlite+redis", "postgres"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[LiveServer, str, str]]:
    """A live server, the URL a separate writer gives for the same store, and its event URL."""
    if request.param == "postgres":
        postgres_admin().close()  # skips, or fails under TETHER_REQUIRE_SERVICES, without PostgreSQL
        url = fresh_postgres_url()
        with live_server(url) as server:
            yield server, url, url
        return
    pytest.importorskip("redis")
    # The server is given the file's absolute path; the writer a relative one, from its directory.
    with live_server(f"sqlite:///{tmp_path}/tether.db", "--redis", REDIS_URL) as server:
        here = os.getcwd()
        os.chdir(tmp_path)
        try:
            yield server, "sqlite:///tether.db", REDIS_URL
        finally:
            os.chdir(here)


def test_the_namespace_names_the_store_not_its_spelling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert namespace("sqlite:///tether.db") == namespace(f"sqlite:///{tmp_path}/tether.db")
    assert namespace("sqlite:///tether.db") != namespace("sqlite:///other.db")
    assert namespace("postgresql://u:secret@h/db") == namespace("postgresql://u:***@h/db")
    assert namespace("postgresql://u@h/db") != namespace("postgresql://u@h/other")


def test_another_process_s_writes_reach_the_server_s_events_gauges_and_charts(
    stores: tuple[LiveServer, str, str],
) -> None:
    server, writer_url, events_url = stores
    with (
        SessionManager(writer_url, worker_id="elsewhere") as writer,
        bridge(writer.events, events_url, writer.store.url),
        httpx.Client(base_url=server.url, timeout=STREAM) as api,
        api.stream("GET", "/v1/events", params={"agent_type": "remote"}) as response,
    ):
        stream = frames(response)
        session = writer.create("remote", "erin")
        writer.checkpoint(session.session_id, "step", {"n": 1})
        writer.pause(session.session_id)
        seen = take(stream, 3)
    assert [(f.event, f.data["session_id"]) for f in seen] == [
        ("created", session.session_id),
        ("checkpoint", session.session_id),
        ("paused", session.session_id),
    ]
    assert seen[0].data["user_id"] == "erin"  # tagged with its owner, read from the shared store
    deadline = time.monotonic() + GAUGE_REFRESH * 3
    gauge = 'tether_sessions{agent_type="remote",state="paused"} 1.0'
    while gauge not in (metrics := httpx.get(server.url + "/metrics").text):
        assert time.monotonic() < deadline, metrics
        time.sleep(0.5)
    chart = re.search(
        r'<h3>Checkpoints</h3>\s*<p class="chart-now"><span class="tile-n">([^<]+)<',
        httpx.get(server.url + "/").text,
    )
    assert chart is not None and chart.group(1) == "1", "the overview's chart counted no checkpoint"
