"""Live training panel: a background job per session, polled by a fragment (progress, every loss term, Stop).

Training runs in a thread owned by the student's session, so the page stays usable and Stop is an ordinary
button: the thread checks a flag after every step and keeps the weights trained so far. A fragment with
run_every polls the job; when the job ends it stores the model with state.add_session_model and reruns the app.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np
import streamlit as st

from aeviz import analysis, io, plots
from aeviz.config import ConfigError, ModelConfig, TrainConfig
from aeviz.data import Dataset, DatasetUnavailable
from aeviz.models import Autoencoder
from aeviz.train import History, Progress, train
from aeviz.ui import state

POLL_S = 0.5  # how often the page redraws a running job: smooth enough, cheap for the server
MAX_POINTS = 600  # per-step points kept for the live chart (older steps are thinned)
MAX_SNAPSHOTS = 60  # latent-map snapshots kept per training run


@dataclass
class Job:
    """One training run in a background thread; the thread writes, the page only reads."""

    mc: ModelConfig
    tc: TrainConfig
    data: Dataset
    name: str
    stop: threading.Event = field(default_factory=threading.Event)
    started: float = field(default_factory=time.perf_counter)
    step: int = 0
    total: int = 1
    epoch: int = 0
    steps: list[int] = field(default_factory=list)  # the steps the live chart shows
    terms: dict[str, list[float]] = field(default_factory=dict)  # loss term -> value at those steps
    history: dict = field(default_factory=dict)  # History.to_dict() copied at each epoch end
    snapshot_epochs: list[int] = field(default_factory=list)
    snapshots: list[np.ndarray] = field(default_factory=list)  # 2-D maps of the test set (PCA beyond 2-D)
    model: Autoencoder | None = None  # the live model from the first step on
    result: tuple[Autoencoder, History] | None = None
    error: str | None = None
    done: bool = False
    model_key: str | None = None  # the session key once stored
    thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """The thread is still training."""
        return not self.done

    def callback(self, p: Progress) -> bool:
        """Called by train() after every step (in the training thread); True asks it to stop."""
        self.model, self.step, self.total, self.epoch = p.model, p.step, p.total_steps, p.epoch
        stride = max(1, -(-p.total_steps // MAX_POINTS))
        if not p.epoch_end and (p.step % stride == 0 or p.step == 1):
            for k, v in p.terms.items():
                self.terms.setdefault(k, []).append(v)
            self.steps.append(p.step)
        if p.step == 1 and not p.epoch_end:
            self._snapshot(p.model, 0)
        if p.epoch_end:
            self.history = _copy_history(p.history)
            every = max(1, -(-self.tc.epochs // MAX_SNAPSHOTS))
            if p.epoch % every == 0 or p.epoch == self.tc.epochs:
                self._snapshot(p.model, p.epoch)
        return self.stop.is_set()

    def _snapshot(self, model: Autoencoder, epoch: int) -> None:
        was = model.training
        model.eval()
        xy = map_2d(analysis.embed(model, self.data.x_test), self.snapshots[-1] if self.snapshots else None)
        model.train(was)
        self.snapshots.append(xy)
        self.snapshot_epochs.append(epoch)

    def run(self) -> None:
        """The thread's body: train, then measure; any failure becomes one sentence."""
        try:
            model, hist = train(self.mc, self.tc, self.data, self.callback)
            x = self.data.x_test
            model.metrics = {"test_mse": float(analysis.per_sample_mse(x, analysis.reconstruct(model, x)).mean()),
                             "params": model.n_params, "epochs": len(hist.epochs),
                             "train_seconds": round(hist.seconds, 1)}
            if self.mc.objective == "variational":
                model.metrics["nelbo"] = float(analysis.negative_elbo(model, x).mean())
            model.history = hist.to_dict()
            self.history = model.history
            self.result = (model, hist)
        except (ConfigError, DatasetUnavailable) as err:
            self.error = str(err)
        except Exception as err:
            self.error = f"Training failed: {err}"
        finally:
            self.done = True


def _copy_history(h: History) -> dict:
    """A copy the page can read while the thread appends to the original."""
    d = h.to_dict()
    return {**d, "epochs": list(d["epochs"]), "train": {k: list(v) for k, v in d["train"].items()},
            "test": {k: list(v) for k, v in d["test"].items()}}


def map_2d(z: np.ndarray, previous: np.ndarray | None = None) -> np.ndarray:
    """Codes as a 2-D map: themselves when 2-D, else their first two principal components.

    Each component's sign follows the previous snapshot, so scrubbing through epochs does not flip the map.
    """
    if z.shape[1] == 1:
        return np.column_stack([z[:, 0], np.zeros(len(z), np.float32)])
    xy = analysis.project(z, "pca")
    if previous is not None and z.shape[1] > 2:
        xy = xy * np.where((xy * previous).sum(0) < 0, -1.0, 1.0).astype(np.float32)
    return xy


def start(key: str, mc: ModelConfig, tc: TrainConfig, data: Dataset | None = None, name: str | None = None) -> Job:
    """Start training in a background thread under key (one job per key and session)."""
    data = data or state.dataset(mc.dataset)
    job = Job(mc, tc, data, name or f"{mc.objective}-{mc.arch}-z{mc.latent_dim}")
    job.thread = threading.Thread(target=job.run, name=f"aeviz-train-{key}", daemon=True)
    st.session_state[_job_key(key)] = job
    job.thread.start()
    return job


