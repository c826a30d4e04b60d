// durq dashboard: live refresh and confirmations, in plain JS (no build step, no CDN).
"use strict";

// Every few seconds, fetch the fragment named by data-live and swap it in. Skipped while
// the tab is hidden or the user is working inside the region (a focused button or field).
// A slow answer (a huge table) stretches the pause, so the page never keeps the database busy.
const REFRESH_MS = 3000;

function schedule(region, delay) {
  window.setTimeout(() => refresh(region), delay);
}

function refresh(region) {
  if (document.hidden || region.contains(document.activeElement)) {
    schedule(region, REFRESH_MS);
    return;
  }
  const started = performance.now();
  fetch(region.dataset.live, { credentials: "same-origin", headers: { Accept: "text/html" } })
    .then((response) => {
      // Sent to the login form (the session ended): reload, so the whole page goes there.
      if (response.redirected || response.status === 401) {
        window.location.reload();
        return null;
      }
      return response.status === 200 ? response.text() : null;
    })
    .then((html) => {
      if (html !== null && region.innerHTML !== html) region.innerHTML = html;
      region.dataset.refreshed = String(Date.now());
    })
    .catch(() => {}) // the server restarting: try again next time
    .finally(() => schedule(region, Math.max(REFRESH_MS, 10 * (performance.now() - started))));
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-live]").forEach((region) => schedule(region, REFRESH_MS));
});

// Forms with data-confirm ask first (inline handlers are barred by the CSP).
document.addEventListener("submit", (event) => {
  const message = event.target.dataset ? event.target.dataset.confirm : undefined;
  if (message && !window.confirm(message)) event.preventDefault();
});
