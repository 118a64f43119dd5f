import gzip
import struct
import subprocess
import sys

import numpy as np
import pytest
import torch

from aeviz import data
from aeviz.data import DatasetUnavailable, corrupt, load, read_idx, read_idx_folder

OFFLINE = [name for name, entry in data.REGISTRY.items() if entry.offline]
SHAPES = {"mnist": (1, 28, 28), "mnist-rows": (28, 28), "digits": (1, 8, 8), "swiss-roll": (3,),
          "s-curve": (3,), "signals": (128, 1), "breast-cancer": (30,), "wine": (13,)}


@pytest.mark.parametrize("name", OFFLINE)
def test_offline_datasets_are_float_tensors_in_unit_range_with_labels(name):
    d = load(name)
    assert d.sample_shape == SHAPES[name] and d.x_test.shape[1:] == SHAPES[name]
    for x, y in ((d.x_train, d.y_train), (d.x_test, d.y_test)):
        assert x.dtype == torch.float32 and len(x) == len(y) > 0
        assert x.min() >= 0.0 and x.max() <= 1.0
    assert d.kind in ("image", "points", "sequence") and d.description == data.REGISTRY[name].description
    if d.label_names:
        assert int(d.y_train.max()) < len(d.label_names)


def test_mnist_is_a_stratified_4000_1000_split_400_100_per_class():
    d = load("mnist")
    assert (len(d.x_train), len(d.x_test)) == (4000, 1000)
    assert torch.bincount(d.y_train).tolist() == [400] * 10
    assert torch.bincount(d.y_test).tolist() == [100] * 10


def test_the_split_is_the_same_on_every_load():
    again = data._mnist()  # the undecorated loader: a fresh split, not the cached one
    d = load("mnist")
    assert torch.equal(again.x_train, d.x_train) and torch.equal(again.y_test, d.y_test)


def test_digits_split_sizes():
    d = load("digits")
    assert (len(d.x_train), len(d.x_test)) == (1437, 360)


def test_signals_train_is_normal_and_test_masks_mark_exactly_the_anomalies():
    d = load("signals")
    mask = d.extras["mask"]
    assert (d.y_train == 0).all()
    assert mask.shape == (1000, 128) and mask.dtype == torch.bool
    anomalous = d.y_test > 0
    assert 0.4 < anomalous.float().mean() < 0.6
    assert mask[anomalous].any(1).all() and not mask[~anomalous].any()
    assert set(d.y_test.unique().tolist()) == set(range(len(data.ANOMALY_TYPES)))


def test_make_signals_is_seeded_and_marks_spikes_on_few_steps():
    x1, y1, m1 = data.make_signals(50, seed=3, anomaly_rate=1.0)
    x2, _, _ = data.make_signals(50, seed=3, anomaly_rate=1.0)
    np.testing.assert_array_equal(x1, x2)
    assert (y1 > 0).all() and m1.any(1).all()
    assert (m1[y1 == 1].sum(1) <= 3).all()  # a spike marks at most three steps


def test_unknown_dataset_names_the_choices():
    with pytest.raises(DatasetUnavailable, match="Unknown dataset 'cifar'; choose one of mnist, "):
        load("cifar")


def test_mnist_full_offline_gives_one_sentence(monkeypatch):
    import sklearn.datasets

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(sklearn.datasets, "fetch_openml", offline)
    monkeypatch.delenv("AEVIZ_MNIST_DIR", raising=False)
    with pytest.raises(DatasetUnavailable) as err:
        load("mnist-full")
    assert str(err.value) == (
        "'mnist-full' downloads once from openml.org, which this machine cannot reach: use the built-in "
        "'mnist' (5,000 real digits) or set AEVIZ_MNIST_DIR to a folder holding the four IDX files.")


def _idx(array: np.ndarray) -> bytes:
    return bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_read_idx_plain_and_gzipped(tmp_path, suffix):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / f"train-images-idx3-ubyte{suffix}"
    path.write_bytes(gzip.compress(_idx(a)) if suffix else _idx(a))
    np.testing.assert_array_equal(read_idx(path), a)


def test_read_idx_refuses_truncated_and_foreign_files(tmp_path):
    a = np.ones((4, 5), np.uint8)
    cut = tmp_path / "labels.idx"
    cut.write_bytes(_idx(a)[:-3])
    with pytest.raises(DatasetUnavailable, match="labels.idx is truncated: expected 20 values, found 17."):
        read_idx(cut)
    other = tmp_path / "photo.png"
    other.write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(DatasetUnavailable, match="photo.png is not an unsigned-byte IDX file."):
        read_idx(other)


