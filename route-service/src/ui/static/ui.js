// The dashboard's only script: a train page follows its event feed and, on each event, fetches
// its live section again (server-rendered, escaped there) and puts it in place. Nothing else
// depends on it: without it the page is whole and a reload shows the news.
"use strict";
(function () {
  var live = document.getElementById("live");
  if (!live || !live.dataset.feed || !window.EventSource) return;
  var pending = null;
  function refresh() {
    pending = null;
    fetch(live.dataset.fragment, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html !== null) {
          live.innerHTML = html;
          live.dataset.updated = String(Date.now());
        }
      })
      .catch(function () {});
  }
  var feed = new EventSource(live.dataset.feed);
  function onEvent() {
    // Bursts (a move is several events) fetch once.
    if (pending === null) pending = setTimeout(refresh, 250);
  }
  // The feed names each event by its kind; the page lists them.
  (live.dataset.kinds || "").split(" ").forEach(function (k) {
    if (k) feed.addEventListener(k, onEvent);
  });
  feed.onmessage = onEvent;
  feed.addEventListener("error", function () {
    live.setAttribute("aria-busy", "true");
  });
  feed.addEventListener("open", function () {
    live.removeAttribute("aria-busy");
  });
})();
