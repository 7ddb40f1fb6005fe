"""Where a client connects, as whom, and which failures it retries: only those that cannot have
written anything (the connection was never made, or the server answered 503 store_unavailable)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from tether import AsyncClient, Client, LeaseLost, StoreUnavailable, TetherError
from tether.client import transport

Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport, "BACKOFF", 0.0)
    monkeypatch.setattr(transport, "MAX_WAIT", 0.0)


def _client(handler: Handler, retries: int = transport.RETRIES) -> Client:
    return Client(
        "http://tether.test", worker_id="w", retries=retries, transport=httpx.MockTransport(handler)
    )


def _problem(status: int, code: str, **extra: object) -> httpx.Response:
    body = {"status": status, "code": code, "detail": code, **extra}
    return httpx.Response(status, json=body, headers={"Content-Type": "application/problem+json"})


def test_url_and_key_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_URL", "http://tether.example:9000/")
    monkeypatch.setenv("TETHER_API_KEY", "tth_abc_secret")
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    client = Client(transport=httpx.MockTransport(handler))
    client.heartbeat("s1")
    assert str(seen[0].url) == "http://tether.example:9000/v1/sessions/s1/heartbeat"
    assert seen[0].headers["Authorization"] == "Bearer tth_abc_secret"


def test_explicit_arguments_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_URL", "http://elsewhere:1")
    monkeypatch.setenv("TETHER_API_KEY", "tth_env")
    seen: list[httpx.Request] = []
    client = Client(
        "http://here:2",
        api_key="tth_given",
        transport=httpx.MockTransport(lambda r: seen.append(r) or httpx.Response(204)),
    )
    client.heartbeat("s1")
    assert (seen[0].url.host, seen[0].headers["Authorization"]) == ("here", "Bearer tth_given")


def test_a_refused_connection_is_retried_then_reported_as_store_unavailable() -> None:
    tries: list[int] = []

    def refused(request: httpx.Request) -> httpx.Response:
        tries.append(1)
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(StoreUnavailable):
        _client(refused, retries=2).heartbeat("s1")
    assert len(tries) == 3


def test_a_503_is_retried_and_the_next_answer_counts() -> None:
    answers = [_problem(503, "store_unavailable"), _problem(503, "store_unavailable"), httpx.Response(204)]
    assert _client(lambda r: answers.pop(0)).heartbeat("s1") is None
    assert answers == []


@pytest.mark.parametrize(
    "failure",
    [
        lambda r: (_ for _ in ()).throw(httpx.ReadTimeout("slow", request=r)),
        lambda r: (_ for _ in ()).throw(httpx.RemoteProtocolError("dropped mid-answer", request=r)),
        lambda r: _problem(500, "internal_error"),
    ],
    ids=["read timeout", "dropped connection", "500"],
)
def test_a_request_that_may_have_been_applied_is_never_repeated(failure: Handler) -> None:
    tries: list[int] = []

    def once(request: httpx.Request) -> httpx.Response:
        tries.append(1)
        return failure(request)

    with pytest.raises(TetherError):
        _client(once).checkpoint("s1", "step", {"n": 1})
    assert len(tries) == 1


def test_a_problem_becomes_the_library_exception_with_its_request_id() -> None:
    answer = _problem(409, "lease_lost", session_id="s1", epoch=1, current_epoch=2, reason="taken over")
    answer.headers["X-Request-ID"] = "req-7"
    with pytest.raises(LeaseLost) as caught:
        _client(lambda r: answer).checkpoint("s1", "late", epoch=1)
    assert (caught.value.epoch, caught.value.current_epoch, caught.value.request_id) == (1, 2, "req-7")


def test_the_async_client_retries_the_same_way() -> None:
    answers = [_problem(503, "store_unavailable"), httpx.Response(204)]

    async def beat() -> None:
        async with AsyncClient("http://t", transport=httpx.MockTransport(lambda r: answers.pop(0))) as client:
            await client.heartbeat("s1")

    asyncio.run(beat())
    assert answers == []


def test_a_url_without_a_scheme_is_a_configuration_error() -> None:
    with pytest.raises(TetherError, match="http"):
        Client("tether.example:8000")
