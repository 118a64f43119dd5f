"""A plain torch training loop with a callback, seeding, a NaN and divergence guard, and a history; DDP when
torchrun starts it."""
from __future__ import annotations

import contextlib
import copy
import os
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DistributedSampler

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
    device = next(model.parameters()).device
    sums: dict[str, float] = defaultdict(float)
    for xb in x.split(batch_size):
        with torch.set_grad_enabled(model.needs_input_grad):
            terms = model.objective(xb.to(device))
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
          callback: Callback | None = None, device: str | torch.device | None = None) -> tuple[Autoencoder, History]:
    """Train a fresh model for mc with tc on device (default: the CPU); returns (model in eval mode on the CPU,
    history). Inside a torch.distributed process group (torchrun, see `distributed`) every process trains its
    share of each batch under DistributedDataParallel; the history holds the all-reduced losses."""
    data = data or load(mc.dataset)
    check_shape(mc, data)
    x = training_set(data, tc)
    gen = seed_everything(tc.seed)
    model = build(mc).train()
    par = Parallel(model, tc, device)
    x = x.to(par.device)
    opt = optimizer(model, tc)
    hist = History()
    steps_per_epoch = par.steps_per_epoch(len(x))
    total, step = tc.epochs * steps_per_epoch, 0
    safe = copy.deepcopy(model.state_dict())  # last weights whose every loss was finite
    start = time.perf_counter()
    threads.apply()  # this thread's pool: each Streamlit rerun and training thread starts afresh
    for epoch in range(1, tc.epochs + 1):
        sums: dict[str, float] = defaultdict(float)
        seen = 0
        for idx in par.batches(len(x), gen, epoch):
            terms = par.objective(x[idx])
            loss = terms["loss"]
            logged = par.mean(terms)  # the same on every process, so they all stop together
            if not torch.isfinite(logged["loss"]):
                model.load_state_dict(safe)
                hist.status = "diverged"
                hist.message = (f"Training stopped at epoch {epoch}, step {step + 1}: the loss became "
                                f"{logged['loss'].item()} (try a smaller learning rate); the weights from the last "
                                f"finite epoch are kept.")
                return _finish(model, hist, start)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            vals = {k: v.item() for k, v in logged.items()}
            hist.step_loss.append(vals["loss"])
            n = len(idx) * par.world  # the global batch
            hist.samples += n
            seen += n
            for k, v in vals.items():
                sums[k] += v * n
            if par.stop(callback and callback(Progress(epoch, step, total, vals, False, model, hist))):
                return _stopped(model, hist, start, epoch)
        hist.epochs.append(epoch)
        for k, v in sums.items():
            hist.train[k].append(v / seen)
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
        if par.stop(callback and callback(Progress(epoch, step, total, vals, True, model, hist)), epoch_end=True):
            return _stopped(model, hist, start, epoch)
    hist.status, hist.message = "finished", f"Trained {tc.epochs} epochs in {time.perf_counter() - start:.1f} s."
    return _finish(model, hist, start)


def _stopped(model, hist, start, epoch):
    hist.status = "stopped"
    hist.message = f"Stopped at epoch {epoch}; the weights trained so far are kept."
    return _finish(model, hist, start)


def _finish(model, hist, start):
    hist.seconds = time.perf_counter() - start
    return model.cpu().eval(), hist


# --- devices, and several processes under torchrun ----------------------------------------------------------

DEVICES = ("auto", "cpu", "cuda")


def pick_device(name: str | torch.device | None = "auto") -> torch.device:
    """'auto' (a GPU when torch sees one, else the CPU), 'cpu' or 'cuda'; None means the CPU.
    Under torchrun each process takes the GPU of its LOCAL_RANK."""
    if isinstance(name, torch.device):
        return name
    name = name or "cpu"
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda needs a GPU, and this torch sees none (torch.cuda.is_available() is "
                              "False); use --device auto or cpu.")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
    if name != "cpu":
        raise ConfigError(f"Unknown device '{name}'; choose auto, cpu or cuda.")
    return torch.device("cpu")


@dataclass(frozen=True)
class Group:
    """This process's place among the processes that train one model (one process, rank 0, outside a group)."""

    rank: int = 0
    world: int = 1
    backend: str = ""

    @property
    def main(self) -> bool:
        """Rank 0 prints and writes the checkpoint."""
        return self.rank == 0


def group() -> Group:
    """The torch.distributed process group this process has joined, if any."""
    if dist.is_available() and dist.is_initialized():
        return Group(dist.get_rank(), dist.get_world_size(), str(dist.get_backend()))
    return Group()


