"""Comparing models on the same images: the metrics table, presets and the shareable URL state."""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch

from .. import analysis
from ..config import NOISES
from ..data import Dataset
from ..models import Autoencoder

MAX_MODELS = 4
LOWER, HIGHER = "lower", "higher"


# --- metrics ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Metric:
    """One row of the table: its label, which direction is better (None: no winner) and its number format."""

    label: str
    better: str | None
    fmt: str


METRICS = {
    "params": Metric("parameters", LOWER, "{:,.0f}"),
    "latent": Metric("latent size", None, "{:.0f}"),
    "mse": Metric("test MSE", LOWER, "{:.4f}"),
    "psnr": Metric("PSNR (dB)", HIGHER, "{:.2f}"),
    "nelbo": Metric("negative ELBO (nats, VAEs)", LOWER, "{:.1f}"),
    "denoise_psnr": Metric("denoising PSNR (dB)", HIGHER, "{:.2f}"),
    "knn": Metric("k-NN accuracy of the codes", HIGHER, "{:.1%}"),
    "train_seconds": Metric("training time (s)", LOWER, "{:,.1f}"),
}


def comparable(a: Dataset, b: Dataset) -> bool:
    """True when two datasets hold the same test samples (e.g. 'mnist' and its row-sequence view 'mnist-rows')."""
    if a.name == b.name:
        return True
    xa, xb = a.x_test.reshape(len(a.x_test), -1), b.x_test.reshape(len(b.x_test), -1)
    return xa.shape == xb.shape and torch.equal(xa, xb)


def train_seconds(model: Autoencoder) -> float | None:
    """Training time from the checkpoint's metrics, else from the training history (dict or History)."""
    metrics = getattr(model, "metrics", None) or {}
    if metrics.get("train_seconds") is not None:
        return float(metrics["train_seconds"])
    history = getattr(model, "history", None)
    seconds = history.get("seconds") if isinstance(history, dict) else getattr(history, "seconds", None)
    return float(seconds) if seconds else None


def summary(model: Autoencoder, card: dict[str, float]) -> dict[str, float | None]:
    """The noise-free rows of the table for one model, read from its model card (aeviz.zoo.model_card on the
    compared test set): the table shows the figures every other view shows."""
    mse = card["test_mse"]
    return {
        "params": float(card["params"]),
        "latent": float(model.config.latent_dim),
        "mse": float(mse),
        "psnr": float("inf") if mse == 0 else float(10 * math.log10(1.0 / mse)),  # all samples have the same size
        "nelbo": card.get("nelbo"),
        "knn": card.get("knn_acc"),
        "train_seconds": train_seconds(model),
    }


def denoising_psnr(model: Autoencoder, x: torch.Tensor, x_noisy: torch.Tensor) -> float:
    """PSNR of the model's output for the noisy x against the clean x."""
    return analysis.psnr(x, analysis.reconstruct(model, x_noisy).reshape(x.shape))


def best(values: dict[str, float | None], better: str | None) -> list[str]:
    """Names holding the best value (ties share it); none when fewer than two models have a value or all tie."""
    known = {k: v for k, v in values.items() if v is not None and math.isfinite(v)}
    if better is None or len(known) < 2:
        return []
    top = min(known.values()) if better == LOWER else max(known.values())
    winners = [k for k, v in known.items() if math.isclose(v, top, rel_tol=1e-9, abs_tol=1e-12)]
    return winners if len(winners) < len(known) else []


def table(rows: dict[str, dict[str, float | None]]) -> pd.DataFrame:
    """Metrics (rows, labelled with their direction) by model (columns), plus a 'best' column naming the winners.

    rows maps a METRICS key to {model name: value or None}; rows with no value at all are left out.
    """
    records, index = [], []
    for key, values in rows.items():
        if all(v is None for v in values.values()):
            continue
        index.append(row_label(key))
        records.append({**{k: (np.nan if v is None else v) for k, v in values.items()},
                        "best": ", ".join(best(values, METRICS[key].better))})
    return pd.DataFrame.from_records(records, index=index)


def row_label(key: str) -> str:
    """A metric's row label with an arrow saying which direction is better."""
    m = METRICS[key]
    return m.label + {LOWER: " ↓", HIGHER: " ↑"}.get(m.better, "")


# --- presets ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class State:
    """Everything a comparison link holds."""

    models: tuple[str, ...] = ()
    noise: str = "gaussian"  # one of config.NOISES
    level: float = 0.0  # sigma for gaussian, fraction of pixels otherwise; 0 means clean images
    seed: int = 0  # picks the images and draws the noise and the prior samples
    pair: tuple[int, int] = (0, 1)  # test-set indices of the interpolation's two ends
    steps: int = 8  # images along the interpolation
    interp: str = "linear"  # linear (lerp) or spherical (slerp)
    cls: int | None = None  # the class highlighted in every latent map
    proj: str = "pca"  # map of codes with more than 2 dimensions: pca or umap (precomputed for pretrained models)


