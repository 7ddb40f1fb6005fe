// Operator actions on the session page (admin keys): pause, resume, fail, each confirmed in a dialog,
// sent to the /v1 API; a refusal shows the problem's `detail`.
"use strict";
(() => {
  const dialog = document.getElementById("confirm");
  if (!dialog) return;
  const problem = document.getElementById("action-problem");
  const reasonBox = document.getElementById("confirm-reason");
  const reason = document.getElementById("reason");
  const final = document.getElementById("final");
  const QUESTIONS = {
    pause: "Pause this session? Its worker may still heartbeat, but not checkpoint, until it is resumed.",
    resume: "Resume this session? It gets a fresh lease.",
    fail: "Fail this session? Unless you mark the failure final, another worker may recover it.",
  };
  let pending = null;

  document.addEventListener("click", (click) => {
    const button = click.target.closest("button[data-action]");
    if (!button) return;
    const action = button.dataset.action;
    pending = { action, sessionId: button.closest("[data-session-id]").dataset.sessionId };
    document.getElementById("confirm-title").textContent = `${action[0].toUpperCase()}${action.slice(1)} session`;
    document.getElementById("confirm-text").textContent = QUESTIONS[action];
    document.getElementById("confirm-button").textContent = button.textContent.replace("…", "");
    reasonBox.hidden = action !== "fail";
    dialog.returnValue = "";
    dialog.showModal();
  });

  dialog.addEventListener("close", async () => {
    const chosen = pending;
    pending = null;
    if (dialog.returnValue !== "confirm" || chosen === null) return;
    const body = chosen.action === "fail"
      ? { error: reason.value.trim() || "failed_by_operator", final: final.checked }
      : {};
    problem.hidden = true;
    try {
      const response = await fetch(`/v1/sessions/${encodeURIComponent(chosen.sessionId)}/${chosen.action}`, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json, application/problem+json" },
        body: JSON.stringify(body),
      });
      if (!response.ok) { report(await describe(response)); return; }
    } catch (err) {
      report(`The server could not be reached (${err.message}).`);
      return;
    }
    document.dispatchEvent(new CustomEvent("tether:changed"));
  });

  async function describe(response) {
    try {
      const found = await response.json();
      return found.detail || found.title || `${response.status} ${response.statusText}`;
    } catch {
      return `${response.status} ${response.statusText}`;
    }
  }

  function report(text) {
    problem.textContent = text;
    problem.hidden = false;
  }
})();
