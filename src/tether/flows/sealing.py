"""A store seen through a payload codec: what a flow hands the store is sealed, what the store
hands back is opened. It sits between the managers' flows and the store (Redis liveness
included), so no store, and nothing a store writes to, ever holds a payload in clear, and no
flow needs to know about encryption.

Validation runs in the flows before sealing, so size limits apply to the plaintext a caller
wrote; the sealed JSON a store holds is about 4/3 of it plus ~100 bytes.

One proxy serves a sync `Store` and an `AsyncStore`: each method call seals its arguments, and
opens the result, or the awaited result of a coroutine.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

from tether.core.codec import encode
from tether.core.model import Checkpoint, NewCheckpoint, Page, Session
from tether.core.sealing import PayloadCodec, seal, unseal
from tether.lifecycle import Write
from tether.stores.base import AsyncStore, Store


class Sealed:
    """`Store` or `AsyncStore` methods by the same names, payloads sealed on the way in."""

    def __init__(self, target: Store | AsyncStore, codec: PayloadCodec) -> None:
        self.target = target
        self.codec = codec

    def __getattr__(self, method: str) -> Callable[..., Any]:
        call = getattr(self.target, method)

        def sealed(*args: Any) -> Any:
            result = call(*(self._seal(arg) for arg in args))
            if inspect.isawaitable(result):
                return self._opened_later(result, method, args)
            return self._opened(result, method, args)

        setattr(self, method, sealed)  # looked up once per method
        return sealed

    async def _opened_later(self, result: Awaitable[Any], method: str, args: tuple[Any, ...]) -> Any:
        return self._opened(await result, method, args)

    def _opened(self, result: Any, method: str, args: tuple[Any, ...]) -> Any:
        if method == "append":  # the caller's own plaintext: no need to decrypt what it wrote
            return replace(result, data=args[1].data)
        return self._open(result)

    # -- in ----------------------------------------------------------------------------------
    def _seal(self, value: Any) -> Any:
        if isinstance(value, Session):
            return self._seal_session(value)
        if isinstance(value, NewCheckpoint):
            return self._seal_checkpoint(value)
        if isinstance(value, Write):
            checkpoint = None if value.checkpoint is None else self._seal_checkpoint(value.checkpoint)
            return replace(value, after=self._seal_session(value.after), checkpoint=checkpoint)
        if isinstance(value, Sequence) and value and isinstance(value[0], NewCheckpoint):
            return [self._seal_checkpoint(cp) for cp in value]
        return value

    def _seal_session(self, session: Session) -> Session:
        failure = session.failure
        if failure is not None:
            failure = replace(failure, details=seal(self.codec, failure.details))
        return replace(
            session,
            context=seal(self.codec, session.context),
            metadata=seal(self.codec, session.metadata),
            failure=failure,
        )

    def _seal_checkpoint(self, checkpoint: NewCheckpoint) -> NewCheckpoint:
        sealed = encode(seal(self.codec, checkpoint.data))
        return replace(checkpoint, data_json=sealed.text, data=sealed.copy)

    # -- out ---------------------------------------------------------------------------------
    def _open(self, value: Any) -> Any:
        if isinstance(value, Session):
            return self._open_session(value)
        if isinstance(value, Checkpoint):
            return replace(value, data=unseal(self.codec, value.data, value.session_id, "data"))
        if isinstance(value, Page):
            return Page([self._open(item) for item in value.items], value.next_cursor)
        if isinstance(value, list):
            return [self._open(item) for item in value]
        return value

    def _open_session(self, session: Session) -> Session:
        sid, failure = session.session_id, session.failure
        context = unseal(self.codec, session.context, sid, "context")
        metadata = unseal(self.codec, session.metadata, sid, "metadata")
        if failure is not None:
            failure = replace(failure, details=unseal(self.codec, failure.details, sid, "failure details"))
        return replace(session, context=context, metadata=metadata, failure=failure)
