"""Anomaly detection: train on normal digits only, flag what reconstructs badly; where that fails; time series."""
from __future__ import annotations

import numpy as np
import streamlit as st

import aeviz
from aeviz import analysis, plots
from aeviz.data import ANOMALY_TYPES
from aeviz.ui import state, training, widgets
from aeviz.uses import anomaly

KEY = "anomaly"  # training-job key of the one-class model
SERIES_KEY = "anomaly-signals"  # training-job key of a recurrent model for the signals, when none is pretrained
GROUPS = ("normal, passed", "normal, flagged (false alarm)", "anomaly, missed", "anomaly, caught")
PERCENTILE, VALUE = "at the p-th percentile of the normal training scores", "by value"
LATENTS = (2, 4, 8, 16, 32)


def render() -> None:
    """Draw the page."""
    st.title("Anomaly detection")
    state.explain("An autoencoder trained only on normal examples learns to reconstruct those well. Anything it "
                   "reconstructs badly is unusual, so the reconstruction error is an anomaly score: no labelled "
                   "anomalies are needed to train it.",
                   r"\text{score}(x) = \tfrac{1}{D}\,\lVert x - \hat{x} \rVert^2 \quad\text{flag } x "
                   r"\text{ if score}(x) > \tau")
    tabs = st.tabs(list(TABS), key="anomaly_tab", on_change="rerun")  # only the open tab runs: each costs seconds
    for tab, draw in zip(tabs, TABS.values()):
        if tab.open:
            with tab:
                draw()


# ---- Digits: one-class training, scores, threshold, ROC, mistakes --------------------------------------------

def _setup() -> tuple[aeviz.ModelConfig, aeviz.TrainConfig]:
    """The one-class set-up controls: which digits are normal, which model, how long."""
    c1, c2, c3, c4, c5 = st.columns([2, 1.2, 1, 1, 1])
    normal = c1.multiselect("Normal digit(s)", list(range(10)), default=[0], key="anomaly_normal",
                            help="The model trains on these training images only; every other digit is an anomaly.")
    kind = c2.radio("Model", ["autoencoder", "VAE"], horizontal=True, key="anomaly_kind",
                    help="A VAE can also score by its negative ELBO: reconstruction plus how unusual the code is.")
    arch = c3.selectbox("Architecture", ["mlp", "conv"], key="anomaly_arch")
    z = c4.select_slider("Latent size", LATENTS, value=8, key="anomaly_z")
    epochs = c5.number_input("Epochs", 1, 200, 20, key="anomaly_epochs")
    mc = aeviz.config_for("mnist", arch=arch, latent_dim=z, objective="variational" if kind == "VAE" else "vanilla",
                          **({"hidden": anomaly.CONV_HIDDEN} if arch == "conv" else {}))
    return mc, anomaly.one_class(normal or [0], epochs=int(epochs), batch_size=32)


def _digits_tab() -> None:
    state.explain("Pick the digit(s) that count as normal and train: the model sees only their 400 training "
                   "images each (a few seconds on a CPU; the page trains the default set-up, digit 0, on its own "
                   "when it opens). Then every one of the 1,000 test images gets a score. "
                   "On this task a convolutional VAE scored best in our benchmark (`aeviz bench anomaly`).")
    mc, tc = _setup()
    if not st.session_state.get("anomaly_normal"):
        st.warning("Pick at least one normal digit; digit 0 is used until you do.")
    data = state.dataset("mnist")
    n = int(np.isin(data.y_train.numpy(), tc.normal_classes).sum())
    name = f"one-class {''.join(map(str, tc.normal_classes))} {mc.objective} {mc.arch} z{mc.latent_dim}"
    training.train_with_progress(mc, tc, key=KEY, name=name, select=False, live_map=False,
                                 label=f"Train on the {n} normal training images", autostart=True)
    model = _one_class_model()
    if model is None:
        j = training.job(KEY)
        if j is None or not j.running:  # while it trains, the progress bar says enough
            st.info("Nothing trained yet: choose the normal digits and press the Train button.")
        return
    if model.has_prior:
        st.radio("Score", list(anomaly.SCORES), format_func=anomaly.SCORES.get, horizontal=True, key="anomaly_score",
                 help="Negative ELBO = reconstruction term + KL of the code to the prior: it also counts how "
                      "unusual the code is.")
    _score_view(_results())