@dataclass(frozen=True)
class Preset:
    """A classic comparison: the models and the settings that make its point."""

    title: str
    models: tuple[str, ...]
    why: str
    noise: str = "gaussian"
    level: float = 0.0


PRESETS = (
    Preset("AE vs VAE at latent 2", ("ae-mlp-z2", "vae-mlp-z2"),
           "The VAE's KL term packs the codes into a round cloud near the origin, so random codes decode to digits."),
    Preset("The β ladder", ("vae-mlp-z2-b0.5", "vae-mlp-z2", "vae-mlp-z2-b4", "vae-mlp-z2-b10"),
           "A larger β weighs the KL term more, pulling the codes towards N(0, I): compare how tightly each map "
           "packs them, and what that costs in test MSE."),
    Preset("MLP vs convolutional", ("ae-mlp-z16", "ae-conv-z16", "vae-mlp-z16", "vae-conv-z16"),
           "Convolutions share weights across the image, so they reconstruct strokes with fewer parameters."),
    Preset("Vanilla vs denoising vs contractive under noise", ("ae-mlp-z16", "dae-mlp-z16", "cae-mlp-z16"),
           "Only the denoiser was trained to undo noise; watch its denoising PSNR at σ = 0.5.", "gaussian", 0.5),
)


# --- the beta ladder -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Rung:
    """One VAE of a ladder that varies only beta: its test KL (nats per image) and test MSE."""

    beta: float
    kl: float
    mse: float


def ladder_rung(config, metrics: dict, history: dict) -> Rung:
    """A VAE's rung from its checkpoint: `aeviz train` stores the test KL as a metric; the zoo's cards do not, and
    their training history ends with it."""
    kl = metrics.get("test_kl")
    if kl is None:
        kl = (history.get("test", {}).get("kl") or [math.nan])[-1]
    return Rung(float(config.beta), float(kl), float(metrics.get("test_mse", math.nan)))


RISE = 0.05  # test MSE this much above the best of the smaller betas is a visible change in the images


def beta_reading(rungs: list[Rung]) -> str:
    """What the numbers of a beta ladder show, in two sentences ("" when a number is missing)."""
    rungs = sorted(rungs, key=lambda r: r.beta)
    if not rungs or any(math.isnan(v) for r in rungs for v in (r.kl, r.mse)):
        return ""
    betas, kls, mses = [f"{r.beta:g}" for r in rungs], [r.kl for r in rungs], [r.mse for r in rungs]
    if all(a > b for a, b in zip(kls, kls[1:])):
        kl = (f"The KL term falls from {kls[0]:.1f} to {kls[-1]:.1f} nats per image as β grows from {betas[0]} to "
              f"{betas[-1]}: the codes are packed ever closer to N(0, I).")
    else:
        kl = f"The KL term at β = {', '.join(betas)}: {', '.join(f'{v:.1f}' for v in kls)} nats per image."
    jump = next((k for k in range(1, len(rungs)) if mses[k] > (1 + RISE) * min(mses[:k])), None)
    if jump is None:
        mse = (f"The images barely change: test MSE stays between {min(mses):.4f} and {max(mses):.4f} "
               "on every rung.")
    elif jump == 1:
        mse = f"Test MSE rises from {mses[0]:.4f} at β = {betas[0]} to {mses[1]:.4f} at β = {betas[1]}."
    else:
        mse = (f"The images barely change until β = {betas[jump]}: test MSE stays between {min(mses[:jump]):.4f} "
               f"and {max(mses[:jump]):.4f} for smaller β, then rises to {mses[jump]:.4f}.")
    return f"{kl} {mse}"


def apply_preset(preset: Preset, state: State, available) -> tuple[State, list[str]]:
    """The state a preset asks for, keeping only models that exist here; also returns the missing names."""
    models = tuple(m for m in preset.models if m in available)
    missing = [m for m in preset.models if m not in available]
    return replace(state, models=models, noise=preset.noise, level=preset.level, cls=None), missing


def matching_preset(state: State) -> Preset | None:
    """The preset whose models and noise a state shows, if any."""
    for p in PRESETS:
        if set(p.models) == set(state.models) and (p.noise, p.level) == (state.noise, state.level):
            return p
    return None


def default_state(available) -> State:
    """The first preset with at least two models here, else the first (at most two) models."""
    for p in PRESETS:
        state, _ = apply_preset(p, State(), available)
        if len(state.models) >= 2:
            return state
    return State(models=tuple(list(available)[:2]))


# --- URL state codec -------------------------------------------------------------------------------------------

KEYS = ("models", "noise", "level", "seed", "pair", "steps", "interp", "cls", "proj")
STEPS = (3, 16)
INTERPS = ("linear", "spherical")
PROJS = ("pca", "umap")


