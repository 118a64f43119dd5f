"""Training in worker processes: at most AEVIZ_WORKERS at once, one fresh process per job, a queue for the rest.

How, and why (scripts/measure_jobs.py on the shared 2-core machine, load ~2):
- One process per job, started when a slot frees. A fresh worker has torch and aeviz after 1.0 s, scikit-learn
  and the digits after 2.1 s, and torch._dynamo (which the first torch.optim optimizer imports) after 3.2 s: the
  first step comes 3.3 s after submit. Then it trains at 96 % of in-process speed (MNIST MLP: 10,600 vs 11,100
  samples/s; the worker also draws the latent snapshots), and the server's reader thread spends ~1 ms of CPU per
  second of training. A reused pool would save the 3 s but not its failure mode: ProcessPoolExecutor marks
  itself broken when one worker is killed (`kill -9`, the OOM killer): every queued and running job failed with
  BrokenProcessPool, and so did the next submit.
- The worker is started with subprocess (`python -c`), not multiprocessing's spawn (nor ProcessPoolExecutor or
  torch.multiprocessing, which use it): Streamlit installs the page script as `__main__`, and spawn re-runs
  `__main__` in every child, so each worker would execute the whole app in bare mode (observed: the page's own
  submit ran again inside the worker and failed). Everything else is multiprocessing's: a socket-pair
  Connection per job and `multiprocessing.connection.wait` over all of them.
- Stop is a message down the job's pipe that the worker polls after each step (no shared lock that a killed
  worker could leave held). If the server dies, the worker reads end-of-file on the same pipe and exits.
- Each worker leads a session of its own (a scheduling group of its own under autogroups, lowered with it: see
  _lower_priority), so a terminal's Ctrl-C or hang-up reaches the server alone: on Ctrl-C (or SIGTERM) it stops
  its workers; killed (a hang-up: Streamlit does not handle SIGHUP), its workers end at their next look at the
  pipe, after the current step (or the data's load, or the final metrics: seconds).
- ONE reader thread in the server waits on every running job's pipe, applies the progress messages (the worker
  sends at most ~10 a second, thinned to MAX_POINTS steps and MAX_SNAPSHOTS latent maps) to the job's record,
  notices ended workers and starts queued jobs in submission order. The page only copies the latest record.
- Only plain numbers, numpy maps and the safetensors bytes of the trained model cross the pipe; configs travel
  as JSON. The worker's environment gets one OpenMP/MKL thread that sleeps when idle (aeviz.threads) before
  Python starts, so torch starts with them.

Never imports streamlit.
"""
from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from multiprocessing import Pipe
from multiprocessing.connection import Connection, wait
from pathlib import Path

import numpy as np

from . import threads
from .config import ConfigError, ModelConfig, TrainConfig, from_dict, to_json
from .data import DatasetUnavailable

MAX_POINTS = 600  # per-step points kept for the live chart (the worker thins them)
MAX_SNAPSHOTS = 60  # latent-map snapshots kept per training run
SEND_EVERY_S = 0.1  # the worker sends at most ~10 progress messages a second (epoch ends ride along)
GRACE_S = 1.0  # shutdown: how long terminated workers get before they are killed
REAP_S = 5.0  # how long an ended worker may take to exit after closing its pipe
KEEP_DONE_S = 3600.0  # a done job's record (and result bytes) is dropped after an hour if nobody forgot it
STATES = ("queued", "running", "finished", "stopped", "failed")

BUSY = "You already have a training running; stop it or wait for it to finish."
DIED = "The training process stopped unexpectedly ({why}); nothing else was affected — press Train to try again."
CLOSED = "The server is shutting down; press Train again once it is back."


class JobError(RuntimeError):
    """A job cannot be submitted; the message is one sentence for the student."""


@dataclass
class JobSpec:
    """What a job is: who asked for which model, trained how, on which data."""

    id: str
    owner: str
    name: str
    mc: ModelConfig
    tc: TrainConfig
    dataset: str