def _one_class_model():
    """The model of the latest finished one-class training in this session, if any."""
    j = training.job(KEY)
    if j is None or j.model_key is None or j.model_key not in state.ids():
        return None
    return state.model(j.model_key)


def _results() -> dict | None:
    """Scores of the one-class model, computed once per model and score kind (kept in the session)."""
    model = _one_class_model()
    if model is None:
        return None
    j = training.job(KEY)
    kind = st.session_state.get("anomaly_score", "mse") if model.has_prior else "mse"
    return {**_score(j.model_key, j.tc.normal_classes, kind), "key": j.model_key}


@state.per_model(show_spinner="Scoring the test images…", max_entries=16)
def _score(model, normal, kind: str) -> dict:
    """Everything the views need: scores, reconstructions, the PCA baseline and a 2-D map of the codes."""
    from aeviz.train import training_set

    data = state.dataset("mnist")
    x = data.x_test.numpy()
    a = anomaly.is_anomaly(data.y_test.numpy(), normal)
    x_train = training_set(data, aeviz.TrainConfig(normal_classes=normal)).numpy()
    s = anomaly.scores(model, x, kind)
    k = model.config.latent_dim
    return {"normal": tuple(normal), "kind": kind, "scores": s, "train_scores": anomaly.scores(model, x_train, kind),
            "is_anomaly": a, "x": x, "x_hat": analysis.reconstruct(model, x), "y": data.y_test.numpy(),
            "roc": analysis.roc(s, a), "pca_roc": analysis.roc(anomaly.pca_scores(x_train, x, k), a), "pca_k": k,
            "xy": analysis.map_2d(analysis.embed(model, x)), "latent_dim": k}


@st.fragment
def _score_view(r: dict) -> None:
    """Everything that depends on the threshold; a slider change reruns only this."""
    unit = "nats" if r["kind"] == "nelbo" else "MSE per pixel"
    t = _threshold(r)
    c = anomaly.confusion(r["scores"], r["is_anomaly"], t)
    rates = anomaly.rates(c)
    m = st.columns(6)
    m[0].metric("AUROC", f"{r['roc'][2]:.3f}", help="Chance that a random anomaly scores higher "
                "than a random normal image: 1 is perfect, 0.5 is guessing. It does not depend on the threshold.")
    m[1].metric("AUROC of PCA", f"{r['pca_roc'][2]:.3f}",
                help=f"The linear baseline: reconstruction error after projecting on {r['pca_k']} principal "
                     f"components (as many as the code has numbers) of the same normal training images.")
    m[2].metric("Threshold τ", f"{t:.4g}")
    m[3].metric("Recall", _pct(rates["recall"]), help="Share of the anomalies that are flagged.")
    m[4].metric("False alarm rate", _pct(rates["fpr"]), help="Share of the normal images that are flagged.")
    m[5].metric("Precision", _pct(rates["precision"]), help="Share of the flagged images that are anomalies.")
    left, right = st.columns(2)
    with left:
        groups = {"normal test images": r["scores"][~r["is_anomaly"]], "anomalous test images": r["scores"][r["is_anomaly"]]}
        st.plotly_chart(_share_histogram(groups, "Anomaly scores of the test images", f"score ({unit})", t),
                        key="anomaly_hist")
        state.explain(f"Two overlapping piles, each scaled to 100 % ({len(groups['normal test images'])} normal, "
                       f"{len(groups['anomalous test images'])} anomalous images): the further apart, the better the "
                       "detector. The dashed line is the threshold: everything to its right is flagged.")
    with right:
        fig = plots.roc_figure({"autoencoder": r["roc"], "PCA baseline": r["pca_roc"]})
        plots.add_marker(fig, (rates["fpr"], rates["recall"]), "this threshold")
        st.plotly_chart(fig, key="anomaly_roc")
        state.explain("Each threshold is one point: false alarms against anomalies caught. The area under the "
                       "curve (AUROC) sums up all thresholds at once.",
                       r"\text{TPR} = \tfrac{TP}{TP+FN}, \quad \text{FPR} = \tfrac{FP}{FP+TN}")
    left, right = st.columns(2)
    with left:
        st.plotly_chart(plots.confusion_figure(c), key="anomaly_confusion")
        _per_digit(r, t)
    with right:
        _latent_map(r, t)
    _galleries(r, t)