def test_read_idx_folder_joins_train_then_test(tmp_path):
    imgs = [np.full((n, 28, 28), v, np.uint8) for n, v in ((3, 1), (2, 2))]
    labels = [np.array([1, 2, 3], np.uint8), np.array([4, 5], np.uint8)]
    for stem, a in (("train-images", imgs[0]), ("t10k-images", imgs[1]),
                    ("train-labels", labels[0]), ("t10k-labels", labels[1])):
        (tmp_path / f"{stem}-idx-ubyte.gz").write_bytes(gzip.compress(_idx(a)))
    x, y = read_idx_folder(tmp_path)
    assert x.shape == (5, 784) and x[3, 0] == 2 and y.tolist() == [1, 2, 3, 4, 5]
    (tmp_path / "t10k-labels-idx-ubyte.gz").unlink()
    with pytest.raises(DatasetUnavailable, match="No file starting with 't10k-labels'"):
        read_idx_folder(tmp_path)


@pytest.fixture
def grey():
    return torch.full((200, 1, 16, 16), 0.5)


def test_gaussian_noise_stays_in_range_and_has_sigma(grey):
    x = corrupt(grey, "gaussian", 0.1, seed=0)
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert abs((x - grey).std().item() - 0.1) < 0.005


@pytest.mark.parametrize("level", [0.1, 0.5])
def test_masking_zeroes_the_given_fraction(grey, level):
    x = corrupt(grey, "masking", level, seed=0)
    assert set(x.unique().tolist()) <= {0.0, 0.5}
    assert abs((x == 0).float().mean().item() - level) < 0.01


@pytest.mark.parametrize("level", [0.1, 0.5])
def test_salt_pepper_sets_the_given_fraction_to_0_or_1(grey, level):
    x = corrupt(grey, "salt-pepper", level, seed=0)
    hit = x != 0.5
    assert set(x[hit].unique().tolist()) == {0.0, 1.0}
    assert abs(hit.float().mean().item() - level) < 0.01
    assert abs((x[hit] == 1.0).float().mean().item() - 0.5) < 0.03


def test_corrupt_is_seeded_leaves_input_alone_and_refuses_unknown_noise(grey):
    a = corrupt(grey, "masking", 0.3, seed=1)
    b = corrupt(grey, "masking", 0.3, seed=1)
    assert torch.equal(a, b) and (grey == 0.5).all()
    assert corrupt(grey, "gaussian", 0.0) is grey
    with pytest.raises(ValueError, match="Unknown noise 'blur'"):
        corrupt(grey, "blur", 0.5)


def test_corrupt_takes_numpy_and_gives_numpy_with_the_same_noise_as_torch(grey):
    as_numpy = corrupt(grey.numpy().astype(np.float64), "gaussian", 0.3, seed=4)
    assert isinstance(as_numpy, np.ndarray) and as_numpy.dtype == np.float32 and as_numpy.shape == grey.shape
    np.testing.assert_array_equal(as_numpy, corrupt(grey, "gaussian", 0.3, seed=4).numpy())
    assert not np.array_equal(as_numpy, corrupt(grey.numpy(), "gaussian", 0.3, seed=5))


def test_a_generator_continues_its_stream_and_a_seed_restarts_it(grey):
    gen = torch.Generator().manual_seed(2)
    first, second = corrupt(grey, "masking", 0.3, generator=gen), corrupt(grey, "masking", 0.3, generator=gen)
    assert torch.equal(first, corrupt(grey, "masking", 0.3, seed=2)) and not torch.equal(first, second)


def test_stored_splits_are_scikit_learns_and_mnist_loads_without_it(tmp_path):
    stored = sorted(data.SPLITS.glob("*.npz"))
    assert [p.stem for p in stored] == ["mnist"]
    x, y = data._mnist_arrays()
    train, test = data.split_indices(y, 1000)
    made = data.save_split("mnist", y, 1000, folder=tmp_path)  # made again as the shipped file was
    with np.load(stored[0]) as f, np.load(made) as again:
        np.testing.assert_array_equal(f["train"], train)
        np.testing.assert_array_equal(f["test"], test)
        assert all(np.array_equal(f[k], again[k]) for k in ("train", "test"))
    code = ("import sys; from aeviz import data; d = data.load('mnist'); "
            "print(len(d.x_train), len(d.x_test), 'sklearn' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.stdout.split() == ["4000", "1000", "False"], run.stderr
