// aeviz web decoder: runs a model blob made by aeviz/webmodel.py on plain typed arrays, as torch does.
//
// A blob is a .safetensors file: 8-byte little-endian header length, a JSON header (tensor dtypes, shapes,
// byte offsets, and __metadata__ with the layer spec and the content hash), then the raw tensor bytes.
// Weights stay Float32Array (as torch holds them); activations are Float64Array and every sum is
// accumulated in float64, so the result is within float32 rounding of torch's own (measured by
// tests/browser/test_decoder_parity.py). No libraries.

const sigmoid = (v) => 1 / (1 + Math.exp(-v));

function f16ToF32(bits) {
  const s = bits & 0x8000 ? -1 : 1, e = (bits >> 10) & 0x1f, f = bits & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

/** Parse a blob (Uint8Array, possibly at an unaligned offset, or ArrayBuffer) into {hash, spec, t}. */
export function parseBlob(data) {
  const src = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const buf = src.slice().buffer; // a copy that starts at offset 0, so Float32Array views line up
  const n = Number(new DataView(buf).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 8, n)));
  const meta = header.__metadata__ || {};
  if (!meta.aeviz_web) throw new Error("not an aeviz web-model blob: no spec in its safetensors metadata");
  const t = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const [a, b] = info.data_offsets, off = 8 + n + a, count = info.shape.reduce((p, q) => p * q, 1);
    if (info.dtype === "F32") {
      t[name] = off % 4 ? new Float32Array(buf.slice(off, 8 + n + b)) : new Float32Array(buf, off, count);
    } else if (info.dtype === "F16") {
      const h = new Uint16Array(buf.slice(off, 8 + n + b)), out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = f16ToF32(h[i]);
      t[name] = out;
    } else {
      throw new Error(`tensor ${name}: dtype ${info.dtype} is not supported (F32 or F16)`);
    }
  }
  return { hash: meta.hash, spec: JSON.parse(meta.aeviz_web), t, bytes: src.byteLength };
}

// y[o] = b[o] + sum_i W[o, i] x[i]; W row-major (out, in) as nn.Linear stores it. xOff lets a caller
// read one row of a bigger array without copying.
function linear(W, b, x, nIn, nOut, y = new Float64Array(nOut), xOff = 0, yOff = 0) {
  for (let o = 0; o < nOut; o++) {
    let s = 0;
    const row = o * nIn;
    for (let i = 0; i < nIn; i++) s += W[row + i] * x[xOff + i];
    y[yOff + o] = s + (b ? b[o] : 0);
  }
  return y;
}

function conv2d(op, x, shapeIn, t) {
  const [cin, H, W] = shapeIn, [cout, Ho, Wo] = op.shape, [kh, kw] = op.k, [sh, sw] = op.stride, [ph, pw] = op.pad;
  const w = t[op.w], b = op.b ? t[op.b] : null, y = new Float64Array(cout * Ho * Wo);
  for (let co = 0; co < cout; co++) {
    for (let oy = 0; oy < Ho; oy++) {
      for (let ox = 0; ox < Wo; ox++) {
        let s = 0;
        for (let ci = 0; ci < cin; ci++) {
          for (let ky = 0; ky < kh; ky++) {
            const iy = oy * sh - ph + ky;
            if (iy < 0 || iy >= H) continue;
            const wr = ((co * cin + ci) * kh + ky) * kw, xr = (ci * H + iy) * W;
            for (let kx = 0; kx < kw; kx++) {
              const ix = ox * sw - pw + kx;
              if (ix >= 0 && ix < W) s += w[wr + kx] * x[xr + ix];
            }
          }
        }
        y[(co * Ho + oy) * Wo + ox] = s + (b ? b[co] : 0);
      }
    }
  }
  return y;
}

// Transposed convolution as torch defines it: input pixel (iy, ix) adds w[ci, co, ky, kx] * x to output
// pixel (iy*stride - pad + ky, ix*stride - pad + kx). Weight layout (cin, cout, kh, kw).
function convTranspose2d(op, x, shapeIn, t) {
  const [cin, H, W] = shapeIn, [cout, Ho, Wo] = op.shape, [kh, kw] = op.k, [sh, sw] = op.stride, [ph, pw] = op.pad;
  const w = t[op.w], b = op.b ? t[op.b] : null, y = new Float64Array(cout * Ho * Wo);
  for (let co = 0; co < cout; co++) y.fill(b ? b[co] : 0, co * Ho * Wo, (co + 1) * Ho * Wo);
  for (let ci = 0; ci < cin; ci++) {
    for (let iy = 0; iy < H; iy++) {
      for (let ix = 0; ix < W; ix++) {
        const v = x[(ci * H + iy) * W + ix];
        if (v === 0) continue; // after a ReLU most inputs are zero
        for (let co = 0; co < cout; co++) {
          const wb = (ci * cout + co) * kh * kw, yb = co * Ho * Wo;
          for (let ky = 0; ky < kh; ky++) {
            const oy = iy * sh - ph + ky;
            if (oy < 0 || oy >= Ho) continue;
            for (let kx = 0; kx < kw; kx++) {
              const ox = ix * sw - pw + kx;
              if (ox >= 0 && ox < Wo) y[yb + oy * Wo + ox] += v * w[wb + ky * kw + kx];
            }
          }
        }
      }
    }
  }
  return y;
}