def to_params(state: State) -> dict[str, str]:
    """Query parameters for a state: one short string each, readable in the address bar."""
    params = {"models": ",".join(state.models), "noise": state.noise, "level": f"{state.level:g}",
              "seed": str(state.seed), "pair": f"{state.pair[0]},{state.pair[1]}", "steps": str(state.steps),
              "interp": state.interp, "proj": state.proj}
    if state.cls is not None:
        params["cls"] = str(state.cls)
    return params


@dataclass
class Parsed:
    """A state read from a link, the model names it gave that do not exist, and notes for what was ignored."""

    state: State
    unknown: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _int(text: str) -> int:
    value = int(text.strip())
    if value < 0:
        raise ValueError(text)
    return value


def _field(parsed: Parsed, params: dict, key: str, convert, ok, what: str) -> None:
    """Set one field from params[key] when it converts and passes ok; otherwise keep the default and say so."""
    if key not in params:
        return
    raw = params[key]
    try:
        value = convert(raw)
    except (ValueError, TypeError, OverflowError):
        value = None
    if value is None or not ok(value):
        default = getattr(parsed.state, key)
        parsed.notes.append(f"The link's {key} '{raw}' is not {what}; using {default if default is not None else 'none'}.")
        return
    parsed.state = replace(parsed.state, **{key: value})


def _level(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return round(value, 2)


def _pair(text: str) -> tuple[int, int]:
    a, b = text.split(",")
    return _int(a), _int(b)


def from_params(params: dict, available) -> Parsed:
    """Read a state from query parameters; unknown models and malformed values fall back with a note each."""
    params = {k: (v[-1] if isinstance(v, list) else v) for k, v in params.items() if k in KEYS and v is not None}
    available = list(available)
    parsed = Parsed(State())
    names = list(dict.fromkeys(n.strip() for n in params.get("models", "").split(",") if n.strip()))
    parsed.unknown = [n for n in names if n not in available]
    models = [n for n in names if n in available]
    if parsed.unknown:
        parsed.notes.append(f"The link names a model that does not exist here: {', '.join(parsed.unknown)}; "
                            "showing the others.")
    if len(models) > MAX_MODELS:
        parsed.notes.append(f"The link names {len(models)} models; the page compares at most {MAX_MODELS}, "
                            f"so it shows the first {MAX_MODELS}.")
        models = models[:MAX_MODELS]
    if not models:
        models = list(default_state(available).models)
        if "models" in params:
            parsed.notes.append("None of the link's models exists here, so the page shows its default comparison.")
    parsed.state = replace(parsed.state, models=tuple(models))
    _field(parsed, params, "noise", str, lambda v: v in NOISES, f"one of {', '.join(NOISES)}")
    _field(parsed, params, "level", _level, lambda v: 0.0 <= v <= 1.0, "a noise level between 0 and 1")
    _field(parsed, params, "seed", _int, lambda v: v <= 10**6, "a seed between 0 and 1000000")
    _field(parsed, params, "pair", _pair, lambda v: v[0] != v[1], "two different test-image numbers like 3,17")
    _field(parsed, params, "steps", _int, lambda v: STEPS[0] <= v <= STEPS[1], f"a step count from {STEPS[0]} to {STEPS[1]}")
    _field(parsed, params, "interp", str, lambda v: v in INTERPS, "linear or spherical")
    _field(parsed, params, "cls", _int, lambda v: v < 1000, "a class number")
    _field(parsed, params, "proj", str, lambda v: v in PROJS, "pca or umap")
    return parsed


def fit(state: State, n_test: int, n_classes: int) -> tuple[State, list[str]]:
    """Clamp what depends on the data (image numbers, class) to the compared dataset, with a note for each change."""
    notes = []
    if max(state.pair) >= n_test:
        notes.append(f"The interpolation images {state.pair[0]},{state.pair[1]} are beyond the {n_test} test images; "
                     "using 0,1.")
        state = replace(state, pair=(0, 1))
    if state.cls is not None and state.cls >= n_classes:
        notes.append(f"Class {state.cls} does not exist in this dataset; no class is highlighted.")
        state = replace(state, cls=None)
    return state, notes


# --- what the page shows -------------------------------------------------------------------------------------

def picks(n_test: int, n: int, seed: int) -> np.ndarray:
    """n test-set indices drawn by seed: every model sees the same images."""
    return np.sort(np.random.default_rng(seed).choice(n_test, size=min(n, n_test), replace=False))


def interpolation(model: Autoencoder, data: Dataset, pair: tuple[int, int], steps: int, method: str) -> np.ndarray:
    """Decoded images along the path between two test images' codes, shaped like data's samples."""
    z = analysis.embed(model, data.x_test[list(pair)])
    x_hat = analysis.decode(model, analysis.interpolate(z[0], z[1], steps, method))
    return x_hat.reshape(steps, *data.sample_shape)


def prior_samples(model: Autoencoder, n: int, seed: int, shape) -> np.ndarray:
    """n decoded draws from N(0, I) with a fixed seed (VAEs only)."""
    gen = torch.Generator().manual_seed(seed)
    return model.sample(n, generator=gen).numpy().reshape(n, *shape)
