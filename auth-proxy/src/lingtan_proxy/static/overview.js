/* Overview page: refresh the live values every 30 s from the read API with the session cookie.
   Only on overview.html; no inline script (CSP script-src 'self'). */
(function () {
  "use strict";
  var root = document.getElementById("overview");
  if (!root || !window.fetch) { return; }
  var INTERVAL_MS = 30000;
  var lang = document.documentElement.lang || "zh-CN";
  var empty = root.getAttribute("data-empty") || "";
  var entity = root.getAttribute("data-entity") || "";
  var api = root.getAttribute("data-api") || "/api/v1/overview";
  var tbody = document.getElementById("power-rows");
  var labels = parse(tbody && tbody.getAttribute("data-labels"), {});
  var order = parse(tbody && tbody.getAttribute("data-order"), Object.keys(labels));
  var timer = null;

  function parse(text, fallback) {
    try { return text ? JSON.parse(text) : fallback; } catch (e) { return fallback; }
  }

  function isNumber(v) { return typeof v === "number" && isFinite(v); }

  function fmt(v, digits) {
    return v.toLocaleString(lang, { minimumFractionDigits: digits, maximumFractionDigits: digits });
  }

  function setValue(el, v) {
    var digits = parseInt(el.getAttribute("data-digits") || "0", 10);
    var scale = parseFloat(el.getAttribute("data-scale") || "1");
    var unit = el.nextElementSibling && el.nextElementSibling.classList.contains("unit") ? el.nextElementSibling : null;
    var ok = isNumber(v);
    el.textContent = ok ? fmt(v * scale, digits) : empty;
    el.classList.toggle("none", !ok);
    if (unit) { unit.hidden = !ok; }
  }

  function setTime(el, iso) {
    if (!iso) { return; }
    el.setAttribute("datetime", iso);
    el.textContent = String(iso).slice(0, 19).replace("T", " ");
  }

  function setErrors(el, errors) {
    var list = Array.isArray(errors) ? errors : [];
    var frag = document.createDocumentFragment();
    list.forEach(function (msg) {
      var li = document.createElement("li");
      li.textContent = String(msg);
      frag.appendChild(li);
    });
    el.replaceChildren(frag);
    el.hidden = list.length === 0;
  }

  function renderPower(power) {
    if (!tbody) { return; }
    power = power || {};
    var roles = order.filter(function (r) { return isNumber(power[r]); });
    var total = roles.reduce(function (sum, r) { return sum + Math.max(0, power[r]); }, 0);
    var frag = document.createDocumentFragment();
    if (!roles.length) {
      var tr0 = document.createElement("tr");
      var td0 = document.createElement("td");
      td0.colSpan = 2;
      td0.className = "none";
      td0.textContent = empty;
      tr0.appendChild(td0);
      frag.appendChild(tr0);
    }
    roles.forEach(function (r) {
      var tr = document.createElement("tr");
      var th = document.createElement("th");
      th.scope = "row";
      th.textContent = labels[r] || r;
      var td = document.createElement("td");
      td.className = "num";
      var meter = document.createElement("meter");
      meter.min = 0;
      meter.max = total > 0 ? total : 1;
      meter.value = Math.max(0, power[r]);
      meter.setAttribute("aria-hidden", "true");
      var span = document.createElement("span");
      span.textContent = fmt(power[r], 1);
      td.appendChild(meter);
      td.appendChild(document.createTextNode(" "));
      td.appendChild(span);
      tr.appendChild(th);
      tr.appendChild(td);
      frag.appendChild(tr);
    });
    tbody.replaceChildren(frag);
  }

  function update(d) {
    root.querySelectorAll("[data-field]").forEach(function (el) {
      var field = el.getAttribute("data-field");
      if (field === "time") { setTime(el, d.time); }
      else if (field === "errors") { setErrors(el, d.errors); }
      else { setValue(el, d[field]); }
    });
    renderPower(d.power_kw);
    root.classList.remove("stale");
  }

  function refresh() {
    if (document.hidden) { return; }
    var url = api + "?entity=" + encodeURIComponent(entity);
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" }, cache: "no-store" })
      .then(function (resp) {
        if (!resp.ok) { throw new Error("HTTP " + resp.status); }
        return resp.json();
      })
      .then(update)
      .catch(function () { root.classList.add("stale"); });
  }

  function start() {
    if (timer === null) { timer = window.setInterval(refresh, INTERVAL_MS); }
  }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) { refresh(); }
  });
  start();
}());
