"""Checkpoints: one .safetensors file, config and metrics as JSON metadata; the pretrained registry."""
from __future__ import annotations

import json
import os
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.numpy import load_file as load_numpy
from safetensors.torch import load_file, save_file

from .config import ConfigError, ModelConfig, TrainConfig, from_dict, to_json
from .models import Autoencoder, build

FORMAT = "aeviz/1"
MAX_BYTES = 64 * 1024 * 1024  # no aeviz model comes near this; larger uploads are refused unread
PRETRAINED = Path(os.environ.get("AEVIZ_PRETRAINED", Path(__file__).resolve().parent.parent / "pretrained"))


class CheckpointError(ValueError):
    """A file is not a usable aeviz checkpoint; the message names the file and what is wrong."""


def _metadata(model: Autoencoder, metrics: dict | None, history: dict | None,
              train_config: TrainConfig | None = None, preprocessing: dict | None = None) -> dict[str, str]:
    meta = {"format": FORMAT, "config": to_json(model.config), "metrics": json.dumps(metrics or {})}
    # A model that was loaded keeps what its file said: saving it again (a download, the student's workspace)
    # must not drop how it was trained or what its data were.
    train_config = train_config if train_config is not None else getattr(model, "train_config", None)
    preprocessing = preprocessing if preprocessing is not None else getattr(model, "preprocessing", None)
    if history:
        meta["history"] = json.dumps(history)
    if train_config is not None:  # how it was trained, so `aeviz export` can train it again
        meta["train_config"] = to_json(train_config)
    if preprocessing:  # where the data came from and the scaler (JSON only), so the model can be used again
        meta["preprocessing"] = json.dumps(preprocessing)
    return meta


