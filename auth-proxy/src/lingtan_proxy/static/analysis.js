/* Analysis pages: draw the chart of #chart from its data-chart attribute with the vendored uPlot.
   Kinds: "bars" (one or two series per category), "pareto" (bars and the cumulative share on a
   second axis), "lines" (a monthly series and its trend line). No inline script (CSP script-src 'self'). */
(function () {
  "use strict";
  var root = document.getElementById("chart");
  if (!root || !window.uPlot) { return; }
  var data;
  try { data = JSON.parse(root.getAttribute("data-chart") || "null"); } catch (e) { data = null; }
  if (!data || !data.labels || !data.labels.length) { return; }
  var lang = root.getAttribute("data-lang") === "en" ? "en" : "zh-CN";
  var COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"];
  var labels = data.labels;
  var xs = labels.map(function (_, i) { return i; });

  function fmt(v) {
    return v == null ? "—" : Number(v).toLocaleString(lang, { maximumFractionDigits: 3 });
  }

  function label(i) {
    var text = labels[Math.round(i)];
    return text === undefined ? "" : (text.length > 18 ? text.slice(0, 17) + "…" : text);
  }

  var bars = uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.6, 60] }) : null;
  var series = [{ value: function (u, i) { return i == null ? "" : labels[Math.round(i)]; } }];
  var axes = [{ values: function (u, splits) { return splits.map(label); }, space: 40, rotate: 0 },
              { values: function (u, splits) { return splits.map(fmt); } }];
  var scales = { x: { time: false, range: [-0.5, labels.length - 0.5] } };

  data.series.forEach(function (s, k) {
    var line = data.kind === "lines" || (data.kind === "pareto" && k === 1);
    var entry = { label: s.name, stroke: COLOURS[k % COLOURS.length], width: line ? 2 : 1,
                  value: function (u, v) { return fmt(v); } };
    if (!line && bars) {
      entry.fill = COLOURS[k % COLOURS.length] + "99";
      entry.paths = data.series.length > 1 && data.kind === "bars"
        ? uPlot.paths.bars({ size: [0.35, 40], align: k === 0 ? -1 : 1 }) : bars;
      entry.points = { show: false };
    }
    if (data.kind === "pareto" && k === 1) {
      entry.scale = "share";
      entry.value = function (u, v) { return v == null ? "—" : (v * 100).toFixed(1) + "%"; };
    }
    series.push(entry);
  });
  if (data.kind === "pareto") {
    scales.share = { range: [0, 1] };
    axes.push({ scale: "share", side: 1, grid: { show: false },
                values: function (u, splits) { return splits.map(function (v) { return Math.round(v * 100) + "%"; }); } });
  }
  var width = Math.max(320, root.clientWidth || 640);
  var opts = { width: width, height: 300, series: series, axes: axes, scales: scales, legend: { show: true },
               cursor: { drag: { x: false, y: false } } };
  var columns = [xs].concat(data.series.map(function (s) { return s.values; }));
  root.textContent = "";
  var plot = new uPlot(opts, columns, root);
  root.setAttribute("data-drawn", "true");
  window.addEventListener("resize", function () {
    plot.setSize({ width: Math.max(320, root.clientWidth || 640), height: 300 });
  });
})();
