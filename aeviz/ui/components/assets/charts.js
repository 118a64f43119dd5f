// aeviz charts (part of the aeviz.latent component): the Explorer's latent map and a histogram, drawn on a canvas.
//
// Why not plotly: the Explorer's first screen held two plotly charts, and plotly.js (a 4.5 MB module that
// Streamlit loads on the first chart of a page) was a third of a student's page load in the browser: about a
// second of CPU on a laptop, more in a class's busy room. These two charts need a few hundred lines.
//
//   map   data = {xy, labels: JSON text, label_names, x_range, y_range, titles, image, opacity, prior, height,
//                 frozen, value: the index to ring (or null)}; a click on a point sets the state "selected" to
//                 {i: test index, n: click count} (a new value per click, so clicking a point again counts).
//                 Drag pans, the wheel zooms, a double click resets; the legend's entries hide or show a class.
//   bars  data = {counts, edges, title, x_title, y_title, height}: a histogram; hovering a bar tells its count.

export const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                 "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const GRID = "rgba(128,128,128,0.22)";

// The map's (and the pad's) codes and labels arrive as JSON text (the server makes it once per content); the same text comes back
// with every rerun, so the last few parses are kept.
const parsed = new Map();
export function numbers(v) {
  if (typeof v !== "string") return v || [];
  let a = parsed.get(v);
  if (a === undefined) {
    a = JSON.parse(v);
    if (parsed.size >= 8) parsed.delete(parsed.keys().next().value);
    parsed.set(v, a);
  }
  return a;
}

export function el(tag, cls, parent) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (parent) parent.appendChild(e);
  return e;
}

// Round tick values over [lo, hi]: steps of 1, 2 or 5 times a power of ten, at most `most` of them.
export function ticks(lo, hi, most = 6) {
  const span = hi - lo;
  if (!(span > 0)) return [lo];
  const base = 10 ** Math.floor(Math.log10(span / most));
  const step = [1, 2, 5, 10].map((m) => m * base).find((s) => span / s <= most) || 10 * base;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9 * span; v += step) out.push(Math.round(v / step) * step);
  return out;
}

const label = (v) => String(+v.toPrecision(6));

// Size a canvas to W x H CSS pixels, sharp on the screen's pixels.
function fit(canvas, W, H) {
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round(W * dpr);
  canvas.height = Math.round(H * dpr);
  canvas.style.width = `${W}px`;
  canvas.style.height = `${H}px`;
  canvas.getContext("2d").setTransform(dpr, 0, 0, dpr, 0, 0);
}

// Call layout() whenever the element's width changes (a sidebar opened, a window or projector resized). The
// observer it returns holds the view: disconnect it when the view is replaced (latent.js does, via dispose()).
function onWidth(root, layout) {
  let last = root.clientWidth;
  const observer = new ResizeObserver(() => {
    const w = root.clientWidth;
    if (w && Math.abs(w - last) > 2) { last = w; layout(); }
  });
  observer.observe(root);
  return observer;
}

let clicks = 0; // a map click's number, unique in the page (its views are rebuilt, the count goes on)

// Axes around the plot box (px: data -> pixels), with grid lines, tick labels and titles.
function axes(ctx, box, view, px, titles, ink) {
  const { l, t, w, h } = box;
  ctx.font = "11px sans-serif";
  ctx.fillStyle = ink;
  ctx.strokeStyle = GRID;
  ctx.lineWidth = 1;
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (const v of ticks(view.x0, view.x1, Math.max(5, Math.floor(w / 80)))) {
    const x = Math.round(px(v, view.y0)[0]) + 0.5;
    ctx.beginPath(); ctx.moveTo(x, t); ctx.lineTo(x, t + h); ctx.stroke();
    ctx.fillText(label(v), x, t + h + 4);
  }
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const v of ticks(view.y0, view.y1, Math.max(5, Math.floor(h / 80)))) {
    const y = Math.round(px(view.x0, v)[1]) + 0.5;
    ctx.beginPath(); ctx.moveTo(l, y); ctx.lineTo(l + w, y); ctx.stroke();
    ctx.fillText(label(v), l - 5, y);
  }
  ctx.font = "13px sans-serif";
  ctx.textAlign = "center";
  ctx.textBaseline = "bottom";
  ctx.fillText(titles[0], l + w / 2, t + h + 36);
  ctx.save();
  ctx.translate(l - 42, t + h / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textBaseline = "middle";
  ctx.fillText(titles[1], 0, 0);
  ctx.restore();
}

function tip(parent) {
  const t = el("div", "aeviz-tip", parent);
  t.hidden = true;
  return {
    show(text, x, y) { t.textContent = text; t.style.left = `${x + 12}px`; t.style.top = `${y + 12}px`; t.hidden = false; },
    hide() { t.hidden = true; },
  };
}

