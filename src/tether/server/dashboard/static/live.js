// Keeps a server-rendered page current without a reload. Times tick here; events from /v1/events
// (and any deadline a row shows passing) say when to read the page again, and the server renders it,
// so the page never computes what the store says. The dashboard's cookie authenticates the stream.
"use strict";
(() => {
  const body = document.body;
  const page = body.dataset.live; // overview | list | detail | "" (login)
  if (!page) return;
  const KINDS = ["created", "checkpoint", "paused", "resumed", "completed", "failed", "timed_out",
                 "claimed", "updated", "deleted", "suspect", "liveness"];
  const MIN_GAP = 1000; // ms between two reads of the page
  const PERIOD = 5000; // ms: heartbeat ages and charts move even without events
  const status = document.getElementById("live-status");
  const toggle = document.getElementById("live-toggle");
  let skew = clockSkew(body);
  let paused = false, timer = null, inflight = false, again = false, lastRead = 0;

  function clockSkew(from) {
    const server = Date.parse(from.dataset.serverNow);
    return Number.isNaN(server) ? 0 : server - Date.now();
  }
  const now = () => Date.now() + skew;

  function span(ms) {
    const s = Math.abs(ms) / 1000;
    if (s < 10) return `${s.toFixed(1)} s`;
    if (s < 60) return `${Math.round(s)} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min ${Math.floor(s % 60)} s`;
    const h = Math.floor(m / 60);
    if (h < 24) return `${h} h ${m % 60} min`;
    return `${Math.floor(h / 24)} d ${h % 24} h`;
  }

  function levelAt(el, t) {
    if (el.dataset.state !== "active" && el.dataset.state !== "paused") return "";
    const lease = Date.parse(el.dataset.leaseExpiresAt), suspect = Date.parse(el.dataset.suspectAt);
    if (t >= lease) return "dead";
    if (t >= suspect) return "suspect";
    return "healthy";
  }

  function tick() {
    const t = now();
    for (const el of document.querySelectorAll("time[data-ago]")) {
      const d = t - Date.parse(el.dateTime);
      el.textContent = d >= 0 ? `${span(d)} ago` : `in ${span(d)}`;
    }
    for (const el of document.querySelectorAll("time[data-elapsed]")) {
      el.textContent = span(t - Date.parse(el.dateTime));
    }
    for (const el of document.querySelectorAll("time[data-until]")) {
      const d = Date.parse(el.dateTime) - t;
      el.textContent = d > 0 ? `in ${span(d)}` : `expired ${span(d)} ago`;
    }
    for (const el of document.querySelectorAll("[data-liveness-now]:not([data-asked])")) {
      if (el.dataset.livenessNow && levelAt(el, t) !== el.dataset.livenessNow) {
        el.dataset.asked = ""; // a deadline passed: did a heartbeat move it, or is it suspect now?
        readSoon();
      }
    }
  }

  function concerns(event) {
    if (page === "overview") return true;
    const id = event.session_id;
    if (typeof id !== "string") return false;
    if (page === "list" && event.kind === "created") return !new URLSearchParams(location.search).has("cursor");
    const quoted = CSS.escape(id);
    return document.querySelector(`[data-session-id="${quoted}"]`) !== null ||
           document.querySelector(`a[href="/sessions/${CSS.escape(encodeURIComponent(id))}"]`) !== null;
  }

  function readSoon() {
    if (paused || timer !== null) return;
    timer = setTimeout(read, Math.max(0, lastRead + MIN_GAP - Date.now()));
  }

  async function read() {
    timer = null;
    if (paused) return;
    if (inflight) { again = true; return; }
    inflight = true;
    lastRead = Date.now();
    try {
      const response = await fetch(location.href, { credentials: "same-origin", cache: "no-store" });
      if (new URL(response.url).pathname === "/login") { location.reload(); return; }
      if (!response.ok) return;
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      if (paused) return;
      skew = clockSkew(fresh.body);
      for (const region of document.querySelectorAll("[data-region]")) {
        const next = fresh.querySelector(`[data-region="${region.dataset.region}"]`);
        if (next) swap(region, next);
      }
      tick();
    } catch (err) {
      // The server is unreachable; the stream's reconnect reads the page again.
    } finally {
      inflight = false;
      if (again) { again = false; readSoon(); }
    }
  }

  function swap(region, next) {
    const open = [...region.querySelectorAll("details[open][id]")].map((d) => d.id);
    const focus = region.contains(document.activeElement) ? document.activeElement.id : "";
    const rows = new Set([...region.querySelectorAll("tr[data-session-id]")].map((r) => r.dataset.sessionId));
    region.replaceChildren(...next.childNodes);
    for (const id of open) document.getElementById(id)?.setAttribute("open", "");
    if (focus) document.getElementById(focus)?.focus();
    for (const row of region.querySelectorAll("tr[data-session-id]")) {
      if (rows.size && !rows.has(row.dataset.sessionId)) row.classList.add("flash");
    }
  }

  function show(state, text) {
    if (!status) return;
    status.dataset.status = state;
    status.textContent = text;
  }

  function connect(delay) {
    let down = false;
    const source = new EventSource("/v1/events");
    source.onopen = () => {
      show(paused ? "paused" : "live", paused ? "updates paused" : "live");
      if (down) readSoon(); // catch up on whatever the gap hid
      down = false;
    };
    source.onerror = () => {
      down = true;
      show("reconnecting", "reconnecting…");
      if (source.readyState === EventSource.CLOSED) { // refused (e.g. 401/503): retry by hand
        const wait = Math.min(30000, delay * 2);
        setTimeout(() => connect(wait), wait);
      }
    };
    const onEvent = (message) => {
      let event;
      try { event = JSON.parse(message.data); } catch { return; }
      if (event && typeof event === "object" && !event.kind) event.kind = message.type;
      if (event && concerns(event)) readSoon();
    };
    for (const kind of KINDS) source.addEventListener(kind, onEvent);
    source.addEventListener("message", onEvent);
    source.addEventListener("reset", () => readSoon()); // the server's buffer lost our place
  }

  toggle?.addEventListener("click", () => {
    paused = !paused;
    toggle.setAttribute("aria-pressed", String(paused));
    toggle.textContent = paused ? "Resume live updates" : "Pause live updates";
    show(paused ? "paused" : "live", paused ? "updates paused" : "live");
    if (!paused) readSoon();
  });
  document.addEventListener("tether:changed", () => { lastRead = 0; readSoon(); });

  tick();
  setInterval(tick, 1000);
  setInterval(readSoon, PERIOD);
  connect(1000);
})();
