"""A model's decoder (and optionally its encoder) as the browser runs it: one safetensors blob.

The blob is an ordinary .safetensors file: float16 tensors when every weight is a float16 value (the zoo ships
its weights so; half the bytes and the same numbers), else float32; and in its ``__metadata__`` the layer spec (JSON,
key ``aeviz_web``) and a content hash (key ``hash``). The browser parses the header itself and caches the
parsed model by that hash, so one blob carries everything and many views can refer to it.

The spec is a list of ops per network, run in order on one sample (no batch axis):

  linear {w, b, in, out}                      x = W x + b
  relu | sigmoid | tanh                       elementwise
  reshape {shape}                             Flatten / Unflatten: the values stay, the shape changes
  conv2d {w, b, cin, cout, k, stride, pad}    torch.nn.Conv2d (zero padding, no dilation, no groups)
  convtranspose2d {... , out_pad}             torch.nn.ConvTranspose2d (same restrictions)
  rnn_decode {cell, steps, hidden, feats, init_w, init_b, w_ih, w_hh, b_ih, b_hh, out_w, out_b}
      nets.RNNDecoder: h0 = tanh(init z), c0 = 0, z is the input at every step, each step emits out(h)
  rnn_encode {cell, steps, feats, hidden, w_ih, w_hh, b_ih, b_hh}
      the recurrent half of nets.RNNEncoder: read the sample as steps x feats from a zero state, emit the
      last hidden state (the linear head follows as a linear op)
  slice {start, stop}                         the VAE's mu: the first half of the encoder's output

"decoder" ends with a sigmoid (Autoencoder.decode); "encoder" (when exported) ends where Autoencoder.encode
ends: with the Sparse model's relu/sigmoid, or the VAE's slice. Every "shape" is the shape after the op.
A layer this module does not know raises WebExportError: the browser never runs a half-understood net.
"""
from __future__ import annotations

import hashlib
import json
import weakref
from dataclasses import dataclass

import numpy as np
import torch
from safetensors.numpy import load as load_numpy
from torch import nn

from . import models, nets

FORMAT = "aeviz-web/1"
META_SPEC, META_HASH = "aeviz_web", "hash"


class WebExportError(ValueError):
    """The model holds a layer (or a setting of one) that the browser decoder does not implement."""


@dataclass(frozen=True)
class WebModel:
    """What the browser needs for one model: the blob, its hash, and the spec inside it (for Python callers)."""

    hash: str  # 16 hex digits of sha256(spec JSON + tensor bytes); the browser's cache key
    blob: bytes  # safetensors with the spec and hash in its metadata
    spec: dict

    @property
    def latent_dim(self) -> int:
        return self.spec["latent_dim"]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.spec["input_shape"])

    @property
    def has_encoder(self) -> bool:
        return "encoder" in self.spec


class _Writer:
    """Collects the tensors the ops name (float32, contiguous) while the ops are written."""

    def __init__(self):
        self.tensors: dict[str, np.ndarray] = {}

    def add(self, name: str, t: torch.Tensor | None) -> str | None:
        if t is None:
            return None
        self.tensors[name] = np.ascontiguousarray(t.detach().to(torch.float32).cpu().numpy())
        return name


def _pair(v) -> list[int]:
    return [int(v), int(v)] if isinstance(v, int) else [int(a) for a in v]


def _unknown(m: nn.Module, where: str) -> WebExportError:
    return WebExportError(f"The browser decoder cannot run {type(m).__name__} ({where}); "
                          f"it knows Linear, ReLU, Sigmoid, Tanh, Flatten, Unflatten, Conv2d, ConvTranspose2d "
                          f"and aeviz's RNN encoder/decoder.")


def _conv(m: nn.Conv2d | nn.ConvTranspose2d, name: str, w: _Writer, where: str) -> dict:
    if m.groups != 1 or _pair(m.dilation) != [1, 1] or m.padding_mode != "zeros" or isinstance(m.padding, str):
        raise WebExportError(f"{where}: {type(m).__name__} with groups, dilation, string padding or "
                             f"non-zero padding_mode is not supported in the browser.")
    op = {"op": "conv2d" if isinstance(m, nn.Conv2d) else "convtranspose2d",
          "w": w.add(f"{name}.weight", m.weight), "b": w.add(f"{name}.bias", m.bias),
          "cin": m.in_channels, "cout": m.out_channels,
          "k": _pair(m.kernel_size), "stride": _pair(m.stride), "pad": _pair(m.padding)}
    if isinstance(m, nn.ConvTranspose2d):
        op["out_pad"] = _pair(m.output_padding)
    return op