// ---- map: the test samples' codes, coloured by class, over the decoded plane or the prior ----------------

export class LatentMap {
  constructor(data, host) {
    this.data = data;
    this.root = el("div", "aeviz-latent aeviz-mode-map", host);
    this.value = data.value;
    this.hidden = new Set();
    const xy = numbers(data.xy), lab = numbers(data.labels);
    this.n = Math.floor(xy.length / 2);
    this.xy = xy;
    this.lab = lab.length ? lab : null;
    this.home = { x0: data.x_range[0], x1: data.x_range[1], y0: data.y_range[0], y1: data.y_range[1] };
    this.view = { ...this.home };
    this.legend();
    const wrap = el("div", "aeviz-plot", this.root);
    this.canvas = el("canvas", "", wrap);
    this.ctx = this.canvas.getContext("2d");
    this.layout();
    this.observer = onWidth(this.root, () => { this.layout(); this.draw(); });
    this.canvas.setAttribute("role", "img");
    this.canvas.setAttribute("aria-label", `Latent map of ${this.n} test samples`);
    this.tip = tip(wrap);
    if (data.image) {
      this.image = new Image();
      this.image.onload = () => this.schedule();
      this.image.onerror = () => { this.image = null; this.schedule(); }; // the points without their plane
      this.image.src = data.image;
    }
    this.events();
    // where test sample i is drawn now, in the window's coordinates (for tests and tools that click a point)
    this.root.pointAt = (i) => {
      const r = this.canvas.getBoundingClientRect(), [x, y] = this.px(this.xy[2 * i], this.xy[2 * i + 1]);
      return [r.left + x, r.top + y];
    };
    this.root.dataset.ready = "1";
    this.root.dataset.frames = "0";
    this.schedule();
  }

  layout() {
    const M = { l: 56, r: 12, t: 8, b: 44 }, width = this.root.clientWidth || 600;
    const side = Math.max(200, Math.min(width - M.l - M.r, this.data.height - M.t - M.b)); // a square: equal scales
    this.box = { l: M.l, t: M.t, w: side, h: side };
    fit(this.canvas, M.l + side + M.r, M.t + side + M.b);
  }

  legend() {
    const names = this.data.label_names || [];
    if (!this.lab || !names.length) return;
    const present = new Set(this.lab);
    const row = el("div", "aeviz-legend", this.root);
    names.forEach((name, k) => {
      if (!present.has(k)) return;
      const b = el("button", "aeviz-key", row);
      b.type = "button";
      b.title = "Click to hide or show this class";
      b.setAttribute("aria-pressed", "true");
      el("span", "aeviz-dot", b).style.background = PALETTE[k % 10];
      el("span", "", b).textContent = name;
      b.addEventListener("click", () => {
        if (this.hidden.has(k)) this.hidden.delete(k); else this.hidden.add(k);
        b.classList.toggle("aeviz-off", this.hidden.has(k));
        b.setAttribute("aria-pressed", String(!this.hidden.has(k)));
        this.schedule();
      });
    });
  }

  px(x, y) {
    const { l, t, w, h } = this.box, v = this.view;
    return [l + ((x - v.x0) / (v.x1 - v.x0)) * w, t + h - ((y - v.y0) / (v.y1 - v.y0)) * h];
  }

  // The nearest visible point within 8 px of (x, y) on the canvas, or -1.
  nearest(x, y) {
    let best = -1, bd = 64;
    for (let i = 0; i < this.n; i++) {
      if (this.lab && this.hidden.has(this.lab[i])) continue;
      const [a, b] = this.px(this.xy[2 * i], this.xy[2 * i + 1]);
      const d = (a - x) ** 2 + (b - y) ** 2;
      if (d < bd) { bd = d; best = i; }
    }
    return best;
  }

