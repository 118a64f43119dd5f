"""The pretrained zoo: one recipe per model, build_zoo() that retrains them all deterministically, and
model_card(): the one set of model metrics that every view, the CLI, the training panel and the zoo's README show."""
from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import warnings
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save_file

from . import analysis as A
from . import config_for, nets, threads
from .config import ConfigError, ModelConfig, TrainConfig
from .data import Dataset, corrupt
from .data import load as load_data
from .io import PRETRAINED, Card, load, pretrained, save
from .models import Autoencoder
from .train import pick_device, train
from .uses import regularizers as R

NOISE_SIGMA = 0.5  # the denoising figures use Gaussian noise of this sigma, clipped to [0,1]
NOISE_SEED = 0  # one fixed noisy copy of the test set, the same one the regularizer lab draws
ROBUST_SIGMA = 0.1  # small input noise for the code-robustness figure of the contractive comparison
SNAPSHOT_DTYPE = np.float16  # latent-2 training snapshots: 4 kB per epoch instead of 8


def noisy_test(data: Dataset, sigma: float = NOISE_SIGMA) -> np.ndarray:
    """The test set with fixed Gaussian noise of sigma, clipped to [0,1]."""
    return corrupt(data.x_test.numpy(), "gaussian", sigma, NOISE_SEED)


def test_mse(model: Autoencoder, x: np.ndarray) -> float:
    """Mean per-sample MSE between x and its reconstruction."""
    return float(A.per_sample_mse(x, A.reconstruct(model, x)).mean())


class _Same:
    """A dataset as a cache key by identity (its tensors are not hashable); holding it keeps the id unique."""

    def __init__(self, data: Dataset):
        self.data = data

    def __hash__(self) -> int:
        return id(self.data)

    def __eq__(self, other) -> bool:
        return isinstance(other, _Same) and other.data is self.data


@functools.lru_cache(maxsize=64)
def _pca_mse(key: _Same, k: int) -> float:
    x = key.data.x_test.numpy()
    return float(A.per_sample_mse(x, A.pca_reconstruct(A.fit_pca(key.data.x_train.numpy(), k), x)).mean())


def pca_mse(data: Dataset, k: int) -> float:
    """Test MSE of PCA with k components fit on the same training samples; computed once per (dataset, k)."""
    return _pca_mse(_Same(data), k)


def _label_metrics(model: Autoencoder, data: Dataset, x_test: np.ndarray) -> dict:
    """kNN accuracy of the codes where labels are classes; AUROC where they are all 'normal'; trustworthiness of
    the codes where the label is a continuous colour (the manifolds)."""
    y_train, y_test = data.y_train.numpy(), data.y_test.numpy()
    if not data.label_names and len(np.unique(y_train)) > 1:
        return {"trustworthiness": A.trustworthiness(x_test, A.embed(model, x_test))}
    if len(np.unique(y_train)) > 1:
        codes = A.embed(model, data.x_train), A.embed(model, x_test)
        return {"knn_acc": A.knn_accuracy(codes[0], y_train, codes[1], y_test)}
    score = A.per_sample_mse(x_test, A.reconstruct(model, x_test))  # anomalies reconstruct worse
    return {"auroc": A.roc(score, y_test > 0)[2]}


def _regularizer_figures(model: Autoencoder) -> bool:
    """The regularizer lab's code figures fit deterministic codes of clean inputs, from nets whose ends are dense."""
    return nets.ARCHS[model.config.arch].dense and not (model.has_prior or model.corrupts_input)


def model_card(model: Autoencoder, data: Dataset, vanilla: Autoencoder | None = None) -> dict[str, float]:
    """THE set of model metrics, on data's test set: every view, the CLI and the zoo's README show these.

    params, test_mse, pca_mse (PCA with as many components as the code), mse_ratio, a label figure (knn_acc,
    auroc or trustworthiness), nelbo for a model with a prior, the regularizer lab's code figures, and for a model
    trained on corrupted input its PSNRs at NOISE_SIGMA (vanilla: the same-size plain AE on the same noisy images).
    """
    x = data.x_test.numpy()
    mse, base = test_mse(model, x), pca_mse(data, model.config.latent_dim)
    m = {"params": model.n_params, "test_mse": mse, "pca_mse": base, "mse_ratio": mse / base,
         **_label_metrics(model, data, x)}
    if model.has_prior:
        m["nelbo"] = float(A.negative_elbo(model, x).mean())
    if _regularizer_figures(model):
        m["active_fraction"] = float(R.activity(model, x).per_image.mean())
        m["jacobian_norm"] = float(R.jacobian_norms(model, x).mean())
        m["code_shift"] = float(R.robustness(model, x, "noise", [ROBUST_SIGMA], NOISE_SEED)[0])
    if model.corrupts_input:
        noisy = noisy_test(data)
        m |= {"psnr_noisy": A.psnr(x, noisy), "psnr_denoised": A.psnr(x, A.reconstruct(model, noisy))}
        if vanilla is not None:
            m["psnr_vanilla_noisy"] = A.psnr(x, A.reconstruct(vanilla, noisy))
    return m


