"""Plotly figure builders (go.Figure in, nothing drawn here) and image tiling for the UI."""
from __future__ import annotations

import functools

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.basedatatypes import BaseFigure

# Set once: a template= in every layout deep-copies the whole template per figure (a quarter of the server's
# GIL time with 30 students, py-spy); as the default it is applied without that copy.
pio.templates.default = "plotly_white"



class _Checked(BaseFigure):
    """A figure dict that came out of go.Figure.to_dict() (so plotly validated it once), for st.plotly_chart.

    Given a plain dict, st.plotly_chart validates it again by building a whole go.Figure from it, on every rerun
    and for every session: that defeats caching figures as dicts (with 30 students, plotly's validators were the
    largest share of the server's GIL time, py-spy). Given a BaseFigure, it takes to_dict() as it is; this one
    returns the dict without a copy (Streamlit only reads it). Built without BaseFigure.__init__: nothing is
    validated or copied."""

    def to_dict(self):
        return self.__dict__["_spec"]


def checked(spec: dict) -> BaseFigure:
    """Hand a cached figure dict (from go.Figure.to_dict(), read-only) to st.plotly_chart without re-validation."""
    if not spec.get("data"):  # plotly's own check for an empty figure raises a missing exception class
        raise ValueError("a figure without traces")
    fig = object.__new__(_Checked)
    fig.__dict__["_spec"] = spec
    return fig


PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
           "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
TERM_COLORS = {"loss": "#222222", "recon": "#1f77b4", "kl": "#d62728", "sparsity": "#2ca02c", "contractive": "#9467bd"}


def _layout(fig: go.Figure, title: str = "", height: int = 420, **kw) -> go.Figure:
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=40 if title else 10, b=10),
                      legend=dict(itemsizing="constant"), **kw)
    return fig


def as_images(x) -> np.ndarray:
    """(N, H, W) from (N, 1, H, W) / (N, H, W) image batches, clipped to [0,1]."""
    x = np.asarray(x, np.float32)
    if x.ndim == 4:
        x = x[:, 0]
    return np.clip(x, 0.0, 1.0)


def upscale(img, factor: int) -> np.ndarray:
    """An image (..., H, W) enlarged `factor` times by nearest neighbour (factor < 1 counts as 1): each pixel becomes
    a factor x factor block, so pixels stay crisp where a browser enlarging a small image would blur them."""
    img, f = np.asarray(img), max(1, int(factor))
    return img.repeat(f, axis=-2).repeat(f, axis=-1)