def _rnn(r: nn.RNNBase, name: str, w: _Writer, where: str) -> dict:
    if not isinstance(r, (nn.GRU, nn.LSTM)):
        raise _unknown(r, where)
    if r.num_layers != 1 or r.bidirectional or not r.bias or not r.batch_first or getattr(r, "proj_size", 0):
        raise WebExportError(f"{where}: only a one-layer, one-way {type(r).__name__} with biases and "
                             f"batch_first runs in the browser.")
    return {"cell": "lstm" if isinstance(r, nn.LSTM) else "gru", "hidden": r.hidden_size,
            "w_ih": w.add(f"{name}.weight_ih_l0", r.weight_ih_l0), "w_hh": w.add(f"{name}.weight_hh_l0", r.weight_hh_l0),
            "b_ih": w.add(f"{name}.bias_ih_l0", r.bias_ih_l0), "b_hh": w.add(f"{name}.bias_hh_l0", r.bias_hh_l0)}


def _layer_ops(m: nn.Module, name: str, w: _Writer, where: str) -> list[dict]:
    """Ops for one module (without shapes; _net adds them)."""
    if type(m) is nn.Sequential:
        return [op for i, child in enumerate(m) for op in _layer_ops(child, f"{name}.{i}", w, where)]
    if type(m) is nn.Linear:
        return [{"op": "linear", "w": w.add(f"{name}.weight", m.weight), "b": w.add(f"{name}.bias", m.bias),
                 "in": m.in_features, "out": m.out_features}]
    if type(m) in (nn.ReLU, nn.Sigmoid, nn.Tanh):
        return [{"op": type(m).__name__.lower()}]
    if type(m) in (nn.Flatten, nn.Unflatten):
        if (m.start_dim if type(m) is nn.Flatten else m.dim) != 1 or (type(m) is nn.Flatten and m.end_dim != -1):
            raise WebExportError(f"{where}: only Flatten/Unflatten of the sample (dim 1 onwards) is supported.")
        return [{"op": "reshape"}]  # the target shape is filled in from the traced forward pass
    if type(m) in (nn.Conv2d, nn.ConvTranspose2d):
        return [_conv(m, name, w, where)]
    if type(m) is nets.RNNDecoder:
        rnn = _rnn(m.rnn, f"{name}.rnn", w, where)
        return [{"op": "rnn_decode", **rnn, "steps": m.steps, "feats": m.out.out_features,
                 "init_w": w.add(f"{name}.init.weight", m.init.weight), "init_b": w.add(f"{name}.init.bias", m.init.bias),
                 "out_w": w.add(f"{name}.out.weight", m.out.weight), "out_b": w.add(f"{name}.out.bias", m.out.bias)},
                {"op": "reshape"}]
    if type(m) is nets.RNNEncoder:
        rnn = _rnn(m.rnn, f"{name}.rnn", w, where)
        feats = m.rnn.input_size
        return [{"op": "reshape"}, {"op": "rnn_encode", **rnn, "steps": m.steps, "feats": feats},
                *_layer_ops(m.head, f"{name}.head", w, where)]
    raise _unknown(m, where)


def _trace_shapes(net: nn.Module, ops: list[dict], x: torch.Tensor) -> None:
    """Fill each op's "shape" (after the op, no batch axis) from one forward pass of the real modules."""
    shapes: list[tuple[int, ...]] = []

    def hook(_m, _inp, out):
        shapes.append(tuple(out.shape[1:]))

    leaves = [m for m in net.modules() if type(m) is not nn.Sequential and not isinstance(m, nn.RNNBase)
              and not isinstance(m, (nets.RNNDecoder, nets.RNNEncoder))]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        with torch.no_grad():
            out = net(x)
    finally:
        for h in handles:
            h.remove()
    # RNN ops have no leaf of their own; derive their shapes from the ops around them.
    it = iter(shapes)
    for i, op in enumerate(ops):
        if op["op"] == "rnn_decode":
            op["shape"] = [op["steps"] * op["feats"]]
            next(it), next(it)  # the init and out Linear layers ran inside the decoder
        elif op["op"] == "rnn_encode":
            op["shape"] = [op["hidden"]]
        elif op["op"] == "reshape" and i + 1 < len(ops) and ops[i + 1]["op"] == "rnn_encode":
            op["shape"] = [ops[i + 1]["steps"], ops[i + 1]["feats"]]
        elif op["op"] == "reshape" and i > 0 and ops[i - 1]["op"] == "rnn_decode":
            op["shape"] = list(out.shape[1:])
        else:
            op["shape"] = list(next(it))