def trained_card(model: Autoencoder, data: Dataset) -> dict[str, float]:
    """model_card of a model trained just now (the training panel, the job worker). When a figure cannot be computed,
    say because the training data hold a NaN, the card keeps the parameter count and the test MSE, so that the
    training is not lost with it."""
    try:
        return model_card(model, data)
    except Exception:  # any figure's failure: sklearn refuses NaN, a user's odd labels, ...
        return {"params": model.n_params, "test_mse": test_mse(model, data.x_test.numpy())}


def views(model: Autoencoder, data: Dataset) -> dict[str, np.ndarray]:
    """What the app would otherwise compute when a student first opens the model: the test codes and each test
    sample's reconstruction error (a cold model switch spent most of its time on these forward passes), and for
    latent > 2 the PCA and UMAP maps of the codes, so the app never waits on UMAP."""
    out = _code_views(model, data)
    return out | _maps(model, out["codes"])


def _code_views(model: Autoencoder, data: Dataset) -> dict[str, np.ndarray]:
    """The test codes and each test sample's reconstruction error."""
    codes = A.embed(model, data.x_test).astype(np.float32)
    x = data.x_test.numpy()
    x_hat = A.decode(model, codes).reshape(x.shape)  # reconstruct() would encode the test set a second time
    return {"codes": codes, "errors": A.per_sample_mse(x, x_hat).astype(np.float32)}


def _maps(model: Autoencoder, codes: np.ndarray) -> dict[str, np.ndarray]:
    """For latent > 2, the PCA and UMAP maps of the codes (UMAP takes seconds: computed here, not in the app)."""
    if model.config.latent_dim <= 2:
        return {}
    return {"pca": A.project(codes, "pca"), "umap": A.project(codes, "umap", seed=0)}


def refresh_views(out_dir: Path = PRETRAINED, only: list[str] | None = None) -> list[Path]:
    """Add the views a zoo file lacks (codes, errors: new in wave 2) without retraining; existing maps are kept as
    they are (UMAP is not recomputed)."""
    from .io import load_views

    written = []
    for card in pretrained(out_dir):
        if only and card.name not in only:
            continue
        model = load(card.path)
        old = load_views(card)
        if not {"codes", "errors"} - set(old):
            continue
        new = _code_views(model, load_data(model.config.dataset))
        if {"pca", "umap"} - set(old):  # only a file without its maps pays for UMAP
            new |= _maps(model, new["codes"])
        save_file(new | old, str(card.views_path))
        written.append(card.views_path)
    return written


class Snapshots:
    """Training callback: the test codes of a latent-2 model after every epoch, to scrub through training."""

    def __init__(self, x_test: torch.Tensor):
        self.x_test, self.codes, self.epochs = x_test, [], []

    def __call__(self, p) -> None:
        if not p.epoch_end:
            return
        p.model.eval()  # the VAE would otherwise draw z (and consume the training RNG) while encoding
        self.codes.append(A.embed(p.model, self.x_test).astype(SNAPSHOT_DTYPE))
        p.model.train()
        self.epochs.append(p.epoch)

    def arrays(self) -> dict[str, np.ndarray]:
        """snapshots (K, N, 2) and snapshot_epochs (K,)."""
        return {"snapshots": np.stack(self.codes), "snapshot_epochs": np.array(self.epochs, np.int32)}


def _fmt(v: float | None, spec: str) -> str:
    return "" if v is None else format(v, spec)


def _row(card: Card) -> str:
    m, c = card.metrics, card.config
    denoise = (f"{m['psnr_noisy']:.1f} → {m['psnr_denoised']:.1f} (plain AE {m['psnr_vanilla_noisy']:.1f})"
               if "psnr_denoised" in m else "")
    cells = [f"`{card.name}`", c.objective, c.arch, c.dataset, f"{int(m['params']):,}", str(c.latent_dim),
             str(int(m["epochs"])), f"{m['train_seconds']:.0f}", f"{m['test_mse']:.4f}", f"{m['pca_mse']:.4f}",
             f"{m['mse_ratio']:.3f}", _fmt(m.get("nelbo"), ".1f"), denoise]
    return "| " + " | ".join(cells) + " |"


HEADER = ("| variant | objective | arch | data | parameters | latent | epochs | training s | test MSE | PCA MSE "
          "| MSE / PCA | −ELBO (nats) | PSNR σ=0.5 dB: noisy → denoised |\n"
          "|---|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|")


