"""mypy checks a flow's store calls: `call(Store.get, ...)` takes `Store.get`'s arguments and gives
its result type, so a wrong call inside a flow fails `mypy --strict` like a wrong direct call would."""

from __future__ import annotations

import re

import pytest
from mypy import api

from tests.support import SRC

FLOWS = """
from tether.core.model import Checkpoint, NewCheckpoint, Session
from tether.flows.runner import Flow, call
from tether.stores.base import Store


def reads(session_id: str) -> Flow[Session]:
    session = yield from call(Store.get, session_id)
    return session


def appends(session_id: str, new: NewCheckpoint) -> Flow[int]:
    cp: Checkpoint = yield from call(Store.append, session_id, new, None)
    return cp.seq


def too_many_arguments() -> Flow[Session]:
    return (yield from call(Store.get, "s-1", "extra"))  # error: too-many


def an_unknown_keyword() -> Flow[Session]:
    return (yield from call(Store.get, "s-1", nonsense=True))  # error: keyword


def a_wrong_type() -> Flow[Session]:
    return (yield from call(Store.get, 42))  # error: type


def a_missing_argument(new: NewCheckpoint) -> Flow[Checkpoint]:
    return (yield from call(Store.append, "s-1", new))  # error: missing


def the_wrong_result() -> Flow[int]:
    return (yield from call(Store.get, "s-1"))  # error: result


def not_a_store_method() -> Flow[int]:
    return (yield from call(len, "s-1"))  # error: not-store
"""


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory) -> dict[int, str]:
    """mypy --strict's errors on FLOWS, by line."""
    folder = tmp_path_factory.mktemp("flows")
    source, config = folder / "flows.py", folder / "mypy.ini"
    source.write_text(FLOWS, encoding="utf-8")
    config.write_text("[mypy]\n", encoding="utf-8")  # not the project's: its `files` would be checked too
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MYPYPATH", str(SRC))  # this checkout's tether, installed or not
        out, err, _ = api.run(["--strict", "--no-incremental", "--config-file", str(config), str(source)])
    assert not err, err
    errors: dict[int, str] = {}
    for line in out.splitlines():
        match = re.match(rf"{re.escape(str(source))}:(\d+): error: (.*)", line)
        if match:
            errors[int(match[1])] = errors.get(int(match[1]), "") + match[2]
    return errors


def _line(marker: str) -> int:
    return next(n for n, text in enumerate(FLOWS.splitlines(), start=1) if text.endswith(marker))


EXPECTED = {
    "too-many": "Too many arguments",
    "keyword": 'Unexpected keyword argument "nonsense"',
    "type": 'incompatible type "int"; expected "str"',
    "missing": "Missing positional argument",
    "result": 'Incompatible return value type (got "Session", expected "int")',
    "not-store": 'expected "Callable[[Store], int]"',
}


def test_well_typed_flows_pass(reported: dict[int, str]) -> None:
    """Only the marked lines are reported: the typed calls themselves type-check."""
    assert set(reported) == {_line(f"# error: {kind}") for kind in EXPECTED}, reported


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_a_wrong_store_call_in_a_flow_fails_mypy(reported: dict[int, str], kind: str) -> None:
    message = reported.get(_line(f"# error: {kind}"))
    assert message is not None, f"mypy accepted the {kind} call"
    assert EXPECTED[kind] in message, message