def _share_histogram(groups: dict, title: str, x_title: str, t: float):
    """Histograms with each group scaled to 100 %, so a small normal group is as visible as the large other one."""
    fig = plots.histogram({k: v for k, v in groups.items() if len(v)}, title, x_title, vline=t)
    fig.update_traces(histnorm="percent")
    fig.update_yaxes(title="share of the group (%)")
    return fig


def _threshold(r: dict) -> float:
    """The threshold controls: by value or at a percentile of the normal training scores."""
    mode = st.radio("Set the threshold", [PERCENTILE, VALUE], horizontal=True, key="anomaly_mode")
    if mode == PERCENTILE:
        p = st.slider("Percentile p", 50.0, 100.0, 95.0, 0.5, key="anomaly_p",
                      help="τ is set so that p % of the normal training images score below it.")
        state.explain("Calibrated on the normal training images, as in practice (no anomaly labels needed). The "
                       "model has seen those images, so normal test images score a little higher: expect somewhat "
                       "more false alarms than 100 − p %.")
        return anomaly.percentile_threshold(r["train_scores"], p)
    s = r["scores"]
    lo, hi = float(s.min()), float(np.percentile(s, 99.5))
    lo, hi, step, fmt = widgets.slider_grid(lo, hi, 200)
    default = min(hi, anomaly.percentile_threshold(r["train_scores"], 95))
    return st.slider("Threshold τ", lo, hi, default, step, format=fmt,
                     key=f"anomaly_t::{r['key']}::{r['kind']}", help="Images scoring above τ are flagged.")


def _pct(v: float) -> str:
    return "–" if v != v else f"{100 * v:.1f} %"


def _per_digit(r: dict, t: float) -> None:
    flagged = r["scores"] > t
    rows = [{"digit": d, "normal": "yes" if d in r["normal"] else "no", "flagged": f"{100 * flagged[r['y'] == d].mean():.0f} %"}
            for d in range(10)]
    st.dataframe(rows, hide_index=True, height=388)
    state.explain("Share of each digit's test images flagged: anomalies that look like the normal digit slip through.")


def _latent_map(r: dict, t: float) -> None:
    group = np.where(r["is_anomaly"], np.where(r["scores"] > t, 3, 2), np.where(r["scores"] > t, 1, 0))
    axes = ("z₁", "z₂") if r["latent_dim"] <= 2 else ("principal component 1 of z", "principal component 2 of z")
    st.plotly_chart(plots.latent_scatter(r["xy"], group, GROUPS, "The anomalies on the latent map", axis_titles=axes,
                                         height=420), key="anomaly_map")
    state.explain("Each test image's code (first two principal components when z has more than two numbers). "
                   "The model only ever saw normal digits, yet other digits get codes too, often close by.")


def _galleries(r: dict, t: float) -> None:
    fp, fn = anomaly.worst_mistakes(r["scores"], r["is_anomaly"], t, n=12)
    err = anomaly.pixel_errors(r["x"], r["x_hat"])
    vmax = _vmax(err)
    st.subheader("The worst mistakes")
    state.explain("Each column: the test image, its reconstruction and the per-pixel squared error (bright = large); "
                   "under it, the true digit and the score. False positives are the normal images scored highest; "
                   "false negatives are the anomalies scored lowest.")
    for idx, what in ((fp, "false positives (normal, flagged)"), (fn, "false negatives (anomalies, missed)")):
        st.markdown(f"**Worst {what}**")
        if len(idx) == 0:
            st.caption("None at this threshold.")
            continue
        widgets.image([_column(r["x"][i], r["x_hat"][i], err[i], vmax) for i in idx], width=72,
                 caption=[f"{r['y'][i]} · {r['scores'][i]:.3g}" for i in idx])


