"""Figure builders: what a chart shows (traces, their names and order, axis formats)."""
import numpy as np
import pytest

from aeviz import plots


def test_upscale_turns_each_pixel_into_a_block():
    img = np.arange(6, dtype=np.float32).reshape(2, 3)
    big = plots.upscale(img, 3)
    assert big.shape == (6, 9) and big.dtype == np.float32
    np.testing.assert_array_equal(big, np.kron(img, np.ones((3, 3), np.float32)))
    assert big[0:3, 3:6].tolist() == [[1.0] * 3] * 3


def test_upscale_keeps_leading_axes_and_never_shrinks():
    batch = np.random.default_rng(0).random((4, 1, 5, 5))
    assert plots.upscale(batch, 2).shape == (4, 1, 10, 10)
    np.testing.assert_array_equal(plots.upscale(batch[0, 0], 0), batch[0, 0])
    np.testing.assert_array_equal(plots.upscale(batch[0, 0], 1), batch[0, 0])


def test_a_total_equal_to_its_only_term_is_drawn_once_and_named():
    recon = [0.5, 0.3, 0.2]
    drawn = plots.drawn_terms({"loss": recon, "recon": recon})
    assert [(term, name) for term, name, _ in drawn] == [("recon", "recon = loss")]
    np.testing.assert_array_equal(drawn[0][2], recon)


def test_the_total_of_several_terms_is_drawn_last_on_top():
    drawn = plots.drawn_terms({"loss": [3.0, 2.0], "recon": [2.0, 1.5], "kl": [1.0, 0.5]})
    assert [name for _, name, _ in drawn] == ["recon", "kl", "loss"]
    nearly = plots.drawn_terms({"loss": [2.001, 1.501], "recon": [2.0, 1.5], "sparsity": [1.0, 1.0]})
    assert [name for _, name, _ in nearly] == ["recon", "sparsity", "loss"]


def _y_axis(fig) -> dict:
    return fig.to_plotly_json()["layout"]["yaxis"]


def test_a_diverging_loss_is_labelled_in_powers_of_ten_only():
    """Plotly's default labels a log axis 1B, 1T, then 10^18: three notations on one axis."""
    loss = np.logspace(-1, 18, 50)
    fig = plots.live_loss(np.arange(1, 51), {"loss": loss, "recon": loss})
    axis = _y_axis(fig)
    assert (axis["type"], axis["exponentformat"], axis["dtick"]) == ("log", "power", 3)  # 10⁰, 10³, ...: 7 labels
    few = plots.live_loss([1, 2], {"loss": [0.01, 5.0], "recon": [0.01, 5.0]})
    assert _y_axis(few)["dtick"] == 1
    assert [t.name for t in fig.data] == ["recon = loss"] and fig.layout.showlegend  # named even when alone


@pytest.mark.parametrize("log_y", [True, False])
def test_loss_curves_per_epoch(log_y):
    history = {"epochs": [1, 2, 3], "train": {"loss": [3.0, 2.0, 1.0], "recon": [2.0, 1.5, 0.8], "kl": [1, .5, .2]},
               "test": {"loss": [3.1, 2.1, 1.1], "recon": [2.1, 1.6, 0.9], "kl": [1, .5, .2]}}
    fig = plots.loss_curves(history, log_y=log_y)
    assert [t.name for t in fig.data] == ["recon (train)", "kl (train)", "loss (train)",
                                          "recon (test)", "kl (test)", "loss (test)"]
    axis = _y_axis(fig)
    assert axis.get("type", "linear") == ("log" if log_y else "linear")
    if log_y:  # 0.2 .. 3.1 spans one power of ten: plotly's own ticks stay, written the same way
        assert axis["exponentformat"] == "power" and "dtick" not in axis


def test_a_map_is_svg_up_to_svg_points_and_webgl_beyond_or_when_asked():
    def kinds(n, **kw):
        xy = np.random.default_rng(0).normal(size=(n, 2))
        return {t.type for t in plots.latent_scatter(xy, np.arange(n) % 3, ["a", "b", "c"], **kw).data}

    assert kinds(plots.SVG_POINTS) == {"scatter"}
    assert kinds(plots.SVG_POINTS + 1) == {"scattergl"}
    assert kinds(30, webgl=True) == {"scattergl"} and kinds(plots.SVG_POINTS + 1, webgl=False) == {"scatter"}


@pytest.mark.parametrize("case", ["classes", "one colour", "continuous"])
def test_a_map_written_as_a_dict_is_what_plotly_would_write(case):
    """latent_scatter_spec skips plotly's objects (60 ms per map): plotly must take the dict back unchanged, every
    property valid and nothing coerced."""
    import plotly.graph_objects as go

    rng = np.random.default_rng(0)
    xy = rng.normal(size=(3000, 2)).astype(np.float32)
    labels, names = {"classes": (np.arange(3000) % 4, ("a", "b", "c", "d")), "one colour": (np.zeros(3000), ()),
                     "continuous": (rng.random(3000), ())}[case]
    spec = plots.latent_scatter_spec(xy, labels, names, title="t", axis_titles=("u", "v"), height=300)
    assert go.Figure(spec).to_dict() == spec
    assert [t["type"] for t in spec["data"]] == ["scattergl"] * len(names or "x")  # 3,000 > SVG_POINTS
    idx = np.concatenate([plots.untyped(t["customdata"]) for t in spec["data"]])
    assert sorted(idx.tolist()) == list(range(3000))
    first = spec["data"][0]
    np.testing.assert_array_equal(plots.untyped(first["x"]), xy[plots.untyped(first["customdata"]), 0])
    live = plots.live_loss_spec(np.arange(1, 51), {"loss": np.geomspace(5, 0.01, 50), "kl": np.ones(50),
                                                   "other": np.ones(50)})  # a term without a colour of its own
    assert go.Figure(live).to_dict() == live and live["layout"]["yaxis"]["type"] == "log"
    hist = plots.histogram_spec({"normal": rng.random(50), "odd": rng.random(20)}, "errors", "MSE", bins=20)
    assert go.Figure(hist).to_dict() == hist
    assert plots.histogram({"normal": rng.random(50)}, vline=0.5).layout.shapes[0].x0 == 0.5
    layer = plots.image_layer(np.zeros((4, 4)), (-1, -2), (3, 5))
    assert (layer["x"], layer["y"], layer["sizex"], layer["sizey"]) == (-1.0, 5.0, 4.0, 7.0)
    assert layer["source"].startswith("data:image/png;base64,")
