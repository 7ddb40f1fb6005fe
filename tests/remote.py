"""`tether serve` with the contract suite's policies, and an emptied store between tests.

`serve(store_url, workdir, policies, *args)` is tests/live_server.py's `live_server` with the policies
written as the `[policies.*]` tables of a tether.toml. One process serves many tests: `empty()`
deletes every session through the API between them, which leaves the store as a fresh one would be
for everything a test can observe through the client.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path

from tests.live_server import LiveServer, live_server
from tether import Client, Policies


def policy_toml(policies: Policies) -> str:
    lines: list[str] = []
    for name, policy in (("default", policies.default), *policies.by_type.items()):
        lines.append(f"[policies.{name}]")
        lines.append(f"timeout = {policy.timeout}")
        if policy.suspect_after is not None:
            lines.append(f"suspect_after = {policy.suspect_after}")
        lines.append(f"max_recoveries = {policy.max_recoveries}")
        lines.append(f'on_timeout = "{policy.on_timeout.value}"')
    return "\n".join(lines) + "\n"


def serve(
    store_url: str, workdir: Path, policies: Policies, *args: str
) -> AbstractContextManager[LiveServer]:
    toml = workdir / "tether.toml"
    toml.write_text(policy_toml(policies))
    return live_server(store_url, *args, env={"TETHER_POLICY_FILE": str(toml)})


def empty(client: Client) -> None:
    """Delete every session the (admin or open-mode) client can see."""
    while True:
        page = client.list(limit=1000)
        if not page.items:
            return
        for session in page:
            client.delete(session.session_id)