def job(key: str) -> Job | None:
    """The latest training job under key in this session."""
    return st.session_state.get(_job_key(key))


def _job_key(key: str) -> str:
    return f"{key}::job"


def snapshots(model_key: str) -> tuple[list[int], np.ndarray] | None:
    """(epochs, K x N x 2 latent maps) recorded while this session trained the model, if any."""
    return st.session_state.get("latent_history", {}).get(model_key)


def _collect(j: Job, select: bool) -> bool:
    """Store a finished job's model in the session (once) and remember its latent history; True if new."""
    if j.model_key or j.result is None:
        return False
    model, _ = j.result
    j.model_key = state.add_session_model(j.name, model)
    if j.snapshots:
        st.session_state.setdefault("latent_history", {})[j.model_key] = (list(j.snapshot_epochs), np.stack(j.snapshots))
    if select:
        state.select_model(j.model_key)
    return True


def train_with_progress(mc: ModelConfig, tc: TrainConfig, data: Dataset | None = None, key: str = "train",
                        name: str | None = None, label: str = "Train", select: bool = True,
                        live_map: bool = True, autostart: bool = False) -> tuple[Autoencoder, History] | None:
    """A Train button plus, once pressed, live progress with Stop; returns (model, history) when done.

    The model is stored with state.add_session_model under `name` (and picked in the sidebar if select).
    autostart: start training at once on the first visit, for pages whose default model trains in seconds.
    While training, or before the first run, it returns None. The latest result stays returned on later runs.
    """
    j = job(key)
    busy = j is not None and j.running
    pressed = st.button(label, key=f"{key}::start", type="primary", disabled=busy, icon=":material/model_training:")
    if pressed or (autostart and j is None):
        j = start(key, mc, tc, data, name)
        busy = True
    if j is None:
        return None
    if busy:
        st.fragment(_live, run_every=POLL_S)(key, live_map, select)
        return None
    return _finished(j, key, select)


def _live(key: str, live_map: bool, select: bool) -> None:
    """Redrawn every POLL_S while the job runs; reruns the whole app once it ends."""
    j = job(key)
    if j is None:
        return
    if j.done:
        _collect(j, select)
        st.rerun()
    elapsed = time.perf_counter() - j.started
    loss = j.terms.get("loss", [float("nan")])[-1] if j.terms else float("nan")
    st.progress(min(1.0, j.step / max(1, j.total)),
                text=f"Epoch {max(1, j.epoch)} of {j.tc.epochs} · step {j.step} of {j.total} · "
                     f"loss {loss:.4g} · {elapsed:.0f} s")
    st.button("Stop", key=f"{key}::stop", icon=":material/stop:", on_click=j.stop.set,
              help="Stops after the current step and keeps the weights trained so far.")
    cols = st.columns(2 if live_map else 1)
    with cols[0]:
        st.plotly_chart(live_chart(j.steps, j.terms), key=f"{key}::live_loss")
    if live_map and j.snapshot_epochs:
        with cols[1]:
            st.plotly_chart(_snapshot_figure(j), key=f"{key}::live_map")


def live_chart(steps: list[int], terms: dict[str, list[float]]):
    """Every loss term per optimiser step, as far as the training thread has recorded all of them."""
    terms = dict(terms)  # the thread may be appending: work on a consistent length
    n = min([len(steps), *(len(v) for v in terms.values())])
    return plots.live_loss(steps[:n], {k: v[:n] for k, v in terms.items()})


def _snapshot_figure(j: Job):
    k = min(len(j.snapshots), len(j.snapshot_epochs)) - 1
    return plots.latent_scatter(j.snapshots[k], j.data.y_test.numpy(), j.data.label_names, height=320,
                                title=f"Latent map after epoch {j.snapshot_epochs[k]}",
                                axis_titles=_axis_titles(j.mc.latent_dim))


def _axis_titles(latent_dim: int) -> tuple[str, str]:
    return ("z₁", "z₂") if latent_dim <= 2 else ("principal component 1", "principal component 2")


def _finished(j: Job, key: str, select: bool) -> tuple[Autoencoder, History] | None:
    """The outcome of the latest job: one sentence, the loss curves and a download button."""
    if _collect(j, select) and select:
        st.rerun()  # the sidebar was drawn before this: show the new model everywhere
    if j.error:
        st.error(j.error)
        return None
    model, hist = j.result
    say = st.success if hist.status == "finished" else st.warning
    say(f"{hist.message} Stored in your session as “{j.model_key}”.")
    m = model.metrics
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("test MSE", f"{m['test_mse']:.4f}")
    c2.metric("epochs completed", m["epochs"])
    c3.metric("seconds", f"{hist.seconds:.1f}")
    c4.metric("parameters", f"{m['params']:,}")
    if hist.epochs:
        st.plotly_chart(plots.loss_curves(model.history, log_y=True), key=f"{key}::curves")
    st.download_button("Download the model (.safetensors)", key=f"{key}::download", icon=":material/download:",
                       data=lambda: io.to_bytes(model, model.metrics, model.history),
                       file_name=f"{j.name}.safetensors", mime="application/octet-stream",
                       help="Load it again later with the upload box; it stores the weights, config and loss history.")
    return j.result
