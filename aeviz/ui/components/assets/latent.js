// aeviz latent component (Streamlit Components v2): decode in the browser while the user drags, and tell
// Python only the value that was let go of (one setStateValue, so one rerun, per release).
//
// One component, two kinds of instance, sharing this module (one module URL, so one registry):
//   carrier  data = a model blob (bytes, see aeviz/webmodel.py): parsed once, kept by its hash for the page's
//            life (Python mounts a model's carrier once per page, see SENT in latent.py)
//   view     data = {mode, state, value, models: [hash, ...], ...}: pad | sliders | path | temperature | denoise
//   chart    data = {mode: map | bars, ...}: no model, see charts.js
// A view waits for its models' carriers, which may mount before or after it; one it still lacks after
// MISSING_MS is asked for again (trigger "missing": a run cut short may never have shown its carrier).
// Streamlit calls the default export again on every data change: a view is built once per parentElement
// and per structure (everything in data but the value), and only updated otherwise.

import { Bars, el, LatentMap, numbers, PALETTE, ticks } from "./charts.js";
import { decode, encode, parseBlob } from "./decoder.js";

const SUB = "₀₁₂₃₄₅₆₇₈₉";
const zName = (i) => "z" + String(i + 1).replace(/\d/g, (d) => SUB[d]);
const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
const fmt = (v) => (Math.abs(v) < 5e-5 ? 0 : v).toFixed(2);
// ---- model registry (by content hash) ----------------------------------------------------------------

const models = new Map();
const waiting = new Map();
const MISSING_MS = 1500;

function peekHash(u8) {
  const dv = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
  const n = Number(dv.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(u8.subarray(8, 8 + n)));
  return (header.__metadata__ || {}).hash;
}

function carry(data) {
  const u8 = data instanceof ArrayBuffer ? new Uint8Array(data) : data;
  const hash = peekHash(u8);
  if (models.has(hash)) return;
  const m = parseBlob(u8);
  models.set(hash, m);
  (waiting.get(hash) || []).forEach((resolve) => resolve(m));
  waiting.delete(hash);
}

function whenModel(hash) {
  if (models.has(hash)) return Promise.resolve(models.get(hash));
  return new Promise((resolve) => waiting.set(hash, [...(waiting.get(hash) || []), resolve]));
}

// ---- drawing a sample: an image on a pixelated canvas, anything else as a line ---------------------

function sampleView(shape, size, parent, title) {
  const fig = el("figure", "aeviz-fig", parent);
  const s = shape.length === 2 ? [1, ...shape] : shape;
  const image = s.length === 3 && (s[0] === 1 || s[0] === 3) && s[1] > 1 && s[2] > 1;
  const canvas = el("canvas", image ? "aeviz-img" : "aeviz-line", fig);
  if (title) el("figcaption", "", fig).textContent = title;
  if (image) {
    const [c, h, w] = s;
    canvas.width = w;
    canvas.height = h;
    canvas.style.width = `${size}px`;
    canvas.style.height = `${Math.round((size * h) / w)}px`;
    const ctx = canvas.getContext("2d"), img = ctx.createImageData(w, h), n = h * w;
    return {
      fig,
      draw(x) {
        for (let p = 0; p < n; p++) {
          for (let k = 0; k < 3; k++) img.data[4 * p + k] = Math.round(255 * clamp(x[(c === 3 ? k * n : 0) + p], 0, 1));
          img.data[4 * p + 3] = 255;
        }
        ctx.putImageData(img, 0, 0);
      },
    };
  }
  const dpr = window.devicePixelRatio || 1, W = size, H = Math.round(size * 0.6);
  canvas.width = W * dpr;
  canvas.height = H * dpr;
  canvas.style.width = `${W}px`;
  canvas.style.height = `${H}px`;
  const ctx = canvas.getContext("2d");
  return {
    fig,
    draw(x) {
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, W, H);
      ctx.strokeStyle = "rgba(128,128,128,0.35)";
      ctx.strokeRect(0.5, 0.5, W - 1, H - 1);
      ctx.strokeStyle = getComputedStyle(canvas).getPropertyValue("--aeviz-accent") || "#4f46e5";
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      const n = x.length, px = (i) => 3 + ((W - 6) * i) / Math.max(1, n - 1), py = (v) => H - 3 - (H - 6) * clamp(v, 0, 1);
      for (let i = 0; i < n; i++) (i ? ctx.lineTo : ctx.moveTo).call(ctx, px(i), py(x[i]));
      ctx.stroke();
    },
  };
}

