"""Explorer views on one selected test sample: its code, latent sliders, a traversal grid, reconstructions."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from aeviz import analysis, plots
from aeviz.ui import state, widgets
from aeviz.ui.components import charts, latent
from aeviz.ui.pages.explorer import draw, link
from aeviz.ui.pages.explorer.latent_map import Ctx, span

MAX_SLIDERS = 8  # beyond this a panel of sliders stops being readable
PAD_CODES = 1500  # test codes drawn on the latent pad for orientation: enough to see the clusters, a few kB


def code_text(z) -> str:
    """A code as short numbers, e.g. (0.53, -1.20); long codes are cut after 16 values."""
    z = np.asarray(z).reshape(-1)
    more = f", … {len(z) - 16} more" if len(z) > 16 else ""
    return "(" + ", ".join(f"{v:.2f}" for v in z[:16]) + more + ")"


_RANGES = widgets.ContentMemo(64)  # test codes -> their slider ranges (a run asked three or four times)


def code_range(ctx: Ctx) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension slider ranges from the spread of the test codes, padded 10 % (read-only arrays)."""
    return _RANGES.get(ctx.z, _spread)


def _spread(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = np.percentile(z, 0.5, axis=0), np.percentile(z, 99.5, axis=0)
    pad = 0.1 * (hi - lo) + 1e-3
    return state.read_only(((lo - pad).astype(np.float64), (hi + pad).astype(np.float64)))


def ranked_dims(ctx: Ctx, idx: int) -> np.ndarray:
    """Latent dimensions by how much one standard deviation of each changes the decoded sample, largest first."""
    if ctx.z.shape[1] <= MAX_SLIDERS:
        return np.arange(ctx.z.shape[1])
    return _influence_order(ctx.ref, ctx.z[idx], ctx.z.std(0) + 1e-6)


@state.per_model(max_entries=256, copy=False)
def _influence_order(model, z: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return np.argsort(-analysis.dimension_influence(model, z, scale))


def selected_panel(ctx: Ctx, idx: int) -> None:
    """The selected sample, its reconstruction, error and code."""
    x = ctx.data.x_test[idx].numpy()
    x_hat = analysis.decode(ctx.model, ctx.z[idx][None])[0]
    name = _label(ctx, idx)
    st.markdown(f"**Test sample #{idx}** · {name} · reconstruction MSE {analysis.per_sample_mse(x[None], x_hat[None])[0]:.4f}")
    draw.pair(ctx.data, x, x_hat, key="ex_pair", size=112)
    st.caption(f"Its code z = {code_text(ctx.z[idx])}")


def _label(ctx: Ctx, idx: int) -> str:
    y = ctx.labels[idx]
    names = ctx.data.label_names
    if names:
        return f"class {names[int(y)]}"
    return "no label" if np.ptp(ctx.labels) == 0 else f"colour value {float(y):.2f}"


def render_sliders(ctx: Ctx, idx: int) -> None:
    """The decoder at a code you choose, starting at the selected code: a latent pad for a 2-D code, sliders beyond;
    both run the decoder in the browser while you drag and tell the server the code you let go of."""
    web = latent.web_model(ctx.ref) if ctx.kind != "points" else None  # a 3-D point is drawn by the server
    if web is None:
        st.subheader("Latent sliders")
        state.explain("Move a slider to change one coordinate of the code; the decoder redraws the sample.")
        st.fragment(_sliders)(ctx, idx)
        return
    two_d = ctx.z.shape[1] == 2
    st.subheader("Latent pad" if two_d else "Latent sliders")
    if state.frozen():  # the browser's pad has no disabled state: while the class is frozen it is not drawn
        st.caption(":material/lock: Locked while the teacher has frozen the class: the "
                   f"{'pad' if two_d else 'sliders'} come back when the demonstration ends.")
        return
    state.explain("Drag the point (or click the pad and use the arrow keys): it is the code z, on the same axes as "
                  "the map, and the decoder redraws the sample at every step, in your browser. Let go and the "
                  "page takes the new code." if two_d else
                  "Drag a slider (or use the arrow keys on it) to change one coordinate of the code: the decoder "
                  "redraws the sample at every step, in your browser. Let go and the page takes the new code.")
    latent.carry(web, "ex_pad" if two_d else "ex_zs")  # outside the fragment: a release does not resend the weights
    st.fragment(_pad if two_d else _component_sliders)(ctx, idx, web)


def _start_at_selection(key: str, ctx: Ctx, idx: int) -> None:
    """Put the component's point on the selected code when the selection or the model changes (not on its own reruns)."""
    mark = f"{ctx.key}::{idx}"
    if st.session_state.get(f"{key}::for") != mark:
        st.session_state[f"{key}::for"] = mark
        latent.move(key, "pad" if key == "ex_pad" else "sliders", ctx.z[idx])


def _pad(ctx: Ctx, idx: int, web) -> None:
    _start_at_selection("ex_pad", ctx, idx)
    lo, hi = span(ctx.z, ctx.is_vae)  # the map's axes
    every = max(1, len(ctx.z) // PAD_CODES)
    z = latent.latent_pad(web, key="ex_pad", x_range=(lo[0], hi[0]), y_range=(lo[1], hi[1]), z=ctx.z[idx],
                          codes=ctx.z[::every], labels=ctx.labels[::every] if ctx.data.label_names else None,
                          titles=["decoded from z"], size=300, image_size=140, carried=True)
    st.markdown(f"z = `{code_text(z)}`")


def _component_sliders(ctx: Ctx, idx: int, web) -> None:
    _start_at_selection("ex_zs", ctx, idx)
    dims = ranked_dims(ctx, idx)[:MAX_SLIDERS]
    if ctx.z.shape[1] > MAX_SLIDERS:
        st.caption(f"The {MAX_SLIDERS} of {ctx.z.shape[1]} dimensions that change the output most here; "
                   "the others stay at the selected code.")
    lo, hi = code_range(ctx)
    z = latent.latent_sliders(web, key="ex_zs", z=ctx.z[idx], lo=lo, hi=hi, dims=dims, titles=["decoded from z"],
                              image_size=140, carried=True)
    st.markdown(f"z = `{code_text(z)}`")


def _sliders(ctx: Ctx, idx: int) -> None:
    z = ctx.z[idx].astype(np.float64).copy()
    dims = ranked_dims(ctx, idx)[:MAX_SLIDERS]
    lo, hi = code_range(ctx)
    if ctx.kind == "image":
        sliders_box, image_box = st.columns(2)
    else:  # a line or a 3-D plot needs the column's full width: it goes above the sliders
        image_box, sliders_box = st.container(), st.container()
    with sliders_box.container(key="ex_sliders"):
        if ctx.z.shape[1] > MAX_SLIDERS:
            st.caption(f"The {MAX_SLIDERS} of {ctx.z.shape[1]} dimensions that change the output most here; "
                       "the others stay at the selected code.")
        for d in dims:
            low, high, step, fmt = widgets.slider_grid(float(lo[d]), float(hi[d]))
            key = link.slider_key(ctx, idx, d)  # a link or the teacher may have set it: no value= beside it
            st.session_state.setdefault(key, float(np.clip(z[d], low, high)))
            z[d] = st.slider(f"z{d + 1}", low, high, step=step, format=fmt, key=key, disabled=state.frozen())
    with image_box.container(key="ex_decoded"):
        x_hat = analysis.decode(ctx.model, z[None])[0]
        draw.sample(ctx.data, x_hat, "decoded from the sliders", key="ex_slider_sample", size=224)
        st.markdown(f"z = `{code_text(z)}`")
    link.save_point(ctx, idx, z)


def render_traversal(ctx: Ctx, idx: int) -> None:
    """Each row sweeps one latent dimension across ±2 standard deviations around the selected code."""
    state.explain("Each row starts from the selected code and moves one latent dimension from −2 to +2 standard "
                   "deviations of the test codes, keeping the others fixed. A dimension whose row changes smoothly "
                   "and meaningfully has learned a factor of variation (thickness, slant, width).",
                   r"z^{(d)}(t) = z + t\,\sigma_d\,e_d,\qquad t \in [-2, 2]")
    steps = st.slider("Steps per row", 5, 13, 9, key="ex_trav_steps", disabled=state.frozen())
    dims = ranked_dims(ctx, idx)[:MAX_SLIDERS]
    std = ctx.z.std(0)
    codes = np.concatenate([analysis.traversal(ctx.z[idx], [d], 2 * float(std[d]), steps) for d in dims])
    x_hat = analysis.decode(ctx.model, codes)
    names = ", ".join(f"z{d + 1}" for d in dims)
    if ctx.kind == "image":
        widgets.image(draw.mosaic(x_hat, steps, size=56), caption=f"Rows, top to bottom: {names}")
    elif ctx.kind == "signal":
        for d, rows in zip(dims[:4], x_hat.reshape(len(dims), steps, -1)[:4]):
            st.plotly_chart(draw.signal_figure({f"t={t:+.1f}": r for t, r in zip(np.linspace(-2, 2, steps), rows)},
                                                        height=200, title=f"sweeping z{d + 1}"), key=f"ex_trav_{d}")
    else:
        series = {f"z{d + 1}": rows for d, rows in zip(dims, x_hat.reshape(len(dims), steps, -1))}
        st.plotly_chart(draw.points_figure(ctx.data, series, height=420,
                                                    title="Each curve: the decoded points as one dimension sweeps"),
                        key="ex_trav_points")


def errors(ctx: Ctx) -> np.ndarray:
    """Reconstruction MSE of every test sample (from the zoo file when it holds them)."""
    err = state.view(ctx.ref, "errors")
    return err if err is not None else _errors(ctx.ref)


@state.per_model(copy=False)
def _errors(model) -> np.ndarray:
    x = state.dataset(model.config.dataset).x_test.numpy()
    return analysis.per_sample_mse(x, analysis.reconstruct(model, x))


def _order(err: np.ndarray, order_by: str) -> np.ndarray:
    """The 24 samples shown, in the chosen order."""
    return {"worst first": np.argsort(-err), "best first": np.argsort(err)}.get(order_by, np.arange(len(err)))[:24]


def warm_reconstructions(ctx: Ctx) -> None:
    """The default Reconstructions tab's pictures and histogram, made for every session (explorer.warm)."""
    err = errors(ctx)
    order = _order(err, "worst first")
    if ctx.kind == "image":
        _pairs(ctx.ref, ctx.data.x_test.numpy()[order], ctx.z[order])
    elif ctx.kind == "signal":
        _signal_pairs(ctx.ref, ctx.data.x_test.numpy()[order[:6]], ctx.z[order[:6]], _captions(err, order[:6]))
    _error_counts(ctx.ref, err)


def _captions(err: np.ndarray, order: np.ndarray) -> tuple[str, ...]:
    return tuple(f"#{i} · MSE {err[i]:.4f}" for i in order)


def render_reconstructions(ctx: Ctx) -> None:
    """Originals beside their reconstructions, best or worst first, each with its error."""
    state.explain("Each pair is a test sample (left) and what the autoencoder rebuilds from its code (right), "
                   "with the mean squared error per value. The worst ones show what the bottleneck throws away.",
                   r"\mathrm{MSE}(x, \hat x) = \frac{1}{D}\sum_{i=1}^{D} (x_i - \hat x_i)^2")
    err = errors(ctx)
    row = st.container(horizontal=True)  # one block, not three columns
    row.metric("mean test MSE", f"{err.mean():.4f}")
    row.metric("PSNR", f"{10 * np.log10(1 / max(err.mean(), 1e-12)):.1f} dB")
    order_by = row.radio("Order", ["worst first", "best first", "by index"], horizontal=True, key="ex_rec_order",
                        disabled=ctx.kind == "points" or state.frozen(),
                        help="Points are all drawn at once, coloured by their error.")
    # kept per model and order (state.memo): a rerun neither sorts the errors nor hashes the shown samples again
    order, captions = state.memo(ctx.ref, ("shown", order_by), lambda: _shown(err, order_by))
    if ctx.kind == "image":
        pairs = state.memo(ctx.ref, ("pairs", order_by),
                           lambda: _pairs(ctx.ref, ctx.data.x_test.numpy()[order], ctx.z[order]))
        st.image(pairs, caption=list(captions), width=120)
    else:
        _other_pairs(ctx, ctx.data.x_test.numpy()[order], order, captions, err)
    counts, edges = state.memo(ctx.ref, ("histogram",), lambda: _error_counts(ctx.ref, err))
    charts.histogram(key="ex_rec_hist", counts=counts, edges=edges, title="Reconstruction error over the test set",
                     x_title="MSE per sample")


def _shown(err: np.ndarray, order_by: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """The samples shown in this order, and their captions."""
    order = _order(err, order_by)
    return state.read_only(order), _captions(err, order)


def _other_pairs(ctx: Ctx, x: np.ndarray, order: np.ndarray, captions: tuple[str, ...], err: np.ndarray) -> None:
    if ctx.kind == "signal":
        figures = _signal_pairs(ctx.ref, x[:6], ctx.z[order[:6]], captions[:6])
        for row in range(0, 6, 2):
            cols = st.columns(2)
            for col, j in zip(cols, (row, row + 1)):
                col.plotly_chart(plots.checked(figures[j]), key=f"ex_rec_sig_{j}")
    elif ctx.kind == "table":
        draw.table_pairs(ctx.data, x[:4], analysis.decode(ctx.model, ctx.z[order[:4]]), captions[:4],
                         key="ex_rec_table")
        st.plotly_chart(draw.feature_errors(ctx.data, ctx.data.x_test.numpy(), analysis.decode(ctx.model, ctx.z)),
                        key="ex_rec_features")
    else:
        st.plotly_chart(_points_errors(ctx, err), key="ex_rec_points")


@state.per_model(max_entries=128, copy=False)
def _signal_pairs(model, x: np.ndarray, z: np.ndarray, captions: tuple[str, ...]) -> list[dict]:
    """Six signals, each with its reconstruction, as plotly's figure dicts (cached: a figure built with plotly's
    objects cost ~8 ms, and the signal model's Explorer built seven on every run, three times a picture model's)."""
    return [draw.signal_figure({"x": a, "x̂": b}, height=200, title=c).to_dict()
            for a, b, c in zip(x, analysis.decode(model, z), captions)]


@state.per_model(max_entries=128, copy=False)
def _pairs(model, x: np.ndarray, z: np.ndarray) -> list[bytes]:
    """Each sample beside its reconstruction, as data: URLs (cached: a rerun does not decode or encode them again)."""
    return [widgets.image_url(draw.mosaic(np.stack([a, b]), 2, size=56)) for a, b in zip(x, analysis.decode(model, z))]


@state.per_model(copy=False)
def _error_counts(model, err: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The error histogram's counts and bin edges (50 bins)."""
    return np.histogram(err, bins=50)


def _points_errors(ctx: Ctx, err: np.ndarray) -> go.Figure:
    x_hat = analysis.decode(ctx.model, ctx.z)
    fig = go.Figure(go.Scatter3d(x=x_hat[:, 0], y=x_hat[:, 1], z=x_hat[:, 2], mode="markers", name="reconstructions",
                                 marker=dict(size=3, color=err, colorscale="Viridis", showscale=True,
                                             colorbar=dict(title="MSE"))))
    fig.update_layout(height=460, margin=dict(l=0, r=0, t=30, b=0), title="Reconstructed points, coloured by error")
    return fig
