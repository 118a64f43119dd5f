"""Explorer views that walk or sample the latent space: interpolation, VAE sampling and the beta ladder."""
from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from aeviz import analysis, losses, plots
from aeviz.ui import state, widgets
from aeviz.ui.components import latent
from aeviz.ui.pages.explorer import draw
from aeviz.ui.pages.explorer.latent_map import Ctx, span
from aeviz.ui.pages.explorer.views import code_text
from aeviz.uses import compare

BETA_LADDER = ("vae-mlp-z2-b0.5", "vae-mlp-z2", "vae-mlp-z2-b4", "vae-mlp-z2-b10")
SLERP = (r"\mathrm{slerp}(z_0, z_1; t) = \frac{\sin((1-t)\,\Omega)}{\sin\Omega}\,z_0 + "
         r"\frac{\sin(t\,\Omega)}{\sin\Omega}\,z_1,\qquad \cos\Omega = \frac{z_0\cdot z_1}{\lVert z_0\rVert\,\lVert z_1\rVert}")
ELBO = (r"\log p(x) \;\ge\; \underbrace{\mathbb{E}_{q(z\mid x)}\big[\log p(x\mid z)\big]}_{-\text{reconstruction}}"
        r" \;-\; \beta\,\underbrace{\mathrm{KL}\big(q(z\mid x)\,\|\,\mathcal{N}(0, I)\big)}_{\text{KL}}")
REPARAM = r"z = \mu(x) + \sigma(x) \odot \varepsilon,\qquad \varepsilon \sim \mathcal{N}(0, I)"


def first_of_class(ctx: Ctx, cls: int) -> int:
    """The first test sample with a label (0 when none has it)."""
    hits = np.flatnonzero(ctx.labels == cls)
    return int(hits[0]) if len(hits) else 0


def render_interpolation(ctx: Ctx, idx: int) -> None:
    """Walk in a straight line (or along the sphere) between two codes and decode every step."""
    state.explain("Pick two test samples; their codes are joined by a path and every point on it is decoded. "
                   "Linear interpolation walks the straight line; spherical (slerp) keeps the code's length, which "
                   "stays where a VAE's prior puts its mass in many dimensions.", SLERP)
    st.fragment(_interpolation)(ctx, idx)


def _pick_pair(ctx: Ctx, idx: int) -> tuple[int, int]:
    n = len(ctx.z)
    by = st.radio("Choose the two ends", ["by class", "by index"], horizontal=True, key="ex_int_by", disabled=state.frozen(),
                  help="By index: the first end starts as the image selected on the map.")
    c1, c2 = st.columns(2)
    if by == "by class" and ctx.data.label_names:
        names = list(ctx.data.label_names)
        a = c1.selectbox("From a", names, index=3 % len(names), key="ex_int_ca", disabled=state.frozen())
        b = c2.selectbox("to a", names, index=8 % len(names), key="ex_int_cb", disabled=state.frozen())
        return first_of_class(ctx, names.index(a)), first_of_class(ctx, names.index(b))
    a = c1.number_input("From test sample #", 0, n - 1, min(idx, n - 1), key=f"ex_int_a::{idx}",
                       disabled=state.frozen())
    b = c2.number_input("to test sample #", 0, n - 1, (idx + 1) % n, key="ex_int_b", disabled=state.frozen())
    return int(a), int(b)


def _interpolation(ctx: Ctx, idx: int) -> None:
    a, b = _pick_pair(ctx, idx)
    c1, c2 = st.columns(2)
    method = c1.radio("Path", ["linear", "spherical"], horizontal=True, key="ex_int_method", disabled=state.frozen())
    steps = c2.slider("Steps", 3, 15, 9, key="ex_int_steps", disabled=state.frozen())
    path = analysis.interpolate(ctx.z[a], ctx.z[b], steps, method)
    caption = f"#{a} → #{b}, {method}, {steps} steps"
    web = _web(ctx)
    z_t = None
    if web is not None:  # the stops and a scrubber along the path, decoded in the browser
        t = latent.latent_path(web, key="ex_int_t", start=ctx.z[a], end=ctx.z[b], method=method, steps=steps,
                               titles=["decoded at t"], image_size=140, thumb_size=56)
        z_t = analysis.path_point(ctx.z[a], ctx.z[b], t, method)
        st.caption(f"{caption} · drag t along the path: at t = {t:.2f}, z = {code_text(z_t)}")
    elif ctx.kind == "image":
        widgets.image(draw.mosaic(analysis.decode(ctx.model, path), steps, size=84), caption=caption)
    elif ctx.kind == "signal":
        x_hat = analysis.decode(ctx.model, path)
        st.plotly_chart(draw.signal_figure({f"t={t:.2f}": r for t, r in zip(np.linspace(0, 1, steps), x_hat)}),
                        key="ex_int_sig")
    else:
        st.plotly_chart(draw.points_figure(ctx.data, {"decoded path": analysis.decode(ctx.model, path)}),
                        key="ex_int_pts")
    st.plotly_chart(_path_map(ctx, path, a, b, z_t), key="ex_int_map")


