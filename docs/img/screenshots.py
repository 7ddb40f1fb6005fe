"""Take the dashboard screenshots in this folder from a demo fleet: `tether demo` and `tether serve`
on one SQLite store, headless Debian chromium through Playwright.

    python docs/img/screenshots.py          # writes docs/img/dashboard-*.png (about a minute)
"""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

HERE = Path(__file__).parent
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]  # fmt: skip
DEMO = ["--json", "--sessions", "80", "--workers", "6", "--kill-rate", "1", "--step", "0.3", "--timeout", "2"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_ready(url: str) -> None:
    for _ in range(300):
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("tether serve did not start")


def interesting_session(db: Path) -> str:
    """A session with children that was taken over: the richest detail page."""
    with sqlite3.connect(db) as conn:
        found = conn.execute(
            "SELECT s.session_id FROM sessions s ORDER BY EXISTS "
            "(SELECT 1 FROM sessions c WHERE c.parent_session_id = s.session_id) DESC, "
            "s.recoveries DESC, s.created_us LIMIT 1"
        ).fetchone()
    return str(found[0])


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="tether-shots-"))
    db = folder / "tether.db"
    store = f"sqlite:///{db}"
    url = f"http://127.0.0.1:{free_port()}"
    tether = [sys.executable, "-m", "tether"]
    serve = ["serve", "--store", store, "--port", url.rsplit(":", 1)[1], "--sweep-interval", "0.25"]
    server = subprocess.Popen([*tether, *serve])
    try:
        wait_ready(url)
        demo = subprocess.Popen([*tether, "demo", "--store", store, *DEMO], stdout=subprocess.DEVNULL)
        time.sleep(12)  # a fleet in full swing: live, suspect and dead sessions, takeovers under way
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            for scheme, suffix in (("light", ""), ("dark", "-dark")):
                page = browser.new_page(viewport={"width": 1280, "height": 800}, color_scheme=scheme)
                page.goto(url + "/")
                page.wait_for_timeout(1500)
                page.screenshot(path=HERE / f"dashboard-overview{suffix}.png", full_page=True)
                page.close()
            demo.wait(300)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(f"{url}/sessions/{interesting_session(db)}")
            page.locator("details", has_text="session_recovered").first.locator("summary").click()
            page.wait_for_timeout(500)
            page.screenshot(path=HERE / "dashboard-session.png")
            browser.close()
    finally:
        server.terminate()
        server.wait(15)


if __name__ == "__main__":
    main()
