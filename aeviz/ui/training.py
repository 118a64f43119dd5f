"""Live training panel: a Train button, then progress, every loss term, the latent map and Stop.

The training itself runs in a worker process of the server's one JobPool (aeviz.jobs): at most as many at once
as there are cores, the rest queue in order, one per student. The page only reads the latest progress in a
fragment that polls every POLL_S; when the job ends the model joins the student's own models (state.add).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import streamlit as st

import aeviz
from aeviz import io, jobs, plots, zoo
from aeviz.config import ConfigError, ModelConfig, TrainConfig
from aeviz.data import DatasetUnavailable
from aeviz.models import Autoencoder
from aeviz.train import check_shape
from aeviz.ui import state

POLL_S = 0.5  # how often the page redraws a running job: smooth enough, cheap for the server


@st.cache_resource(show_spinner=False)
def pool() -> jobs.JobPool:
    """The server's one pool of training processes (stopped when the server exits)."""
    p = jobs.JobPool()
    jobs.shutdown_at_exit(p)
    return p


@dataclass
class Job:
    """This session's handle on a training it asked for; the work happens in a worker process."""

    id: str
    mc: ModelConfig
    tc: TrainConfig
    name: str
    model_key: str | None = None  # the model's id once it joined the student's models

    def status(self) -> jobs.JobStatus | None:
        """The latest progress (None if the server restarted since)."""
        return pool().status(self.id)

    @property
    def running(self) -> bool:
        """Queued or training."""
        s = self.status()
        return s is not None and not s.done

    def wait(self, timeout: float = 120.0) -> jobs.JobStatus | None:
        """Block until the job is done (for scripts and tests; pages poll instead)."""
        deadline = time.monotonic() + timeout
        while (s := self.status()) is not None and not s.done and time.monotonic() < deadline:
            time.sleep(0.05)
        return s


def start(key: str, mc: ModelConfig, tc: TrainConfig, name: str | None = None) -> Job | None:
    """Queue a training under key for this student; one sentence (and None) when it cannot start."""
    name = name or f"{mc.objective}-{mc.arch}-z{mc.latent_dim}"
    try:
        check_shape(mc, state.dataset(mc.dataset))
        job_id = pool().submit(state.token(), mc, tc, mc.dataset, name)
    except (ConfigError, DatasetUnavailable, jobs.JobError) as err:
        st.session_state[f"{key}::refused"] = str(err)
        return None
    st.session_state.pop(f"{key}::refused", None)
    j = st.session_state[_job_key(key)] = Job(job_id, mc, tc, name)
    return j


def job(key: str) -> Job | None:
    """The latest training job under key in this session."""
    return st.session_state.get(_job_key(key))


def _job_key(key: str) -> str:
    return f"{key}::job"


def snapshots(r: state.ModelRef | str) -> tuple[list[int], np.ndarray] | None:
    """(epochs, K x N x 2 latent maps) recorded while this session trained the model, if any."""
    return st.session_state.get("latent_history", {}).get(state.ref(r).id)


def _collect(j: Job, s: jobs.JobStatus, select: bool) -> bool:
    """Store a finished job's model with the student's models (once) and its latent history; True if new."""
    if j.model_key or s.result is None:
        return False
    model = aeviz.load(s.result, name=f"{j.name}.safetensors")
    r = state.add(j.name, model)
    j.model_key = r.id
    if s.snapshots:
        st.session_state.setdefault("latent_history", {})[r.id] = (list(s.snapshot_epochs), np.stack(s.snapshots))
    if select:
        state.select(r)
    return True


def train_with_progress(mc: ModelConfig, tc: TrainConfig, key: str = "train", name: str | None = None,
                        label: str = "Train", select: bool = True, live_map: bool = True,
                        autostart: bool = False) -> Autoencoder | None:
    """A Train button plus, once pressed, live progress with Stop; returns the trained model when done.

    The model joins the student's own models under `name` (and is picked in the sidebar if select).
    autostart: start training at once on the first visit, for pages whose default model trains in seconds.
    While training, or before the first run, it returns None. The latest result stays returned on later runs.
    """
    j = job(key)
    busy = j is not None and j.running
    pressed = st.button(label, key=f"{key}::start", type="primary", disabled=busy, icon=":material/model_training:")
    if pressed or (autostart and j is None and f"{key}::refused" not in st.session_state):
        j = start(key, mc, tc, name) or j
        busy = j is not None and j.running
    if st.session_state.get(f"{key}::refused"):
        st.error(st.session_state[f"{key}::refused"])
    if j is None:
        return None
    if busy:
        st.fragment(_live, run_every=POLL_S)(key, live_map, select)
        return None
    return _finished(j, key, select)


