// doorface face library: the only script (no build step, no CDN). Pages work without it;
// it refreshes the Live picture while the tab is visible, asks before deleting, and goes back.
"use strict";

function refreshLive(img) {
  // one request at a time: the next frame is asked for a period after the last one arrived
  const every = Number(img.dataset.refreshMs) || 1000;
  const next = () => setTimeout(tick, every);
  const tick = () => {
    if (document.hidden) { next(); return; }
    img.src = "/live.jpg?t=" + Date.now();
  };
  img.addEventListener("load", next);
  img.addEventListener("error", () => setTimeout(tick, 5 * every));
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("img[data-refresh-ms]").forEach(refreshLive);
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
  document.querySelectorAll("a[data-back]").forEach((a) => {
    a.addEventListener("click", (event) => {
      if (history.length > 1) { event.preventDefault(); history.back(); }
    });
  });
});