def _net(net: nn.Module, prefix: str, w: _Writer, x: torch.Tensor, where: str) -> list[dict]:
    ops = _layer_ops(net, prefix, w, where)
    _trace_shapes(net, ops, x)
    return ops


def _posterior_tail(model: models.Autoencoder) -> list[dict]:
    """What Autoencoder.encode does after the encoder net, per objective (in eval mode)."""
    posterior = type(model).posterior
    if posterior is models.Autoencoder.posterior:
        return []
    if posterior is models.Sparse.posterior:
        return [{"op": "relu" if model.config.sparsity == "l1" else "sigmoid"}]
    if posterior is models.Variational.posterior:
        return [{"op": "slice", "start": 0, "stop": model.config.latent_dim}]
    raise WebExportError(f"{type(model).__name__} has its own posterior(); the browser encoder does not know it.")


def _content_hash(spec: dict, tensors: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256(json.dumps(spec, sort_keys=True, separators=(",", ":")).encode())
    for name in sorted(tensors):
        h.update(name.encode())
        h.update(tensors[name].tobytes())
    return h.hexdigest()[:16]


def export(model: models.Autoencoder, encoder: bool = False) -> WebModel:
    """The model's decoder (plus its encoder when asked) as one safetensors blob with its spec: float16 when that
    loses nothing (every weight is a float16 value), else float32."""
    c = model.config
    w = _Writer()
    spec: dict = {"format": FORMAT, "latent_dim": c.latent_dim, "input_shape": list(c.input_shape),
                  "label": c.label}
    was_training = model.training
    model.eval()
    try:
        z = torch.zeros(1, c.latent_dim)
        spec["decoder"] = [*_net(model.decoder, "decoder", w, z, "decoder"), {"op": "sigmoid", "shape": list(c.input_shape)}]
        if encoder:
            x = torch.zeros(1, *c.input_shape)
            ops = _net(model.encoder, "encoder", w, x, "encoder")
            for op in _posterior_tail(model):
                ops.append({**op, "shape": [c.latent_dim]})
            if ops[-1]["shape"] != [c.latent_dim]:
                raise WebExportError(f"encoder ends with shape {ops[-1]['shape']}, not the code size {c.latent_dim}.")
            spec["encoder"] = ops
    finally:
        model.train(was_training)
    tensors = _halved(w.tensors)
    digest = _content_hash(spec, tensors)
    blob = _safetensors(tensors, {META_SPEC: json.dumps(spec, separators=(",", ":")), META_HASH: digest})
    return WebModel(digest, blob, spec)


def _halved(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The tensors as float16 if that is exact for every one of them (the browser widens them back), else as they are."""
    half = {k: a.astype(np.float16) for k, a in tensors.items()}
    exact = all(np.array_equal(h.astype(np.float32), a) for h, a in zip(half.values(), tensors.values()))
    return half if exact else tensors


DTYPES = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16"}


def _safetensors(tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> bytes:
    """A .safetensors file with a byte-for-byte reproducible layout (sorted names and keys).

    safetensors' own writer orders the header differently from call to call; the same model must give the
    same bytes, or the browser's element cache (keyed by the message's hash) would miss on every rerun.
    """
    header: dict = {"__metadata__": metadata}
    offset = 0
    for name in sorted(tensors):
        a = tensors[name]
        header[name] = {"dtype": DTYPES[a.dtype], "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    head = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)  # the data starts 8-byte aligned, as safetensors' own files do
    return b"".join([len(head).to_bytes(8, "little"), head, *(tensors[n].tobytes() for n in sorted(tensors))])


def read(blob: bytes) -> tuple[dict, str, dict[str, np.ndarray]]:
    """(spec, hash, tensors) from a blob made by export()."""
    (n,) = np.frombuffer(blob[:8], "<u8")
    meta = json.loads(blob[8:8 + int(n)]).get("__metadata__") or {}
    if META_SPEC not in meta:
        raise WebExportError("not an aeviz web-model blob (no spec in its metadata)")
    return json.loads(meta[META_SPEC]), meta.get(META_HASH, ""), load_numpy(blob)


_exported: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def exported(model: models.Autoencoder, encoder: bool = False) -> WebModel:
    """export(), remembered per model until its weights change (torch bumps a tensor's _version on every
    in-place write: optimiser steps, load_state_dict), so a page can call it on every rerun."""
    version = tuple(p._version for p in model.parameters())
    cached = _exported.setdefault(model, {})
    hit = cached.get(encoder)
    if hit is None or hit[0] != version:
        cached[encoder] = hit = (version, export(model, encoder))
    return hit[1]
