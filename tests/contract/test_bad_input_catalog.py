"""A catalog of bad input, one row per case: through the library and through the CLI, on every store.

Each row names the call, the typed error it must raise and the field that error must name; every
case also checks that the store is unchanged afterwards (the session, its history, the listing).
The rows are the inputs an adversarial run found leaking raw exceptions or blaming the wrong field.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_store_url
from tether import PayloadTooLarge, SessionManager, State, ValidationError
from tether.cli import exits
from tether.cli.app import app

from .conftest import MakeSession, Unchanged

Call = Callable[[SessionManager, str], Any]


@dataclass(frozen=True)
class Bad:
    call: Call
    field: str
    error: type[ValidationError] = ValidationError


LIBRARY: dict[str, Bad] = {
    "fail final='no'": Bad(lambda m, sid: m.fail(sid, "boom", final="no"), "final"),
    "fail final=1.5": Bad(lambda m, sid: m.fail(sid, "boom", final=1.5), "final"),
    "fail final=None": Bad(lambda m, sid: m.fail(sid, "boom", final=None), "final"),
    "fail error of 2 MB": Bad(lambda m, sid: m.fail(sid, "e" * 2_000_000), "error", PayloadTooLarge),
    "fail error with NUL": Bad(lambda m, sid: m.fail(sid, "a\x00b"), "error"),
    "fail error lone surrogate": Bad(lambda m, sid: m.fail(sid, "a\ud800"), "error"),
    "list cursor=5": Bad(lambda m, sid: m.list(cursor=5), "cursor"),
    "stale cursor=5": Bad(lambda m, sid: m.stale(liveness="dead", cursor=5), "cursor"),
    "heartbeats(5)": Bad(lambda m, sid: m.heartbeats(5), "beats"),
    "heartbeats('id')": Bad(lambda m, sid: m.heartbeats(sid), "beats"),
    "heartbeats(['id'])": Bad(lambda m, sid: m.heartbeats([sid]), "beats[0]"),
    "claim_next(5)": Bad(lambda m, sid: m.claim_next(5), "agent_types"),
}


@pytest.mark.parametrize("case", LIBRARY.values(), ids=LIBRARY.keys())
def test_library_refuses_with_a_typed_error_naming_the_field(
    manager: SessionManager, in_state: MakeSession, unchanged: Unchanged, case: Bad
) -> None:
    session = in_state(State.ACTIVE)
    listed = list(manager.list())
    with unchanged(session.session_id), pytest.raises(case.error) as caught:
        case.call(manager, session.session_id)
    assert caught.value.field == case.field, caught.value
    assert list(manager.list()) == listed


def test_context_keys_come_back_as_strings_from_every_store(manager: SessionManager) -> None:
    created = manager.create("tutor", "u", context={1: "one", "n": {2: [3]}}, metadata={None: 1})
    expected = {"1": "one", "n": {"2": [3]}}
    assert created.context == expected and created.metadata == {"null": 1}
    assert manager.get(created.session_id).context == expected


# -- import: bad input changes nothing ---------------------------------------------------------
def _seed_line(session_id: str) -> bytes:
    seed = {
        "session_id": session_id,
        "agent_type": "tutor",
        "user_id": "u",
        "state": "completed",
        "created_at": "2025-01-01T00:00:00+00:00",
        "last_heartbeat": "2025-01-01T00:00:00+00:00",
        "context": {},
        "checkpoints": [],
        "metadata": {},
    }
    return json.dumps(seed).encode() + b"\n"


BAD_FILES: dict[str, tuple[bytes, str]] = {
    "not JSON on line 3": (_seed_line("i1") + _seed_line("i2") + b"{nope\n", "line 3"),
    "invalid UTF-8 on line 2": (_seed_line("i1") + b'{"x": "\xff"}\n', "line 2"),
    "an integer of 5,000 digits": (_seed_line("i1") + b'{"n": ' + b"7" * 5000 + b"}\n", "line 2"),
    "a bad field on line 2": (
        _seed_line("i1") + _seed_line("i2").replace(b"completed", b"asleep"),
        "line 2: state",
    ),
}


@pytest.mark.parametrize(("content", "field"), BAD_FILES.values(), ids=BAD_FILES.keys())
def test_import_of_bad_input_imports_nothing(
    manager: SessionManager, tmp_path: Path, content: bytes, field: str
) -> None:
    source = tmp_path / "bad.jsonl"
    source.write_bytes(content)
    with pytest.raises(ValidationError) as caught:
        manager.import_sessions(source)
    assert caught.value.field == field
    assert "nothing was imported" in " ".join(caught.value.__notes__)
    assert list(manager.list()) == []


def test_import_stopped_by_a_conflict_says_how_far_it_got_and_resumes(
    manager: SessionManager, tmp_path: Path
) -> None:
    manager.create("tutor", "u", session_id="i2")
    source = tmp_path / "seed.jsonl"
    source.write_bytes(_seed_line("i1") + _seed_line("i2") + _seed_line("i3"))
    with pytest.raises(Exception) as caught:
        manager.import_sessions(source)
    assert "stopped at line 2: 1 session(s)" in " ".join(caught.value.__notes__)
    assert {s.session_id for s in manager.list()} == {"i1", "i2"}
    assert manager.import_sessions(source, on_conflict="skip") == 1
    assert {s.session_id for s in manager.list()} == {"i1", "i2", "i3"}


# -- the CLI: one error line, the usage status, the store unchanged -----------------------------
def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = exits.run(app, list(argv))
    return code, capsys.readouterr().err


@pytest.fixture(params=["sqlite", "postgres"])
def durable_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The CLI opens its own store from the URL, so only stores that outlive a manager."""
    return make_store_url(request.param, tmp_path)