def _tensors(model: Autoencoder, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    def cast(v):
        return v.to(dtype) if dtype is not None and v.is_floating_point() else v

    return {k: cast(v.detach().cpu()).contiguous() for k, v in model.state_dict().items()}  # from CPU tensors


def save(model: Autoencoder, path: str | Path, metrics: dict | None = None, history: dict | None = None,
         dtype: torch.dtype | None = None, train_config: TrainConfig | None = None,
         preprocessing: dict | None = None) -> Path:
    """Write the model's weights, config and metrics to one .safetensors file.

    dtype=torch.float16 halves the file (the pretrained zoo does this); load() upcasts to the model's float32.
    train_config and preprocessing (a JSON-able dict, e.g. a user dataset's extras["preprocessing"]) are stored
    when given; load() puts them on the model as .train_config (None when absent) and .preprocessing ({}).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(_tensors(model, dtype), str(path),
              metadata=_metadata(model, metrics, history, train_config, preprocessing))
    return path


def to_bytes(model: Autoencoder, metrics: dict | None = None, history: dict | None = None,
             train_config: TrainConfig | None = None, preprocessing: dict | None = None) -> bytes:
    """The same checkpoint as save(), in memory (for download buttons)."""
    from safetensors.torch import save

    return save(_tensors(model), metadata=_metadata(model, metrics, history, train_config, preprocessing))


def _sniff(path: Path, name: str) -> None:
    """Refuse, with a reason, files that cannot be safetensors before the parser sees them."""
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise CheckpointError(f"{name} is {size / 1e6:.0f} MB; aeviz checkpoints are at most {MAX_BYTES // 2**20} MB.")
    with path.open("rb") as f:
        head = f.read(9)
    # A pickle starts with 0x80 and a zip with "PK", but so can a header length; safetensors' JSON starts with "{".
    if (head[:1] == b"\x80" or head[:2] == b"PK") and head[8:9] != b"{":
        raise CheckpointError(f"{name} looks like a pickled PyTorch file; aeviz only reads .safetensors "
                              f"checkpoints and never unpickles anything.")
    if len(head) < 8:
        raise CheckpointError(f"{name} is too short to be a .safetensors checkpoint ({size} bytes).")
    (header_len,) = struct.unpack("<Q", head[:8])
    if header_len > size - 8:
        raise CheckpointError(f"{name} is truncated or not a .safetensors file: its header claims "
                              f"{header_len} bytes but only {size - 8} follow.")
    _check_length(path, name, header_len, size)


def _check_length(path: Path, name: str, header_len: int, size: int) -> None:
    """Call a file truncated when its tensors end past its end (safetensors' own message is cryptic)."""
    with path.open("rb") as f:
        f.seek(8)
        try:
            header = json.loads(f.read(header_len))
            end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            return  # not our problem to describe: safe_open reports a malformed header
    need = 8 + header_len + end
    if need > size:
        raise CheckpointError(f"{name} is truncated: its tensors need {need} bytes but the file has {size}.")


def read_metadata(path: str | Path, name: str | None = None) -> tuple[ModelConfig, dict, dict]:
    """(config, metrics, history) from a checkpoint's metadata, without reading the weights."""
    path = Path(path)
    name = name or path.name
    if not path.is_file():
        raise CheckpointError(f"{name}: no such file.")
    _sniff(path, name)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{name} is not a valid .safetensors file ({err}).") from err
    if meta.get("format") != FORMAT or "config" not in meta:
        raise CheckpointError(f"{name} is a .safetensors file but not an aeviz checkpoint (no aeviz config in it).")
    try:
        config = from_dict(ModelConfig, json.loads(meta["config"]))
        metrics = json.loads(meta.get("metrics", "{}"))
        history = json.loads(meta.get("history", "{}"))
    except (json.JSONDecodeError, TypeError) as err:
        raise CheckpointError(f"{name} has unreadable aeviz metadata ({err}).") from err
    except ConfigError as err:
        raise CheckpointError(f"{name} has an invalid config: {err}") from err
    return config, metrics, history


def read_extras(path: str | Path, name: str | None = None) -> tuple[TrainConfig | None, dict]:
    """(train config or None, preprocessing dict or {}) from a checkpoint's metadata; older files have neither."""
    path = Path(path)
    name = name or path.name
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tc = from_dict(TrainConfig, json.loads(meta["train_config"])) if "train_config" in meta else None
        return tc, json.loads(meta.get("preprocessing", "{}"))
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{name} is not a valid .safetensors file ({err}).") from err
    except (json.JSONDecodeError, TypeError) as err:
        raise CheckpointError(f"{name} has unreadable aeviz metadata ({err}).") from err
    except ConfigError as err:
        raise CheckpointError(f"{name} has an invalid train config: {err}") from err


def _fit(model: Autoencoder, tensors: dict[str, torch.Tensor], name: str) -> None:
    want = model.state_dict()
    missing = sorted(set(want) - set(tensors))
    extra = sorted(set(tensors) - set(want))
    wrong = [f"{k} {tuple(tensors[k].shape)} instead of {tuple(v.shape)}"
             for k, v in want.items() if k in tensors and tensors[k].shape != v.shape]
    problems = [f"missing {', '.join(missing[:3])}" if missing else "",
                f"unexpected {', '.join(extra[:3])}" if extra else "",
                f"wrong shape: {'; '.join(wrong[:2])}" if wrong else ""]
    problems = [p for p in problems if p]
    if problems:
        raise CheckpointError(f"{name}: its tensors do not fit its config ({'; '.join(problems)}).")
    model.load_state_dict({k: tensors[k].to(v.dtype) for k, v in want.items()}, assign=True)


def _built(config: ModelConfig, tensors: dict[str, torch.Tensor], name: str) -> Autoencoder:
    """The model for config holding tensors. Its layers are made on the meta device and take the loaded tensors
    as they are: a model built for real draws random initial weights first (14 ms for a zoo MLP, on every first
    visit of a model) only to overwrite them."""
    with torch.device("meta"):
        model = build(config)
    _fit(model, tensors, name)
    if any(t.is_meta for t in (*model.parameters(), *model.buffers())):  # something the file does not hold
        model = build(config)
        _fit(model, tensors, name)
    return model


def load(source: str | Path | bytes, name: str | None = None) -> Autoencoder:
    """A model in eval mode from a checkpoint path or its bytes; never unpickles anything.

    The model carries .config, .metrics and .history (the metadata stored with it).
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _load_bytes(bytes(source), name or "the uploaded file")
    path = Path(source)
    name = name or path.name
    config, metrics, history = read_metadata(path, name)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{name} is not a valid .safetensors file ({err}).") from err
    model = _built(config, tensors, name)
    model.metrics, model.history = metrics, history
    model.train_config, model.preprocessing = read_extras(path, name)
    return model.eval()


def _load_bytes(data: bytes, name: str) -> Autoencoder:
    if len(data) > MAX_BYTES:
        raise CheckpointError(f"{name} is {len(data) / 1e6:.0f} MB; aeviz checkpoints are at most {MAX_BYTES // 2**20} MB.")
    with tempfile.TemporaryDirectory() as tmp:  # safe_open reads metadata from files only
        path = Path(tmp) / "upload.safetensors"
        path.write_bytes(data)
        return load(path, name)


@dataclass(frozen=True)
class Card:
    """A pretrained model's name, file and model-card figures."""

    name: str
    path: Path
    config: ModelConfig
    metrics: dict

    @property
    def views_path(self) -> Path:
        """Precomputed 2-D projections stored beside the weights."""
        return self.path.with_suffix(".views.safetensors")


def load_views(card: Card) -> dict[str, np.ndarray]:
    """A pretrained model's precomputed views (pca, umap; snapshots, snapshot_epochs); {} when it has none."""
    path = card.views_path
    if not path.is_file():
        return {}
    _sniff(path, path.name)
    try:
        return load_numpy(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path.name} is not a valid .safetensors file ({err}).") from err


def pretrained(folder: Path | None = None) -> list[Card]:
    """Every checkpoint in pretrained/, sorted by name (metadata only, fast)."""
    folder = Path(folder or PRETRAINED)
    cards = []
    for path in sorted(folder.glob("*.safetensors")):
        if path.name.endswith(".views.safetensors"):
            continue
        config, metrics, _ = read_metadata(path)
        cards.append(Card(path.stem, path, config, metrics))
    return cards
