"""The class board's per-entry figures and metadata (aeviz/classroom/board.py) and its small multiples."""
from __future__ import annotations

import json

import numpy as np
import pytest

import aeviz
from aeviz import plots, zoo
from aeviz.classroom import board
from aeviz.classroom.store import Entry
from aeviz.data import load


@pytest.fixture(scope="module")
def digits():
    return load("digits")


@pytest.fixture(scope="module")
def ae(make_checkpoint):
    return aeviz.load(make_checkpoint())


@pytest.fixture(scope="module")
def vae8(make_checkpoint):
    return aeviz.load(make_checkpoint("variational", latent_dim=8))


def test_entry_meta_carries_the_model_card_as_plain_json(vae8, digits):
    meta = board.entry_meta(vae8, digits, "β = 1")
    card = zoo.trained_card(vae8, digits)
    assert json.loads(json.dumps(meta, allow_nan=False)) == meta
    assert (meta["objective"], meta["latent_dim"], meta["beta"], meta["dataset"]) == ("variational", 8, 1.0, "digits")
    assert meta["card"].keys() == card.keys() and meta["note"] == "β = 1"
    assert meta["card"]["nelbo"] == pytest.approx(card["nelbo"], rel=1e-5)


def test_filters_and_sort_keys():
    metas = [{"objective": "vanilla", "latent_dim": 2, "beta": None, "card": {"test_mse": 0.03}},
             {"objective": "variational", "latent_dim": 8, "beta": 4.0, "card": {"test_mse": 0.01}},
             {"objective": "variational", "latent_dim": 2, "beta": 0.5, "card": {}}]
    entries = [Entry(i + 1, "ABCD", i, author, f"m{i}", m, 1, "x", 0.0) for i, (author, m) in
               enumerate(zip(["cy", "Ana", "ben"], metas))]
    assert [board.matches(m, ("variational",)) for m in metas] == [False, True, True]
    assert [board.matches(m, (), (2,)) for m in metas] == [True, False, True]
    assert [board.matches(m, beta=(1.0, 10.0)) for m in metas] == [True, True, False]  # β filters VAEs only

    def order(sort):
        return [e.id for e, _ in sorted(zip(entries, metas), key=board.sort_key(sort))]

    assert order("arrival") == [1, 2, 3]
    assert order("test_mse") == [2, 1, 3]  # no figure: last
    assert order("beta") == [3, 2, 1] and order("author") == [2, 3, 1] and order("latent_dim") == [1, 3, 2]


def test_every_entry_is_drawn_from_the_same_inputs(ae, vae8, digits):
    a, b = board.figures(ae, digits), board.figures(vae8, digits)
    idx = board.map_points(digits)
    assert a.xy.shape == b.xy.shape == (min(board.MAP_POINTS, len(digits.x_test)), 2)
    np.testing.assert_array_equal(a.labels, digits.y_test.numpy()[idx])
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_allclose(a.xy, aeviz.analysis.embed(ae, digits.x_test[idx]), rtol=1e-5, atol=1e-6)  # z itself
    assert a.recon.shape == b.recon.shape == (board.N_IMAGES, 1, 8, 8) and a.samples is None
    np.testing.assert_allclose(b.samples, board.figures(vae8, digits).samples)  # the same seed, the same codes
    assert board.figures(ae, digits, images=False).recon is None


@pytest.mark.parametrize("n", [1, 5, 7, 13, 30])
def test_small_multiples_share_one_box_each_map_in_its_own_cell(n):
    rng = np.random.default_rng(n)
    maps = [(f"&lt;b&gt;{i}", rng.normal(size=(50, 2)) * (1 + i), rng.integers(0, 10, 50)) for i in range(n)]
    fig = plots.small_multiples(maps, [str(k) for k in range(10)], ncols=5)
    layout = fig.layout.to_plotly_json()
    assert [k for k in layout if k.startswith(("xaxis", "yaxis"))] == ["xaxis", "yaxis"]  # one pair, not 2n axes
    assert [a["text"] for a in layout["annotations"]] == [t for t, _, _ in maps]
    points, *legend = fig.data
    assert len(legend) == 10 and points.showlegend is False and all(t.x == (None,) for t in legend)
    x, y = np.asarray(points.x), np.asarray(points.y)
    assert len(x) == 50 * n and np.array_equal(np.asarray(points.marker.color),
                                               np.concatenate([lab for _, _, lab in maps]).astype(float))
    lo, hi = plots.shared_box(maps)
    frames = [sh for sh in layout["shapes"] if sh["type"] == "rect"]
    assert len(frames) == n
    for i, (_, xy, _) in enumerate(maps):  # map i sits in its own frame, scaled by the one shared box
        f = frames[i]
        xi, yi = x[50 * i: 50 * (i + 1)], y[50 * i: 50 * (i + 1)]
        assert (f["x0"] <= xi).all() and (xi <= f["x1"]).all() and (f["y0"] <= yi).all() and (yi <= f["y1"]).all()
        np.testing.assert_allclose(xi - f["x0"], (xy[:, 0] - lo[0]) / (hi[0] - lo[0]))
        np.testing.assert_allclose(yi - f["y0"], (xy[:, 1] - lo[1]) / (hi[1] - lo[1]))
    cells = {(f["x0"], f["y0"]) for f in frames}
    assert len(cells) == n  # no two maps share a cell
