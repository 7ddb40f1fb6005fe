"""What the PostgreSQL store keeps beside a jsonb value gives back exactly the document written,
against a model of jsonb (sorted keys, numbers as numeric, no NUL); tests/postgres checks the
real server."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from tether.core.codec import decode, encode
from tether.stores.postgres.jsonb import restore, stored


def as_jsonb(value: Any) -> Any:
    """What jsonb gives back for a document: keys shorter in UTF-8 first, then bytewise; a float
    written with an exponent as integer digits, -0.0 as 0.0."""
    if isinstance(value, dict):
        keys = sorted(value, key=lambda key: (len(key.encode()), key.encode()))
        return {key: as_jsonb(value[key]) for key in keys}
    if isinstance(value, list):
        return [as_jsonb(item) for item in value]
    if isinstance(value, float) and (abs(value) >= 1e16 or value == 0.0):
        return int(value) if abs(value) >= 1e16 else 0.0
    return value


def jsonb_changes_more_than_order(value: Any) -> bool:
    if isinstance(value, dict):
        return any("\0" in key or jsonb_changes_more_than_order(item) for key, item in value.items())
    if isinstance(value, list):
        return any(jsonb_changes_more_than_order(item) for item in value)
    if isinstance(value, float):
        return abs(value) >= 1e16 or math.copysign(1.0, value) < 0.0 == value
    return isinstance(value, str) and "\0" in value


keys = st.text(max_size=4) | st.sampled_from(["é", "zz", "b", "aa", "", "𝄞", "\0"])
documents = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([-0.0, 1e16, -1.5e300, 5e-324, 9.99e15])
    | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=25,
)


@given(documents)
@example({"task": 1, "step": 2, "scores": [], "notes": ""})
@example([{"b": 1, "a": 2}, {"y": {"d": 1, "c": 2}}])
def test_reads_give_back_exactly_the_document_written(document: Any) -> None:
    encoded = encode(document)
    jsonb_text, exact, order = stored(encoded.text, encoded.copy)
    assert "\\u0000" not in jsonb_text  # jsonb refuses the NUL character
    assert (exact is not None) == jsonb_changes_more_than_order(encoded.copy)
    if exact is not None:
        assert json.dumps(decode(exact)) == json.dumps(encoded.copy)
        assert order is None
        return
    read = restore(as_jsonb(decode(jsonb_text)), None if order is None else decode(order))
    assert json.dumps(read) == json.dumps(encoded.copy)


@given(documents)
def test_nothing_is_kept_beside_a_document_jsonb_already_gives_back(document: Any) -> None:
    canonical = encode(as_jsonb(document))
    if not jsonb_changes_more_than_order(canonical.copy):
        assert stored(canonical.text, canonical.copy) == (canonical.text, None, None)


def test_the_key_order_is_a_short_list_of_the_objects_that_differ() -> None:
    document = {"task": 1, "step": 2, "sorted": [{"a": 1, "b": 2}, {"bb": 1, "a": 2}]}
    assert stored(json.dumps(document), document).order == "[[0,[1,0,2]],[2,[1,0]]]"


def test_objects_with_many_keys_keep_their_order() -> None:
    document = {f"key-{n}": n for n in range(40, 0, -1)}  # beyond the scan, into the lookup table
    encoded = encode(document)
    _, exact, order = stored(encoded.text, encoded.copy)
    assert exact is None and order is not None
    assert list(restore(as_jsonb(encoded.copy), decode(order))) == list(document)