@dataclass
class JobStatus(JobSpec):
    """A snapshot of one job, safe to read while the worker goes on (the lists are copies; nothing writes it)."""

    state: str  # one of STATES; "finished" also when the loss diverged (history["status"] == "diverged")
    position: int | None  # 1-based place in the queue while queued, else None
    step: int
    total: int
    epoch: int
    steps: list[int]  # the optimiser steps the live chart shows (at most MAX_POINTS)
    terms: dict[str, list[float]]  # loss term -> its value at those steps
    history: dict  # History.to_dict() as of the last epoch end
    snapshot_epochs: list[int]  # 0 is the map after the first step
    snapshots: list[np.ndarray]  # (N_test, 2) maps of the test codes, sign-aligned to the previous one
    message: str  # train's sentence when done ("Trained 2 epochs in 1.2 s.", "Stopped at epoch 3; ...")
    error: str | None  # one sentence when failed
    result: bytes | None  # the trained model as .safetensors bytes (metrics and history inside) when done
    metrics: dict
    seconds: float  # since the worker started (0 while queued)
    pid: int | None  # the worker's process id while it runs
    worker: dict  # what the worker reported about itself: torch threads and OpenMP/MKL settings
    started_at: float | None  # time.time() when the worker started
    ended_at: float | None  # time.time() when the job ended

    @property
    def done(self) -> bool:
        """Finished, stopped or failed: nothing more will change."""
        return self.state in ("finished", "stopped", "failed")


@dataclass
class _Job(JobSpec):
    """The parent's record of one job; the reader thread writes it under the pool's lock."""

    state: str = "queued"
    step: int = 0
    total: int = 1
    epoch: int = 0
    steps: list[int] = field(default_factory=list)
    terms: dict[str, list[float]] = field(default_factory=dict)
    history: dict = field(default_factory=dict)
    snapshot_epochs: list[int] = field(default_factory=list)
    snapshots: list[np.ndarray] = field(default_factory=list)
    message: str = ""
    error: str | None = None
    result: bytes | None = None
    metrics: dict = field(default_factory=dict)
    worker: dict = field(default_factory=dict)
    started: float | None = None  # perf_counter
    started_at: float | None = None
    ended_at: float | None = None
    proc: subprocess.Popen | None = None
    conn: Connection | None = None

    @property
    def done(self) -> bool:
        return self.state in ("finished", "stopped", "failed")

    def end(self, state: str, message: str = "", error: str | None = None) -> None:
        self.state, self.message, self.error, self.ended_at = state, message, error, time.time()


def default_workers() -> int:
    """AEVIZ_WORKERS if set to a positive number, else the number of cores."""
    value = os.environ.get("AEVIZ_WORKERS", "").strip()
    return max(1, int(value)) if value.isdigit() and int(value) > 0 else threads.cores()