def launched_world() -> int:
    """How many processes torchrun started (its WORLD_SIZE); 1 when torchrun did not start this one."""
    value = os.environ.get("WORLD_SIZE", "1").strip()
    return int(value) if value.isdigit() else 1


@contextlib.contextmanager
def distributed(device: str | torch.device | None = "auto"):
    """Yields (Group, device). Under torchrun it joins the process group that WORLD_SIZE, RANK and MASTER_ADDR
    describe (gloo on the CPU, nccl on GPUs) and leaves it at the end; otherwise it joins nothing."""
    dev = pick_device(device)
    if launched_world() <= 1 or dist.is_initialized():
        yield group(), dev
        return
    if dev.type == "cuda":
        local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        if local > torch.cuda.device_count():
            raise ConfigError(f"{local} processes on this machine but {torch.cuda.device_count()} GPU(s): nccl needs "
                              f"one GPU per process; start at most {torch.cuda.device_count()} or use --device cpu.")
        torch.cuda.set_device(dev)
    dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    try:
        yield group(), dev
        # every rank leaves together: a rank that tore its group down and exited while rank 0 still wrote the
        # checkpoint aborted at exit now and then ("terminate called without an active exception", gloo's threads)
        dist.barrier()
    finally:
        dist.destroy_process_group()


class _Objective(nn.Module):
    """DDP synchronises gradients through forward(); an autoencoder trains through objective()."""

    def __init__(self, model: Autoencoder):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.model.objective(x)


class Parallel:
    """Where one training runs: a device, and inside a process group DistributedDataParallel, a DistributedSampler
    (each process takes an equal share of every global batch of tc.batch_size) and all-reduced losses."""

    def __init__(self, model: Autoencoder, tc: TrainConfig, device: str | torch.device | None = None):
        self.tc, self.group = tc, group()
        self.world, self.device = self.group.world, pick_device(device)
        model.to(self.device)
        self.objective = model.objective
        self.sampler: DistributedSampler | None = None
        self.asked = False  # a callback asked to stop during this epoch (DDP: it stops at the epoch's end)
        if self.world == 1:
            return
        if tc.batch_size % self.world:
            raise ConfigError(f"The batch size {tc.batch_size} does not split evenly across {self.world} processes; "
                              f"choose a multiple of {self.world}.")
        self.local_batch = tc.batch_size // self.world
        torch.manual_seed(tc.seed + self.group.rank)  # own noise and VAE draws; the weights already start equal
        ids = [self.device] if self.device.type == "cuda" else None
        self.objective = nn.parallel.DistributedDataParallel(_Objective(model), device_ids=ids)

    def steps_per_epoch(self, n: int) -> int:
        """Optimiser steps in one epoch over n samples (the same on every process)."""
        if self.world == 1:
            return -(-n // self.tc.batch_size)
        return -(-(n // self.world) // self.local_batch)

    def batches(self, n: int, gen: torch.Generator, epoch: int):
        """Index batches of one epoch: a seeded permutation, or this process's share of it under DDP. The sampler
        drops the last n % world samples, so that every process takes the same number of steps."""
        if self.world == 1:
            return torch.randperm(n, generator=gen).split(self.tc.batch_size)
        if self.sampler is None:
            self.sampler = DistributedSampler(range(n), self.world, self.group.rank, shuffle=True, seed=self.tc.seed,
                                              drop_last=True)
        self.sampler.set_epoch(epoch)
        return torch.tensor(list(self.sampler)).split(self.local_batch)

    def mean(self, terms: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The loss terms averaged over the processes (detached), for the log and the NaN guard."""
        if self.world == 1:
            return terms
        names = list(terms)
        values = torch.stack([terms[k].detach().float() for k in names])
        dist.all_reduce(values)  # a sum: gloo has no average
        return dict(zip(names, values / self.world))

    def stop(self, asked, epoch_end: bool = False) -> bool:
        """Whether to stop now because a callback asked. One process stops at once. Under DDP every process must
        stop at the same step, and agreeing costs a collective (~1 ms on a busy 2-core machine, as much as a
        small model's step), so they agree once per epoch: a stop asked for mid-epoch ends the training at the
        end of that epoch."""
        if self.world == 1:
            return bool(asked)
        self.asked = self.asked or bool(asked)
        if not epoch_end:
            return False
        flag = torch.tensor([1.0 if self.asked else 0.0], device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())