def _vmax(err) -> float:
    """One brightness scale for a gallery: a big mistake must look big next to a small one."""
    return float(np.percentile(err.reshape(len(err), -1).max(1), 90))


def _column(x, x_hat, err, vmax: float) -> np.ndarray:
    """Input, reconstruction and error heat map stacked as one RGB picture."""
    grey = [np.repeat((plots.as_images(v[None])[0] * 255).astype(np.uint8)[..., None], 3, 2) for v in (x, x_hat)]
    heat = plots.heat_rgb(err.reshape(28, 28), vmax)
    gap = np.full((2, 28, 3), 255, np.uint8)
    return np.concatenate([grey[0], gap, grey[1], gap, heat])


# ---- Failure modes: inputs far from any digit ---------------------------------------------------------------

def _failures_tab() -> None:
    state.explain("A reconstruction-error detector only knows what it can reconstruct. Inputs far from every "
                   "digit should score high, but a model can reconstruct some of them well (a blank page is easy; "
                   "a model trained on all digits copes with many strokes), and then they pass as normal.")
    choices = _probe_models()
    if not choices:
        st.info("Train a one-class model on the Digits tab first: this tab probes it.")
        return
    which = st.radio("Model to probe", list(choices), horizontal=True, key="anomaly_probe_model")
    r = _results() if choices[which] is None else _general_results(choices[which])
    c1, c2 = st.columns([2, 1])
    letters = c1.text_input("Letters to try (up to 6)", "AKX", max_chars=6, key="anomaly_letters")
    with c2:
        drawing = _drawing()
    probes = anomaly.far_inputs(r["x"][~r["is_anomaly"]][0], "".join(ch for ch in letters if ch.isalnum()))
    if drawing is not None:
        probes["your drawing"] = drawing
    _probe_view(r, state.model(r["key"]), probes)


def _probe_models() -> dict[str, str | None]:
    """Models to probe: label -> key of a model trained on all digits, or None for the one-class model."""
    out: dict[str, str | None] = {}
    if _one_class_model() is not None:
        out[f"your one-class model (normal: {', '.join(map(str, training.job(KEY).tc.normal_classes))})"] = None
    keys = [state.current_id(), "ae-mlp-z16", *state.cards()]
    one_class = {j.model_key for j in [training.job(KEY)] if j is not None}
    general = next((k for k in keys if k in state.ids() and k not in one_class
                    and state.model(k).config.input_shape == (1, 28, 28)
                    and state.model(k).config.dataset == "mnist"), None)
    if general:
        out[f"{state.name(general)} (trained on all digits)"] = general
    return out


def _general_results(key: str) -> dict:
    """Scores of a model trained on every digit: all test digits are normal."""
    return {**_general_scores(key), "key": key}


@state.per_model(show_spinner="Scoring the test images…", max_entries=8)
def _general_scores(model) -> dict:
    data = state.dataset("mnist")
    x = data.x_test.numpy()
    return {"kind": "mse", "x": x, "is_anomaly": np.zeros(len(x), bool), "scores": anomaly.scores(model, x),
            "train_scores": anomaly.scores(model, data.x_train[:1000].numpy())}


def _drawing():
    with st.expander("Draw a letter (or anything else)"):
        return widgets.draw_digit("anomaly_draw", side=168)


