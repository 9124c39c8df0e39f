// segwatch search page: reads the form, calls GET /api/v1/search with the
// session cookie, renders the hits. No framework, no inline script (the CSP
// forbids it), and nothing from the server is ever inserted as HTML.
(function () {
  "use strict";

  var $ = function (id) { return document.getElementById(id); };
  var form = $("search"), q = $("q"), range = $("range"), custom = $("custom");
  var fromIn = $("from"), toIn = $("to"), order = $("order"), limit = $("limit");
  var status = $("status"), tbody = document.querySelector("#results tbody");
  var prev = $("prev"), next = $("next"), pageInfo = $("page");
  var MAX_OFFSET = 100000;
  var SEVERITY = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"];
  var UNITS = { m: 60e3, h: 3600e3, d: 86400e3 };

  // state is the search being shown; from/to are pinned when it starts so
  // that paging does not slide with the clock.
  var state = null;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function pad(n, w) { n = String(n); while (n.length < (w || 2)) n = "0" + n; return n; }

  function fmtTime(iso) {
    var d = new Date(iso);
    if (isNaN(d)) return iso || "";
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()) + "." + pad(d.getMilliseconds(), 3);
  }

  function toLocalInput(d) {
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + "T" +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }

  function fmtNum(n) { return Number(n || 0).toLocaleString(); }

  // appendFragment renders one highlight fragment: <mark> stays a mark,
  // everything else becomes plain text. The fragment is parsed in an inert
  // document, so even a badly escaped one cannot run script.
  function appendFragment(parent, html) {
    var doc = new DOMParser().parseFromString("<body>" + html + "</body>", "text/html");
    doc.body.childNodes.forEach(function (n) {
      if (n.nodeType === 1 && n.nodeName === "MARK") parent.appendChild(el("mark", null, n.textContent));
      else parent.appendChild(document.createTextNode(n.textContent));
    });
  }

  function flowText(h) {
    var src = (h.src_ip || "?") + (h.src_port ? ":" + h.src_port : "");
    var dst = (h.dst_ip || "?") + (h.dst_port ? ":" + h.dst_port : "");
    var segs = (h.src_segment || h.dst_segment) ? " [" + (h.src_segment || "-") + " → " + (h.dst_segment || "-") + "]" : "";
    return src + " → " + dst + " " + (h.proto || "") + segs + " · " + fmtNum(h.bytes) + " B, " +
      fmtNum(h.packets) + " pkts" + (h.flows > 1 ? ", " + fmtNum(h.flows) + " flows" : "");
  }

  function renderRow(h) {
    var tr = el("tr", "hit kind-" + (h.kind || "log"));
    var t = el("td", "c-time", fmtTime(h.time));
    t.title = h.time || "";
    tr.appendChild(t);
    var dev = el("td", "c-dev", h.device || h.source_ip || h.src_ip || "");
    if (h.segment) dev.title = "segment " + h.segment;
    tr.appendChild(dev);
    tr.appendChild(el("td", "c-host", h.host));
    tr.appendChild(el("td", "c-app", h.kind === "flow" ? "flow" : h.app));
    var sev = el("td", "c-sev");
    if (typeof h.severity === "number") {
      sev.appendChild(el("span", "sev sev-" + h.severity, SEVERITY[h.severity] || h.severity));
    }
    tr.appendChild(sev);
    var msg = el("td", "c-msg");
    if (h.fragments && h.fragments.length) {
      h.fragments.forEach(function (f, i) {
        if (i) msg.appendChild(el("span", "sep", " … "));
        appendFragment(msg, f);
      });
    } else if (h.kind === "flow") {
      msg.textContent = flowText(h);
    } else {
      msg.textContent = h.message || "";
    }
    if (h.parse_error) msg.appendChild(el("span", "badge warn", "unparsed"));
    if (h.truncated) msg.appendChild(el("span", "badge", "truncated"));
    tr.appendChild(msg);
    tr.tabIndex = 0;
    tr.addEventListener("click", function () { toggleDetail(tr, h); });
    tr.addEventListener("keydown", function (e) { if (e.key === "Enter") toggleDetail(tr, h); });
    return tr;
  }

  function toggleDetail(tr, h) {
    var nx = tr.nextElementSibling;
    if (nx && nx.classList.contains("detail")) { nx.remove(); tr.classList.remove("open"); return; }
    var d = el("tr", "detail");
    var td = el("td");
    td.colSpan = 6;
    td.appendChild(el("pre", null, JSON.stringify(h, null, 2)));
    d.appendChild(td);
    tr.after(d);
    tr.classList.add("open");
  }

  function setStatus(text, isError) {
    status.textContent = text;
    status.classList.toggle("error", !!isError);
  }

  function resolveRange() {
    if (range.value === "custom") {
      var f = new Date(fromIn.value), t = new Date(toIn.value);
      if (isNaN(f) || isNaN(t)) return null;
      return { from: f.toISOString(), to: t.toISOString() };
    }
    var m = /^now-(\d+)([mhd])$/.exec(range.value);
    var now = Date.now();
    return { from: new Date(now - m[1] * UNITS[m[2]]).toISOString(), to: new Date(now).toISOString() };
  }

  function syncURL() {
    var p = new URLSearchParams();
    if (state.q) p.set("q", state.q);
    if (range.value === "custom") { p.set("from", state.from); p.set("to", state.to); }
    else if (range.value !== "now-24h") p.set("range", range.value);
    if (state.order !== "desc") p.set("order", state.order);
    if (state.limit !== 100) p.set("limit", state.limit);
    if (state.offset) p.set("offset", state.offset);
    var s = p.toString();
    history.replaceState(null, "", location.pathname + (s ? "?" + s : ""));
  }

  var seq = 0;
  function run() {
    var my = ++seq;
    var p = new URLSearchParams({ from: state.from, to: state.to, order: state.order,
      limit: state.limit, offset: state.offset });
    if (state.q) p.set("q", state.q);
    syncURL();
    setStatus("Searching…");
    form.classList.add("busy");
    fetch("/api/v1/search?" + p.toString(), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (r.status === 401) {
          location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
          return null;
        }
        return r.json().then(function (body) { return { ok: r.ok, status: r.status, body: body }; });
      })
      .then(function (res) {
        if (!res || my !== seq) return;
        if (!res.ok) {
          setStatus((res.body && res.body.error) || ("HTTP " + res.status), true);
          render(null);
          return;
        }
        render(res.body);
      })
      .catch(function (e) {
        if (my === seq) setStatus("Search failed: " + e.message, true);
      })
      .finally(function () { if (my === seq) form.classList.remove("busy"); });
  }

  function render(body) {
    tbody.textContent = "";
    if (!body) { pageInfo.textContent = ""; prev.disabled = next.disabled = true; return; }
    var hits = body.hits || [];
    var frag = document.createDocumentFragment();
    hits.forEach(function (h) { frag.appendChild(renderRow(h)); });
    tbody.appendChild(frag);
    var first = hits.length ? state.offset + 1 : 0, last = state.offset + hits.length;
    setStatus(hits.length
      ? "Events " + fmtNum(first) + "–" + fmtNum(last) + " of " + fmtNum(body.total) + " · " + body.took_ms + " ms"
      : "No events match (" + body.took_ms + " ms).");
    state.total = body.total;
    pageInfo.textContent = hits.length ? "Page " + fmtNum(Math.floor(state.offset / state.limit) + 1) +
      " of " + fmtNum(Math.ceil(body.total / state.limit)) : "";
    prev.disabled = state.offset === 0;
    next.disabled = last >= body.total || state.offset + state.limit > MAX_OFFSET;
  }

  function start(offset) {
    var r = resolveRange();
    if (!r) { setStatus("Set both ends of the custom time range.", true); return; }
    state = { q: q.value.trim(), from: r.from, to: r.to, order: order.value,
      limit: parseInt(limit.value, 10), offset: offset || 0, total: 0 };
    run();
  }

  form.addEventListener("submit", function (e) { e.preventDefault(); start(0); });
  range.addEventListener("change", function () {
    var isCustom = range.value === "custom";
    custom.hidden = !isCustom;
    if (isCustom && !fromIn.value) {
      var now = new Date();
      toIn.value = toLocalInput(now);
      fromIn.value = toLocalInput(new Date(now - 86400e3));
    }
    if (!isCustom) start(0);
  });
  order.addEventListener("change", function () { start(0); });
  limit.addEventListener("change", function () { start(0); });
  prev.addEventListener("click", function () {
    if (!state) return;
    state.offset = Math.max(0, state.offset - state.limit);
    run();
  });
  next.addEventListener("click", function () {
    if (!state) return;
    state.offset += state.limit;
    run();
  });

  // Restore a search from the URL, so links and reloads show the same thing.
  var u = new URLSearchParams(location.search);
  q.value = u.get("q") || "";
  if (u.get("from") && u.get("to")) {
    range.value = "custom";
    custom.hidden = false;
    fromIn.value = toLocalInput(new Date(u.get("from")));
    toIn.value = toLocalInput(new Date(u.get("to")));
  } else if (u.get("range") && range.querySelector('option[value="' + CSS.escape(u.get("range")) + '"]')) {
    range.value = u.get("range");
  }
  if (u.get("order") === "asc") order.value = "asc";
  if (u.get("limit") && limit.querySelector('option[value="' + CSS.escape(u.get("limit")) + '"]')) limit.value = u.get("limit");
  start(Math.max(0, parseInt(u.get("offset"), 10) || 0));
  if (!q.value) q.focus();
})();
