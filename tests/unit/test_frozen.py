"""`unguarded` constructors: what a store builds per row is the very frozen value `Session(...)` is."""

from __future__ import annotations

import dataclasses
import pickle
from datetime import UTC, datetime, timedelta

import pytest

from tether import Session, State
from tether.core.frozen import unguarded
from tether.core.model import Failure
from tether.stores.base import build_checkpoint, build_session

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LATER = T0 + timedelta(seconds=61)
EVERY_FIELD = (
    "s", "tutor", "u", State.FAILED, T0, T0, T0, {"n": 1}, {"m": [2]}, "p", 3, "w", 4, 61.5, 20.5,
    LATER, LATER, "tool", 1, LATER, Failure("crash", {"k": 1}, True), 7,
)  # fmt: skip


def test_a_built_session_is_the_session_the_constructor_makes() -> None:
    built, made = build_session(*EVERY_FIELD), Session(*EVERY_FIELD)
    assert type(built) is Session
    assert built == made
    assert dataclasses.astuple(built) == dataclasses.astuple(made)
    assert pickle.loads(pickle.dumps(built)) == made
    assert dataclasses.replace(built, version=9) == dataclasses.replace(made, version=9)


def test_defaults_and_keywords_are_the_constructors() -> None:
    built = build_session("s", "tutor", "u", State.ACTIVE, T0, last_heartbeat=T0)
    assert built == Session("s", "tutor", "u", State.ACTIVE, T0, last_heartbeat=T0)
    assert built.context == {} and built.context is not build_session(*EVERY_FIELD[:6]).context
    assert build_checkpoint("s", 1, "step", T0, {}) == dataclasses.replace(
        build_checkpoint("s", 1, "step", T0, {"x": 1}), data={}
    )


def test_a_built_session_stays_frozen() -> None:
    built = build_session(*EVERY_FIELD)
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.version = 2  # type: ignore[misc]


def test_a_class_its_twin_cannot_stand_in_for_is_refused() -> None:
    @dataclasses.dataclass(frozen=True)
    class WithDict:  # no slots: a layout the slotted twin does not share
        x: int

    with pytest.raises(TypeError):
        unguarded(WithDict)(1)


def test_a_class_that_checks_in_post_init_is_refused() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Checked:
        x: int

        def __post_init__(self) -> None:
            if self.x < 0:
                raise ValueError(self.x)

    with pytest.raises(TypeError, match="__post_init__"):
        unguarded(Checked)