class JobPool:
    """At most `workers` trainings at once, each in a fresh worker process; more wait in a queue.

    One running or queued job per owner (a student's token). Thread-safe: every method may be called from any
    Streamlit script thread.
    """

    def __init__(self, workers: int | None = None):
        self.workers = max(1, workers or default_workers())
        self.reader_cpu_s = 0.0  # CPU seconds the parent's reader thread has used (progress costs the server)
        self._lock = threading.Lock()
        self._jobs: dict[str, _Job] = {}
        self._queue: deque[str] = deque()
        self._running: dict[Connection, _Job] = {}
        self._exiting: list[tuple[subprocess.Popen, float]] = []  # done workers still exiting (reader only)
        self._closed = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._reader = threading.Thread(target=self._read, name="aeviz-jobs-reader", daemon=True)
        self._reader.start()

    # ----- the page's side -----

    def submit(self, owner: str, mc: ModelConfig, tc: TrainConfig, dataset_name: str | None = None,
               name: str | None = None) -> str:
        """Queue a training of mc with tc on a registered dataset (default mc.dataset); return its job id.

        It starts at once when a slot is free. Raises JobError when owner already has a queued or running job.
        """
        job = _Job(uuid.uuid4().hex, owner, name or f"{mc.objective}-{mc.arch}-z{mc.latent_dim}", mc, tc,
                   dataset_name or mc.dataset)
        with self._lock:
            if self._closed:
                raise JobError(CLOSED)
            if any(j.owner == owner and not j.done for j in self._jobs.values()):
                raise JobError(BUSY)
            for old in [j.id for j in self._jobs.values() if j.owner == owner]:  # keep one result per owner
                del self._jobs[old]
            now = time.time()
            for old in [j.id for j in self._jobs.values() if j.done and now - j.ended_at > KEEP_DONE_S]:
                del self._jobs[old]
            self._jobs[job.id] = job
            self._queue.append(job.id)
            self._fill()
            self._wake()
        return job.id

    def status(self, job_id: str) -> JobStatus | None:
        """A snapshot of the job, or None when the id is unknown (another server run, or forgotten)."""
        with self._lock:
            j = self._jobs.get(job_id)
            if j is None:
                return None
            position = self._queue.index(j.id) + 1 if j.state == "queued" else None
            if j.started_at is None:
                seconds = 0.0
            elif j.done:
                seconds = j.ended_at - j.started_at
            else:
                seconds = time.perf_counter() - j.started
            return JobStatus(
                j.id, j.owner, j.name, j.mc, j.tc, j.dataset, j.state, position, j.step, j.total, j.epoch,
                list(j.steps), {k: list(v) for k, v in j.terms.items()}, j.history, list(j.snapshot_epochs),
                list(j.snapshots), j.message, j.error, j.result, dict(j.metrics), seconds,
                j.proc.pid if j.proc is not None and not j.done else None, dict(j.worker), j.started_at, j.ended_at)

    def latest(self, owner: str) -> str | None:
        """The id of owner's latest job (running, queued or done), e.g. after the page was reloaded."""
        with self._lock:
            ids = [j.id for j in self._jobs.values() if j.owner == owner]
        return ids[-1] if ids else None

    def stop(self, job_id: str) -> None:
        """Stop after the current step and keep the weights trained so far; a queued job just leaves the queue."""
        with self._lock:
            j = self._jobs.get(job_id)
            if j is None or j.done:
                return
            if j.state == "queued":
                self._queue.remove(j.id)
                j.end("stopped", "Stopped before it started.")
                return
            _send(j.conn, "stop")

    def forget(self, job_id: str) -> None:
        """Drop a finished job's record (its result bytes) once the page has taken them; running jobs stay."""
        with self._lock:
            j = self._jobs.get(job_id)
            if j is not None and j.done:
                del self._jobs[job_id]

    def shutdown(self, grace: float = GRACE_S) -> None:
        """Stop every worker now: queued jobs are dropped, running ones terminated (killed after grace seconds).

        Idempotent; returns once every worker has exited. No job can be submitted afterwards.
        """
        with self._lock:
            self._closed = True
            for jid in self._queue:
                self._jobs[jid].end("stopped", error=CLOSED)
            self._queue.clear()
            running = list(self._running.values())
            for j in running:
                if not j.done:
                    j.end("failed", error=CLOSED)
                j.proc.terminate()
            for proc, _ in list(self._exiting):  # done, still tearing down: no need to wait for that
                proc.terminate()
            self._wake()
        deadline = time.monotonic() + grace
        for j in running:
            _reap(j.proc, max(0.0, deadline - time.monotonic()))
        self._reader.join(timeout=REAP_S)

    # ----- the reader thread -----

    def _wake(self) -> None:
        """Make the reader look again at the running jobs (under the lock)."""
        with contextlib.suppress(BlockingIOError):  # already woken: the pipe is full of wake-ups
            os.write(self._wake_w, b"x")

    def _fill(self) -> None:
        """Start queued jobs, oldest first, while slots are free (under the lock)."""
        while self._queue and len(self._running) < self.workers and not self._closed:
            j = self._jobs[self._queue.popleft()]
            parent, child = Pipe(duplex=True)  # a socket pair: messages both ways, EOF when either side dies
            try:
                j.proc = subprocess.Popen([sys.executable, "-c", WORKER, str(child.fileno())], env=_worker_env(),
                                          pass_fds=[child.fileno()], stdin=subprocess.DEVNULL,
                                          start_new_session=True)  # its own scheduling group: _lower_priority
                _lower_priority(j.proc.pid)
                parent.send({"mc": to_json(j.mc), "tc": to_json(j.tc), "dataset": j.dataset})
            except OSError as err:  # no memory or processes left: this job fails, the pool goes on
                j.end("failed", error=f"Training could not start ({err}); press Train to try again.")
                parent.close()
                if j.proc is not None:
                    _reap(j.proc, 0)
                continue
            finally:
                child.close()
            j.state, j.started, j.started_at = "running", time.perf_counter(), time.time()
            j.conn = parent
            self._running[parent] = j

    def _read(self) -> None:
        while True:
            with self._lock:
                if self._closed and not self._running:
                    break
                conns = list(self._running)
            ready = wait([self._wake_r, *conns], timeout=0.2 if self._exiting else None)
            t0 = time.thread_time()
            for r in ready:
                if r == self._wake_r:
                    os.read(self._wake_r, 4096)
                    continue
                with self._lock:
                    j = self._running[r]
                try:
                    while r.poll():
                        self._apply(j, r.recv())
                except (EOFError, OSError):
                    self._ended(j)
            with self._lock:
                self._fill()
            self._exiting = [(p, t) for p, t in self._exiting if not _reaped(p, t)]
            self.reader_cpu_s += time.thread_time() - t0
        for p, _ in self._exiting:
            _reap(p, REAP_S)

    def _apply(self, j: _Job, msg: dict) -> None:
        """One message from a worker: progress, done or error."""
        with self._lock:
            if j.done:  # stopped by shutdown meanwhile
                return
            kind = msg["kind"]
            if kind == "hello":
                j.worker = msg["worker"]
            elif kind == "progress":
                j.step, j.total, j.epoch = msg["step"], msg["total"], msg["epoch"]
                j.steps.extend(msg["steps"])
                for k, v in msg["terms"].items():
                    j.terms.setdefault(k, []).extend(v)
                if msg.get("history"):
                    j.history = msg["history"]
                for epoch, xy in msg["snapshots"]:
                    j.snapshot_epochs.append(epoch)
                    j.snapshots.append(xy)
            elif kind == "done":
                j.history, j.metrics, j.result = msg["history"], msg["metrics"], msg["result"]
                j.end("stopped" if msg["status"] == "stopped" else "finished", msg["message"])
            elif kind == "error":
                j.end("failed", error=msg["error"])

    def _ended(self, j: _Job) -> None:
        """The worker's pipe closed: reap the process; a job that never said it was done failed."""
        with self._lock:
            self._running.pop(j.conn, None)  # its slot is free now
            said_goodbye = j.done
        j.conn.close()
        if said_goodbye:  # it is tearing down torch: reap it later instead of holding up the other jobs
            self._exiting.append((j.proc, time.monotonic() + REAP_S))
            return
        _reap(j.proc, REAP_S)  # it died without a word, so it is exiting now: its return code says how
        with self._lock:
            if not j.done:
                j.end("failed", error=DIED.format(why=_why(j.proc.returncode)))


