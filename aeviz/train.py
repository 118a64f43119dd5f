"""A plain torch training loop with a callback, seeding, a NaN and divergence guard, and a history."""
from __future__ import annotations

import copy
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from . import threads
from .config import ConfigError, ModelConfig, TrainConfig
from .data import Dataset, load
from .models import Autoencoder, build


@dataclass
class History:
    """What happened during training, per epoch (train and test means of each loss term) and per step."""

    epochs: list[int] = field(default_factory=list)
    train: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    test: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    step_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0
    samples: int = 0  # training samples processed
    status: str = "running"  # running, finished, stopped or diverged
    message: str = ""

    @property
    def samples_per_s(self) -> float:
        """Training throughput."""
        return self.samples / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict:
        """Plain JSON-able dict (per-epoch curves only)."""
        return {"epochs": self.epochs, "train": dict(self.train), "test": dict(self.test),
                "seconds": round(self.seconds, 3), "status": self.status, "message": self.message}


@dataclass
class Progress:
    """Handed to the callback after every step; return True from the callback to stop."""

    epoch: int  # 1-based
    step: int  # optimiser steps so far
    total_steps: int
    terms: dict[str, float]
    epoch_end: bool  # True once per epoch, after the test evaluation
    model: Autoencoder
    history: History


Callback = Callable[[Progress], "bool | None"]

GROWTH = 1e3  # an epoch's mean loss this many times the untrained model's (the first step's) is divergence


def readable(v: float) -> str:
    """A loss for a sentence: 4 significant digits, powers of ten written out (5.6 × 10¹⁷) when large or tiny."""
    if 1e3 <= abs(v) < 1e5:
        return f"{v:,.0f}"
    if v == 0 or not np.isfinite(v) or 1e-3 <= abs(v) < 1e3:
        return f"{v:.4g}"
    exp = int(np.floor(np.log10(abs(v))))
    mantissa = round(v / 10.0**exp, 1)
    if abs(mantissa) >= 10:
        mantissa, exp = mantissa / 10, exp + 1
    return f"{mantissa:g} × 10{str(exp).translate(str.maketrans('-0123456789', '⁻⁰¹²³⁴⁵⁶⁷⁸⁹'))}"


def diverged(first: float, loss: float) -> str | None:
    """The sentence saying training diverged when an epoch's loss is non-finite or grew GROWTH-fold, else None."""
    if np.isfinite(loss) and not (first > 0 and loss > GROWTH * first):
        return None
    return f"Training diverged: the loss grew from {readable(first)} to {readable(loss)}; try a smaller learning rate."


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch and numpy; return a generator for batch order."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    return torch.Generator().manual_seed(seed)


def training_set(data: Dataset, tc: TrainConfig) -> torch.Tensor:
    """The training samples a config asks for (only normal classes; at most max_train)."""
    x = data.x_train
    if tc.normal_classes:
        keep = torch.isin(data.y_train, torch.tensor(tc.normal_classes))
        if not keep.any():
            raise ConfigError(f"No training samples have the labels {list(tc.normal_classes)}.")
        x = x[keep]
    return x[: tc.max_train] if tc.max_train else x


@torch.no_grad()
def evaluate(model: Autoencoder, x: torch.Tensor, batch_size: int = 1000) -> dict[str, float]:
    """Mean of each loss term over x, in eval mode (no corruption, z = mu)."""
    was = model.training
    model.eval()
    sums: dict[str, float] = defaultdict(float)
    for xb in x.split(batch_size):
        with torch.set_grad_enabled(model.needs_input_grad):
            terms = model.objective(xb)
        for k, v in terms.items():
            sums[k] += v.item() * len(xb)
    model.train(was)
    return {k: v / len(x) for k, v in sums.items()}


def check_shape(mc: ModelConfig, data: Dataset) -> None:
    if tuple(mc.input_shape) != data.sample_shape:
        raise ConfigError(f"The model expects samples of shape {tuple(mc.input_shape)}, "
                          f"but '{data.name}' has {data.sample_shape}.")


def optimizer(model: Autoencoder, tc: TrainConfig) -> torch.optim.Adam:
    """Adam with tc's settings; the fused kernel, because the per-tensor loop took ~40 % of an MLP step on CPU."""
    return torch.optim.Adam(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay, fused=True)


def train(mc: ModelConfig, tc: TrainConfig = TrainConfig(), data: Dataset | None = None,
          callback: Callback | None = None) -> tuple[Autoencoder, History]:
    """Train a fresh model for mc with tc; returns (model in eval mode, history)."""
    data = data or load(mc.dataset)
    check_shape(mc, data)
    x = training_set(data, tc)
    gen = seed_everything(tc.seed)
    model = build(mc).train()
    opt = optimizer(model, tc)
    hist = History()
    steps_per_epoch = -(-len(x) // tc.batch_size)
    total, step = tc.epochs * steps_per_epoch, 0
    safe = copy.deepcopy(model.state_dict())  # last weights whose every loss was finite
    start = time.perf_counter()
    threads.apply()  # this thread's pool: each Streamlit rerun and training thread starts afresh
    for epoch in range(1, tc.epochs + 1):
        sums: dict[str, float] = defaultdict(float)
        for idx in torch.randperm(len(x), generator=gen).split(tc.batch_size):
            terms = model.objective(x[idx])
            loss = terms["loss"]
            if not torch.isfinite(loss):
                model.load_state_dict(safe)
                hist.status = "diverged"
                hist.message = (f"Training stopped at epoch {epoch}, step {step + 1}: the loss became "
                                f"{loss.item()} (try a smaller learning rate); the weights from the last "
                                f"finite epoch are kept.")
                return _finish(model, hist, start)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            vals = {k: v.item() for k, v in terms.items()}
            hist.step_loss.append(vals["loss"])
            hist.samples += len(idx)
            for k, v in vals.items():
                sums[k] += v * len(idx)
            if callback and callback(Progress(epoch, step, total, vals, False, model, hist)):
                return _stopped(model, hist, start, epoch)
        hist.epochs.append(epoch)
        for k, v in sums.items():
            hist.train[k].append(v / len(x))
        message = diverged(hist.step_loss[0], hist.train["loss"][-1])
        if message:  # keep the weights of the last epoch before the loss blew up
            model.load_state_dict(safe)
            hist.status, hist.message = "diverged", message
            return _finish(model, hist, start)
        if tc.eval_every and (epoch % tc.eval_every == 0 or epoch == tc.epochs):
            for k, v in evaluate(model, data.x_test).items():
                hist.test[k].append(v)
        safe = copy.deepcopy(model.state_dict())
        hist.seconds = time.perf_counter() - start
        if callback and callback(Progress(epoch, step, total, vals, True, model, hist)):
            return _stopped(model, hist, start, epoch)
    hist.status, hist.message = "finished", f"Trained {tc.epochs} epochs in {time.perf_counter() - start:.1f} s."
    return _finish(model, hist, start)


def _stopped(model, hist, start, epoch):
    hist.status = "stopped"
    hist.message = f"Stopped at epoch {epoch}; the weights trained so far are kept."
    return _finish(model, hist, start)


def _finish(model, hist, start):
    hist.seconds = time.perf_counter() - start
    return model.eval(), hist
