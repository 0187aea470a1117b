// supportline console: live SLA countdowns against the server's clock, a self-refreshing queue,
// clickable rows, confirmations and player keys. No framework, no build step.
(function () {
  "use strict";

  var offset = 0; // server time minus browser time, in ms
  function syncClock(el) {
    var at = el && el.getAttribute("data-server-now");
    if (at) offset = Date.parse(at) - Date.now();
  }
  syncClock(document.body);

  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function format(ms) {
    var s = Math.floor(Math.abs(ms) / 1000);
    var d = Math.floor(s / 86400); s %= 86400;
    var h = Math.floor(s / 3600); s %= 3600;
    var m = Math.floor(s / 60); var sec = s % 60;
    if (d > 0) return d + "d " + h + "h";
    if (h > 0) return h + "h " + pad(m) + "m";
    return m + "m " + pad(sec) + "s";
  }

  var LIVE = { "on track": 1, "at risk": 1, "breached": 1 };
  var RANK = { "breached": 2, "at risk": 1 };

  function tick() {
    var now = Date.now() + offset;
    var rows = new Map();
    document.querySelectorAll("[data-due]").forEach(function (el) {
      var state = el.getAttribute("data-state");
      if (!LIVE[state]) return;
      var due = Date.parse(el.getAttribute("data-due"));
      var risk = el.getAttribute("data-risk");
      var left = due - now;
      var next = left < 0 ? "breached" : (risk && now >= Date.parse(risk) ? "at risk" : "on track");
      el.textContent = left < 0 ? format(left) + " over" : format(left); // as present.countdown_text
      if (next !== state) {
        el.setAttribute("data-state", next);
        el.classList.remove("st-" + state.replace(" ", "-"));
        el.classList.add("st-" + next.replace(" ", "-"));
        var card = el.closest(".ms-card");
        if (card) { card.className = card.className.replace(/st-[a-z-]+/, "st-" + next.replace(" ", "-")); }
      }
      var row = el.closest("tr.row");
      if (row && (RANK[next] || 0) > (rows.get(row) || 0)) rows.set(row, RANK[next]);
    });
    rows.forEach(function (rank, row) {
      row.classList.toggle("w-breached", rank === 2);
      row.classList.toggle("w-at-risk", rank === 1);
    });
    var clock = document.querySelector("[data-clock]");
    if (clock && clock.dataset.fmt !== "static") {
      var tz = document.body.getAttribute("data-tz") || undefined;
      try {
        clock.textContent = new Date(now).toLocaleString("en-US", {
          timeZone: tz, weekday: "short", month: "short", day: "numeric",
          hour: "2-digit", minute: "2-digit", hour12: false, timeZoneName: "short"
        });
      } catch (e) { /* unknown zone: keep the server's text */ }
    }
  }

  // The queue refreshes itself: a small HTML fragment every 10 s (paused while the tab is hidden).
  function startPolling(box) {
    var active = false;
    var status = document.querySelector("[data-refresh-status]");
    ["mousemove", "keydown", "click", "scroll", "touchstart"].forEach(function (type) {
      window.addEventListener(type, function () { active = true; }, { passive: true });
    });
    function poll() {
      if (document.hidden) return;
      var src = box.getAttribute("data-src");
      var url = src + (src.indexOf("?") >= 0 ? "&" : "?") + "active=" + (active ? "1" : "0");
      active = false;
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) {
          if (r.status === 401) {
            window.location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
            throw new Error("signed out");
          }
          if (!r.ok) throw new Error("HTTP " + r.status);
          return r.text();
        })
        .then(function (html) {
          box.innerHTML = html;
          syncClock(box.querySelector("[data-server-now]"));
          tick();
          if (status) { status.textContent = "live"; status.classList.remove("stale"); }
          box.dispatchEvent(new CustomEvent("queue:refreshed", { bubbles: true }));
        })
        .catch(function (err) {
          if (status) { status.textContent = "not refreshing (" + err.message + ")"; status.classList.add("stale"); }
        });
    }
    setInterval(poll, 10000);
    document.addEventListener("visibilitychange", function () { if (!document.hidden) poll(); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    // On a phone the queue's filters (unless some are set) and a ticket's list of pages fold away.
    if (window.matchMedia("(max-width: 700px)").matches) {
      document.querySelectorAll("details[data-phone-closed='1']").forEach(function (d) { d.removeAttribute("open"); });
    }
    tick();
    setInterval(tick, 1000);
    var box = document.getElementById("queue");
    if (box) {
      syncClock(box.querySelector("[data-server-now]"));
      startPolling(box);
      // A click anywhere on a row opens the ticket (links and selections keep working).
      box.addEventListener("click", function (e) {
        var row = e.target.closest("tr.row");
        if (!row || e.target.closest("a") || String(window.getSelection())) return;
        window.location.href = row.getAttribute("data-href");
      });
    }
    document.querySelectorAll("form[data-autosubmit] select, form[data-autosubmit] input[type=checkbox]").forEach(function (el) {
      el.addEventListener("change", function () { el.form.submit(); });
    });
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (e) {
        if (!window.confirm(form.getAttribute("data-confirm"))) e.preventDefault();
      });
    });
    // The composer's colour and button follow the chosen kind (CSS :has does it too; this is for older browsers).
    document.querySelectorAll("form[data-composer]").forEach(function (form) {
      function follow() {
        var checked = form.querySelector("input[name=mode]:checked");
        var mode = checked ? checked.value : "reply";
        form.classList.toggle("composer-note", mode === "note");
        form.classList.toggle("composer-reply", mode !== "note");
      }
      form.querySelectorAll("input[name=mode]").forEach(function (radio) {
        radio.addEventListener("change", function () { follow(); form.querySelector("textarea").focus(); });
      });
      follow();
    });
    // Player keys: space plays or pauses, arrows seek 5 s (not while typing).
    var audio = document.getElementById("vm-audio");
    if (audio) {
      document.addEventListener("keydown", function (e) {
        if (e.target.closest("input, textarea, select, button")) return;
        if (e.key === " ") { e.preventDefault(); if (audio.paused) { audio.play(); } else { audio.pause(); } }
        if (e.key === "ArrowRight") audio.currentTime = Math.min(audio.duration || 0, audio.currentTime + 5);
        if (e.key === "ArrowLeft") audio.currentTime = Math.max(0, audio.currentTime - 5);
      });
    }
  });
})();
