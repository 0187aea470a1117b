// Client portal: the triage form's priority preview updates as the client answers (the form works without this).
(function () {
  "use strict";
  const form = document.querySelector("form.triage");
  if (!form) return;
  const box = document.getElementById("preview");
  const url = form.dataset.previewUrl;
  const keys = ["affected", "workaround", "deadline", "risk", "request"];

  function text(tag, value, cls) {
    const el = document.createElement(tag);
    el.textContent = value;
    if (cls) el.className = cls;
    return el;
  }

  function render(p) {
    box.replaceChildren();
    box.className = "preview p-" + p.priority;
    const h = document.createElement("h2");
    h.append("Priority: ");
    const badge = text("span", p.label, "prio p-" + p.priority);
    badge.dataset.priority = "";
    h.append(badge);
    box.append(h, text("p", p.description));
    const table = document.createElement("table");
    table.className = "targets";
    table.append(text("caption", "Our commitment if you submit now"));
    const head = document.createElement("thead");
    const hr = document.createElement("tr");
    for (const c of ["Step", "Within", "Due"]) { const th = text("th", c); th.scope = "col"; hr.append(th); }
    head.append(hr);
    const body = document.createElement("tbody");
    for (const t of p.targets) {
      const tr = document.createElement("tr");
      const th = text("th", t.milestone); th.scope = "row";
      tr.append(th, text("td", t.target), text("td", t.due));
      body.append(tr);
    }
    table.append(head, body);
    box.append(table);
    if (p.notice) {
      const n = text("p", p.notice, "note urgent");
      n.dataset.paging = "";
      n.setAttribute("role", "note");
      box.append(n);
    }
    box.append(text("p", "Our service coordinator may adjust the priority after reviewing your ticket.", "muted small"));
    box.hidden = false;
  }

  function update() {
    const data = new FormData(form);
    const q = new URLSearchParams();
    for (const k of keys) { const v = data.get(k); if (v) q.set(k, v); }
    const skip = data.get("risk") || data.get("request");
    for (const el of form.querySelectorAll("[data-incident]")) el.classList.toggle("fieldset-muted", Boolean(skip));
    fetch(url + "?" + q.toString(), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((r) => (r.ok ? r.json() : null))
      .then((p) => { if (p) render(p); })
      .catch(() => {});
  }

  form.addEventListener("change", (e) => { if (keys.includes(e.target.name)) update(); });
  if (form.querySelector("input[name=affected]:checked") || form.querySelector("input[name=risk]:checked, input[name=request]:checked")) update();
})();