  events() {
    const c = this.canvas, at = (e) => { const r = c.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; };
    let down = null;
    c.addEventListener("pointerdown", (e) => {
      if (e.button !== 0) return;
      c.setPointerCapture(e.pointerId);
      down = { p: at(e), view: { ...this.view }, moved: false };
    });
    c.addEventListener("pointermove", (e) => {
      const [x, y] = at(e);
      if (down) {
        const dx = x - down.p[0], dy = y - down.p[1];
        if (!down.moved && dx * dx + dy * dy < 16) return;
        down.moved = true;
        this.tip.hide();
        const v = down.view, sx = (v.x1 - v.x0) / this.box.w, sy = (v.y1 - v.y0) / this.box.h;
        this.view = { x0: v.x0 - dx * sx, x1: v.x1 - dx * sx, y0: v.y0 + dy * sy, y1: v.y1 + dy * sy };
        this.schedule();
        return;
      }
      const i = this.nearest(x, y);
      if (i < 0) { this.tip.hide(); c.style.cursor = "grab"; return; }
      c.style.cursor = this.data.frozen ? "default" : "pointer";
      const names = this.data.label_names || [];
      const name = String(names[this.lab?.[i]] ?? "");
      const what = !this.lab || !names.length ? "" : /^\d+$/.test(name) ? `class ${name} · ` : `${name} · `;
      this.tip.show(`${what}test sample #${i}`, x, y);
    });
    let panned = false;
    const up = () => { if (down) { panned = down.moved; down = null; } };
    c.addEventListener("pointerup", up);
    c.addEventListener("pointercancel", () => { up(); panned = true; });
    // A click selects the point under it: not the end of a pan, not the second click of a double click (that one
    // resets the view), not while the teacher leads.
    c.addEventListener("click", (e) => {
      if (panned || e.detail > 1 || this.data.frozen || !this.setStateValue) return;
      const i = this.nearest(...at(e));
      if (i < 0) return;
      this.value = i; // ring it at once; the page confirms with its next run
      this.schedule();
      clicks += 1;
      this.root.dataset.commits = String(Number(this.root.dataset.commits || 0) + 1);
      this.setStateValue("selected", { i, n: clicks });
    });
    c.addEventListener("pointerleave", () => { if (!down) this.tip.hide(); });
    c.addEventListener("wheel", (e) => {
      e.preventDefault();
      const [x, y] = at(e), f = Math.exp(clampWheel(e.deltaY) * 0.0015), v = this.view;
      const cx = v.x0 + ((x - this.box.l) / this.box.w) * (v.x1 - v.x0);
      const cy = v.y1 - ((y - this.box.t) / this.box.h) * (v.y1 - v.y0);
      this.view = { x0: cx + (v.x0 - cx) * f, x1: cx + (v.x1 - cx) * f, y0: cy + (v.y0 - cy) * f, y1: cy + (v.y1 - cy) * f };
      this.schedule();
    }, { passive: false });
    c.addEventListener("dblclick", (e) => {
      if (this.nearest(...at(e)) >= 0 && !this.data.frozen) return; // a double click on a point selected it
      this.view = { ...this.home };
      this.schedule();
    });
  }

  update(data, setStateValue) {
    this.setStateValue = setStateValue;
    this.data = data;
    if (data.value !== this.value) {
      this.value = data.value;
      this.schedule();
    }
  }

  schedule() {
    if (this.queued) return;
    this.queued = true;
    requestAnimationFrame(() => {
      this.queued = false;
      this.draw();
      this.root.dataset.frames = String(Number(this.root.dataset.frames) + 1);
    });
  }

  draw() {
    const ctx = this.ctx, { l, t, w, h } = this.box, d = this.data, ink = getComputedStyle(this.root).color || "#333";
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    ctx.save();
    ctx.beginPath();
    ctx.rect(l, t, w, h);
    ctx.clip();
    ctx.fillStyle = "#fff";
    ctx.fillRect(l, t, w, h);
    const [a, b] = this.px(this.home.x0, this.home.y1), [c, e] = this.px(this.home.x1, this.home.y0);
    const plane = this.image && this.image.complete && this.image.naturalWidth;
    if (plane) {
      ctx.globalAlpha = d.opacity;
      ctx.imageSmoothingEnabled = true;
      ctx.drawImage(this.image, a, b, c - a, e - b);
      ctx.globalAlpha = 1;
    }
    if (d.prior) this.prior(ctx);
    ctx.restore();
    axes(ctx, this.box, this.view, (x, y) => this.px(x, y), d.titles, ink);
    ctx.save();
    ctx.beginPath();
    ctx.rect(l, t, w, h);
    ctx.clip();
    ctx.globalAlpha = 0.75;
    for (let i = 0; i < this.n; i++) {
      const k = this.lab ? this.lab[i] : 0;
      if (this.lab && this.hidden.has(k)) continue;
      const [x, y] = this.px(this.xy[2 * i], this.xy[2 * i + 1]);
      ctx.fillStyle = PALETTE[k % 10];
      ctx.beginPath();
      ctx.arc(x, y, 2.5, 0, 2 * Math.PI);
      ctx.fill();
    }
    ctx.globalAlpha = 1;
    if (Number.isInteger(this.value) && this.value >= 0 && this.value < this.n) {
      const [x, y] = this.px(this.xy[2 * this.value], this.xy[2 * this.value + 1]);
      ctx.lineWidth = 2.5;
      ctx.strokeStyle = "#fff";
      ctx.beginPath(); ctx.arc(x, y, 8, 0, 2 * Math.PI); ctx.stroke();
      ctx.lineWidth = 1.5;
      ctx.strokeStyle = "#111";
      ctx.beginPath(); ctx.arc(x, y, 8, 0, 2 * Math.PI); ctx.stroke();
    }
    ctx.restore();
    if (plane || !this.image) this.root.dataset.drawn = "1";
  }