def _web(ctx: Ctx):
    """The model as the browser runs it, for samples the browser can draw (images and lines), else None; None too
    while the class is frozen: the browser's views have no disabled state, so the server draws the pictures."""
    return latent.web_model(ctx.ref) if ctx.kind != "points" and not state.frozen() else None


def _path_map(ctx: Ctx, path: np.ndarray, a: int, b: int, z_t: np.ndarray | None = None):
    """The path on the latent map (codes themselves for 2-D latents, else the PCA map: it can place new points),
    with the scrubber's point on it."""
    points = path if z_t is None else np.vstack([path, z_t[None]])
    if ctx.z.shape[1] <= 2:
        xy, points_xy, titles = analysis.map_2d(ctx.z), analysis.map_2d(points), ("z₁", "z₂")
    else:
        pca = _code_pca(ctx.ref)
        xy, points_xy = pca.transform(ctx.z), pca.transform(points)
        titles = ("principal component 1 of the codes", "principal component 2")
    fig = plots.latent_scatter(xy, ctx.labels, ctx.data.label_names, axis_titles=titles, height=420,
                               title="The path through the latent space")
    plots.add_path(fig, points_xy[:len(path)], name=f"#{a} → #{b}")
    if z_t is not None:
        plots.add_path(fig, points_xy[len(path):], name="t", color=plots.PALETTE[3])
    return fig


def render_sampling(ctx: Ctx, idx: int) -> None:
    """Samples from the prior, the ELBO of the selected sample, and the beta ladder."""
    state.explain("A variational autoencoder learns codes that look like draws from a standard normal prior, so "
                   "decoding fresh draws z ~ N(0, T²I) gives new samples. The temperature T shrinks or widens the "
                   "draws: low T gives typical, blurry samples, high T strays where no training code lives.", REPARAM)
    if not ctx.is_vae:
        st.info("Sampling needs a variational autoencoder: a plain autoencoder has no prior over its codes, so "
                "random codes land in the holes between its clusters. Pick a vae-… model in the sidebar.")
    else:
        st.fragment(_samples)(ctx)
        _elbo(ctx, idx)
    _beta_ladder()


def _samples(ctx: Ctx) -> None:
    web = _web(ctx)
    c1, c2 = st.columns([3, 1])
    if web is None:
        temperature = c1.slider("Temperature T", 0.1, 2.0, 1.0, 0.1, key="ex_temp", disabled=state.frozen())
    if c2.button("New samples", key="ex_resample", icon=":material/casino:", disabled=state.frozen()):
        st.session_state["ex_seed"] = st.session_state.get("ex_seed", 0) + 1
    seed = st.session_state.get("ex_seed", 0)
    eps = torch.randn(24, ctx.model.config.latent_dim, generator=torch.Generator().manual_seed(seed))  # as sample()
    if web is not None:  # the same 24 draws, redrawn by the browser while T moves
        with c1:
            temperature = latent.temperature_grid(web, key="ex_temp_grid", eps=eps.numpy(), temperature=1.0,
                                                  t_max=2.0, cols=8, titles=[""], image_size=56)
    with torch.no_grad():
        x = ctx.model.decode(temperature * eps).numpy()
    if web is None:
        _draw_many(ctx, x, f"24 samples at T = {temperature:.1f}")
    else:
        st.caption(f"24 samples at T = {temperature:.2f}: the same draws ε for every T, decoded as z = T·ε")


