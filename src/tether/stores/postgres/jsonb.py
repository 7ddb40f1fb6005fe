"""What jsonb changes in a JSON document, and how reads undo it.

jsonb keeps a document's meaning, not its text: it sorts every object's keys (shorter first, then
bytewise), writes numbers in plain decimal (so the float 1e+16 comes back as the integer
10000000000000000, and -0.0 as 0.0), and cannot hold the NUL character. Every other store gives
back exactly what was written, and so does this one (the contract suite checks it):

- Key order, the common case (an object written in any other order), is kept beside the jsonb value
  as a short list: the visit number of each object whose order differs, and the positions of its
  keys in jsonb's order, as written. Reads put the keys back (`restore`).
- The rare rest (a float jsonb would turn into an integer or lose the sign of, a NUL) keeps the
  exact text in a `json` column, which reads use instead; it holds the key order as well.

Objects are visited depth first in written order, counted from 0 at the document itself; `restore`
reorders each object before visiting its members, so it counts the same objects the same way.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import orjson

# JSON encoders always write the NUL character as this escape; jsonb refuses it (text cannot
# hold NUL), so the jsonb copy gets U+FFFD instead and stays valid and queryable.
NUL_ESCAPE = "\\u0000"
# Encoders write floats this large with an exponent, which jsonb's numeric turns into integer digits.
_EXPONENT_FROM = 1e16

Order = list[list[Any]]  # [[visit number, [position in jsonb's order of each key, as written]], ...]


class Stored(NamedTuple):
    """A document as the store writes it: text for the jsonb column, the exact text when jsonb
    cannot give it back (else None), and the key order when only that differs (else None)."""

    jsonb: str
    exact: str | None
    order: str | None


def stored(text: str, value: Any) -> Stored:
    """How to store `value`, whose JSON text is `text` (`value` decoded from it: plain JSON types).
    Each test of the text first looks for one character (memchr speed: ~20x a two-character search
    on this machine), as the common document has nothing jsonb would change but its key order."""
    if "\\" in text and NUL_ESCAPE in text:
        return Stored(text.replace(NUL_ESCAPE, "\\ufffd"), text, None)
    # Encoders write an exponent as "e+" and the negative zero as "-0.0": without either in the
    # text (nearly always), no number can change, and only objects need visiting. Every object
    # opens with "{", so the visit stops after as many objects as the text has (or fewer).
    numbers_may_change = ("+" in text and "e+" in text) or ("-" in text and "-0.0" in text)
    objects = text.count("{") if text.find("{", 1) >= 0 else int(text.startswith("{"))
    order = _order(value, objects, numbers_may_change)
    if order is None:
        return Stored(text, text, None)
    return Stored(text, None, orjson.dumps(order).decode() if order else None)


def restore(value: Any, order: Order | None) -> Any:
    """The value read from jsonb with its objects' keys back in written order (in place)."""
    if not order:
        return value
    pending = {visit: positions for visit, positions in order}
    visit = 0
    stack = [value]
    while stack:
        node = stack.pop()
        if type(node) is dict:
            positions = pending.pop(visit, None)
            visit += 1
            if positions is not None:
                members = list(node.items())
                node.clear()
                node.update([members[at] for at in positions])
                if not pending:
                    break
            node = node.values()
        _push_containers(stack, node)
    return value


def _order(value: Any, objects: int, numbers_may_change: bool) -> Order | None:
    """The objects of `value` whose keys jsonb would reorder; None if jsonb would change a number.
    `objects`: at least how many objects `value` has, the visit stops after that many."""
    order: Order = []
    visit = 0
    stack = [value] if objects or numbers_may_change else []
    while stack:
        node = stack.pop()
        if type(node) is dict:
            if len(node) > 1:
                keys = list(node)
                ranked = _in_jsonb_order(keys)
                if ranked != keys:
                    order.append([visit, _positions(keys, ranked)])
            visit += 1
            if visit == objects and not numbers_may_change:
                break
            node = node.values()
        elif type(node) is not list:  # the document itself may be a scalar
            node = (node,)
        if numbers_may_change and any(type(m) is float and _changed_by_numeric(m) for m in node):
            return None
        _push_containers(stack, node)
    return order


def _positions(keys: list[str], ranked: list[str]) -> list[int]:
    """Where each key stands in `ranked`; a scan at C speed for the usual few keys (0.5 against
    1.7 µs for four), a lookup table for many."""
    if len(keys) <= 16:
        return list(map(ranked.index, keys))
    position = {key: at for at, key in enumerate(ranked)}
    return [position[key] for key in keys]


def _push_containers(stack: list[Any], members: Any) -> None:
    """Push the objects and arrays among `members` so that the first is popped first."""
    kinds = set(map(type, members))  # at C speed: most members are scalars
    if dict in kinds or list in kinds:
        stack.extend(m for m in reversed(list(members)) if type(m) is dict or type(m) is list)


def _in_jsonb_order(keys: list[str]) -> list[str]:
    """jsonb's order of object keys: shorter UTF-8 first, then bytewise (which is code point order)."""
    if "".join(keys).isascii():  # one character, one byte: two sorts at C speed
        return sorted(sorted(keys), key=len)
    return sorted(keys, key=lambda key: (len(key.encode()), key))


def _changed_by_numeric(number: float) -> bool:
    return not -_EXPONENT_FROM < number < _EXPONENT_FROM or math.copysign(1.0, number) < 0.0 == number