def tile(images, ncols: int, pad: int = 1, fill: float = 1.0) -> np.ndarray:
    """One mosaic image (rows of ncols) from (N, H, W) images, separated by pad pixels of fill."""
    imgs = as_images(images)
    n, h, w = imgs.shape
    nrows = max(1, -(-n // ncols))
    out = np.full((nrows * (h + pad) - pad, ncols * (w + pad) - pad), fill, np.float32)
    for i, img in enumerate(imgs):
        r, c = divmod(i, ncols)
        out[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = img
    return out


SVG_POINTS = 2000  # up to this many points a map is drawn as SVG: a WebGL context costs a browser more to start
# (in the bench's software-rendered Chromium, most of the first screen's plotly time), but every SVG point is a page
# element that the browser restyles on every rerun: a page that reruns often with several maps asks for WebGL


def typed(a) -> dict | list:
    """An array as plotly.js's typed-array spec (base64 bytes), as go.Figure.to_dict() writes it."""
    from _plotly_utils.utils import to_typed_array_spec

    return to_typed_array_spec(np.asarray(a))


def untyped(v) -> np.ndarray:
    """The array a typed-array spec (typed()) holds."""
    if isinstance(v, dict) and "bdata" in v:
        import base64

        shape = [int(n) for n in str(v.get("shape", "-1")).split(",")]  # plotly writes "3, 4"
        return np.frombuffer(base64.b64decode(v["bdata"]), np.dtype(v["dtype"])).reshape(shape)
    return np.asarray(v)


@functools.cache
def _template() -> dict:
    """The default template as to_dict() writes it into every figure (read-only: every spec shares it)."""
    return pio.templates[pio.templates.default].to_plotly_json()


def spec_layout(title: str = "", height: int = 420, **kw) -> dict:
    """_layout's settings as a layout dict, for figures written as dicts (see latent_scatter_spec)."""
    return {"template": _template(), "margin": {"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
            "legend": {"itemsizing": "constant"}, "title": {"text": title}, "height": height, **kw}


def latent_scatter_spec(xy, labels, label_names=(), title: str = "", axis_titles=("z₁", "z₂"), height: int = 480,
                        webgl: bool | None = None) -> dict:
    """Test samples on a 2-D map, one trace per class; hover shows label and index. webgl: draw with WebGL rather
    than SVG (default: beyond SVG_POINTS points).

    Written as the dict go.Figure.to_dict() would give (tests/core/test_plots.py checks that plotly takes it back
    unchanged): plotly's objects validate every property as it is set, and built that way a map of 5,000 points
    cost ~60 ms, on the first visit of every model in every server; as a dict, about 1 ms."""
    xy = np.asarray(xy)
    labels = np.asarray(labels)
    idx = np.arange(len(xy))
    kind = "scattergl" if (len(xy) > SVG_POINTS if webgl is None else webgl) else "scatter"

    def trace(m, name: str, marker: dict, hover: str) -> dict:
        return {"customdata": typed(idx[m]), "hovertemplate": hover, "marker": marker, "mode": "markers",
                "name": name, "x": typed(xy[m, 0]), "y": typed(xy[m, 1]), "type": kind}

    if label_names:
        traces = [trace(labels == k, str(name), {"color": PALETTE[k % 10], "opacity": 0.75, "size": 5},
                        f"label {name}<br>index %{{customdata}}<extra></extra>")
                  for k, name in enumerate(label_names) if (labels == k).any()]
    elif len(labels) and np.ptp(labels) == 0:  # no labels at all (a user's file without a label column): one colour
        traces = [trace(slice(None), "samples", {"color": PALETTE[0], "opacity": 0.75, "size": 5},
                        "index %{customdata}<extra></extra>")]
    else:  # continuous colour, e.g. the position along a swiss roll
        traces = [trace(slice(None), "samples", {"color": typed(labels), "colorbar": {"title": {"text": "t"}},
                                                 "colorscale": colorscale("Viridis"), "showscale": True, "size": 5},
                        "t=%{marker.color:.2f}<br>index %{customdata}<extra></extra>")]
    layout = spec_layout(title, height, xaxis={"title": {"text": axis_titles[0]}, "zeroline": False},
                         yaxis={"title": {"text": axis_titles[1]}, "zeroline": False})
    return {"data": traces, "layout": layout}


@functools.cache
def colorscale(name: str) -> list:
    """A named colorscale as the [[position, colour], ...] list plotly writes for it."""
    from plotly.colors import get_colorscale

    return [[float(p), c] for p, c in get_colorscale(name)]


def latent_scatter(xy, labels, label_names=(), title: str = "", selected: int | None = None,
                   axis_titles=("z₁", "z₂"), height: int = 480, webgl: bool | None = None) -> go.Figure:
    """latent_scatter_spec as a figure (to add to), with the selected sample marked."""
    fig = go.Figure(latent_scatter_spec(xy, labels, label_names, title, axis_titles, height, webgl))
    if selected is not None:
        add_marker(fig, np.asarray(xy)[selected], f"selected #{selected}")
    return fig


def image_layer(image, lo, hi, opacity: float = 0.6) -> dict:
    """A [0,1] grayscale image (e.g. a decoded latent grid) as a layout image under a 2-D map over [lo, hi], dark on
    white (a PNG data: URL)."""
    import base64
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(((1.0 - np.clip(image, 0.0, 1.0)) * 255).astype(np.uint8)).save(out, format="PNG")
    return {"layer": "below", "opacity": opacity, "sizex": float(hi[0] - lo[0]), "sizey": float(hi[1] - lo[1]),
            "sizing": "stretch", "source": "data:image/png;base64," + base64.b64encode(out.getvalue()).decode(),
            "x": float(lo[0]), "xref": "x", "y": float(hi[1]), "yref": "y"}


def prior_contours(lo, hi, n: int = 60) -> dict:
    """Filled contours of the prior N(0, I) density over [lo, hi], as a trace dict (draw it first: beneath)."""
    x, y = np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n)
    density = np.exp(-0.5 * (x[None, :] ** 2 + y[:, None] ** 2)) / (2 * np.pi)
    return {"colorscale": colorscale("Blues"), "contours": {"coloring": "fill"},
            "hovertemplate": "prior density %{z:.3f}<extra></extra>", "line": {"width": 0.5}, "name": "prior N(0, I)",
            "ncontours": 8, "opacity": 0.45, "showscale": False, "x": typed(x), "y": typed(y), "z": typed(density),
            "type": "contour"}


def marker(xy, name: str, color: str = "black", symbol: str = "x") -> dict:
    """The trace that marks one point on a 2-D map, as a dict (it can join a cached figure dict)."""
    return dict(type="scatter", x=[float(xy[0])], y=[float(xy[1])], mode="markers", name=name, hoverinfo="name",
                marker=dict(size=14, color=color, symbol=symbol, line=dict(width=2)))


def add_marker(fig: go.Figure, xy, name: str, color: str = "black", symbol: str = "x") -> go.Figure:
    """Mark one point on a 2-D map."""
    fig.add_trace(marker(xy, name, color, symbol))
    return fig


def add_path(fig: go.Figure, path, name: str = "path", color: str = "black") -> go.Figure:
    """Draw a polyline (e.g. an interpolation) on a 2-D map."""
    path = np.asarray(path)
    fig.add_trace(go.Scatter(x=path[:, 0], y=path[:, 1], mode="lines+markers", name=name,
                             line=dict(color=color, width=2), marker=dict(size=7, color=color)))
    return fig


def drawn_terms(terms: dict) -> list[tuple[str, str, np.ndarray]]:
    """(term, legend name, values) of a dict of loss terms, in drawing order.

    The total "loss" comes last, on top: drawn first, a term close to it hid it. Where it equals the only other
    term (a plain or denoising autoencoder: loss = recon) it is left out, and that term's name says "= loss".
    """
    terms = {k: np.asarray(v, np.float64) for k, v in terms.items() if len(v)}
    total = terms.pop("loss", None)
    if total is not None and len(terms) == 1:
        (term, values), = terms.items()
        if values.shape == total.shape and np.allclose(values, total, rtol=1e-6, atol=0, equal_nan=True):
            return [(term, f"{term} = loss", values)]
    return [(k, k, v) for k, v in terms.items()] + ([("loss", "loss", total)] if total is not None else [])


def loss_curves(history: dict, title: str = "Loss per epoch", log_y: bool = False) -> go.Figure:
    """Each loss term per epoch: solid for training, dashed for the test set; the total on top."""
    fig = go.Figure()
    epochs = history.get("epochs", [])
    for split, dash in (("train", "solid"), ("test", "dash")):
        for term, name, values in drawn_terms(history.get(split, {})):
            x = epochs[-len(values):] if split == "train" else _test_epochs(epochs, len(values))
            fig.add_trace(go.Scatter(x=x, y=values, mode="lines+markers", name=f"{name} ({split})",
                                     line=dict(dash=dash, color=TERM_COLORS.get(term)), marker=dict(size=4)))
    fig.update_xaxes(title="epoch")
    fig.update_yaxes(title="nats or squared error per sample")
    return powers_of_ten(_layout(fig, title, 320)) if log_y else _layout(fig, title, 320)


def live_loss_spec(steps, terms: dict) -> dict:
    """Every loss term per optimiser step on a log scale (terms differ by orders of magnitude); the total dashed.
    Written as a figure dict (as latent_scatter_spec): the live panel rebuilds it whenever new steps arrive."""
    traces, values = [], []
    for term, name, v in drawn_terms(terms):
        line = {"color": TERM_COLORS[term]} if term in TERM_COLORS else {}
        line |= {"dash": "dash" if term == "loss" else "solid"}
        traces.append({"line": line, "mode": "lines", "name": name, "x": typed(np.asarray(steps)), "y": typed(v),
                       "type": "scatter"})
        values.append(v)
    # plotly hides the legend of a single trace, which may be "recon = loss": showlegend
    return {"data": traces, "layout": spec_layout("Loss terms, live", 320, showlegend=True,
                                                  xaxis={"title": {"text": "optimiser step"}},
                                                  yaxis={"title": {"text": "loss term per sample (log scale)"},
                                                         **log_axis(values)})}


def live_loss(steps, terms: dict) -> go.Figure:
    """live_loss_spec as a figure."""
    return go.Figure(live_loss_spec(steps, terms))


def _test_epochs(epochs: list[int], n: int) -> list[int]:
    return epochs[-n:] if n <= len(epochs) else list(range(1, n + 1))


def step_curve(step_loss, title: str = "Loss per step") -> go.Figure:
    """The raw per-step training loss with a moving average, for live progress."""
    y = np.asarray(step_loss, np.float64)
    k = max(1, min(25, len(y) // 10))
    smooth = np.convolve(y, np.ones(k) / k, mode="valid") if len(y) >= k else y
    fig = go.Figure([
        go.Scatter(y=y, mode="lines", name="per step", line=dict(color="#bbbbbb", width=1)),
        go.Scatter(x=np.arange(k - 1, k - 1 + len(smooth)), y=smooth, mode="lines", name=f"mean of {k}",
                   line=dict(color="#222222", width=2))])
    fig.update_xaxes(title="optimiser step")
    fig.update_yaxes(title="loss per sample")
    return _layout(fig, title, 280)


def histogram_spec(groups: dict[str, np.ndarray], title: str = "", x_title: str = "", bins: int = 50) -> dict:
    """Overlaid histograms of named groups, written as a figure dict (as latent_scatter_spec, and for the same
    reason)."""
    traces = [{"marker": {"color": PALETTE[i % 10]}, "name": name, "nbinsx": bins, "opacity": 0.6,
               "x": typed(values), "type": "histogram"} for i, (name, values) in enumerate(groups.items())]
    return {"data": traces, "layout": spec_layout(title, 320, barmode="overlay", xaxis={"title": {"text": x_title}},
                                                  yaxis={"title": {"text": "count"}})}


def histogram(groups: dict[str, np.ndarray], title: str = "", x_title: str = "", bins: int = 50,
              vline: float | None = None) -> go.Figure:
    """Overlaid histograms of named groups, with an optional vertical line (a threshold)."""
    fig = go.Figure(histogram_spec(groups, title, x_title, bins))
    if vline is not None:
        fig.add_vline(x=vline, line=dict(color="black", dash="dash"))
    return fig


def roc_figure(curves: dict[str, tuple[np.ndarray, np.ndarray, float]], title: str = "ROC curve") -> go.Figure:
    """ROC curves {name: (fpr, tpr, auroc)} with the chance diagonal."""
    fig = go.Figure([go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance", line=dict(dash="dot", color="gray"))])
    for i, (name, (fpr, tpr, auc)) in enumerate(curves.items()):
        fig.add_trace(go.Scatter(x=fpr, y=tpr, mode="lines", name=f"{name} (AUROC {auc:.3f})",
                                 line=dict(color=PALETTE[i % 10], width=2)))
    fig.update_xaxes(title="false positive rate", range=[0, 1])
    fig.update_yaxes(title="true positive rate", range=[0, 1])
    return _layout(fig, title, 360)


def line_chart(x, series: dict[str, np.ndarray], x_title: str, y_title: str, title: str = "",
               vline: float | None = None, log_x: bool = False) -> go.Figure:
    """Several named y-series over one x, with an optional marked x value."""
    fig = go.Figure()
    for i, (name, y) in enumerate(series.items()):
        fig.add_trace(go.Scatter(x=np.asarray(x), y=np.asarray(y), mode="lines+markers", name=name,
                                 line=dict(color=PALETTE[i % 10])))
    if vline is not None:
        fig.add_vline(x=vline, line=dict(color="black", dash="dash"))
    fig.update_xaxes(title=x_title, type="log" if log_x else "linear")
    fig.update_yaxes(title=y_title)
    return _layout(fig, title, 360)


def add_image_layer(fig: go.Figure, image, lo, hi, opacity: float = 0.6) -> go.Figure:
    """Lay a [0,1] grayscale image (e.g. a decoded latent grid) under a 2-D map over [lo, hi], dark on white."""
    fig.add_layout_image(image_layer(image, lo, hi, opacity))
    return fig


def add_prior_contours(fig: go.Figure, lo, hi, n: int = 60) -> go.Figure:
    """Filled contours of the prior N(0, I) density over [lo, hi], drawn beneath every other trace."""
    fig.add_trace(prior_contours(lo, hi, n))
    fig.data = (fig.data[-1], *fig.data[:-1])
    return fig


def points_3d(x, colour, title: str = "", height: int = 420) -> go.Figure:
    """3-D points (N, 3) coloured by a continuous value, e.g. the position along a swiss roll."""
    x = np.asarray(x)
    fig = go.Figure(go.Scatter3d(x=x[:, 0], y=x[:, 1], z=x[:, 2], mode="markers",
                                 marker=dict(size=2.5, color=np.asarray(colour), colorscale="Viridis",
                                             showscale=True, colorbar=dict(title="t")),
                                 hovertemplate="t=%{marker.color:.2f}<extra></extra>"))
    fig.update_layout(scene=dict(xaxis_title="x₁", yaxis_title="x₂", zaxis_title="x₃", aspectmode="cube"))
    return _layout(fig, title, height)


def xy_series(series: dict[str, tuple], x_title: str, y_title: str, title: str = "", log_x: bool = False,
              log_y: bool = False, height: int = 400) -> go.Figure:
    """Named series {name: (x, y, hover text)}, each with its own x, drawn as lines with markers."""
    fig = go.Figure()
    for i, (name, (x, y, text)) in enumerate(series.items()):
        fig.add_trace(go.Scatter(x=np.asarray(x), y=np.asarray(y), text=text, mode="lines+markers", name=name,
                                 line=dict(color=PALETTE[i % 10]), hovertemplate="%{text}<extra>" + name + "</extra>"))
    fig.update_xaxes(title=x_title, type="log" if log_x else "linear")
    fig.update_yaxes(title=y_title, type="log" if log_y else "linear")
    return _layout(fig, title, height)


def heat_rgb(values, vmax: float | None = None, scale: str = "Inferno") -> np.ndarray:
    """Values >= 0 as an RGB uint8 heat map (plotly's colour scale), 0 dark, vmax (default: the maximum) bright."""
    import plotly.colors as pc

    v = np.asarray(values, np.float64)
    vmax = float(vmax if vmax is not None else v.max()) or 1.0
    anchors = np.array([pc.hex_to_rgb(c) for c in getattr(pc.sequential, scale)], np.float64)
    t = np.clip(v / vmax, 0.0, 1.0) * (len(anchors) - 1)
    i = np.minimum(t.astype(int), len(anchors) - 2)
    rgb = anchors[i] + (t - i)[..., None] * (anchors[i + 1] - anchors[i])
    return rgb.round().astype(np.uint8)


def confusion_figure(counts: dict[str, int], title: str = "Confusion matrix") -> go.Figure:
    """The 2x2 table of true class (rows) against the detector's decision (columns), counts in the cells."""
    z = [[counts["tn"], counts["fp"]], [counts["fn"], counts["tp"]]]
    names = [["true negatives", "false positives"], ["false negatives", "true positives"]]
    fig = go.Figure(go.Heatmap(z=z, x=["passed as normal", "flagged"], y=["normal", "anomalous"], colorscale="Blues",
                               showscale=False, text=[[f"{n}<br>{k}" for n, k in zip(r, zr)] for r, zr in zip(names, z)],
                               texttemplate="%{text}", hovertemplate="%{y}, %{x}: %{z}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", title="true class")
    fig.update_xaxes(title="decision")
    return _layout(fig, title, 320)


def signal_figure(x, x_hat, errors, smoothed, threshold: float, spans, truth, title: str = "") -> go.Figure:
    """A signal and its reconstruction above the per-step error; detected spans shaded, injected steps marked."""
    from plotly.subplots import make_subplots

    t = np.arange(len(x))
    truth = np.asarray(truth, bool)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.6, 0.4], vertical_spacing=0.06)
    fig.add_trace(go.Scatter(x=t, y=x, name="signal", line=dict(color="#222222", width=1.5)), 1, 1)
    fig.add_trace(go.Scatter(x=t, y=x_hat, name="reconstruction", line=dict(color=PALETTE[0], width=2, dash="dot")), 1, 1)
    fig.add_trace(go.Scatter(x=t[truth], y=np.asarray(x)[truth], mode="markers", name="injected anomaly",
                             marker=dict(color=PALETTE[1], size=6)), 1, 1)
    fig.add_trace(go.Scatter(x=t, y=errors, name="error per step", line=dict(color="#bbbbbb", width=1)), 2, 1)
    fig.add_trace(go.Scatter(x=t, y=smoothed, name="smoothed error", line=dict(color=PALETTE[3], width=2)), 2, 1)
    fig.add_hline(y=threshold, line=dict(color="black", dash="dash"), row=2, col=1)
    for s, e in spans:
        fig.add_vrect(x0=s - 0.5, x1=e - 0.5, fillcolor=PALETTE[3], opacity=0.15, line_width=0)
    fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name="detected span",
                             marker=dict(symbol="square", size=12, color=PALETTE[3], opacity=0.3)), 1, 1)
    fig.update_xaxes(title="time step", row=2, col=1)
    fig.update_yaxes(title="value", row=1, col=1)
    fig.update_yaxes(title="squared error", row=2, col=1)
    return _layout(fig, title, 460)


def log_axis(values) -> dict:
    """The settings of a log axis over these values whose large and small numbers are all written as powers of
    ten (never 1B beside 10¹⁸).

    Labels sit only at 10^k (minor 2s and 5s confuse a class) when the data spans two powers of ten or more, at
    every few k beyond 8 of them (a diverging loss spans 20); within a narrower range plotly's own few ticks stay,
    else the axis would have one label or none.
    """
    values = [np.asarray(v, np.float64).ravel() for v in values if v is not None]
    values = np.concatenate(values) if values else np.zeros(0)
    values = values[np.isfinite(values) & (values > 0)]
    powers = np.floor(np.log10(values.max())) - np.ceil(np.log10(values.min())) if values.size else 0
    return {"exponentformat": "power", "type": "log", **({"dtick": int(np.ceil(powers / 8))} if powers >= 1 else {})}


def powers_of_ten(fig, axis: str = "y"):
    """log_axis on a figure's x or y axis, over its traces' values."""
    settings = log_axis([getattr(t, axis, None) for t in fig.data])
    (fig.update_yaxes if axis == "y" else fig.update_xaxes)(**settings)
    return fig


def shared_box(maps: list[tuple[str, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi): the box that holds every map's points, padded 5 %: small_multiples draws each map in it."""
    pts = [np.asarray(xy, np.float64).reshape(-1, 2) for _, xy, _ in maps]
    pts = np.concatenate(pts) if pts else np.zeros((1, 2))
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    pad = 0.05 * np.maximum(hi - lo, 1e-6)
    return lo - pad, hi + pad


def small_multiples(maps: list[tuple[str, np.ndarray, np.ndarray]], label_names=(), ncols: int = 5,
                    panel_px: int = 230) -> go.Figure:
    """One small latent map per (title, xy, labels), on shared axes, in rows of ncols: the class board's view.

    Drawn as ONE WebGL trace on one pair of (hidden) axes: every map is scaled by the same box (the range of all
    maps' points, so the axes are shared by construction) into its own cell of a grid, framed by a rectangle, with
    the origin's cross where the box holds it. A subplot per map made the browser lay out 60 axes with their ticks
    (most of the board's drawing time); as SVG, 30 maps of 400 points are 12,000 page elements to style. Coloured
    by class through a stepped colour scale, empty traces for the legend. Titles are text: escape them.
    """
    n = len(maps)
    ncols = max(1, min(ncols, n))
    nrows = max(1, -(-n // ncols))
    lo, hi = shared_box(maps)
    gap_x, gap_y = 0.12, 0.30  # between cells, in cell widths: room for a two-line title above each
    k = max(len(label_names), 1)
    steps = [[edge, PALETTE[c % 10]] for c in range(k) for edge in (c / k, (c + 1) / k)]
    colours = dict(colorscale=steps, cmin=-0.5, cmax=k - 0.5) if label_names else dict(colorscale="Viridis")
    xs, ys, cs, shapes, titles = [], [], [], [], []
    frame = dict(type="rect", line=dict(color="#c8c8c8", width=1), layer="below")
    cross = dict(type="line", line=dict(color="#e4e4e4", width=1), layer="below")
    for i, (title, xy, labels) in enumerate(maps):
        row, col = divmod(i, ncols)
        x0, y0 = col * (1 + gap_x), -row * (1 + gap_y)  # the cell's lower left corner
        u = (np.asarray(xy, np.float64).reshape(-1, 2) - lo) / (hi - lo)
        xs.append(x0 + u[:, 0])
        ys.append(y0 + u[:, 1])
        cs.append(np.asarray(labels, np.float64).reshape(-1))
        shapes.append(dict(frame, x0=x0, x1=x0 + 1, y0=y0, y1=y0 + 1))
        ox, oy = (0 - lo) / (hi - lo)
        if 0 < ox < 1:
            shapes.append(dict(cross, x0=x0 + ox, x1=x0 + ox, y0=y0, y1=y0 + 1))
        if 0 < oy < 1:
            shapes.append(dict(cross, x0=x0, x1=x0 + 1, y0=y0 + oy, y1=y0 + oy))
        titles.append(dict(text=title, x=x0 + 0.5, y=y0 + 1, xref="x", yref="y", xanchor="center", yanchor="bottom",
                           showarrow=False, font=dict(size=11)))
    data = [dict(type="scattergl", x=np.concatenate(xs) if xs else [], y=np.concatenate(ys) if ys else [],
                 mode="markers", showlegend=False, hoverinfo="skip",
                 marker=dict(size=3, color=np.concatenate(cs) if cs else [], opacity=0.8, **colours))]
    data += [dict(type="scatter", x=[None], y=[None], mode="markers", name=str(name),
                  marker=dict(size=8, color=PALETTE[c % 10])) for c, name in enumerate(label_names)]
    hidden = dict(visible=False, fixedrange=False)
    fig = go.Figure(data=data, layout=dict(
        xaxis=dict(hidden, range=[-0.02, ncols + (ncols - 1) * gap_x + 0.02]),
        yaxis=dict(hidden, range=[-(nrows - 1) * (1 + gap_y) - 0.12, 1 + gap_y * 0.95], scaleanchor="x"),
        shapes=shapes, annotations=titles, height=panel_px * nrows + 90, margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(orientation="h", y=1.0, yanchor="bottom", x=0, title=dict(text="class")),
        plot_bgcolor="white"))
    return fig


_TOP_LEGEND = dict(orientation="h", x=1, xanchor="right", y=1.0, yanchor="bottom", itemsizing="constant")


def feature_bars(names, series: dict[str, np.ndarray], y_title: str, hover: dict[str, list[str]] | None = None,
                 title: str = "", height: int = 320) -> go.Figure:
    """Feature vectors side by side, one group of bars per named feature (a table row and its reconstruction);
    hover: a text per bar and series (e.g. the value in the file's units)."""
    fig = go.Figure()
    for i, (name, v) in enumerate(series.items()):
        text = (hover or {}).get(name)
        fig.add_trace(go.Bar(x=list(names), y=np.asarray(v).reshape(-1), name=name, marker_color=PALETTE[i % 10],
                             customdata=text, hovertemplate=f"%{{x}}: %{{customdata}}<extra>{name}</extra>"
                             if text is not None else None))
    fig.update_layout(barmode="group", bargap=0.2, bargroupgap=0.05)
    fig.update_xaxes(tickangle=-45 if len(names) > 6 else 0, automargin=True)
    fig.update_yaxes(title=y_title, zeroline=True, zerolinecolor="#999")
    return _layout(fig, title, height).update_layout(legend=_TOP_LEGEND)


def feature_lines(names, series: dict[str, np.ndarray], y_title: str, title: str = "",
                  height: int = 320) -> go.Figure:
    """Many feature vectors per named series (k x D each) as lines over the features, one colour per series and
    lighter to darker in order (a path, a sweep): the vectors where bars would be a thicket."""
    fig = go.Figure()
    for i, (name, rows) in enumerate(series.items()):
        rows = np.asarray(rows).reshape(-1, len(names))
        for j, v in enumerate(rows):
            fig.add_trace(go.Scatter(x=list(names), y=v, mode="lines", name=name, legendgroup=name,
                                     showlegend=j == 0, opacity=0.3 + 0.7 * (j + 1) / len(rows),
                                     line=dict(color=PALETTE[i % 10], width=1.5),
                                     hovertemplate=f"%{{x}}: %{{y:.2f}}<extra>{name} {j + 1}/{len(rows)}</extra>"))
    fig.update_xaxes(tickangle=-45 if len(names) > 6 else 0, automargin=True)
    fig.update_yaxes(title=y_title, zeroline=True, zerolinecolor="#999")
    return _layout(fig, title, height).update_layout(legend=_TOP_LEGEND)