def _live(key: str, live_map: bool, select: bool) -> None:
    """Redrawn every POLL_S while the job runs; reruns the whole app once it ends."""
    j = job(key)
    s = j.status() if j else None
    if s is None:
        return
    if s.done:
        _collect(j, s, select)
        st.rerun()
    if s.state == "queued":
        st.progress(0.0, text=f"Waiting for a free training slot: you are number {s.position} in the queue. "
                              "It starts on its own.")
    else:
        loss = s.terms["loss"][-1] if s.terms.get("loss") else float("nan")
        st.progress(min(1.0, s.step / max(1, s.total)),
                    text=f"Epoch {max(1, s.epoch)} of {s.tc.epochs} · step {s.step} of {s.total} · "
                         f"loss {loss:.4g} · {s.seconds:.0f} s")
    st.button("Stop", key=f"{key}::stop", icon=":material/stop:", on_click=pool().stop, args=(j.id,),
              help="Stops after the current step and keeps the weights trained so far.")
    cols = st.columns(2 if live_map else 1)
    with cols[0]:
        if not (s.steps and s.terms):  # no trace yet: a figure dict without data makes plotly raise
            st.caption("The loss chart appears after the first optimiser step.")
        else:
            st.plotly_chart(plots.checked(_unless_same(f"{key}::loss_fig", (j.id, len(s.steps)),
                                                       lambda: live_chart(s.steps, s.terms))), key=f"{key}::live_loss")
    if live_map and s.snapshot_epochs:
        with cols[1]:
            st.plotly_chart(plots.checked(_unless_same(f"{key}::map_fig", (j.id, len(s.snapshots)),
                                                       lambda: _snapshot_figure(s))),
                            key=f"{key}::live_map")


def _unless_same(slot: str, signature: tuple, build) -> dict:
    """The figure dict that build() writes, rebuilt only when its data changed: most polls find nothing new."""
    kept = st.session_state.get(slot)
    if kept is None or kept[0] != signature:
        kept = st.session_state[slot] = (signature, build())
    return kept[1]


def live_chart(steps: list[int], terms: dict[str, list[float]]):
    """Every loss term per optimiser step (as far as every term has arrived)."""
    n = min([len(steps), *(len(v) for v in terms.values())])
    return plots.live_loss_spec(steps[:n], {k: v[:n] for k, v in terms.items()})


def _snapshot_figure(s: jobs.JobStatus):
    k = min(len(s.snapshots), len(s.snapshot_epochs)) - 1
    data = state.dataset(s.dataset)
    return plots.latent_scatter_spec(s.snapshots[k], data.y_test.numpy(), data.label_names, height=320,
                                     title=f"Latent map after epoch {s.snapshot_epochs[k]}",
                                     axis_titles=_axis_titles(s.mc.latent_dim))


def _axis_titles(latent_dim: int) -> tuple[str, str]:
    return ("z₁", "z₂") if latent_dim <= 2 else ("principal component 1", "principal component 2")


def _finished(j: Job, key: str, select: bool) -> Autoencoder | None:
    """The outcome of the latest job: one sentence, the model card's figures, the loss curves, a download."""
    s = j.status()
    if s is None:
        if j.model_key is None:
            st.info("The server restarted while this model trained; press Train to start again.")
            return None
    elif _collect(j, s, select) and select:
        st.rerun()  # the sidebar was drawn before this: show the new model everywhere
    if s is not None and s.error:
        st.error(s.error)
        return None
    if j.model_key is None or j.model_key not in state.ids():
        return None
    model = state.model(j.model_key)
    status = model.history.get("status", "finished") if getattr(model, "history", None) else "finished"
    message = model.history.get("message", "") if getattr(model, "history", None) else ""
    say = st.success if status == "finished" else st.warning
    say(f"{message or (s.message if s else '')} Kept as “{state.name(j.model_key)}”: pick it in the sidebar on "
        "any page.")
    m = model.metrics
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("test MSE", f"{m['test_mse']:.4f}")
    c2.metric("epochs completed", m["epochs"])
    c3.metric("seconds", f"{m['train_seconds']:.1f}")
    c4.metric("parameters", f"{m['params']:,}")
    if model.history.get("epochs"):
        st.plotly_chart(plots.loss_curves(model.history, log_y=True), key=f"{key}::curves")
    st.download_button("Download the model (.safetensors)", key=f"{key}::download", icon=":material/download:",
                       data=lambda: io.to_bytes(model, model.metrics, model.history),
                       file_name=f"{j.name}.safetensors", mime="application/octet-stream",
                       help="Load it again later with the upload box; it stores the weights, config and loss history.")
    notebook_button(model, f"{j.name}.safetensors", key=f"{key}::notebook")
    return model


def notebook_button(model: Autoencoder, checkpoint: str, key: str) -> None:
    """"Export as a notebook": the .ipynb tutorial that trains this model again, built only when clicked."""
    from aeviz import export, workspace

    stem = workspace.sanitize(checkpoint, ".safetensors")
    st.download_button("Export as a notebook (.ipynb)", key=key, icon=":material/description:",
                       data=lambda: export.notebook_bytes(model, checkpoint, stem, zoo.ZOO), file_name=f"{stem}.ipynb",
                       mime="application/x-ipynb+json",
                       help="A short tutorial to take home: it loads the same data, builds the same config, trains "
                            "with the same seed, then draws the latent map and reconstructions (Jupyter or VS Code).")

