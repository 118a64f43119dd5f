"""The pretrained zoo: one recipe per model, and build_zoo(), which retrains them all deterministically."""
from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.numpy import save_file

from . import cards, config_for, threads
from .config import ConfigError, ModelConfig, TrainConfig
from .data import load as load_data
from .io import PRETRAINED, load, save
from .train import train

# Fixed, so the zoo is byte-reproducible on one machine (float summation order depends on threads). One thread:
# on the shared 2-core box (ae-mlp-z16) it trained 17,100 samples/s against 14,100-14,400 for two at load ~1,
# and 1,750-2,500 against 100 at load ~11 with spinning OpenMP pools; it also leaves a core to the app.
THREADS = 1


@dataclass
class Recipe:
    """One zoo entry: model overrides for config_for, training settings, and the vanilla model it is compared with."""

    name: str
    model: dict = field(default_factory=dict)
    train: TrainConfig = TrainConfig()
    compare: str = ""  # a denoiser's same-size plain AE, built first

    def config(self) -> ModelConfig:
        """The full model config (input shape and reconstruction loss from the dataset)."""
        return config_for(self.model.get("dataset", "mnist"), **{k: v for k, v in self.model.items() if k != "dataset"})


# Tuned on this machine (see the README figures): the plain MLPs converge in 60 epochs at lr 2e-3; the denoiser
# keeps improving to ~120 epochs with smaller, gentler steps; the one-layer VAE overfits least at latent 16.
MLP = TrainConfig(epochs=60, lr=2e-3)
DENOISE = TrainConfig(epochs=150, lr=5e-4, batch_size=32)
CONTRACT = TrainConfig(epochs=40, lr=2e-3)  # the exact encoder Jacobian makes each epoch ~6x dearer
SHALLOW = TrainConfig(epochs=100, lr=2e-3)  # one layer: cheap, and slower to settle
VAE = TrainConfig(epochs=60, lr=2e-3)
VAE16 = TrainConfig(epochs=100, lr=1e-3)
CONV = TrainConfig(epochs=30, lr=2e-3)
ROWS = TrainConfig(epochs=60, lr=2e-3)
# The signal GRU sits on a plateau (it outputs the mean wave) unless steps are many and brisk (see ui/anomaly.py).
SIGNALS = TrainConfig(epochs=40, lr=3e-3, batch_size=32)

ZOO = [
    Recipe("ae-mlp-z2", {"latent_dim": 2}, MLP),
    Recipe("ae-mlp-z16", {"latent_dim": 16}, MLP),
    Recipe("dae-mlp-z16", {"latent_dim": 16, "objective": "denoising", "noise_level": 0.5}, DENOISE,
           compare="ae-mlp-z16"),
    Recipe("cae-mlp-z16", {"latent_dim": 16, "objective": "contractive", "contractive_weight": 0.1}, CONTRACT),
    # Sparse coding shows best overcomplete and shallow: 784 -> 64 ReLU units (L1) -> 784, beside its plain twin.
    Recipe("ae-mlp-shallow-z64", {"latent_dim": 64, "hidden": ()}, SHALLOW),
    Recipe("sparse-mlp-z64", {"latent_dim": 64, "hidden": (), "objective": "sparse", "sparsity_weight": 0.5}, SHALLOW),
    Recipe("vae-mlp-z2", {"latent_dim": 2, "objective": "variational"}, VAE),
    Recipe("vae-mlp-z16", {"latent_dim": 16, "objective": "variational", "hidden": (512,)}, VAE16),
    Recipe("vae-mlp-z2-b0.5", {"latent_dim": 2, "objective": "variational", "beta": 0.5}, VAE),
    Recipe("vae-mlp-z2-b4", {"latent_dim": 2, "objective": "variational", "beta": 4.0}, VAE),
    # At latent 2 the KL term is small (6.5 nats at beta 1), so beta 4 tightens the codes but barely blurs the
    # images; beta 10 shows the other end of the trade (KL 2.6 nats, posterior sigma 0.29, MSE +7 %).
    Recipe("vae-mlp-z2-b10", {"latent_dim": 2, "objective": "variational", "beta": 10.0}, VAE),
    Recipe("ae-conv-z16", {"latent_dim": 16, "arch": "conv"}, CONV),
    Recipe("vae-conv-z16", {"latent_dim": 16, "arch": "conv", "objective": "variational"}, CONV),
    Recipe("ae-rnn-rows-z16", {"dataset": "mnist-rows", "latent_dim": 16, "arch": "rnn", "recon": "bce"}, ROWS),
    Recipe("ae-rnn-signals-z8", {"dataset": "signals", "latent_dim": 8, "arch": "rnn", "hidden": (64,)}, SIGNALS),
]