def _draw_many(ctx: Ctx, x: np.ndarray, caption: str) -> None:
    if ctx.kind == "image":
        widgets.image(draw.mosaic(x, 8, size=56), caption=caption)
    elif ctx.kind == "signal":
        st.plotly_chart(draw.signal_figure({f"sample {i}": s for i, s in enumerate(x[:6])}, title=caption),
                        key="ex_samples_sig")
    else:
        st.plotly_chart(draw.points_figure(ctx.data, {caption: x}), key="ex_samples_pts")


def _elbo(ctx: Ctx, idx: int) -> None:
    """The two terms of the selected sample's negative ELBO, and its KL per latent dimension."""
    st.markdown(f"**The evidence lower bound of test sample #{idx}**")
    state.explain("Training maximises the ELBO: reconstruct x well from a code drawn from q(z|x), while keeping "
                   "q(z|x) close to the prior. The KL term is what fills the holes a plain autoencoder leaves.", ELBO)
    x = ctx.data.x_test[idx: idx + 1]
    with torch.no_grad():
        _, extras = ctx.model.posterior(ctx.model.shape(x))
    mu, logvar = extras["mu"][0].numpy(), extras["logvar"][0].numpy()
    kl_dims = losses.kl_normal(extras["mu"][:1], extras["logvar"][:1], per_dim=True)[0].numpy()
    nelbo = float(analysis.negative_elbo(ctx.model, x, samples=16)[0])
    c1, c2, c3 = st.columns(3)
    c1.metric("−ELBO (nats)", f"{nelbo:.1f}")
    c2.metric("reconstruction −log p(x|z)", f"{nelbo - kl_dims.sum():.1f}")
    c3.metric("KL(q(z|x) ‖ N(0,I))", f"{kl_dims.sum():.2f}")
    st.bar_chart({"KL per latent dimension (nats)": kl_dims}, x_label="latent dimension (0-based)", height=200)
    st.caption(f"Posterior mean μ = {_short(mu)}, standard deviation σ = {_short(np.exp(0.5 * logvar))}")


def _short(v: np.ndarray) -> str:
    return "(" + ", ".join(f"{x:.2f}" for x in v[:8]) + (", …" if len(v) > 8 else "") + ")"


def _beta_ladder() -> None:
    """The zoo's 2-D VAEs side by side: samples and latent maps for beta = 0.5, 1, 4, 10."""
    cards = state.cards()
    if not all(n in cards for n in BETA_LADDER):
        return
    st.subheader("The β ladder: how hard the codes are pulled towards the prior")
    rungs = [compare.ladder_rung(cards[n].config, cards[n].metrics, state.model(n).history)
             for n in BETA_LADDER]
    state.explain("Four VAEs that differ only in β, the weight of the KL term. " + compare.beta_reading(rungs)
                  + " On the maps, the blue contours are the prior: see how closely each model's codes fill it.")
    for col, name in zip(st.columns(len(BETA_LADDER)), BETA_LADDER):
        with col:
            _ladder_column(name)


def _ladder_column(name: str) -> None:
    card = state.cards()[name]
    model = state.model(name)
    data = state.dataset(card.config.dataset)
    st.markdown(f"**β = {card.config.beta:g}** · `{name}`")
    mse = card.metrics.get("test_mse")
    if mse is not None:
        st.caption(f"test MSE {mse:.4f}")
    x = model.sample(16, 1.0, torch.Generator().manual_seed(0)).numpy()
    widgets.image(draw.mosaic(x, 4, size=48), caption="16 samples at T = 1")
    z = state.codes(name)
    lo, hi = span(z, True)
    fig = plots.latent_scatter(z, data.y_test.numpy(), data.label_names, height=300)
    plots.add_prior_contours(fig, lo, hi)
    fig.update_xaxes(range=[lo[0], hi[0]])
    fig.update_yaxes(range=[lo[1], hi[1]])
    fig.update_layout(showlegend=False)
    st.plotly_chart(fig, key=f"ex_ladder_{name}")


@state.per_model
def _code_pca(model):
    """Two principal components of the test codes: they can place new points, such as a path, on the map."""
    return analysis.fit_pca(analysis.embed(model, state.dataset(model.config.dataset).x_test), 2)
