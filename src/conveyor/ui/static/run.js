// Run page: one chart per metric, data downsampled by the server to the chart's width.
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("run-data").textContent);
  const figures = Array.from(document.querySelectorAll("#charts figure.chart"));
  if (!figures.length) return;
  let xAxis = "step";
  const charts = [];

  async function load(entry, range) {
    const { fig, chart } = entry;
    const key = fig.dataset.key;
    const buckets = Math.max(50, Math.min(4096, Math.round(fig.querySelector("canvas").clientWidth || 600)));
    const q = new URLSearchParams({ key: key, x: xAxis, buckets: String(buckets) });
    if (range) { q.set("lo", String(range[0])); q.set("hi", String(range[1])); }
    const note = fig.querySelector(".note");
    const token = (entry.token = (entry.token || 0) + 1);
    let body;
    try {
      const response = await fetch("/runs/" + encodeURIComponent(data.run_id) + "/series?" + q.toString(), { credentials: "same-origin" });
      body = await response.json();
      if (!response.ok) { note.textContent = (body.error && body.error.message) || "cannot load"; return; }
    } catch (err) { note.textContent = "cannot load: " + err; return; }
    if (token !== entry.token) return; // a newer request won
    chart.opt.time = xAxis === "time";
    chart.opt.xLabel = "step";
    chart.setSeries([{ name: "", x: body.x, y: body.y, low: body.low, high: body.high, exact: body.exact }]);
    note.textContent = body.exact
      ? body.count.toLocaleString("en") + (body.count === 1 ? " point" : " points")
      : body.count.toLocaleString("en") + " points in " + body.x.length.toLocaleString("en") + " buckets (min–max band)";
    fig.dataset.loaded = "1";
  }

  for (const fig of figures) {
    const entry = { fig: fig };
    entry.chart = new window.ConveyorChart(fig.querySelector("canvas"), {
      onZoom: (range) => load(entry, range),
    });
    charts.push(entry);
  }
  function reloadAll() { for (const e of charts) { e.chart.view = null; load(e, null); } }
  document.querySelectorAll('input[name="xaxis"]').forEach((r) => r.addEventListener("change", () => { xAxis = r.value; reloadAll(); }));
  document.getElementById("logscale").addEventListener("change", (e) => charts.forEach((c) => c.chart.set("log", e.target.checked)));
  const smoothing = document.getElementById("smoothing");
  smoothing.addEventListener("input", () => {
    document.getElementById("smoothing-value").textContent = smoothing.value;
    charts.forEach((c) => c.chart.set("smoothing", Number(smoothing.value)));
  });
  document.getElementById("reset-zoom").addEventListener("click", () => charts.forEach((c) => c.chart.zoom(null)));
  charts.forEach((e) => load(e, null));
})();
