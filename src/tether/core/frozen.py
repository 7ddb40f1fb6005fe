"""Frozen dataclasses built without their guard, where a read builds one per row (listings)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import field, fields, make_dataclass
from typing import Any, ParamSpec, TypeVar, cast

P = ParamSpec("P")
T = TypeVar("T")


def unguarded(cls: Callable[P, T]) -> Callable[P, T]:
    """A constructor of the frozen, slotted dataclass `cls`: same arguments, an equal `cls` back.

    A frozen dataclass's `__init__` stores each field through `object.__setattr__` to get past its
    own guard, several times the cost of a plain attribute store. Here a twin without the guard,
    with the same slots in the same order, is built with plain stores and then becomes a `cls` in
    its `__post_init__`. CPython allows that `__class__` assignment only between identical layouts,
    so a `cls` whose layout ever differs from its twin's raises TypeError on the first call, never
    misbuilds; a `cls` with a `__post_init__` of its own (checks the twin would skip) is refused."""
    kind: Any = cls
    if hasattr(kind, "__post_init__"):
        raise TypeError(f"{kind.__name__} has a __post_init__: build it with its own constructor")

    def become(instance: Any) -> None:
        instance.__class__ = kind

    twin = make_dataclass(
        f"Unguarded{kind.__name__}",
        [(f.name, f.type, field(default=f.default, default_factory=f.default_factory)) for f in fields(kind)],
        slots=True,
        namespace={"__post_init__": become},
    )
    return cast(Callable[P, T], twin)
