// conveyor's line charts on <canvas>: axes with ticks, hover values, zoom by dragging,
// log scale, smoothing, a min–max band for downsampled buckets. No dependencies.
"use strict";
(function (global) {
  const PALETTE = ["#0b57d0", "#d93025", "#188038", "#e37400", "#8430ce", "#007b83", "#b80672", "#5f6368", "#9e6a03", "#1967d2"];

  function niceStep(span, count) {
    const raw = span / Math.max(1, count);
    const power = Math.pow(10, Math.floor(Math.log10(raw)));
    const f = raw / power;
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * power;
  }
  function ticks(lo, hi, count) {
    if (!(hi > lo)) return [lo];
    const step = niceStep(hi - lo, count);
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    return out;
  }
  function logTicks(lo, hi) {
    const out = [];
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
      const v = Math.pow(10, e);
      if (v >= lo * 0.999 && v <= hi * 1.001) out.push(v);
    }
    return out.length >= 2 ? out : ticks(lo, hi, 4);
  }
  function fmt(v) {
    if (v === null || v === undefined || Number.isNaN(v)) return "–";
    const a = Math.abs(v);
    if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(2);
    return Number(v.toPrecision(5)).toString();
  }
  function fmtTime(ms, span) {
    const d = new Date(ms);
    const iso = d.toISOString();
    if (span > 2 * 86400000) return iso.slice(5, 10);
    if (span > 3600000) return iso.slice(11, 16);
    return iso.slice(11, 19);
  }
  function smooth(values, weight) {
    if (!weight) return values;
    const out = new Array(values.length);
    let last = 0, n = 0;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v === null || !Number.isFinite(v)) { out[i] = v; continue; }
      last = last * weight + (1 - weight) * v;
      n++;
      out[i] = last / (1 - Math.pow(weight, n));
    }
    return out;
  }

  class Chart {
    // options: {xLabel, time (bool), onZoom(lo, hi) | null, label}
    constructor(canvas, options) {
      this.canvas = canvas;
      this.opt = Object.assign({ xLabel: "step", time: false, log: false, smoothing: 0 }, options || {});
      this.series = [];
      this.view = null; // [xlo, xhi] when zoomed
      this.hover = null;
      this.drag = null;
      this.tooltip = document.createElement("div");
      this.tooltip.className = "chart-tip";
      this.tooltip.setAttribute("role", "status");
      this.tooltip.setAttribute("aria-live", "polite");
      canvas.parentNode.appendChild(this.tooltip);
      canvas.tabIndex = 0;
      canvas.addEventListener("mousemove", (e) => this.onMove(e));
      canvas.addEventListener("mouseleave", () => { this.hover = null; this.drag = null; this.draw(); });
      canvas.addEventListener("mousedown", (e) => { this.drag = { from: this.pos(e).x, to: this.pos(e).x }; });
      canvas.addEventListener("mouseup", () => this.endDrag());
      canvas.addEventListener("dblclick", () => this.zoom(null));
      canvas.addEventListener("keydown", (e) => this.onKey(e));
      new ResizeObserver(() => this.draw()).observe(canvas);
    }
    setSeries(series) { this.series = series; this.draw(); }
    set(option, value) { this.opt[option] = value; this.draw(); }
    pos(e) { const r = this.canvas.getBoundingClientRect(); return { x: e.clientX - r.left, y: e.clientY - r.top }; }
    zoom(range) {
      this.view = range;
      this.hover = null;
      if (this.opt.onZoom) this.opt.onZoom(range);
      this.draw();
    }
    endDrag() {
      const d = this.drag;
      this.drag = null;
      if (d && Math.abs(d.to - d.from) > 5 && this.scale) {
        const a = this.scale.inv(Math.min(d.from, d.to)), b = this.scale.inv(Math.max(d.from, d.to));
        this.zoom([a, b]);
      } else this.draw();
    }
    onKey(e) {
      if (!this.scale) return;
      const [lo, hi] = this.scale.xr;
      const span = hi - lo;
      if (e.key === "Escape" || e.key === "0") { this.zoom(null); e.preventDefault(); }
      else if (e.key === "+" || e.key === "=") { this.zoom([lo + span / 4, hi - span / 4]); e.preventDefault(); }
      else if (e.key === "-") { this.zoom([lo - span / 2, hi + span / 2]); e.preventDefault(); }
      else if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
        const s = this.series[0];
        if (!s || !s.x.length) return;
        let i = this.hover ? this.hover.index : 0;
        i = Math.max(0, Math.min(s.x.length - 1, i + (e.key === "ArrowRight" ? 1 : -1) * Math.max(1, Math.round(s.x.length / 50))));
        this.hover = { index: i, px: this.scale.x(s.x[i]) };
        this.draw();
        e.preventDefault();
      }
    }
    onMove(e) {
      const p = this.pos(e);
      if (this.drag) { this.drag.to = p.x; this.draw(); return; }
      if (!this.scale || !this.series.length) return;
      const x = this.scale.inv(p.x);
      const s = this.series[0];
      let best = -1, bestd = Infinity;
      // binary search on sorted x
      let lo = 0, hi = s.x.length - 1;
      while (hi - lo > 1) { const mid = (lo + hi) >> 1; if (s.x[mid] < x) lo = mid; else hi = mid; }
      for (const i of [lo, hi]) { const d = Math.abs(s.x[i] - x); if (d < bestd) { bestd = d; best = i; } }
      this.hover = best >= 0 ? { index: best, px: p.x } : null;
      this.draw();
    }
    draw() {
      const c = this.canvas, ctx = c.getContext("2d");
      const dpr = window.devicePixelRatio || 1;
      const W = c.clientWidth, H = c.clientHeight;
      if (!W || !H) return;
      if (c.width !== Math.round(W * dpr) || c.height !== Math.round(H * dpr)) { c.width = Math.round(W * dpr); c.height = Math.round(H * dpr); }
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, W, H);
      const pad = { l: 58, r: 12, t: 10, b: 34 };
      const log = this.opt.log;
      let xlo = Infinity, xhi = -Infinity, ylo = Infinity, yhi = -Infinity;
      const prepared = this.series.map((s) => {
        const y = smooth(s.y, this.opt.smoothing);
        return Object.assign({}, s, { ys: y });
      });
      for (const s of prepared) {
        for (let i = 0; i < s.x.length; i++) {
          const x = s.x[i];
          if (this.view && (x < this.view[0] || x > this.view[1])) continue;
          xlo = Math.min(xlo, x); xhi = Math.max(xhi, x);
          for (const v of [s.low[i], s.high[i], s.ys[i]]) {
            if (v === null || !Number.isFinite(v) || (log && v <= 0)) continue;
            ylo = Math.min(ylo, v); yhi = Math.max(yhi, v);
          }
        }
      }
      if (this.view) { xlo = this.view[0]; xhi = this.view[1]; }
      ctx.font = "11px system-ui, sans-serif";
      ctx.fillStyle = "#4a5360";
      if (!Number.isFinite(xlo) || !Number.isFinite(ylo)) {
        ctx.fillText(log ? "no positive values to show on a log scale" : "no values", pad.l, H / 2);
        this.scale = null;
        return;
      }
      if (xhi === xlo) { xhi = xlo + 1; xlo = xlo - 1; }
      if (yhi === ylo) { const d = Math.abs(ylo) * 0.05 || 1; yhi += d; ylo = log ? ylo / 2 : ylo - d; }
      else if (!log) { const m = (yhi - ylo) * 0.05; yhi += m; ylo -= m; }
      const pw = W - pad.l - pad.r, ph = H - pad.t - pad.b;
      const fy = log ? (v) => Math.log10(v) : (v) => v;
      const Y0 = fy(ylo), Y1 = fy(yhi);
      const sx = (x) => pad.l + ((x - xlo) / (xhi - xlo)) * pw;
      const sy = (v) => pad.t + ph - ((fy(v) - Y0) / (Y1 - Y0)) * ph;
      this.scale = { x: sx, inv: (px) => xlo + ((px - pad.l) / pw) * (xhi - xlo), xr: [xlo, xhi] };
      // grid and axes
      ctx.strokeStyle = "#e3e7ec"; ctx.lineWidth = 1;
      ctx.textAlign = "right"; ctx.textBaseline = "middle";
      for (const v of (log ? logTicks(ylo, yhi) : ticks(ylo, yhi, 5))) {
        const y = Math.round(sy(v)) + 0.5;
        ctx.beginPath(); ctx.moveTo(pad.l, y); ctx.lineTo(W - pad.r, y); ctx.stroke();
        ctx.fillText(fmt(v), pad.l - 6, y);
      }
      ctx.textAlign = "center"; ctx.textBaseline = "top";
      const xt = ticks(xlo, xhi, Math.max(2, Math.floor(pw / 90)));
      for (const v of xt) {
        const x = Math.round(sx(v)) + 0.5;
        ctx.beginPath(); ctx.moveTo(x, pad.t); ctx.lineTo(x, pad.t + ph); ctx.stroke();
        ctx.fillText(this.opt.time ? fmtTime(v, xhi - xlo) : fmt(v), x, pad.t + ph + 5);
      }
      ctx.strokeStyle = "#8a94a3";
      ctx.beginPath(); ctx.moveTo(pad.l + 0.5, pad.t); ctx.lineTo(pad.l + 0.5, pad.t + ph); ctx.lineTo(W - pad.r, pad.t + ph + 0.5); ctx.stroke();
      ctx.fillText(this.opt.time ? "time (UTC)" : this.opt.xLabel, pad.l + pw / 2, H - 13);
      // series
      ctx.save();
      ctx.beginPath(); ctx.rect(pad.l, pad.t, pw, ph); ctx.clip();
      prepared.forEach((s, k) => {
        const color = s.color || PALETTE[k % PALETTE.length];
        if (!s.exact) { // min–max band of the buckets
          ctx.fillStyle = color + "33";
          ctx.beginPath();
          let open = false;
          const top = [];
          for (let i = 0; i < s.x.length; i++) {
            const a = s.low[i], b = s.high[i];
            if (a === null || b === null || (log && a <= 0)) continue;
            const x = sx(s.x[i]);
            if (!open) { ctx.moveTo(x, sy(a)); open = true; } else ctx.lineTo(x, sy(a));
            top.push([x, sy(b)]);
          }
          for (let i = top.length - 1; i >= 0; i--) ctx.lineTo(top[i][0], top[i][1]);
          ctx.closePath(); ctx.fill();
        }
        ctx.strokeStyle = color; ctx.lineWidth = 1.6;
        ctx.beginPath();
        let pen = false;
        for (let i = 0; i < s.x.length; i++) {
          const v = s.ys[i];
          if (v === null || !Number.isFinite(v) || (log && v <= 0)) { pen = false; continue; }
          const x = sx(s.x[i]), y = sy(v);
          if (!pen) { ctx.moveTo(x, y); pen = true; } else ctx.lineTo(x, y);
        }
        ctx.stroke();
        if (s.x.length === 1) { ctx.fillStyle = color; ctx.beginPath(); ctx.arc(sx(s.x[0]), sy(s.ys[0]), 3, 0, 7); ctx.fill(); }
      });
      ctx.restore();
      // zoom selection
      if (this.drag) {
        ctx.fillStyle = "rgba(11,87,208,0.15)";
        ctx.fillRect(Math.min(this.drag.from, this.drag.to), pad.t, Math.abs(this.drag.to - this.drag.from), ph);
      }
      // hover
      if (this.hover && prepared.length) {
        const i = this.hover.index, s0 = prepared[0];
        const x = s0.x[i];
        const px = sx(x);
        ctx.strokeStyle = "#4a5360"; ctx.setLineDash([3, 3]);
        ctx.beginPath(); ctx.moveTo(px, pad.t); ctx.lineTo(px, pad.t + ph); ctx.stroke(); ctx.setLineDash([]);
        const lines = [(this.opt.time ? new Date(x).toISOString().replace("T", " ").slice(0, 19) : this.opt.xLabel + " " + fmt(Math.round(x * 100) / 100))];
        prepared.forEach((s, k) => {
          let j = i;
          if (s !== s0) { // nearest x in this series
            let lo = 0, hi = s.x.length - 1;
            while (hi - lo > 1) { const m = (lo + hi) >> 1; if (s.x[m] < x) lo = m; else hi = m; }
            j = Math.abs(s.x[lo] - x) <= Math.abs(s.x[hi] - x) ? lo : hi;
          }
          const v = s.ys[j];
          if (v !== null && Number.isFinite(v) && !(log && v <= 0)) {
            ctx.fillStyle = s.color || PALETTE[k % PALETTE.length];
            ctx.beginPath(); ctx.arc(sx(s.x[j]), sy(v), 3.5, 0, 7); ctx.fill();
          }
          let text = (s.name ? s.name + ": " : "") + fmt(v);
          if (!s.exact && s.low[j] !== null) text += " (min " + fmt(s.low[j]) + ", max " + fmt(s.high[j]) + ")";
          lines.push(text);
        });
        this.tooltip.textContent = lines.join(" · ");
        this.tooltip.hidden = false;
      } else {
        this.tooltip.textContent = "";
        this.tooltip.hidden = true;
      }
      this.canvas.dataset.drawn = String(prepared.reduce((n, s) => n + s.x.length, 0));
    }
  }
  global.ConveyorChart = Chart;
  global.ConveyorPalette = PALETTE;
})(window);