// ---- one view: shared plumbing -------------------------------------------------------------------------

class View {
  constructor(data, host) {
    this.data = data;
    this.root = el("div", `aeviz-latent aeviz-mode-${data.mode}`, host);
    this.root.dataset.frames = "0";
    this.root.dataset.commits = "0";
    this.value = data.value;
    this.committed = JSON.stringify(data.value);
    this.busy = false; // a pointer or key is down: the user's value wins over data.value
    this.models = null;
    this.queued = false;
    this.build();
    const note = el("div", "aeviz-note", this.root);
    note.textContent = "loading the model…";
    this.ask = setTimeout(() => {
      const lacking = [...new Set(data.models.filter((h) => !models.has(h)))];
      if (lacking.length && this.setTriggerValue) this.setTriggerValue("missing", lacking);
    }, MISSING_MS);
    Promise.all(data.models.map(whenModel)).then((ms) => {
      clearTimeout(this.ask);
      note.remove();
      this.models = ms;
      this.root.dataset.ready = "1";
      this.schedule();
    });
  }

  update(data, setStateValue, setTriggerValue) {
    this.setStateValue = setStateValue;
    this.setTriggerValue = setTriggerValue;
    this.data = data;
    if (!this.busy && JSON.stringify(data.value) !== JSON.stringify(this.value)) {
      this.value = data.value;
      this.sync();
      this.schedule();
    }
    this.committed = JSON.stringify(data.value);
  }

  schedule() {
    if (this.queued) return;
    this.queued = true;
    requestAnimationFrame(() => {
      this.queued = false;
      this.sync(); // the handle and the numbers move once per frame, however many pointer events came
      if (!this.models) return;
      const t0 = performance.now();
      try {
        this.draw();
      } catch (err) { // a blob this decoder cannot run: say so in place rather than show stale pictures
        if (!this.error) this.error = el("div", "aeviz-note aeviz-error", this.root);
        this.error.textContent = `The browser could not run this model: ${err.message}`;
        throw err;
      }
      this.root.dataset.frames = String(Number(this.root.dataset.frames) + 1);
      this.root.dataset.ms = (performance.now() - t0).toFixed(2);
      window.__aevizFrames = (window.__aevizFrames || 0) + 1;
    });
  }

  commit() {
    const v = JSON.stringify(this.value);
    if (v === this.committed || !this.setStateValue) return;
    this.committed = v;
    this.root.dataset.commits = String(Number(this.root.dataset.commits) + 1);
    this.setStateValue(this.data.state, this.value);
  }

  // A range input that draws while it moves and commits on release (pointer) or key release (keyboard).
  slider(parent, { min, max, step, value, label, onInput }) {
    const input = el("input", "", parent);
    Object.assign(input, { type: "range", min, max, step, value });
    input.setAttribute("aria-label", label);
    const press = () => { this.busy = true; };
    const release = () => { this.busy = false; this.commit(); };
    input.addEventListener("pointerdown", press);
    input.addEventListener("keydown", press);
    input.addEventListener("input", () => { onInput(Number(input.value)); this.schedule(); });
    input.addEventListener("pointerup", release);
    input.addEventListener("keyup", release);
    input.addEventListener("change", () => { if (!this.busy) this.commit(); });
    return input;
  }

  outputs(parent, size) {
    const box = el("div", "aeviz-outs", parent);
    return this.data.models.map((_, i) => sampleView(this.data.sample_shape, size, box, this.data.titles[i]));
  }

  sync() {}
}

// ---- pad: a 2-D latent plane with the test codes, a draggable point, the decoded samples beside it ------

