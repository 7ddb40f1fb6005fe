"""The operator's dashboard, seen through a real browser against a real `tether serve`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import REQUIRED, Operator, unique
from tests.live_server import LiveServer, free_port, live_server
from tether import SessionManager

if not REQUIRED:  # in CI a missing Playwright fails the collection
    pytest.importorskip("playwright", reason="playwright is not installed (pip install -e '.[dev]')")
from playwright.sync_api import expect


def row(op: Operator, session_id: str) -> Any:
    return op.page.locator(f'tr[data-session-id="{session_id}"]')


def test_logging_in_keeps_the_key_in_an_httponly_strict_cookie_never_in_a_url(operator_for: Any) -> None:
    op: Operator = operator_for(unique("ops"), admin=True)
    op.page.goto("/sessions?state=active")
    expect(op.page).to_have_url(op.server.url + "/login?next=%2Fsessions%3Fstate%3Dactive")

    op.page.get_by_label("API key").fill("tth_nosuchkey_secret")
    op.page.get_by_role("button", name="Log in").click()
    expect(op.page.get_by_role("alert")).to_contain_text("not valid")

    op.page.get_by_label("API key").fill(op.key)
    op.page.get_by_role("button", name="Log in").click()
    expect(op.page).to_have_url(op.server.url + "/sessions?state=active")
    expect(op.page.get_by_role("heading", name="Sessions")).to_be_visible()
    (cookie,) = op.page.context.cookies()
    assert (cookie["name"], cookie["httpOnly"], cookie["sameSite"]) == ("tether_key", True, "Strict")
    assert op.key not in op.page.url
    assert op.key not in op.page.evaluate("document.cookie")  # scripts cannot read it


def test_a_new_session_appears_in_the_list_without_a_reload(admin: Operator) -> None:
    user = unique("user")
    admin.page.goto(f"/sessions?user_id={user}")
    expect(admin.page.get_by_text("No sessions match these filters.")).to_be_visible()
    admin.page.evaluate("window.notReloaded = true")

    created = admin.create(user_id=user)

    expect(row(admin, created["session_id"])).to_be_visible()
    assert admin.page.evaluate("window.notReloaded") is True


def test_a_state_change_shows_live_after_an_api_call(admin: Operator) -> None:
    created = admin.create(user_id=unique("user"))
    admin.page.goto(f"/sessions?user_id={created['user_id']}")
    expect(row(admin, created["session_id"]).locator(".state-active")).to_be_visible()
    admin.page.evaluate("window.notReloaded = true")

    admin.post(f"/v1/sessions/{created['session_id']}/pause")

    expect(row(admin, created["session_id"]).locator(".state-paused")).to_have_text("paused")
    assert admin.page.evaluate("window.notReloaded") is True


def test_a_silent_worker_turns_suspect_then_dead_then_taken_over(admin: Operator) -> None:
    created = admin.create("flaky", user_id=unique("user"), worker_id="worker-1")
    sid = created["session_id"]
    admin.post(f"/v1/sessions/{sid}/heartbeat", {"epoch": 1, "phase": "thinking"})
    admin.page.goto(f"/sessions?user_id={created['user_id']}")
    liveness = row(admin, sid).locator("[data-liveness]")
    expect(liveness).to_have_text("healthy")

    # The worker stops heartbeating: suspect after 1 s, dead (lease expired) after 3 s.
    expect(liveness).to_have_text("suspect", timeout=5_000)
    expect(liveness).to_have_text("dead", timeout=5_000)
    expect(row(admin, sid)).to_have_attribute("data-liveness-now", "dead")

    admin.post(f"/v1/sessions/{sid}/claim", {"worker_id": "worker-2"})

    expect(row(admin, sid).locator("td.mono")).to_have_text("worker-2")
    expect(liveness).to_have_text("healthy")
    expect(row(admin, sid).locator("td.num").first).to_have_text("2")  # the epoch after takeover


def test_the_detail_shows_the_session_its_tree_and_each_checkpoints_data(admin: Operator) -> None:
    user = unique("user")
    parent = admin.create("orchestrator", user_id=user, worker_id="worker-7")
    child = admin.create("grader", user_id=user, parent_session_id=parent["session_id"])
    sid = parent["session_id"]
    admin.post(f"/v1/sessions/{sid}/heartbeat", {"phase": "planning"})
    plan = {"name": "plan_ready", "data": {"steps": ["a", "b"], "n": 42}}
    admin.post(f"/v1/sessions/{sid}/checkpoints", plan)

    admin.page.goto(f"/sessions/{sid}")

    facts = admin.page.locator("dl.facts")
    for label, value in (("Owner", "worker-7"), ("Epoch", "1"), ("Phase", "planning"), ("Recoveries", "0")):
        expect(facts.locator(f"dt:text-is('{label}') + dd")).to_have_text(value)
    expect(facts.locator("dt:text-is('Lease') + dd")).to_contain_text("in ")
    expect(admin.page.get_by_role("tree").get_by_role("link", name=child["session_id"])).to_be_visible()

    checkpoint = admin.page.locator("details", has_text="plan_ready")
    expect(checkpoint.locator("pre")).to_be_hidden()
    checkpoint.locator("summary").click()
    expect(checkpoint.locator("pre")).to_contain_text('"n": 42')

    admin.page.get_by_role("tree").get_by_role("link", name=child["session_id"]).click()
    expect(admin.page.get_by_role("tree").get_by_role("link", name=sid)).to_be_visible()


def test_pausing_from_the_page_asks_first_then_pauses(admin: Operator) -> None:
    sid = admin.create(user_id=unique("user"))["session_id"]
    admin.page.goto(f"/sessions/{sid}")

    admin.page.get_by_role("button", name="Pause", exact=True).click()
    dialog = admin.page.get_by_role("dialog")
    expect(dialog).to_contain_text("Pause this session?")
    dialog.get_by_role("button", name="Cancel").click()
    assert admin.api.get(f"/v1/sessions/{sid}").json()["state"] == "active"

    admin.page.get_by_role("button", name="Pause", exact=True).click()
    dialog.get_by_role("button", name="Pause", exact=True).click()

    expect(admin.page.locator("h1 .state-paused")).to_have_text("paused")
    assert admin.api.get(f"/v1/sessions/{sid}").json()["state"] == "paused"
    expect(admin.page.locator(".timeline li.lifecycle", has_text="session_paused")).to_be_visible()
    expect(admin.page.get_by_role("button", name="Resume")).to_be_visible()


def test_a_refused_action_shows_the_problems_detail(admin: Operator) -> None:
    sid = admin.create(user_id=unique("user"))["session_id"]
    admin.page.goto(f"/sessions/{sid}")
    admin.page.get_by_role("button", name="Pause live updates").click()
    expect(admin.page.get_by_role("status")).to_have_text("updates paused")
    admin.post(f"/v1/sessions/{sid}/complete")  # the frozen page still offers Pause

    admin.page.get_by_role("button", name="Pause", exact=True).click()
    admin.page.get_by_role("dialog").get_by_role("button", name="Pause", exact=True).click()

    expect(admin.page.get_by_role("alert")).to_have_text(f"session '{sid}' is completed: cannot pause")


def test_a_user_key_sees_only_its_users_sessions_by_list_or_by_url(operator_for: Any) -> None:
    alice: Operator = operator_for(unique("alice"))
    bob: Operator = operator_for(unique("bob"))
    mine = alice.create()["session_id"]
    theirs = bob.create()["session_id"]
    alice.log_in()

    for query in ("", f"?user_id={bob.api.get('/v1/me').json()['user_id']}"):
        alice.page.goto(f"/sessions{query}")
        expect(row(alice, mine)).to_be_visible()
        expect(row(alice, theirs)).to_have_count(0)
    response = alice.page.goto(f"/sessions/{theirs}")
    assert response is not None and response.status == 404
    expect(alice.page.get_by_role("heading", name="No such session")).to_be_visible()
    alice.page.goto(f"/sessions/{mine}")
    actions = alice.page.get_by_role("region", name="Actions")
    expect(actions).to_have_count(0)  # pause, resume and fail are for admin keys


def test_the_list_catches_up_after_the_server_went_away(operator_for: Any, tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path}/tether.db"
    port = free_port()
    with live_server(store_url, port=port) as first:
        key = first.key("ops", admin=True)
        op: Operator = operator_for(unique("ops"), admin=True, server=first, key=key)
        op.log_in()
        op.page.goto("/sessions")
        status = op.page.get_by_role("status")
        expect(status).to_have_text("live")
    expect(status).to_have_text("reconnecting…")
    with SessionManager(store_url) as manager:  # written while no server was there to tell
        missed = manager.create("tutor", "user-1").session_id

    with live_server(store_url, port=port):
        expect(status).to_have_text("live", timeout=15_000)
        expect(row(op, missed)).to_be_visible()


def test_a_cross_site_write_with_the_dashboards_cookie_is_refused(server: LiveServer) -> None:
    key = server.key(unique("ops"), admin=True)
    with httpx.Client(base_url=server.url, timeout=10) as browserlike:
        sid = browserlike.post(
            "/v1/sessions", json={"agent_type": "tutor", "user_id": "u"}, headers=LiveServer.auth(key)
        ).json()["session_id"]
        cookie = {"Cookie": f"tether_key={key}"}

        forged = browserlike.post(
            f"/v1/sessions/{sid}/pause", json={}, headers={**cookie, "Origin": "http://evil.example"}
        )
        unlabeled = browserlike.post(f"/v1/sessions/{sid}/pause", json={}, headers=cookie)
        assert (forged.status_code, forged.json()["code"]) == (403, "forbidden")
        assert unlabeled.status_code == 403
        assert browserlike.get(f"/v1/sessions/{sid}", headers=cookie).json()["state"] == "active"

        ours = {**cookie, "Origin": server.url}
        assert browserlike.post(f"/v1/sessions/{sid}/pause", json={}, headers=ours).status_code == 200
