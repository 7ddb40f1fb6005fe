"""Named SQL in `.sql` files next to each store: every statement written once, loaded by name.

A queries file is a list of blocks, each introduced by a `-- name: some_query` line; the text up
to the next such line is the statement. A statement may name another block in braces, `{name}`: that
block's text (a fragment, such as a column list) is put in place when the file loads, so what runs
is plain SQL, written once. Migrations are files named `NNNN_description.sql` in a
`migrations/` folder; their number is the schema version they bring the database to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.resources import files

from tether.core.errors import ConfigurationError

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)
_FRAGMENT = re.compile(r"\{(\w+)\}")
_COMMENT = re.compile(r"^\s*--.*\n", re.MULTILINE)
_MIGRATION = re.compile(r"^(\d{4})_\w+\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def parse_queries(text: str) -> dict[str, str]:
    """`-- name:` blocks of one file; a duplicate or empty block is a bug in the file."""
    parts = _NAME.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        statement = body.strip()
        if name in queries or not statement:
            raise ConfigurationError(f"query {name!r} is duplicated or empty")
        queries[name] = statement
    return {name: _expand(statement, queries) for name, statement in queries.items()}


def _expand(statement: str, queries: dict[str, str]) -> str:
    """The statement with each `{fragment}` replaced by that block, less its comment lines."""

    def fragment(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in queries:
            raise ConfigurationError(f"fragment {name!r} is not a block of the file")
        return _COMMENT.sub("", queries[name]).strip()

    return _FRAGMENT.sub(fragment, statement)


def load_queries(package: str, filename: str = "queries.sql") -> dict[str, str]:
    """The named statements of `filename` inside `package` (e.g. `tether.stores.sqlite`)."""
    return parse_queries(files(package).joinpath(filename).read_text(encoding="utf-8"))


def load_migrations(package: str) -> list[Migration]:
    """The package's migrations in version order; versions must run 1, 2, 3… without gaps."""
    folder = files(package).joinpath("migrations")
    found = sorted(
        (
            Migration(int(match.group(1)), entry.name, entry.read_text(encoding="utf-8"))
            for entry in folder.iterdir()
            if (match := _MIGRATION.match(entry.name))
        ),
        key=lambda m: m.version,
    )
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise ConfigurationError(f"migrations of {package} are not numbered 1…n: {versions}")
    return found
