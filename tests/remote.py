"""A real `tether serve` process on a loopback port, for tests that go through `tether.Client`.

`Served(store_url, tmp)` starts `python -m tether serve` on a free port with the contract suite's
policies (written as a tether.toml) and waits until /readyz answers; `close()` stops it. One process
serves many tests: `empty()` deletes every session through the API between them, which leaves the
store as a fresh one would be for everything a test can observe through the client.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support import SRC, subprocess_env
from tether import Client, Policies

START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def policy_toml(policies: Policies) -> str:
    """The policies as the `[policies.*]` tables of a tether.toml."""
    lines: list[str] = []
    for name, policy in (("default", policies.default), *policies.by_type.items()):
        lines.append(f"[policies.{name}]")
        lines.append(f"timeout = {policy.timeout}")
        if policy.suspect_after is not None:
            lines.append(f"suspect_after = {policy.suspect_after}")
        lines.append(f"max_recoveries = {policy.max_recoveries}")
        lines.append(f'on_timeout = "{policy.on_timeout.value}"')
    return "\n".join(lines) + "\n"


class Served:
    """`tether serve --store URL` in a child process; `url` is where it listens."""

    def __init__(self, store_url: str, workdir: Path, policies: Policies, *extra: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "tether.toml").write_text(policy_toml(policies))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "serve.log"
        # TETHER_TEST_SERVE_SRC runs the server from another checkout (a server branch in progress).
        src = os.environ.get("TETHER_TEST_SERVE_SRC", str(SRC))
        env = subprocess_env(TETHER_POLICY_FILE=str(workdir / "tether.toml"))
        env["PYTHONPATH"] = os.pathsep.join([src, env["PYTHONPATH"]])
        command = [
            sys.executable,
            "-m",
            "tether",
            "serve",
            "--store",
            store_url,
            "--port",
            str(self.port),
            *extra,
        ]
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"tether serve exited with {self.process.returncode}: {self.log.read_text()}"
                )
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.close()
        raise RuntimeError(f"tether serve did not get ready in {START_TIMEOUT} s: {self.log.read_text()}")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def empty(client: Client) -> None:
    """Delete every session the (admin or open-mode) client can see."""
    while True:
        page = client.list(limit=1000)
        if not page.items:
            return
        for session in page:
            client.delete(session.session_id)