class Pad extends View {
  build() {
    const d = this.data, M = { l: 44, r: 10, t: 10, b: 38 };
    const S = Math.max(160, Math.min(d.size, this.root.clientWidth || d.size)); // a narrow column gets a smaller pad
    const [x0, x1] = d.x_range, [y0, y1] = d.y_range;
    this.toPx = (z) => [M.l + ((z[0] - x0) / (x1 - x0)) * (S - M.l - M.r), S - M.b - ((z[1] - y0) / (y1 - y0)) * (S - M.t - M.b)];
    this.toZ = (px, py) => [clamp(x0 + ((px - M.l) / (S - M.l - M.r)) * (x1 - x0), x0, x1),
                            clamp(y0 + ((S - M.b - py) / (S - M.t - M.b)) * (y1 - y0), y0, y1)];
    const left = el("div", "aeviz-col", this.root);
    const pad = (this.pad = el("div", "aeviz-pad", left));
    pad.tabIndex = 0;
    pad.setAttribute("role", "application");
    pad.setAttribute("aria-label", "Latent pad: drag the point, or move it with the arrow keys");
    pad.style.width = pad.style.height = `${S}px`;
    const canvas = el("canvas", "", pad), dpr = window.devicePixelRatio || 1;
    canvas.width = canvas.height = S * dpr;
    canvas.style.width = canvas.style.height = `${S}px`;
    this.handle = el("div", "aeviz-handle", pad);
    this.readout = el("div", "aeviz-readout", left);
    this.views = this.outputs(this.root, d.image_size);
    this.background(canvas.getContext("2d"), dpr, S, M);

    pad.addEventListener("pointerdown", (e) => {
      if (e.button !== 0) return;
      pad.setPointerCapture(e.pointerId); // (the press focuses the pad natively, for the arrow keys after)
      this.busy = true;
      this.rect = pad.getBoundingClientRect(); // once per drag: reading it per move would force a layout each time
      this.moveTo(e);
    });
    pad.addEventListener("pointermove", (e) => { if (this.busy && pad.hasPointerCapture(e.pointerId)) this.moveTo(e); });
    const release = () => { if (this.busy) { this.busy = false; this.commit(); } };
    pad.addEventListener("pointerup", release);
    pad.addEventListener("pointercancel", release);
    const KEYS = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1] };
    pad.addEventListener("keydown", (e) => {
      const k = KEYS[e.key];
      if (!k) return;
      e.preventDefault();
      this.busy = true;
      const f = e.shiftKey ? 0.1 : 0.02;
      this.value = [clamp(this.value[0] + k[0] * f * (x1 - x0), x0, x1), clamp(this.value[1] + k[1] * f * (y1 - y0), y0, y1)];
      this.schedule();
    });
    pad.addEventListener("keyup", (e) => { if (KEYS[e.key]) release(); });
    this.sync();
  }

  background(ctx, dpr, S, M) {
    const d = this.data, ink = getComputedStyle(this.root).color || "#333";
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = "rgba(128,128,128,0.06)";
    ctx.fillRect(M.l, M.t, S - M.l - M.r, S - M.t - M.b);
    ctx.font = "11px sans-serif";
    ctx.fillStyle = ink;
    ctx.strokeStyle = "rgba(128,128,128,0.25)";
    ctx.lineWidth = 1;
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (const v of ticks(...d.x_range)) {
      const [px] = this.toPx([v, d.y_range[0]]);
      ctx.beginPath(); ctx.moveTo(px + 0.5, M.t); ctx.lineTo(px + 0.5, S - M.b); ctx.stroke();
      ctx.fillText(String(+v.toFixed(6)), px, S - M.b + 3);
    }
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (const v of ticks(...d.y_range)) {
      const [, py] = this.toPx([d.x_range[0], v]);
      ctx.beginPath(); ctx.moveTo(M.l, py + 0.5); ctx.lineTo(S - M.r, py + 0.5); ctx.stroke();
      ctx.fillText(String(+v.toFixed(6)), M.l - 4, py);
    }
    ctx.font = "italic 13px serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "bottom";
    ctx.fillText(zName(0), M.l + (S - M.l - M.r) / 2, S - 2);
    ctx.save();
    ctx.translate(12, M.t + (S - M.t - M.b) / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textBaseline = "middle";
    ctx.fillText(zName(1), 0, 0);
    ctx.restore();
    const c = numbers(d.codes), lab = numbers(d.labels);
    ctx.save();
    ctx.beginPath();
    ctx.rect(M.l, M.t, S - M.l - M.r, S - M.t - M.b);
    ctx.clip();
    ctx.globalAlpha = 0.6;
    for (let i = 0; 2 * i + 1 < c.length; i++) {
      const [px, py] = this.toPx([c[2 * i], c[2 * i + 1]]);
      ctx.fillStyle = lab.length ? PALETTE[lab[i] % 10] : "#888";
      ctx.fillRect(px - 1.5, py - 1.5, 3, 3);
    }
    ctx.restore();
  }

  moveTo(e) {
    const r = this.rect;
    this.value = this.toZ(e.clientX - r.left, e.clientY - r.top);
    this.schedule();
  }

  sync() {
    const [px, py] = this.toPx(this.value);
    this.handle.style.left = `${px}px`;
    this.handle.style.top = `${py}px`;
    this.readout.textContent = `${zName(0)} = ${fmt(this.value[0])}, ${zName(1)} = ${fmt(this.value[1])}`;
  }

  draw() {
    this.models.forEach((m, i) => this.views[i].draw(decode(m, this.value)));
  }
}