@st.fragment
def _probe_view(r: dict, model, probes: dict[str, np.ndarray]) -> None:
    x = np.stack(list(probes.values()))[:, None]
    s = anomaly.scores(model, x, r["kind"])
    p = st.slider("Flag above the p-th percentile of the normal training scores", 50.0, 100.0, 95.0, 0.5,
                  key="anomaly_probe_p")
    t = anomaly.percentile_threshold(r["train_scores"], p)
    passed = [name for name, v in zip(probes, s) if v <= t]
    m = st.columns(3)
    m[0].metric("Far-away inputs", len(probes))
    m[1].metric("Passed as normal", len(passed))
    m[2].metric("Threshold τ", f"{t:.4g}")
    if passed:
        st.warning(f"Passed as normal at this threshold: {', '.join(passed)}. The model reconstructs them about as "
                   f"well as a normal digit, so their error cannot tell them apart.")
    x_hat = analysis.reconstruct(model, x)
    err = anomaly.pixel_errors(x, x_hat)
    widgets.image([_column(x[i], x_hat[i], err[i], _vmax(err)) for i in range(len(x))], width=84,
             caption=[f"{name} · {v:.3g}" for name, v in zip(probes, s)])
    normal = r["scores"][~r["is_anomaly"]]
    rows = [{"input": name, "score": float(v), "above % of normal test images": anomaly.percentile_of(v, normal),
             "decision": "flagged" if v > t else "passed as normal"} for name, v in zip(probes, s)]
    left, right = st.columns([5, 4])
    with left:
        st.dataframe(rows, hide_index=True,
                     column_config={"score": st.column_config.NumberColumn(format="%.4g"),
                                    "above % of normal test images": st.column_config.NumberColumn(
                                        "above % of normal", format="%.0f %%",  # short: 'decision' stays in view
                                        help="The share of the normal test images that score lower.")})
    with right:
        st.plotly_chart(_probe_figure(r, s, list(probes), t), key="anomaly_probe_hist")
    state.explain("Scores on a log scale. The blue pile is the normal test images, each labelled line one far-away "
                   "input, the dashed line the threshold. Lines left of it pass as normal.")


ROW_PX = 22  # height of a label row in the far-away inputs chart (13 px text on its white box)


def _probe_figure(r: dict, s, names, t: float):
    """Normal (and anomalous) test scores on a log scale, with a labelled line per far-away input."""
    log = lambda v: np.log10(np.maximum(v, 1e-8))
    groups = {"normal test images": log(r["scores"][~r["is_anomaly"]]),
              "anomalous test images": log(r["scores"][r["is_anomaly"]])}
    fig = _share_histogram(groups, "Far-away inputs against the normal scores", "log₁₀ score", float(log(t)))
    xs = [*log(s), *log(r["scores"])]
    lo, hi = min(xs) - 0.1, max(xs) + 0.15
    # One row per label, lowest score at the top: inputs with almost equal scores (letters K and X) have lines a
    # pixel apart, and labels beside them, upright or turned, ran into each other.
    height = 420 + ROW_PX * max(0, len(names) - 6)
    for rank, i in enumerate(np.argsort(log(s), kind="stable")):
        v, colour = float(log(s)[i]), plots.PALETTE[(i + 2) % 10]
        fig.add_vline(x=v, line=dict(color=colour, width=2))
        right = v > (lo + hi) / 2  # the label goes towards the middle, so it stays inside the plot
        fig.add_annotation(x=v, y=1, yref="paper", yshift=-rank * ROW_PX, text=names[i], showarrow=False,
                           yanchor="top", xanchor="right" if right else "left", xshift=-3 if right else 3,
                           font=dict(size=13, color=colour), bgcolor="rgba(255,255,255,0.85)")
    # Coarse bins bound the tallest bar from above, which stays below the rows of labels.
    peak = max(100 * np.histogram(v, 20)[0].max() / len(v) for v in groups.values() if len(v))
    labels = (ROW_PX * len(names) + 8) / (height - 105)  # the plot area is the figure less ~105 px of margins
    fig.update_xaxes(range=[lo, hi])
    fig.update_yaxes(range=[0, peak / (1 - labels)])
    fig.update_layout(height=height, legend=dict(orientation="h", yanchor="top", y=-0.25, x=0))
    return fig


# ---- Time series: anomalous spans in the signals ------------------------------------------------------------