def readme(folder: Path, order: list[str] = ()) -> str:
    """pretrained/README.md, generated from the checkpoints' metadata only; rows in `order`, then by name."""
    rank = {name: i for i, name in enumerate(order)}
    cards = sorted(pretrained(folder), key=lambda c: (rank.get(c.name, len(rank)), c.name))
    size = sum(p.stat().st_size for p in Path(folder).glob("*.safetensors"))
    seconds = sum(c.metrics["train_seconds"] for c in cards)
    return "\n".join([
        "# Pretrained zoo",
        "",
        "Generated by `aeviz pretrain` (or `aeviz pretrain --only NAME ...` for some entries); do not edit. "
        "The build is deterministic: one torch thread and fixed seeds give the same weights, byte for byte, on "
        "the same machine. Every figure below is read from the checkpoints' metadata and measured on the 1,000 "
        "held-out test samples (`mnist`: PCA fit on the same 4,000 training images).",
        "",
        HEADER,
        *(_row(c) for c in cards),
        "",
        f"- {len(cards)} models, {size / 1e6:.1f} MB in all (weights stored as float16), "
        f"{seconds / 60:.1f} min of training (wall clock on the shared machine that built them).",
        "- MSE is per value, averaged over samples. PCA MSE uses as many components as the model has latent units.",
        f"- −ELBO: Bernoulli −log p(x|z) on the [0,1] pixels plus KL(q(z|x) ‖ N(0, I)), nats per image, "
        f"{A.NELBO_SAMPLES} draws of z.",
        f"- Denoising: Gaussian noise σ = {NOISE_SIGMA} clipped to [0,1]; the plain AE is the vanilla model "
        "of the same size on the same noisy inputs.",
        "- Each `<name>.views.safetensors` holds the test codes (`codes`) and each test sample's reconstruction "
        "error (`errors`), and `pca` and `umap` maps of the codes (latent > 2) or the test codes after each "
        "training epoch (`snapshots`, `snapshot_epochs`; latent 2).",
        "",
    ])

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


def build_one(recipe: Recipe, out_dir: Path, on_epoch=None, device=None) -> Path:
    """Train one recipe (on device, default the CPU) and write <name>.safetensors and <name>.views.safetensors."""
    mc, tc = recipe.config(), recipe.train
    data = load_data(mc.dataset)
    snapshots = Snapshots(data.x_test) if mc.latent_dim == 2 else None

    def callback(p):
        if snapshots:
            snapshots(p)
        if p.epoch_end and on_epoch:
            on_epoch()

    model, hist = train(mc, tc, data, callback=callback, device=device)
    if hist.status != "finished":
        raise RuntimeError(f"{recipe.name}: {hist.message}")
    _round_to_half(model)
    vanilla = load(out_dir / f"{recipe.compare}.safetensors") if recipe.compare else None
    metrics = {"params": model.n_params, "train_seconds": hist.seconds, "epochs": tc.epochs, "lr": tc.lr,
               "batch_size": tc.batch_size, "seed": tc.seed, **model_card(model, data, vanilla)}
    path = save(model, out_dir / f"{recipe.name}.safetensors", metrics, hist.to_dict(), dtype=torch.float16)
    arrays = views(model, data) | (snapshots.arrays() if snapshots else {})
    save_file(arrays, str(path.with_suffix(".views.safetensors")))
    return path


def build_zoo(out_dir: Path = PRETRAINED, only: list[str] | None = None, jobs: int = 1,
              device: str | None = None) -> list[Path]:
    """Retrain the zoo (or only some entries) into out_dir, in `jobs` processes, on device ('auto', 'cpu',
    'cuda'; default the CPU), then regenerate its README.md. Each recipe trains alone in its process with the same
    pinned threads and seed, so the weights are the same bytes whatever `jobs` is."""
    from tqdm import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    recipes = select(only, out_dir)
    device = pick_device(device)
    with tqdm(total=sum(r.train.epochs for r in recipes), unit="epoch") as bar:
        if jobs > 1 and len(recipes) > 1:
            paths = _build_parallel(recipes, out_dir, jobs, device, bar)
        else:
            paths = []
            for r in recipes:
                bar.set_description(r.name)
                paths.append(_build_pinned(r, out_dir, device, on_epoch=lambda: bar.update(1)))
    (out_dir / "README.md").write_text(readme(out_dir, [r.name for r in ZOO]), encoding="utf-8")
    return paths


def _build_pinned(recipe: Recipe, out_dir: Path, device, on_epoch=None) -> Path:
    """build_one with the zoo's fixed threads (in this process or a worker)."""
    with pinned_threads(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="n_jobs value")  # UMAP: a fixed seed runs single-threaded, as wanted
        return build_one(recipe, out_dir, on_epoch, device)


def _build_parallel(recipes: list[Recipe], out_dir: Path, jobs: int, device, bar) -> list[Path]:
    """Build recipes in `jobs` spawned processes; a recipe whose comparison model is being built waits for it."""
    building = {r.name for r in recipes}
    waiting, running, paths = list(recipes), {}, {}
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        try:
            while waiting or running:
                for r in [r for r in waiting if r.compare not in building or r.compare in paths]:
                    waiting.remove(r)
                    running[pool.submit(_build_pinned, r, out_dir, device)] = r
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    r = running.pop(future)
                    paths[r.name] = future.result()
                    bar.set_description(r.name)
                    bar.update(r.train.epochs)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return [paths[r.name] for r in recipes]