// ---- sliders: one per latent dimension ---------------------------------------------------------------

class Sliders extends View {
  build() {
    const d = this.data;
    this.views = this.outputs(this.root, d.image_size);
    const grid = el("div", "aeviz-sliders", this.root);
    this.inputs = [];
    this.labels = [];
    this.value = [...this.value];
    this.dims = d.dims || this.value.map((_, i) => i);
    this.dims.forEach((i, k) => {
      const lo = d.lo[i], hi = d.hi[i];
      el("label", "aeviz-zname", grid).textContent = zName(i);
      this.inputs.push(this.slider(grid, {
        min: lo, max: hi, step: (hi - lo) / 200, value: this.value[i], label: zName(i),
        onInput: (v) => { this.value = this.value.map((a, j) => (j === i ? v : a)); this.labels[k].textContent = fmt(v); },
      }));
      this.labels.push(el("span", "aeviz-num", grid));
    });
    this.sync();
  }

  sync() {
    this.dims.forEach((i, k) => { this.inputs[k].value = this.value[i]; this.labels[k].textContent = fmt(this.value[i]); });
  }

  draw() {
    this.models.forEach((m, i) => this.views[i].draw(decode(m, this.value)));
  }
}

// ---- path: a scrubber along the line (or great circle) from one code to another ------------------------

function pathPoint(a, b, t, method) {
  if (method === "spherical" || method === "slerp") {
    const dot = a.reduce((s, v, i) => s + v * b[i], 0), na = Math.hypot(...a), nb = Math.hypot(...b);
    const omega = Math.acos(clamp(dot / (na * nb + 1e-12), -1, 1));
    if (omega >= 1e-6) return a.map((v, i) => (Math.sin((1 - t) * omega) * v + Math.sin(t * omega) * b[i]) / Math.sin(omega));
  }
  return a.map((v, i) => (1 - t) * v + t * b[i]);
}

class Path extends View {
  build() {
    const d = this.data;
    this.views = this.outputs(this.root, d.image_size);
    const col = el("div", "aeviz-col aeviz-track", this.root);
    this.strips = d.models.map((_, i) => {
      const strip = el("div", "aeviz-strip", col);
      return Array.from({ length: d.steps }, () => sampleView(d.sample_shape, d.thumb_size, strip, ""));
    });
    col.style.setProperty("--aeviz-thumb", `${d.thumb_size}px`); // the slider's ends sit under the first and last stop
    this.input = this.slider(col, {
      min: 0, max: 1, step: 0.005, value: this.value, label: "position along the path",
      onInput: (v) => { this.value = v; this.readout.textContent = `t = ${fmt(v)}`; },
    });
    this.readout = el("span", "aeviz-num aeviz-t", col);
    this.stripDrawn = false;
    this.sync();
  }