SERIES_CONFIG = dict(arch="rnn", latent_dim=8, hidden=(64,))
# Measured: this GRU sits on a loss plateau for its first ~500 steps; with batch 32 and lr 3e-3 it leaves it by
# epoch 10 (hidden 64 with lr 5e-3, or 1,000 signals, stayed flat for 30 epochs; hidden 32 learned a worse model).
SERIES_TRAIN = dict(batch_size=32, lr=3e-3)


def _series_model() -> tuple[object, str] | tuple[None, None]:
    """(model, key) of the recurrent model picked: pretrained, or trained here on normal signals."""
    keys = sorted(n for n, c in state.cards().items() if c.config.dataset == "signals")
    picker = st.container()  # filled after the training panel, which stores a finished model on this run
    with st.expander("Train your own on the normal signals", expanded=not keys):
        epochs = st.slider("Epochs", 1, 60, 30, key="anomaly_series_epochs",
                           help="Recurrent nets learn slowly: below about 20 epochs the reconstruction stays flat.")
        training.train_with_progress(aeviz.config_for("signals", **SERIES_CONFIG),
                                     aeviz.TrainConfig(epochs=epochs, **SERIES_TRAIN),
                                     key=SERIES_KEY, name="signals rnn z8", select=False, live_map=False,
                                     label="Train a recurrent autoencoder")
    j = training.job(SERIES_KEY)
    if j is not None and j.model_key in state.ids():
        if st.session_state.get("anomaly_series_seen") != j.model_key:  # show a newly trained model at once
            st.session_state["anomaly_series_seen"] = st.session_state["anomaly_series_model"] = j.model_key
        keys.append(j.model_key)
    if not keys:
        picker.info("No recurrent model of the signals yet: train one below (about 4 minutes on a shared CPU).")
        return None, None
    key = picker.selectbox("Recurrent autoencoder", keys, format_func=state.describe, key="anomaly_series_model")
    return state.model(key), key


@state.per_model(show_spinner="Reconstructing the signals…", max_entries=4)
def _series_errors(model) -> dict:
    """Per-step errors of the test signals and of 500 normal training signals (to calibrate the threshold)."""
    data = state.dataset("signals")
    x = data.x_test.numpy()
    return {"errors": anomaly.step_errors(model, x), "x_hat": analysis.reconstruct(model, x)[..., 0],
            "train_errors": anomaly.step_errors(model, data.x_train[:500].numpy())}




def _series_tab() -> None:
    state.explain("A recurrent autoencoder read normal waveforms only. On the 1,000 test signals, about half carry "
                   "one injected anomaly (a spike, a level shift, a frequency change or a flat line). Steps it "
                   "reconstructs badly, for long enough, become detected spans.")
    model, key = _series_model()
    if model is None:
        return
    _series_view(_series_errors(key))


@st.fragment
def _series_view(r: dict) -> None:
    data = state.dataset("signals")
    y, truth = data.y_test.numpy(), data.extras["mask"].numpy()
    c = st.columns(4)
    d = anomaly.SPAN_DEFAULTS
    window = c[0].slider("Smoothing window (steps)", 1, 15, d["window"], key="anomaly_window")
    peak = float(np.percentile(anomaly.smooth(r["errors"], window).max(1), 99))
    lo, hi, step, fmt = widgets.slider_grid(0.0, peak, 200)
    default = min(hi, anomaly.series_threshold(r["train_errors"], window, d["percentile"]))
    t = c[1].slider("Threshold on the smoothed error", lo, hi, default, step, format=fmt,
                    key=f"anomaly_series_t::{window}",
                    help=f"Starts where {100 - d['percentile']} % of the normal training signals would raise an alarm "
                         "somewhere.")
    min_len = c[2].slider("Shortest span (steps)", 1, 20, d["min_len"], key="anomaly_min_len")
    gap = c[3].slider("Merge spans closer than (steps)", 0, 20, d["merge_gap"], key="anomaly_gap")
    rows = anomaly.span_report(r["errors"], truth, y, ANOMALY_TYPES, t, window, min_len, gap)
    total = rows[0]
    m = st.columns(4)
    m[0].metric("Event recall", _pct(total["event recall"]), help="Share of injected anomalies overlapped by a detected span.")
    m[1].metric("Event precision", _pct(total["event precision"]), help="Share of detected spans that overlap an injected anomaly.")
    m[2].metric("Point recall", _pct(total["point recall"]), help="Share of anomalous steps inside detected spans.")
    m[3].metric("Point precision", _pct(total["point precision"]), help="Share of steps inside detected spans that are anomalous.")
    _one_signal(r, data, y, truth, t, window, min_len, gap)
    st.dataframe([{k: (_pct(v) if isinstance(v, float) else v) for k, v in row.items()} for row in rows],
                 hide_index=True)
    state.explain("Per event, each injected anomaly counts once (from its first to its last labelled step); per "
                   "point, every time step counts. Spikes are single steps, so smoothing widens them into spans "
                   "and point precision drops while event recall stays high. 'signals flagged' is the share of "
                   "signals with at least one detected span: for normal signals, the false alarm rate. Flat lines are the "
                   "hardest: a flat stretch is easy to reconstruct, so its error stays low, the same failure mode "
                   "as the blank image on the digits tab.")