// One recurrent step in place. gi = W_ih x + b_ih (precomputed by the caller); h (and c for the LSTM) update.
// GRU (torch gate order r, z, n): n = tanh(gi_n + r * (W_hn h + b_hn)); h = (1 - z) n + z h.
// LSTM (torch gate order i, f, g, o): c = f c + i g; h = o tanh(c).
function rnnStep(op, t, gi, h, c, gh) {
  const H = op.hidden;
  linear(t[op.w_hh], t[op.b_hh], h, H, (op.cell === "lstm" ? 4 : 3) * H, gh);
  if (op.cell === "gru") {
    for (let j = 0; j < H; j++) {
      const r = sigmoid(gi[j] + gh[j]), z = sigmoid(gi[H + j] + gh[H + j]);
      const n = Math.tanh(gi[2 * H + j] + r * gh[2 * H + j]);
      h[j] = (1 - z) * n + z * h[j];
    }
  } else {
    for (let j = 0; j < H; j++) {
      const i = sigmoid(gi[j] + gh[j]), f = sigmoid(gi[H + j] + gh[H + j]);
      const g = Math.tanh(gi[2 * H + j] + gh[2 * H + j]), o = sigmoid(gi[3 * H + j] + gh[3 * H + j]);
      c[j] = f * c[j] + i * g;
      h[j] = o * Math.tanh(c[j]);
    }
  }
}

function rnnDecode(op, z, t) {
  const H = op.hidden, L = z.length, G = (op.cell === "lstm" ? 4 : 3) * H;
  const h = linear(t[op.init_w], t[op.init_b], z, L, H).map(Math.tanh), c = new Float64Array(H);
  const gi = linear(t[op.w_ih], t[op.b_ih], z, L, G), gh = new Float64Array(G); // z is every step's input
  const y = new Float64Array(op.steps * op.feats);
  for (let s = 0; s < op.steps; s++) {
    rnnStep(op, t, gi, h, c, gh);
    linear(t[op.out_w], t[op.out_b], h, H, op.feats, y, 0, s * op.feats);
  }
  return y;
}

function rnnEncode(op, x, t) {
  const H = op.hidden, G = (op.cell === "lstm" ? 4 : 3) * H;
  const h = new Float64Array(H), c = new Float64Array(H), gi = new Float64Array(G), gh = new Float64Array(G);
  for (let s = 0; s < op.steps; s++) {
    linear(t[op.w_ih], t[op.b_ih], x, op.feats, G, gi, s * op.feats);
    rnnStep(op, t, gi, h, c, gh);
  }
  return h;
}

/** Run a list of ops (model.spec.decoder or .encoder) on one sample x of shape shapeIn. */
export function run(model, ops, x, shapeIn) {
  const t = model.t;
  let v = Float64Array.from(x), shape = shapeIn;
  for (const op of ops) {
    switch (op.op) {
      case "linear": v = linear(t[op.w], op.b ? t[op.b] : null, v, op.in, op.out); break;
      case "relu": v = v.map((a) => (a > 0 ? a : 0)); break;
      case "sigmoid": v = v.map(sigmoid); break;
      case "tanh": v = v.map(Math.tanh); break;
      case "reshape": break;
      case "slice": v = v.slice(op.start, op.stop); break;
      case "conv2d": v = conv2d(op, v, shape, t); break;
      case "convtranspose2d": v = convTranspose2d(op, v, shape, t); break;
      case "rnn_decode": v = rnnDecode(op, v, t); break;
      case "rnn_encode": v = rnnEncode(op, v, t); break;
      default: throw new Error(`unknown op ${op.op}`);
    }
    shape = op.shape;
  }
  return v;
}

/** x_hat in [0,1] (flat, the sample's shape in model.spec.input_shape) for a code z. */
export function decode(model, z) {
  return run(model, model.spec.decoder, z, [model.spec.latent_dim]);
}

/** The code of a sample x (flat): the VAE's mu, the sparse model's activated units. */
export function encode(model, x) {
  if (!model.spec.encoder) throw new Error("this blob carries no encoder (export it with encoder=True)");
  return run(model, model.spec.encoder, x, model.spec.input_shape);
}
