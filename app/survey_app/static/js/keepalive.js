/* Keeps the session of a long form alive while the person works on it, so nothing typed
   is lost to the idle timeout. Used by forms with data-keepalive-url and
   data-keepalive-seconds: while there is activity (typing, clicking), the URL is fetched
   at most once per interval; it refreshes the session and returns
   {logged_in, csrf_token}. The page's CSRF tokens are updated (the session may be a new
   one after logging in again in another tab), and elements marked
   data-session="expired" / data-session="back" are shown or hidden accordingly. An idle
   page sends nothing, so the idle timeout still ends forgotten sessions. */
(function () {
  "use strict";
  var form = document.querySelector("form[data-keepalive-url]");
  if (!form || !window.fetch) { return; }
  var url = form.getAttribute("data-keepalive-url");
  var seconds = Math.max(1, parseInt(form.getAttribute("data-keepalive-seconds"), 10) || 300);
  var active = false;
  var wasExpired = document.querySelector('[data-session="expired"]:not([hidden])') !== null;

  function show(kind, visible) {
    document.querySelectorAll('[data-session="' + kind + '"]').forEach(function (el) {
      el.hidden = !visible;
    });
  }

  function ping() {
    active = false;
    fetch(url, { credentials: "same-origin", cache: "no-store",
                 headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (state) {
        if (!state) { return; }
        document.querySelectorAll('input[name="csrf_token"]').forEach(function (input) {
          input.value = state.csrf_token;
        });
        if (state.logged_in) {
          show("expired", false);
          show("back", wasExpired);
        } else {
          wasExpired = true;
          show("back", false);
          show("expired", true);
        }
      })
      .catch(function () { /* offline for a moment: the next ping will tell */ });
  }

  ["input", "change", "keydown", "pointerdown"].forEach(function (name) {
    document.addEventListener(name, function () { active = true; }, { passive: true });
  });
  window.setInterval(function () { if (active) { ping(); } }, seconds * 1000);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") { ping(); }
  });
}());
