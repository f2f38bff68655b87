// Compare page: each metric's curves of every selected run, overlaid on one chart.
"use strict";
(function () {
  const node = document.getElementById("compare-data");
  if (!node) return;
  const data = JSON.parse(node.textContent);
  const entries = [];
  async function load(entry, range) {
    const key = entry.fig.dataset.key;
    const buckets = Math.max(50, Math.min(2000, Math.round(entry.fig.querySelector("canvas").clientWidth || 600)));
    const token = (entry.token = (entry.token || 0) + 1);
    const series = await Promise.all(data.runs.map(async (run) => {
      if (!run.metrics.includes(key)) return null; // this run has no such metric
      const q = new URLSearchParams({ key: key, x: "step", buckets: String(buckets) });
      if (range) { q.set("lo", String(range[0])); q.set("hi", String(range[1])); }
      const response = await fetch("/runs/" + encodeURIComponent(run.id) + "/series?" + q.toString(), { credentials: "same-origin" });
      const body = await response.json();
      if (!response.ok) throw new Error((body.error && body.error.message) || response.statusText);
      return { name: run.name, color: run.color, x: body.x, y: body.y, low: body.low, high: body.high, exact: body.exact };
    })).catch((err) => { entry.fig.querySelector(".note").textContent = "cannot load: " + err.message; return null; });
    if (!series || token !== entry.token) return;
    const present = series.filter((s) => s !== null);
    entry.chart.setSeries(present);
    entry.fig.querySelector(".note").textContent = present.length + " of " + data.runs.length + " runs";
    entry.fig.dataset.loaded = "1";
  }
  document.querySelectorAll("#charts figure.chart").forEach((fig) => {
    const entry = { fig: fig };
    entry.chart = new window.ConveyorChart(fig.querySelector("canvas"), { onZoom: (range) => load(entry, range) });
    entries.push(entry);
    load(entry, null);
  });
  const log = document.getElementById("logscale");
  if (log) log.addEventListener("change", () => entries.forEach((e) => e.chart.set("log", log.checked)));
  const smoothing = document.getElementById("smoothing");
  if (smoothing) smoothing.addEventListener("input", () => {
    document.getElementById("smoothing-value").textContent = smoothing.value;
    entries.forEach((e) => e.chart.set("smoothing", Number(smoothing.value)));
  });
})();
