// The station dashboard's only script: the runs page fetches its runs section again every few
// seconds (server-rendered, escaped there) and puts it in place. Nothing depends on it: without
// it the page is whole and a reload shows the news.
"use strict";
(function () {
  var live = document.getElementById("live");
  if (!live || !live.dataset.fragment) return;
  var every = Number(live.dataset.every) || 2000;
  function refresh() {
    fetch(live.dataset.fragment, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html !== null) {
          live.innerHTML = html;
          live.dataset.updated = String(Date.now());
          live.removeAttribute("aria-busy");
        } else {
          live.setAttribute("aria-busy", "true");
        }
      })
      .catch(function () { live.setAttribute("aria-busy", "true"); })
      .then(function () { setTimeout(refresh, every); });
  }
  setTimeout(refresh, every);
})();
