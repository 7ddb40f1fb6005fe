"""`tether serve` (the HTTP service) and `tether keys create|ls|revoke` (its API keys)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from tether.cli import render
from tether.cli.options import JsonOption, StoreOption
from tether.core import config, keys
from tether.core.errors import ConfigurationError
from tether.stores import open_store

commands = typer.Typer()
keys_commands = typer.Typer(name="keys", help="API keys of `tether serve`: create, list, revoke.")
commands.add_typer(keys_commands)


@commands.command("serve")
def serve(
    store: StoreOption = None,
    redis: Annotated[
        str | None, typer.Option("--redis", metavar="URL", help="Heartbeats and leases in Redis; events too.")
    ] = None,
    host: Annotated[
        str, typer.Option(help="Address to bind; off loopback, API keys are required.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Server processes (PostgreSQL, or --redis for events).")] = 1,
    sweep_interval: Annotated[
        float | None, typer.Option("--sweep-interval", help="Seconds between supervisor sweeps.")
    ] = None,
) -> None:
    """Serve the HTTP API (docs/http-api.md) with the supervisor inside; Ctrl-C stops it."""
    try:
        from tether.server.serve import serve as run
        from tether.server.settings import ServerSettings
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigurationError("the service is not installed: pip install 'tether[server]'") from exc
    settings = ServerSettings(
        config.store_url(store), config.redis_url(redis), host, sweep_interval=sweep_interval
    )
    run(settings, port, workers)


@keys_commands.command("create")
def create_key(
    user: Annotated[str, typer.Option("--user", help="The user this key acts as.")],
    admin: Annotated[bool, typer.Option("--admin", help="See and change every user's sessions.")] = False,
    store: StoreOption = None,
) -> None:
    """Create a key and print it once: it is stored only as a hash."""
    from tether.core.validation import check_text

    s = open_store(config.store_url(store))
    try:
        text, key = keys.mint(check_text("user", user), admin, s.now())
        s.add_api_key(key)
    finally:
        s.close()
    typer.echo(text)
    render.err.print(f"key {key.key_id} for {user}{' (admin)' if admin else ''}: shown once, keep it safe")


@keys_commands.command("ls")
def list_keys(store: StoreOption = None, as_json: JsonOption = False) -> None:
    """List keys (ids, users, admin, created, revoked); never the secrets."""
    s = open_store(config.store_url(store))
    try:
        found = s.list_api_keys()
    finally:
        s.close()
    rows = [
        {
            "key_id": k.key_id,
            "user_id": k.user_id,
            "admin": k.admin,
            "created_at": k.created_at.isoformat(),
            "revoked_at": None if k.revoked_at is None else k.revoked_at.isoformat(),
        }
        for k in found
    ]
    if as_json:
        render.print_json(rows)
        return
    table = Table("key id", "user", "admin", "created", "revoked")
    for k in found:
        table.add_row(
            k.key_id,
            k.user_id,
            "yes" if k.admin else "",
            render.timestamp(k.created_at),
            render.timestamp(k.revoked_at),
        )
    render.out.print(table)


@keys_commands.command("revoke")
def revoke_key(
    key_id: Annotated[str, typer.Argument(help="The key id `tether keys ls` shows.")],
    store: StoreOption = None,
) -> None:
    """Revoke a key: the next request with it gets 401."""
    s = open_store(config.store_url(store))
    try:
        revoked = s.revoke_api_key(key_id, s.now())
    finally:
        s.close()
    if not revoked:
        raise ConfigurationError(f"no active key {key_id!r}")
    render.out.print(f"revoked {key_id}")