def _send(conn: Connection | None, msg) -> None:
    try:
        if conn is not None:
            conn.send(msg)
    except (OSError, ValueError):  # the worker is gone or the pipe closed: nothing to stop
        pass


def _reap(proc: subprocess.Popen, timeout: float) -> None:
    """Wait up to timeout seconds for the worker to exit, then kill it (Popen.wait is safe from two threads)."""
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:  # closed its pipe but hangs, or ignores SIGTERM: it will not report again
        proc.kill()
        proc.wait()


def _reaped(proc: subprocess.Popen, deadline: float) -> bool:
    """Whether a worker that said goodbye has exited; one that lingers past deadline is killed."""
    if proc.poll() is not None:
        return True
    if time.monotonic() > deadline:
        _reap(proc, 0)
        return True
    return False


def _why(returncode: int | None) -> str:
    if returncode is not None and returncode < 0:
        sig = -returncode
        if sig == signal.SIGKILL:
            return "killed"
        return signal.Signals(sig).name if sig in signal.valid_signals() else f"signal {sig}"
    return f"exit code {returncode}"


def _worker_env() -> dict[str, str]:
    """The server's environment, plus one OpenMP/MKL thread that sleeps when idle (unless set otherwise), and
    this aeviz on the path whether or not it is installed."""
    env = dict(os.environ)
    for var, value in threads.LIMITS:
        env.setdefault(var, value)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([root, env["PYTHONPATH"]]) if env.get("PYTHONPATH") else root
    return env