  // N(0, I)'s density, shaded, with its 1, 2 and 3 sigma circles.
  prior(ctx) {
    const [ox, oy] = this.px(0, 0), r = (s) => Math.abs(this.px(s, 0)[0] - ox);
    const g = ctx.createRadialGradient(ox, oy, 0, ox, oy, r(3));
    for (let s = 0; s <= 3.001; s += 0.25) g.addColorStop(s / 3, `rgba(99,110,250,${(0.35 * Math.exp(-s * s / 2)).toFixed(3)})`);
    ctx.fillStyle = g;
    ctx.beginPath(); ctx.arc(ox, oy, r(3), 0, 2 * Math.PI); ctx.fill();
    ctx.strokeStyle = "rgba(99,110,250,0.6)";
    ctx.setLineDash([4, 4]);
    ctx.font = "11px sans-serif";
    ctx.fillStyle = "rgba(60,70,200,0.9)";
    for (const s of [1, 2, 3]) {
      ctx.beginPath(); ctx.arc(ox, oy, r(s), 0, 2 * Math.PI); ctx.stroke();
      if (r(1) > 24) ctx.fillText(`${s}σ`, ox + r(s) * 0.71 + 2, oy - r(s) * 0.71 - 2); // unreadable when small
    }
    ctx.setLineDash([]);
  }
}

const clampWheel = (v) => Math.max(-200, Math.min(200, v)); // one notch, whatever the device's units

// ---- bars: a histogram ------------------------------------------------------------------------------------

export class Bars {
  constructor(data, host) {
    this.data = data;
    this.root = el("div", "aeviz-latent aeviz-mode-bars", host);
    const wrap = el("div", "aeviz-plot", this.root);
    this.canvas = el("canvas", "", wrap);
    this.ctx = this.canvas.getContext("2d");
    this.layout();
    this.observer = onWidth(this.root, () => { this.layout(); this.draw(); });
    this.canvas.setAttribute("role", "img");
    this.canvas.setAttribute("aria-label", data.title || "histogram");
    this.tip = tip(wrap);
    const e = data.edges, top = Math.max(1, ...data.counts);
    this.view = { x0: e[0], x1: e[e.length - 1], y0: 0, y1: ticks(0, top * 1.05).find((v) => v >= top) || top };
    this.hover = -1;
    this.canvas.addEventListener("pointermove", (ev) => {
      const r = this.canvas.getBoundingClientRect(), x = ev.clientX - r.left, y = ev.clientY - r.top;
      const v = this.view.x0 + ((x - this.box.l) / this.box.w) * (this.view.x1 - this.view.x0);
      const inside = y >= this.box.t && y <= this.box.t + this.box.h;
      const k = inside ? e.findIndex((_, j) => j + 1 < e.length && v >= e[j] && v <= e[j + 1]) : -1;
      if (k !== this.hover) { this.hover = k; this.draw(); }
      if (k < 0) { this.tip.hide(); return; }
      const n = data.counts[k];
      const short = (v) => String(+v.toPrecision(3));
      this.tip.show(`${short(e[k])} to ${short(e[k + 1])}: ${n} sample${n === 1 ? "" : "s"}`, x, y);
    });
    this.canvas.addEventListener("pointerleave", () => { this.hover = -1; this.tip.hide(); this.draw(); });
    this.root.dataset.ready = "1";
    this.draw();
  }

  layout() {
    const d = this.data, M = { l: 60, r: 16, t: d.title ? 30 : 10, b: 46 };
    const width = Math.max(260, this.root.clientWidth || 640);
    this.box = { l: M.l, t: M.t, w: width - M.l - M.r, h: d.height - M.t - M.b };
    fit(this.canvas, width, d.height);
  }

  update(data) { this.data = data; }

  draw() {
    const ctx = this.ctx, d = this.data, { l, t, w, h } = this.box, ink = getComputedStyle(this.root).color || "#333";
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    const px = (x, y) => [l + ((x - this.view.x0) / (this.view.x1 - this.view.x0)) * w, t + h - (y / this.view.y1) * h];
    axes(ctx, this.box, this.view, px, [d.x_title, d.y_title], ink);
    if (d.title) {
      ctx.font = "bold 14px sans-serif";
      ctx.textAlign = "left";
      ctx.textBaseline = "top";
      ctx.fillText(d.title, 4, 4);
    }
    d.counts.forEach((n, k) => {
      const [a, top] = px(d.edges[k], n), [b] = px(d.edges[k + 1], 0);
      ctx.fillStyle = k === this.hover ? "#1f5f99" : "rgba(31,119,180,0.75)";
      ctx.fillRect(a + 0.5, top, Math.max(1, b - a - 1), t + h - top);
    });
  }
}
