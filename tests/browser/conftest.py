"""Browser tests: Debian's chromium, headless, driven by Playwright against a real `tether serve`.

They skip with a reason when chromium or Playwright is missing locally, and fail in CI
(TETHER_REQUIRE_SERVICES=1 or CI=true), where .ci/run installs both.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live_server import LiveServer, live_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
REQUIRED = os.environ.get("TETHER_REQUIRE_SERVICES") == "1" or os.environ.get("CI") == "true"

# `flaky` sessions go suspect 1 s and dead 3 s after their last heartbeat; nothing else dies during
# a test. The supervisor sweeps once an hour, so a dead lease stays dead until a test claims it.
POLICIES = """
[policies.default]
timeout = 600.0

[policies.flaky]
timeout = 3.0
suspect_after = 1.0
"""


def missing(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"{reason}, and CI requires the browser tests", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")  # not longer: Playwright's sync API holds an event loop while open
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        missing("chromium is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("dashboard")
    (folder / "tether.toml").write_text(POLICIES)
    env = {"TETHER_POLICY_FILE": str(folder / "tether.toml")}
    with live_server(f"sqlite:///{folder}/tether.db", "--sweep-interval", "3600", env=env) as running:
        yield running


@dataclass
class Operator:
    """A key, its API client, and a browser page logged in with it."""

    key: str
    api: httpx.Client
    page: Any
    server: LiveServer

    def create(self, agent_type: str = "tutor", **fields: Any) -> dict[str, Any]:
        response = self.api.post("/v1/sessions", json={"agent_type": agent_type, **fields})
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    def post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        response = self.api.post(path, json=body or {})
        assert response.is_success, response.text
        return response

    def log_in(self) -> None:
        self.page.goto("/login")
        self.page.get_by_label("API key").fill(self.key)
        self.page.get_by_role("button", name="Log in").click()
        self.page.wait_for_url(self.server.url + "/")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def operator_for(browser: Any, server: LiveServer) -> Iterator[Any]:
    """operator_for(user, admin=False) -> an Operator with a fresh key, client and browser page (on the
    module's server, unless another one and its key are given)."""
    opened: list[tuple[Any, httpx.Client]] = []

    def make(user: str, admin: bool = False, server: LiveServer = server, key: str | None = None) -> Operator:
        key = key or server.key(user, admin=admin)
        context = browser.new_context(base_url=server.url, viewport={"width": 1360, "height": 860})
        api = httpx.Client(base_url=server.url, headers=LiveServer.auth(key), timeout=10)
        opened.append((context, api))
        page = context.new_page()
        page.set_default_timeout(10_000)
        return Operator(key, api, page, server)

    yield make
    for context, api in opened:
        context.close()
        api.close()


@pytest.fixture
def admin(operator_for: Any) -> Operator:
    found: Operator = operator_for(unique("ops"), admin=True)
    found.log_in()
    return found