def _one_signal(r: dict, data, y, truth, t: float, window: int, min_len: int, gap: int) -> None:
    c1, c2 = st.columns([1, 2])
    kind = c1.selectbox("Anomaly type", ["any", *ANOMALY_TYPES], key="anomaly_type")
    idx = np.flatnonzero(y == ANOMALY_TYPES.index(kind)) if kind != "any" else np.arange(len(y))
    i = c2.select_slider("Test signal", idx.tolist(), key=f"anomaly_signal::{kind}")
    e = r["errors"][i]
    smoothed = anomaly.smooth(e, window)
    spans = anomaly.detect_spans(smoothed, t, min_len, gap)
    p, rec = anomaly.event_pr([spans], truth[i][None])
    st.plotly_chart(plots.signal_figure(data.x_test[i, :, 0].numpy(), r["x_hat"][i], e, smoothed, t, spans, truth[i],
                                        f"Signal #{i}: {ANOMALY_TYPES[y[i]]}, {len(spans)} span(s) detected"),
                    key="anomaly_signal_fig")
    verdict = ("a false alarm" if spans and y[i] == 0 else "correctly quiet" if y[i] == 0 else
               "found" if rec == 1 else "missed")
    st.caption(f"Signal #{i} ({ANOMALY_TYPES[y[i]]}): {verdict}; detected spans "
               f"{', '.join(f'{s}–{e - 1}' for s, e in spans) or 'none'}.")


# ---- Tables: a label says which rows are anomalies ------------------------------------------------------------

BUILT_IN = "breast-cancer"


def _anomaly_table(data) -> bool:
    """A table whose training rows are all normal and whose test rows carry anomalies (label 1)."""
    from aeviz.ui.pages.explorer import draw

    y_train, y_test = data.y_train.numpy(), data.y_test.numpy()
    return draw.kind(data) == "table" and y_train.dtype.kind in "iu" and (y_train == 0).all() and (y_test == 1).any()


def _table_choices() -> dict[str, str | None]:
    """label -> the id of a model to score (None: the built-in breast-cancer model trained on this tab)."""
    out: dict[str, str | None] = {"breast-cancer (built in): benign is normal, malignant the anomaly": None}
    r = state.current()
    if r is not None and state.config(r).dataset != BUILT_IN:
        data = state.dataset(state.config(r).dataset)
        if _anomaly_table(data):
            out[f"the sidebar's model {r.name} on its data"] = r.id
    return out