def _metrics(model, data) -> dict:
    """The model card of a trained model: every figure a zoo model has. (jobs is the one core module that may import
    the zoo, for this: the worker measures what it trained, as `aeviz train` and `aeviz pretrain` do.)"""
    from .zoo import trained_card

    return trained_card(model, data)


# ----- the worker process -----


class _ParentGone(Exception):
    """The server closed its end of the pipe: the worker just exits."""


class _Reporter:
    """train()'s callback in the worker: thins and batches progress, sends it at most every SEND_EVERY_S."""

    def __init__(self, conn: Connection, tc: TrainConfig, x_test):
        self.conn, self.tc, self.x_test = conn, tc, x_test
        self.steps: list[int] = []
        self.terms: dict[str, list[float]] = {}
        self.snapshots: list[tuple[int, np.ndarray]] = []
        self.previous: np.ndarray | None = None
        self.sent = 0.0
        self.sent_step = 0
        self.new_epoch = False  # an epoch ended since the last message: send the history along
        self.stop = False
        self.last = None  # the latest Progress
        # epoch 0 (after the first step), every `every`-th epoch and the last: at most MAX_SNAPSHOTS maps
        self.every = max(1, -(-tc.epochs // (MAX_SNAPSHOTS - 2)))

    def __call__(self, p) -> bool:
        self.last = p
        self._listen()
        stride = max(1, -(-p.total_steps // MAX_POINTS))
        if not p.epoch_end:
            if (p.step - 1) % stride == 0:
                for k, v in p.terms.items():
                    self.terms.setdefault(k, []).append(v)
                self.steps.append(p.step)
            if p.step == 1:
                self._snapshot(p.model, 0)
        else:
            self.new_epoch = True
            if p.epoch % self.every == 0 or p.epoch == self.tc.epochs:
                self._snapshot(p.model, p.epoch)
        now = time.perf_counter()
        if p.step == 1 or now - self.sent >= SEND_EVERY_S:  # epoch ends ride along with the next message
            self._send_progress(p)
            self.sent = now
        return self.stop

    def flush(self) -> None:
        """Send what the throttle held back (the last steps before a stop or the end)."""
        p = self.last
        if p is not None and (self.steps or self.snapshots or self.new_epoch or p.step != self.sent_step):
            self._send_progress(p)

    def _listen(self) -> None:
        try:
            while self.conn.poll():
                if self.conn.recv() == "stop":
                    self.stop = True
        except (EOFError, OSError) as err:
            raise _ParentGone from err

    def _snapshot(self, model, epoch: int) -> None:
        from .analysis import embed, map_2d

        was = model.training
        model.eval()  # the VAE would otherwise draw z (and consume the training RNG) while encoding
        xy = map_2d(embed(model, self.x_test), self.previous)
        model.train(was)
        self.previous = xy
        self.snapshots.append((epoch, xy))

    def _send_progress(self, p) -> None:
        h = p.history.to_dict() if self.new_epoch else None
        if h is not None:  # a copy: the History goes on growing here
            h = {**h, "epochs": list(h["epochs"]), "train": {k: list(v) for k, v in h["train"].items()},
                 "test": {k: list(v) for k, v in h["test"].items()}}
        msg = {"kind": "progress", "step": p.step, "total": p.total_steps, "epoch": p.epoch, "steps": self.steps,
               "terms": self.terms, "history": h, "snapshots": self.snapshots}
        self.steps, self.terms, self.snapshots, self.sent_step, self.new_epoch = [], {}, [], p.step, False
        try:
            self.conn.send(msg)
        except OSError as err:
            raise _ParentGone from err


WORKER = "import sys; from aeviz.jobs import _main; _main(int(sys.argv[1]))"  # `python -c WORKER FD`


def _main(fd: int) -> None:
    """A worker process: read the job from the pipe on fd, train, answer on the same pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the terminal is for the server, which stops us
    _lower_priority()
    conn, code = Connection(fd), 1
    try:
        spec = conn.recv()
        _work(conn, from_dict(ModelConfig, json.loads(spec["mc"])), from_dict(TrainConfig, json.loads(spec["tc"])),
              spec["dataset"])
        code = 0
    except (EOFError, OSError):  # the server went away before we started
        code = 0
    finally:  # the answer is sent: skip the interpreter's teardown, which took ~1 s of CPU after a training
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _lower_priority(pid: int = 0) -> None:
    """Trainings yield the CPU to the class. By default a worker runs under Linux's SCHED_IDLE: it gets a core only
    while no student's rerun (nor anything else) wants one, so a busy class's clicks never wait for an epoch and a
    training takes what is left; at niceness 10, three trainings still doubled a 30-student class's p95
    (`aeviz bench class`). AEVIZ_WORKER_NICE=N runs workers at niceness N instead (0: as the server).

    Policy and niceness rank threads within one scheduling group, and with autogroups (Linux's default on desktops,
    and on this machine) every session is a group and the groups share the CPU equally: a SCHED_IDLE training in the
    server's session still took its group's half of two cores from another session's busy processes (a teacher's
    browser, another replica, the bench's Chromium), 1.0 cores against 0.06 in a group of its own. So the pool
    starts each worker in a session of its own, and its group gets niceness 19 (or AEVIZ_WORKER_NICE) too.

    pid: the process to lower (0: this one). The server lowers each worker as it starts it, so that the worker's
    own start (importing torch: a second of CPU) does not compete with the class either; the worker does it again."""
    nice = os.environ.get("AEVIZ_WORKER_NICE", "").strip()
    _lower_group(pid, nice or "19", tries=1 if pid else 5)
    if not nice and hasattr(os, "SCHED_IDLE"):
        try:
            os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0))
            return
        except OSError:
            pass
    try:
        level = max(0, int(nice or "10"))
        os.setpriority(os.PRIO_PROCESS, pid, max(level, os.getpriority(os.PRIO_PROCESS, pid)))
    except (OSError, ValueError):
        pass


def _lower_group(pid: int, nice: str, tries: int = 1) -> None:
    """The autogroup of `pid`'s session to niceness `nice`, only if that session is its own (else the group holds
    the server, or whoever ran us): without autogroups, or with any other error, nothing. Without CAP_SYS_ADMIN the
    kernel takes one such write every 100 ms in the whole system and refuses the others (EAGAIN): the worker, which
    lowers itself again as it starts, tries `tries` times 110 ms apart (the server, under the pool's lock, once)."""
    pid = pid or os.getpid()
    try:
        target = max(0, min(19, int(nice)))
        if os.getsid(pid) != pid:
            return
    except (OSError, ValueError):
        return
    for attempt in range(tries):
        if _group_nice(pid) in (None, target):
            return
        try:
            Path(f"/proc/{pid}/autogroup").write_text(str(target))
            return
        except BlockingIOError:  # EAGAIN: another group was set less than 100 ms ago
            if attempt + 1 < tries:
                time.sleep(0.11)
        except OSError:
            return


def autogroups() -> bool:
    """Whether this kernel has autogroups (each session a scheduling group of its own)."""
    return Path("/proc/self/autogroup").exists()


def _group_nice(pid: int = 0) -> int | None:
    """The niceness of the autogroup of `pid`'s session: None without autogroups, and None for the sessions that
    never left init's (the kernel shows nothing for that default group, the root one, which has no niceness of its
    own: a container's processes, or a CI runner's, often sit there)."""
    try:
        return int(Path(f"/proc/{pid or 'self'}/autogroup").read_text().split("nice")[1])
    except (OSError, IndexError, ValueError):
        return None


def _priority() -> dict:
    """How the worker is scheduled, for its hello: {"sched": "idle" | "normal", "nice": N, "own_session": bool,
    "group_nice": N | None}."""
    idle = hasattr(os, "SCHED_IDLE") and os.sched_getscheduler(0) == os.SCHED_IDLE
    return {"sched": "idle" if idle else "normal", "nice": os.nice(0), "own_session": os.getsid(0) == os.getpid(),
            "group_nice": _group_nice()}


def _work(conn: Connection, mc: ModelConfig, tc: TrainConfig, dataset: str) -> None:
    """The worker's body: train, measure, send the checkpoint bytes; any failure becomes one sentence."""
    from . import io
    from .data import load
    from .train import train

    try:
        env = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY")}
        conn.send({"kind": "hello", "worker": {"torch_threads": threads.apply(), **_priority(), **env}})
        data = load(dataset)
        reporter = _Reporter(conn, tc, data.x_test)
        model, hist = train(mc, tc, data, reporter)
        reporter.flush()
        metrics = _metrics(model, data) | {"epochs": len(hist.epochs), "train_seconds": round(hist.seconds, 1)}
        history = hist.to_dict()
        conn.send({"kind": "done", "status": hist.status, "message": hist.message, "history": history,
                   "metrics": metrics,
                   "result": io.to_bytes(model, metrics, history, train_config=tc,
                                         preprocessing=data.extras.get("preprocessing"))})
    except _ParentGone:
        return
    except (ConfigError, DatasetUnavailable) as err:
        _send(conn, {"kind": "error", "error": str(err)})
    except Exception as err:
        _send(conn, {"kind": "error", "error": f"Training failed: {err}"})
    finally:
        conn.close()


def shutdown_at_exit(pool: JobPool) -> None:
    """Stop pool's workers when the server process exits; call once, right after creating the pool.

    Streamlit (1.67, web/bootstrap.py) owns SIGTERM/SIGINT: its handler stops the server, the main thread
    returns, and Python begins its exit (status 0; see _skip_finalization). So the hook is atexit, not a signal
    handler of our own
    (which could not be installed from a script thread anyway, and would replace Streamlit's). The reader thread
    is a daemon and no training runs in the server, so nothing keeps it alive or aborts it on the way out.
    Without this hook a worker lives on until it next polls its pipe (~2 s in the test) as an orphan.
    """
    exit_cleanly_when_serving()  # first: atexit runs last-in first-out, and that hook ends the process
    atexit.register(pool.shutdown)


_EXIT_LOCK = threading.Lock()
_exit_hooked = False
_EXIT_STATUS: list = [None]  # what sys.exit was last given: os._exit passes it on


def exit_cleanly_when_serving() -> None:
    """In a `streamlit run` server, once: end the process with os._exit (and sys.exit's status) once Streamlit has
    stopped, before the interpreter's finalization (see _skip_finalization). aeviz.ui calls it on its import, a server's first run: a
    server that nobody trained on has script threads inside torch too (Streamlit's script threads are daemons)."""
    global _exit_hooked
    with _EXIT_LOCK:
        if _exit_hooked or not _serving():
            return
        _exit_hooked = True
    atexit.register(_skip_finalization)
    real_exit = sys.exit

    def exit_noting_the_status(status=None):  # Click ends `streamlit run` through sys.exit, looked up when called
        _EXIT_STATUS[0] = status
        real_exit(status)

    sys.exit = exit_noting_the_status


def _serving(argv: list[str] | None = None) -> bool:
    """Whether this process is a `streamlit run` server (not a test, not the CLI): its command line as Python got it
    (`sys.orig_argv`; Streamlit sets sys.argv to the page script's path before the first run) is `python [...] -m
    streamlit run ...` or the console script's `streamlit run ...`."""
    argv = list(getattr(sys, "orig_argv", sys.argv) if argv is None else argv)
    module = any(a == "-m" and b == "streamlit" and c == "run" for a, b, c in zip(argv, argv[1:], argv[2:]))
    script = len(argv) > 2 and Path(argv[1]).name == "streamlit" and argv[2] == "run"
    return module or script


def _skip_finalization() -> None:
    """A server leaving normally (Streamlit's SIGTERM handler returns from main) exits here through os._exit, with
    the status sys.exit was given (0 when Streamlit stopped cleanly): the interpreter's finalization and C++ static
    destructors then never run beside daemon threads still inside torch (Streamlit's script threads), which
    aborted the process ("terminate called without an active exception", status -6): the issue saw it in 5 exits
    of 14 while trainings ran in the server's threads, and a plain script whose daemon threads multiply matrices as
    it ends aborts every time. The pool's workers are stopped before (its shutdown hook runs first). An uncaught
    exception keeps Python's own exit."""
    if getattr(sys, "last_value", None) is not None:
        return
    status = _EXIT_STATUS[0]
    if status is not None and not isinstance(status, int):
        status = 1  # sys.exit("message"): Python printed the message already, as it does
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(status or 0)
