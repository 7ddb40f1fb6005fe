"""The dashboard's pages over plain HTTP (no browser): login, the cookie, scoping and bad filters."""

from __future__ import annotations

import httpx

from tests.live_server import LiveServer
from tests.server.conftest import Keys, client_for


def page_client(server: LiveServer, key: str | None = None) -> httpx.Client:
    cookies = {} if key is None else {"tether_key": key}
    return httpx.Client(base_url=server.url, cookies=cookies, timeout=10, follow_redirects=False)


def log_in(server: LiveServer, key: str, next_path: str = "/") -> httpx.Response:
    with page_client(server) as browser:
        return browser.post("/ui/login", data={"key": key, "next": next_path}, headers={"Origin": server.url})


def test_pages_without_a_key_send_you_to_the_login_page_and_back(server: LiveServer, keys: Keys) -> None:
    with page_client(server) as browser:
        answer = browser.get("/sessions", params={"state": "paused"})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=%2Fsessions%3Fstate%3Dpaused"


def test_login_sets_an_httponly_strict_cookie_and_refuses_a_bad_key(server: LiveServer, keys: Keys) -> None:
    good = log_in(server, keys.alice, "/sessions")
    assert (good.status_code, good.headers["location"]) == (303, "/sessions")
    cookie = good.headers["set-cookie"].lower()
    assert cookie.startswith("tether_key=") and "httponly" in cookie and "samesite=strict" in cookie

    bad = log_in(server, "tth_nosuch_secret")
    assert bad.status_code == 401
    assert "That key is not valid" in bad.text and "set-cookie" not in bad.headers


def test_login_returns_only_to_a_path_on_this_site(server: LiveServer, keys: Keys) -> None:
    for elsewhere in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        assert log_in(server, keys.alice, elsewhere).headers["location"] == "/"


def test_a_login_form_posted_from_another_site_is_refused(server: LiveServer, keys: Keys) -> None:
    with page_client(server) as browser:
        answer = browser.post(
            "/ui/login", data={"key": keys.alice}, headers={"Origin": "http://evil.example"}
        )
    assert (answer.status_code, answer.json()["code"]) == (403, "forbidden")


def test_a_user_key_sees_neither_another_users_session_nor_its_row(server: LiveServer, keys: Keys) -> None:
    with client_for(server, keys.bob) as bob:
        theirs = bob.post("/v1/sessions", json={"agent_type": "tutor"}).json()["session_id"]
    with page_client(server, keys.alice) as alice:
        assert alice.get(f"/sessions/{theirs}").status_code == 404
        assert theirs not in alice.get("/sessions", params={"user_id": "bob"}).text
    with page_client(server, keys.admin) as admin:
        assert theirs in admin.get("/sessions", params={"user_id": "bob"}).text


def test_a_bad_filter_answers_422_naming_it(server: LiveServer, keys: Keys) -> None:
    with page_client(server, keys.admin) as admin:
        for query, message in (
            ({"state": "sleeping"}, "state: must be one of active, paused, completed, failed"),
            ({"liveness": "healthy"}, "liveness: must be one of suspect, dead"),
            ({"silent_for": "-3"}, "silent_for: must be a whole number of seconds"),
            ({"limit": "7"}, "limit: must be one of (25, 50, 100, 200)"),
            ({"cursor": "garbage"}, "cursor: is not a cursor this server handed out"),
        ):
            answer = admin.get("/sessions", params=query)
            assert answer.status_code == 422, query
            assert message in answer.text.replace("&#39;", "'"), query