def _tables_tab() -> None:
    state.explain("A table where a label says which rows are anomalies. The autoencoder trains on normal rows only "
                   "and scores each test row by its reconstruction error; two baselines score the same rows: PCA's "
                   "reconstruction error with as many components as the code has numbers, and scikit-learn's "
                   "IsolationForest (random trees isolate unusual rows in fewer splits). breast-cancer: 257 benign "
                   "tumours train, 100 benign and all 212 malignant ones test (30 measurements each). Your own "
                   "table works too: read it in the Explorer's 'Your data' tab with an anomaly value and train.")
    choices = _table_choices()
    label = st.radio("Data", list(choices), key="anomaly_table_data") if len(choices) > 1 else next(iter(choices))
    model_id = choices[label]
    if model_id is None:  # seeded, so the same for every student: trained once per server and shared
        mc = aeviz.config_for(BUILT_IN, **anomaly.TABULAR_MODEL)
        tc = aeviz.TrainConfig(**anomaly.TABULAR_TRAIN, eval_every=0)
        r, seconds = state.quick_model(mc, tc, "the autoencoder of the 257 benign tumours")
        model_id = r.id
        st.caption(f"The autoencoder: {mc.label} {list(mc.hidden)}, {tc.epochs} epochs on the benign training "
                   f"tumours ({seconds:.0f} s, once for the whole class), the settings of `aeviz bench anomaly`.")
    _table_view(_table_scores(model_id))


@state.per_model(show_spinner="Scoring the test rows…", max_entries=8)
def _table_scores(model) -> dict:
    """Scores of the autoencoder, PCA and an IsolationForest on the test rows, and their ROC curves."""
    data = state.dataset(model.config.dataset)
    x_train, x, is_anomaly = data.x_train.numpy(), data.x_test.numpy(), data.y_test.numpy() > 0
    k = model.config.latent_dim
    s = {"autoencoder": anomaly.scores(model, x), f"PCA, {k} components": anomaly.pca_scores(x_train, x, k),
         "IsolationForest": anomaly.iforest_scores(x_train, x)}
    names = data.label_names if len(data.label_names) == 2 else ("normal", "anomaly")
    return {"scores": s, "roc": {m: analysis.roc(v, is_anomaly) for m, v in s.items()}, "is_anomaly": is_anomaly,
            "names": names, "n_train": len(x_train), "dataset": model.config.dataset}


def auroc_reading(aucs: dict[str, float]) -> str:
    """One sentence on what the AUROCs show: which method ranks the anomalies best, and by how much."""
    best = max(aucs, key=aucs.get)
    ae = aucs["autoencoder"]
    if best == "autoencoder":
        runner = max((m for m in aucs if m != best), key=aucs.get)
        return (f"Here the autoencoder ranks the anomalies best (AUROC {ae:.3f}, against {aucs[runner]:.3f} for "
                f"{runner}).")
    return (f"Here the autoencoder ({ae:.3f}) does not beat the simpler {best} ({aucs[best]:.3f}): on a few tidy "
            "measurements a linear or tree-based baseline is often enough.")


def _table_view(r: dict) -> None:
    normal, anomalous = r["names"]
    cols = st.columns(len(r["roc"]))
    for col, (method, (_, _, auc)) in zip(cols, r["roc"].items()):
        col.metric(f"AUROC · {method}", f"{auc:.3f}")
    st.markdown(auroc_reading({m: roc[2] for m, roc in r["roc"].items()}))
    left, right = st.columns(2)
    with left:
        st.plotly_chart(plots.roc_figure(r["roc"], f"ROC on {r['dataset']}: {anomalous} rows are the anomalies"),
                        key="anomaly_table_roc")
    with right:
        ae = r["scores"]["autoencoder"]
        groups = {f"{normal} test rows": ae[~r["is_anomaly"]], f"{anomalous} test rows": ae[r["is_anomaly"]]}
        st.plotly_chart(_share_histogram(groups, "The autoencoder's scores", "reconstruction error (MSE per value)",
                                         float(np.percentile(ae[~r["is_anomaly"]], 95))), key="anomaly_table_hist")
    state.explain(f"{int((~r['is_anomaly']).sum())} {normal} and {int(r['is_anomaly'].sum())} {anomalous} test rows; "
                   f"every method fit on the same {r['n_train']} {normal} training rows. The dashed line flags 5 % of "
                   f"the {normal} test rows. `aeviz bench anomaly` repeats the comparison over five seeds.")


TABS = {"Digits": _digits_tab, "Failure modes": _failures_tab, "Time series": _series_tab, "Tables": _tables_tab}