  sync() {
    this.input.value = this.value;
    this.readout.textContent = `t = ${fmt(this.value)}`;
  }

  draw() {
    const d = this.data;
    if (!this.stripDrawn) {
      this.stripDrawn = true;
      this.models.forEach((m, i) => this.strips[i].forEach((v, k) => v.draw(decode(m, pathPoint(d.start, d.end, k / Math.max(1, d.steps - 1), d.method)))));
    }
    const z = pathPoint(d.start, d.end, this.value, d.method);
    this.models.forEach((m, i) => this.views[i].draw(decode(m, z)));
  }
}

// ---- one number from 0 to a maximum on a slider, with its name and its value beside it -----------------

class Level extends View {
  // The row "name [slider] value" (Temperature's T, Denoise's σ); sync() moves the slider and the value.
  level(name, label, max) {
    const row = el("div", "aeviz-row", this.root);
    el("span", "aeviz-zname", row).textContent = name;
    this.input = this.slider(row, {
      min: 0, max, step: max / 200, value: this.value, label,
      onInput: (v) => { this.value = v; this.readout.textContent = fmt(v); },
    });
    this.readout = el("span", "aeviz-num", row);
  }

  sync() {
    this.input.value = this.value;
    this.readout.textContent = fmt(this.value);
  }
}

// ---- temperature: fixed prior draws eps, shown as z = T * eps ---------------------------------------

class Temperature extends Level {
  build() {
    const d = this.data;
    this.level("T", "temperature", d.t_max);
    this.grids = d.models.map((_, i) => {
      const fig = el("figure", "aeviz-fig", this.root);
      const grid = el("div", "aeviz-grid", fig);
      grid.style.gridTemplateColumns = `repeat(${d.cols}, auto)`;
      el("figcaption", "", fig).textContent = d.titles[i];
      return d.eps.map(() => sampleView(d.sample_shape, d.image_size, grid, ""));
    });
    this.sync();
  }

  draw() {
    const T = this.value;
    this.models.forEach((m, i) => this.data.eps.forEach((e, k) => this.grids[i][k].draw(decode(m, e.map((v) => T * v)))));
  }
}

// ---- denoise: corrupt in the browser with a fixed noise field, then encode and decode live ------------

class Denoise extends Level {
  build() {
    const d = this.data;
    this.level("σ", "noise level", d.max_level);
    const box = el("div", "aeviz-outs", this.root);
    this.clean = sampleView(d.sample_shape, d.image_size, box, "clean");
    this.noisy = sampleView(d.sample_shape, d.image_size, box, "noisy input");
    this.views = d.models.map((_, i) => sampleView(d.sample_shape, d.image_size, box, d.titles[i]));
    this.sync();
  }

  draw() {
    const d = this.data, s = this.value;
    const x = d.image.map((v, i) => clamp(v + s * d.noise[i], 0, 1)); // data.corrupt's gaussian, same field
    this.clean.draw(d.image);
    this.noisy.draw(x);
    this.models.forEach((m, i) => this.views[i].draw(decode(m, encode(m, x))));
  }
}

// ---- entry point ------------------------------------------------------------------------------------

const MODES = { pad: Pad, sliders: Sliders, path: Path, temperature: Temperature, denoise: Denoise, map: LatentMap, bars: Bars };
const views = new WeakMap(); // parentElement -> View

export default function (component) {
  const { data, parentElement, setStateValue, setTriggerValue } = component;
  if (data instanceof Uint8Array || data instanceof ArrayBuffer) {
    carry(data);
    return;
  }
  if (!data || !MODES[data.mode]) return;
  const structure = JSON.stringify({ ...data, value: null });
  let view = views.get(parentElement);
  if (!view || view.structure !== structure) {
    if (view) { clearTimeout(view.ask); view.observer?.disconnect(); view.root.remove(); }
    view = new MODES[data.mode](data, parentElement);
    view.structure = structure;
    views.set(parentElement, view);
  }
  view.update(data, setStateValue, setTriggerValue);
}