CLI: dict[str, tuple[list[str], int, str]] = {
    "purge --older-than 3000000d": (["purge", "--older-than", "3000000d", "-y"], 2, "--older-than"),
    "purge --older-than 10**25 days": (["purge", "--older-than", f"{10**25}d", "-y"], 2, "--older-than"),
}


@pytest.mark.parametrize(("argv", "status", "named"), CLI.values(), ids=CLI.keys())
def test_cli_refuses_bad_options_in_one_line(
    durable_url: str, capsys: pytest.CaptureFixture[str], argv: list[str], status: int, named: str
) -> None:
    with SessionManager(durable_url) as manager:
        before = manager.get(manager.create("tutor", "u").session_id)
    code, err = _cli(capsys, *argv, "--store", durable_url)
    assert (code, err.count("\n")) == (status, 1), err
    assert err.startswith("error: ") and named in err and "unexpected" not in err
    with SessionManager(durable_url) as manager:
        assert list(manager.list()) == [before]


def test_cli_import_of_a_bad_file_says_nothing_was_imported(
    durable_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "bad.jsonl"
    source.write_bytes(_seed_line("i1") + _seed_line("i2") + b'{"x": "\xff"}\n')
    code, err = _cli(capsys, "import", str(source), "--store", durable_url)
    assert code == 2 and "line 3" in err and "nothing was imported" in err, err
    with SessionManager(durable_url) as manager:
        assert list(manager.list()) == []


def test_cli_import_stopped_by_a_conflict_says_how_to_resume(
    durable_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with SessionManager(durable_url) as manager:
        manager.create("tutor", "u", session_id="i2")
    source = tmp_path / "seed.jsonl"
    source.write_bytes(_seed_line("i1") + _seed_line("i2"))
    code, err = _cli(capsys, "import", str(source), "--store", durable_url)
    assert code == 4 and "1 session(s)" in err and "--skip-existing" in err, err
    code, _ = _cli(capsys, "import", str(source), "--skip-existing", "--store", durable_url)
    assert code == 0


def test_cli_export_to_a_directory_names_that_directory(
    durable_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _cli(capsys, "export", str(tmp_path), "--store", durable_url)
    assert code == 1 and str(tmp_path) in err and "partial" not in err, err
    assert list(tmp_path.iterdir()) == ([tmp_path / "tether.db"] if "sqlite" in durable_url else [])
