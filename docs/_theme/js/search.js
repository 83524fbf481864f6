/* Lingtan manual search: substring matching over mkdocs' search/search_index.json.
   Loaded only by search.html; no inline script (the portal's CSP is script-src 'self'). */
(function () {
  "use strict";
  var page = document.getElementById("search-page");
  if (!page || !window.fetch || !window.URLSearchParams) { return; }
  var params = new URLSearchParams(window.location.search);
  var query = (params.get("q") || "").trim();
  var lang = params.get("lang") || "";
  var input = document.getElementById("search-big-q");
  var select = document.getElementById("search-lang");
  var status = document.getElementById("search-status");
  var list = document.getElementById("search-results");
  var zh = lang !== "en";
  input.value = query;
  select.value = lang === "zh" || lang === "en" ? lang : "";
  if (!query) { input.focus(); return; }

  function text(key) {
    var t = {
      loading: ["正在搜索…", "Searching…"],
      none: ["没有找到与“{q}”相关的内容。", "Nothing found for “{q}”."],
      found: ["找到 {n} 处与“{q}”相关的内容。", "{n} places mention “{q}”."],
      failed: ["无法读取搜索索引。", "The search index could not be read."]
    }[key];
    return t[zh ? 0 : 1];
  }

  function say(key, n) {
    status.textContent = text(key).replace("{q}", query).replace("{n}", String(n || 0));
  }

  function snippet(body, terms) {
    var lower = body.toLowerCase();
    var at = lower.indexOf(terms[0]);
    var from = Math.max(0, at - 60);
    var part = body.slice(from, from + 220).replace(/\s+/g, " ");
    return (from > 0 ? "…" : "") + part + (from + 220 < body.length ? "…" : "");
  }

  function langOf(location) {
    return location.indexOf("zh/") === 0 ? "zh" : (location.indexOf("en/") === 0 ? "en" : "ref");
  }

  say("loading");
  fetch(page.getAttribute("data-index"), { credentials: "same-origin" })
    .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
    .then(function (index) {
      var terms = query.toLowerCase().split(/\s+/).filter(Boolean);
      var titles = {};
      index.docs.forEach(function (d) { if (d.location.indexOf("#") < 0) { titles[d.location] = d.title; } });
      var hits = index.docs.filter(function (d) {
        var l = langOf(d.location);
        if (lang && l !== lang && !(l === "ref" && lang === "en")) { return false; }
        var hay = (d.title + " " + d.text).toLowerCase();
        return terms.every(function (t) { return hay.indexOf(t) >= 0; });
      });
      hits.sort(function (a, b) {
        var rank = function (d) {
          var l = langOf(d.location);
          var inTitle = terms.every(function (t) { return d.title.toLowerCase().indexOf(t) >= 0; });
          return (inTitle ? 0 : 2) + (l === "ref" ? 1 : 0);
        };
        return rank(a) - rank(b);
      });
      hits = hits.slice(0, 60);
      say(hits.length ? "found" : "none", hits.length);
      hits.forEach(function (d) {
        var li = document.createElement("li");
        var a = document.createElement("a");
        a.href = d.location;
        a.textContent = d.title || d.location;
        li.appendChild(a);
        var where = titles[d.location.split("#")[0]];
        if (where && where !== d.title) {
          var w = document.createElement("span");
          w.className = "search-where";
          w.textContent = " · " + where;
          li.appendChild(w);
        }
        if (d.text) {
          var p = document.createElement("p");
          p.textContent = snippet(d.text, terms);
          li.appendChild(p);
        }
        list.appendChild(li);
      });
    })
    .catch(function () { say("failed"); });
}());