def select(names: list[str] | None, out_dir: Path) -> list[Recipe]:
    """The recipes to build, in zoo order, plus any comparison model that is not on disk yet."""
    by_name = {r.name: r for r in ZOO}
    unknown = [n for n in names or [] if n not in by_name]
    if unknown:
        raise ConfigError(f"Unknown zoo entry '{unknown[0]}'; choose from {', '.join(by_name)}.")
    wanted = set(names or by_name)
    wanted |= {by_name[n].compare for n in wanted
               if by_name[n].compare and not (out_dir / f"{by_name[n].compare}.safetensors").is_file()}
    return [r for r in ZOO if r.name in wanted]


@contextlib.contextmanager
def pinned_threads(n: int = THREADS):
    """Every training and metric inside uses exactly n torch threads, whatever else is running."""
    old = os.environ.get("AEVIZ_THREADS")
    os.environ["AEVIZ_THREADS"] = str(n)  # train() applies threads.per_training(); this fixes it
    before = torch.get_num_threads()
    threads.apply(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
        if old is None:
            os.environ.pop("AEVIZ_THREADS")
        else:
            os.environ["AEVIZ_THREADS"] = old


def _round_to_half(model: torch.nn.Module) -> None:
    """Round the weights to float16 values, as shipped, so the card describes the file, not the training run."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())


def build_one(recipe: Recipe, out_dir: Path, on_epoch=None) -> Path:
    """Train one recipe and write <name>.safetensors and <name>.views.safetensors into out_dir."""
    mc, tc = recipe.config(), recipe.train
    data = load_data(mc.dataset)
    snapshots = cards.Snapshots(data.x_test) if mc.latent_dim == 2 else None

    def callback(p):
        if snapshots:
            snapshots(p)
        if p.epoch_end and on_epoch:
            on_epoch()

    model, hist = train(mc, tc, data, callback=callback)
    if hist.status != "finished":
        raise RuntimeError(f"{recipe.name}: {hist.message}")
    _round_to_half(model)
    vanilla = load(out_dir / f"{recipe.compare}.safetensors") if recipe.compare else None
    metrics = {"params": model.n_params, "train_seconds": hist.seconds, "epochs": tc.epochs, "lr": tc.lr,
               "batch_size": tc.batch_size, "seed": tc.seed, **cards.card_metrics(model, data, vanilla)}
    path = save(model, out_dir / f"{recipe.name}.safetensors", metrics, hist.to_dict(), dtype=torch.float16)
    views = cards.views(model, data) | (snapshots.arrays() if snapshots else {})
    save_file(views, str(path.with_suffix(".views.safetensors")))
    return path


def build_zoo(out_dir: Path = PRETRAINED, only: list[str] | None = None) -> list[Path]:
    """Retrain the zoo (or only some entries) into out_dir, then regenerate its README.md."""
    from tqdm import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    recipes = select(only, out_dir)
    paths = []
    with pinned_threads(), warnings.catch_warnings(), tqdm(total=sum(r.train.epochs for r in recipes), unit="epoch") as bar:
        warnings.filterwarnings("ignore", message="n_jobs value")  # UMAP: a fixed seed runs single-threaded, as wanted
        for r in recipes:
            bar.set_description(r.name)
            paths.append(build_one(r, out_dir, on_epoch=lambda: bar.update(1)))
    (out_dir / "README.md").write_text(cards.readme(out_dir, [r.name for r in ZOO]), encoding="utf-8")
    return paths
