"""Named SQL files: fragments are put in place at load time, so every statement runs as plain SQL."""

from __future__ import annotations

import pytest

from tether.core.errors import ConfigurationError
from tether.stores.sql_files import load_queries, parse_queries


def test_a_fragment_is_put_in_place_without_its_comments() -> None:
    queries = parse_queries(
        "-- name: columns\n-- a fragment\na, b\n\n-- name: read\nSELECT {columns} FROM t WHERE a = ?;\n"
    )
    assert queries["read"] == "SELECT a, b FROM t WHERE a = ?;"


def test_an_unknown_fragment_names_itself() -> None:
    with pytest.raises(ConfigurationError, match="'missing'"):
        parse_queries("-- name: read\nSELECT {missing} FROM t;\n")


@pytest.mark.parametrize("package", ["tether.stores.sqlite", "tether.stores.postgres"])
def test_no_statement_is_left_with_a_fragment_to_fill(package: str) -> None:
    for filename in ("queries.sql", "keys.sql"):
        for name, statement in load_queries(package, filename).items():
            assert "{" not in statement, (filename, name)
