"""A real `tether serve` process on a free loopback port, for end-to-end tests (server and client).

with live_server("sqlite:///…/tether.db") as server:
    httpx.get(server.url + "/v1/sessions", headers=server.auth(server.key("alice")))
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support import subprocess_env
from tether.core import keys
from tether.stores import open_store

START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class LiveServer:
    url: str
    store_url: str
    process: subprocess.Popen[bytes]
    log: Path
    keys: dict[str, str] = field(default_factory=dict)

    def key(self, user: str, admin: bool = False) -> str:
        """A new API key for `user`, added straight to the store (as `tether keys create` does)."""
        store = open_store(self.store_url)
        try:
            text, key = keys.mint(user, admin, store.now())
            store.add_api_key(key)
        finally:
            store.close()
        self._wait_until_keys_are_required()
        return text

    def _wait_until_keys_are_required(self) -> None:
        """A running server notices a first key within a second (it leaves open mode); tests that
        expect a key to be needed must not race that second."""
        deadline = time.monotonic() + 10
        while self.process.poll() is None and httpx.get(f"{self.url}/v1/me", timeout=5).status_code != 401:
            if time.monotonic() > deadline:
                raise AssertionError("the server still runs open ten seconds after a key was added")
            time.sleep(0.05)

    @staticmethod
    def auth(key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def live_server(
    store_url: str,
    *args: str,
    env: dict[str, str] | None = None,
    extra: Sequence[str] = (),
    port: int | None = None,
) -> Iterator[LiveServer]:
    """Start `tether serve --store store_url` (plus `args`) and wait until /readyz answers 200.
    `port` (default: a free one) lets a test restart a server where its clients expect it."""
    port = port or free_port()
    log = Path(tempfile.mkstemp(prefix="tether-serve-", suffix=".log")[1])
    command = [
        sys.executable,
        "-m",
        "tether",
        "serve",
        "--store",
        store_url,
        "--port",
        str(port),
        *args,
        *extra,
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=subprocess_env(**(env or {}))
        )
    server = LiveServer(f"http://127.0.0.1:{port}", store_url, process, log)
    try:
        wait_ready(server)
        yield server
    finally:
        server.stop()
        log.unlink(missing_ok=True)


def wait_ready(server: LiveServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"tether serve exited with {server.process.returncode}:\n{server.output()}")
        try:
            if httpx.get(server.url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"tether serve did not get ready in {START_TIMEOUT}s:\n{server.output()}")
