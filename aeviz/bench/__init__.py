"""Benchmarks behind `aeviz bench NAME`. Each prints its figures and returns them as one flat dict.

To add one, append a function decorated with @register("name"). Its keyword arguments (each with a
default) become the subcommand's flags; the dict it returns must be JSON-able (`--json` prints it as
the last line). Import heavy dependencies inside the function so `aeviz --help` stays fast.
"""
from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import statistics
import threading
import time
from collections.abc import Callable

import torch
from torch import nn

from .. import threads
from ..config import TrainConfig

BENCHES: dict[str, Callable[..., dict]] = {}
Clocks = list[tuple[int, float, float]]  # (samples, wall s, CPU s) of each training that ran at once


def register(name: str):
    """Decorator: make a bench function available as `aeviz bench NAME`."""
    def wrap(fn):
        BENCHES[name] = fn
        return fn
    return wrap


def mnist_mlp():
    """The benchmarked model's config: aeviz.config_for("mnist", latent_dim=2)."""
    from .. import config_for

    return config_for("mnist", latent_dim=2)  # 784-512-256-2 and back


def linear_macs(model: nn.Module) -> int:
    """Multiply-accumulates of one sample's forward pass through the model's Linear layers."""
    return sum(m.in_features * m.out_features for m in model.modules() if isinstance(m, nn.Linear))


def _clock(run, *args) -> tuple[float, float]:
    """(samples per wall second, samples per CPU second of this process) of run(*args) -> samples."""
    wall, cpu = time.perf_counter(), time.process_time()
    samples = run(*args)
    return samples / (time.perf_counter() - wall), samples / (time.process_time() - cpu)


def _aeviz_loop(steps: int, batch_size: int, seed: int = 0, arch: str = "mlp") -> int:
    from .. import config_for
    from ..data import load
    from ..train import train

    per_epoch = -(-len(load("mnist").x_train) // batch_size)
    tc = TrainConfig(epochs=-(-steps // per_epoch), batch_size=batch_size, seed=seed, eval_every=0)
    mc = mnist_mlp() if arch == "mlp" else config_for("mnist", arch=arch, latent_dim=16)
    return train(mc, tc, callback=lambda p: p.step >= steps)[1].samples


def _plain_loop(steps: int, batch_size: int, seed: int = 0) -> int:
    """A minimal hand-written loop: same model, same Adam (aeviz.train.optimizer), same batches, same threads."""
    from ..data import load
    from ..models import build
    from ..train import optimizer

    x = load("mnist").x_train
    threads.apply()
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = build(mnist_mlp()).train()
    opt = optimizer(model, TrainConfig(batch_size=batch_size, seed=seed))
    done = samples = 0
    while done < steps:
        for idx in torch.randperm(len(x), generator=gen).split(batch_size)[: steps - done]:
            loss = model.objective(x[idx])["loss"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done, samples = done + 1, samples + len(idx)
    return samples


def clocked_training(steps: int, arch: str = "mlp") -> tuple[int, float, float]:
    """(samples, wall s, CPU s of this process) of aeviz.train on MNIST for `steps` steps, batch 128.

    arch "mlp" is the 784-512-256-2 MLP; "conv" and "rnn" are config_for's defaults with a 16-d code.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    samples = _aeviz_loop(steps, 128, arch=arch)
    return samples, time.perf_counter() - wall, time.process_time() - cpu


def _matmul(reps: int, n: int = 1024) -> int:
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps


def matmul_gflops(reps: int = 10) -> tuple[float, float]:
    """float32 GFLOP/s of 1024 x 1024 matmuls at the current torch thread setting: (per wall s, per CPU s)."""
    _matmul(1)  # warm the pool and the kernels
    wall, cpu = _clock(_matmul, reps)
    return wall / 1e9, cpu / 1e9


@register("train")
def bench_train(steps: int = 200, repeats: int = 5, batch_size: int = 128, threads_per_training: int = 0) -> dict:
    """aeviz.train against a minimal torch loop on the MNIST MLP (784-512-256-2), plus matmul GFLOP/s."""
    pin = pinned(threads_per_training) if threads_per_training else contextlib.nullcontext()  # 0: the policy
    with pin:
        return _bench_train(steps, repeats, batch_size)


def _bench_train(steps: int, repeats: int, batch_size: int) -> dict:
    from ..models import build

    macs = linear_macs(build(mnist_mlp()))
    n_threads = threads.apply()  # what one training gets; both loops get the same
    warm = min(steps, 10)
    _aeviz_loop(warm, batch_size), _plain_loop(warm, batch_size)  # warm-up: data, allocator, kernels
    runs: dict[str, list[tuple[float, float]]] = {"aeviz": [], "plain": [], "matmul": []}
    for r in range(repeats):  # interleaved, alternating order, so drift hits both alike
        order = [("aeviz", _aeviz_loop), ("plain", _plain_loop)][:: 1 if r % 2 == 0 else -1]
        for name, loop in order:
            runs[name].append(_clock(loop, steps, batch_size))
        threads.apply()
        runs["matmul"].append(matmul_gflops())
    wall = {k: statistics.median(w for w, _ in v) for k, v in runs.items()}
    cpu = {k: statistics.median(c for _, c in v) for k, v in runs.items()}
    gflops, gflops_cpu = (6 * macs * d["aeviz"] / 1e9 for d in (wall, cpu))
    result = {"aeviz_samples_per_s": round(wall["aeviz"], 1), "plain_samples_per_s": round(wall["plain"], 1),
              "ratio": round(wall["aeviz"] / wall["plain"], 3), "gflops": round(gflops, 2),
              "matmul_gflops": round(wall["matmul"], 2), "gflops_fraction": round(gflops / wall["matmul"], 3),
              "threads": n_threads, "cpu_ratio": round(cpu["aeviz"] / cpu["plain"], 3),
              "gflops_per_cpu_s": round(gflops_cpu, 2), "matmul_gflops_per_cpu_s": round(cpu["matmul"], 2),
              "steps": steps, "repeats": repeats, "batch_size": batch_size}
    print(f"MNIST MLP 784-512-256-2, batch {batch_size}, {steps} steps x {repeats} interleaved repeats, "
          f"{n_threads} torch thread(s); medians. aeviz.train runs with TrainConfig(eval_every=0) and a "
          f"stopping callback, so both loops do the same work (both use aeviz.train.optimizer: fused Adam). "
          f"Per wall second, and per CPU second of this "
          f"process (steadier when the machine is shared).")
    print(f"{'':14}{'per wall s':>12}{'per CPU s':>12}   wall-clock runs")
    for name, label, unit in (("aeviz", "aeviz.train", "samples"), ("plain", "plain loop", "samples"),
                              ("matmul", "matmul", "GFLOP")):
        print(f"  {label:<12}{wall[name]:12.1f}{cpu[name]:12.1f}   {_fmt(w for w, _ in runs[name])} {unit}/s")
    ratios = (wall["aeviz"] / wall["plain"], cpu["aeviz"] / cpu["plain"])
    print(f"  {'ratio':<12}{ratios[0]:12.3f}{ratios[1]:12.3f}   (target >= 0.95)")
    print(f"  {'GFLOP/s':<12}{gflops:12.1f}{gflops_cpu:12.1f}   (6 x {macs:,} Linear MACs per sample)")
    print(f"  {'fraction':<12}{gflops / wall['matmul']:12.3f}{gflops_cpu / cpu['matmul']:12.3f}   "
          f"of 1024x1024 float32 matmul (target >= 0.35)")
    return result


def _fmt(values) -> str:
    return " ".join(f"{v:.0f}" for v in values)


def _set_env(values: dict) -> None:
    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@contextlib.contextmanager
def _environ(values: dict):
    """Set environment variables (None removes one) inside the block."""
    old = {k: os.environ.get(k) for k in values}
    _set_env(values)
    try:
        yield
    finally:
        _set_env(old)


def pinned(n: int | None):
    """Inside the block every training uses n threads (AEVIZ_THREADS); None means aeviz's own policy."""
    return _environ({"AEVIZ_THREADS": str(n) if n else None})


def _worker(tasks, results, barrier) -> None:
    """A training process: for each (threads, steps, together) task, train and report its clocks."""
    warm = set()
    for n, steps, together, arch in iter(tasks.get, None):
        if arch not in warm:
            clocked_training(5, arch)  # warm-up: data, kernels
            warm.add(arch)
        with pinned(n):
            if together:
                barrier.wait()
            results.put(clocked_training(steps, arch))


def _spin(stop) -> None:
    """Keep one core busy (pure Python), like another process or the app's own UI work."""
    while not stop.is_set():
        pass


class _Pool:
    """Long-lived training processes (spawned once: importing torch takes seconds); env is set for them only."""

    def __init__(self, size: int = 2, **env: str):
        self.ctx = mp.get_context("spawn")
        self.results = self.ctx.Queue()
        self.barrier = self.ctx.Barrier(size)  # kept referenced: the children unpickle it after start()
        self.tasks = [self.ctx.Queue() for _ in range(size)]
        self.procs = [self.ctx.Process(target=_worker, args=(q, self.results, self.barrier), daemon=True)
                      for q in self.tasks]
        with _environ(env):  # a spawned child copies os.environ when it starts
            for p in self.procs:
                p.start()

    def solo(self, n: int, steps: int, arch: str = "mlp") -> Clocks:
        self.tasks[0].put((n, steps, False, arch))
        return [self.results.get(timeout=900)]

    def pair(self, n: int, steps: int, arch: str = "mlp") -> Clocks:
        for q in self.tasks:
            q.put((n, steps, True, arch))
        return [self.results.get(timeout=900), self.results.get(timeout=900)]

    def beside_busy_core(self, n: int, steps: int, arch: str = "mlp") -> Clocks:
        stop = self.ctx.Event()
        spinner = self.ctx.Process(target=_spin, args=(stop,), daemon=True)
        spinner.start()
        time.sleep(0.3)
        try:
            return self.solo(n, steps, arch)
        finally:
            stop.set()
            spinner.join()

    def close(self) -> None:
        for q in self.tasks:
            q.put(None)
        for p in self.procs:
            p.join(timeout=30)


def _in_threads(n: int | None, steps: int, arch: str = "mlp") -> Clocks:
    """Two aeviz.train calls in two Python threads of this process, started together (CPU time split evenly)."""
    barrier, clocks = threading.Barrier(2), []

    def run():
        barrier.wait()
        clocks.append(clocked_training(steps, arch))

    cpu = time.process_time()
    with pinned(n):
        workers = [threading.Thread(target=run) for _ in range(2)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    cpu = time.process_time() - cpu
    return [(samples, wall, cpu / 2) for samples, wall, _ in clocks]


def _rates(clocks: Clocks) -> tuple[float, float]:
    """(total samples per wall second of trainings running at once, samples per CPU second they used)."""
    return sum(s / w for s, w, _ in clocks), sum(s for s, _, _ in clocks) / sum(c for _, _, c in clocks)


@register("threads")
def bench_threads(steps: int = 60, repeats: int = 3, arch: str = "mlp") -> dict:
    """Samples/s of MNIST trainings with 1 or all cores' threads, alone, in two processes, in two threads.

    arch: mlp (784-512-256-2), conv or rnn (16-d codes).
    """
    n = threads.cores()
    pool, spinning = _Pool(2), _Pool(1, OMP_WAIT_POLICY="ACTIVE")
    cases = {  # name -> (how to run, threads per training or None for aeviz's policy, what it means)
        "alone_1": (pool.solo, 1, "one training alone, 1 thread"),
        f"alone_{n}": (pool.solo, n, f"one training alone, {n} threads"),
        f"alone_{n}_active": (spinning.solo, n, f"one training alone, {n} threads, OMP_WAIT_POLICY=ACTIVE"),
        "procs_1each": (pool.pair, 1, "two processes at once, 1 thread each"),
        f"procs_{n}each": (pool.pair, n, f"two processes at once, {n} threads each"),
        "threads_policy": (_in_threads, None, "two Python threads in one process, aeviz's policy"),
        f"threads_{n}each": (_in_threads, n, f"two Python threads in one process, {n} threads each"),
        "busy_1": (pool.beside_busy_core, 1, "one training beside a busy core, 1 thread"),
        f"busy_{n}": (pool.beside_busy_core, n, f"one training beside a busy core, {n} threads"),
    }
    with pinned(None):
        policy = threads.per_training()  # what one training gets
    _in_threads(None, 5, arch)  # warm this process's kernels too
    runs: dict[str, list[tuple[float, float]]] = {k: [] for k in cases}
    try:
        for _ in range(repeats):  # round-robin, so slow drift on the shared machine hits every case alike
            for name, (how, n_threads, _) in cases.items():
                runs[name].append(_rates(how(n_threads, steps, arch)))
    finally:
        pool.close()
        spinning.close()
    med = {k: statistics.median(w for w, _ in v) for k, v in runs.items()}
    per_cpu = {k: statistics.median(c for _, c in v) for k, v in runs.items()}
    model = "MLP 784-512-256-2" if arch == "mlp" else f"{arch} autoencoder, 16-d code"
    print(f"MNIST {model}, batch 128, {steps} steps per training, {repeats} round-robin repeats, "
          f"{n} cores, aeviz's policy gives one training alone {policy} thread(s). Medians of the total "
          f"samples/s of the trainings running at once, per wall second and per CPU second they used (on a "
          f"shared machine the wall figure also measures how much CPU the scheduler gave them). "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')} unless marked.")
    print(f"  {'':<66} {'per wall s':>10} {'per CPU s':>10}   wall-clock runs")
    for name, (_, _, what) in cases.items():
        print(f"  {what:<66} {med[name]:10.0f} {per_cpu[name]:10.0f}   {_fmt(w for w, _ in runs[name])}")
    ratios = {f"alone_{n}_vs_1": med[f"alone_{n}"] / med["alone_1"],
              f"alone_{n}_active_vs_1": med[f"alone_{n}_active"] / med["alone_1"],
              f"procs_1each_vs_{n}each": med["procs_1each"] / med[f"procs_{n}each"],
              f"threads_policy_vs_{n}each": med["threads_policy"] / med[f"threads_{n}each"],
              "threads_policy_vs_procs_1each": med["threads_policy"] / med["procs_1each"],
              f"busy_{n}_vs_1": med[f"busy_{n}"] / med["busy_1"]}
    for k, v in ratios.items():
        print(f"  ratio {k:<40} {v:7.3f}")
    return {**{k: round(v, 1) for k, v in med.items()}, **{f"{k}_per_cpu_s": round(v, 1) for k, v in per_cpu.items()},
            **{k: round(v, 3) for k, v in ratios.items()}, "cores": n, "arch": arch, "policy_threads_alone": policy,
            "steps": steps, "repeats": repeats}


@register("denoise")
def bench_denoise(sigma: float = 0.5, denoiser: str = "dae-mlp-z16", vanilla: str = "ae-mlp-z16", seed: int = 0) -> dict:
    """PSNR and SSIM on the 1,000 held-out MNIST test digits at Gaussian noise sigma (clipped to [0,1])."""
    from ..data import corrupt, load
    from ..io import PRETRAINED
    from ..io import load as load_model
    from ..uses import regularizers

    x = load("mnist").x_test.numpy()
    x_noisy = corrupt(x, "gaussian", sigma, seed)
    models = {"denoised": load_model(PRETRAINED / f"{denoiser}.safetensors"),
              "vanilla AE": load_model(PRETRAINED / f"{vanilla}.safetensors")}
    results = regularizers.outputs(models, x_noisy, "median")
    results["gaussian filter"] = regularizers.classical_filter(x_noisy, "gaussian")
    scores = regularizers.scores(x, results)
    print(f"{len(x)} MNIST test digits, Gaussian noise sigma={sigma} clipped to [0,1], seed {seed}; "
          f"denoiser {denoiser}, vanilla {vanilla}; filters: median 3x3, Gaussian sigma=1 px.")
    for name, (psnr, ssim) in scores.items():
        print(f"  {name:<16} PSNR {psnr:6.2f} dB   SSIM {ssim:.3f}")
    keys = {"noisy input": "noisy", "denoised": "denoised", "vanilla AE": "vanilla",
            "median filter": "median_filter", "gaussian filter": "gaussian_filter"}
    return {**{f"psnr_{keys[k]}": round(p, 2) for k, (p, _) in scores.items()},
            **{f"ssim_{keys[k]}": round(s, 3) for k, (_, s) in scores.items()},
            "images": len(x), "sigma": sigma, "seed": seed, "denoiser": denoiser, "vanilla": vanilla}


@register("ui")
def bench_ui(runs: int = 3, presses: int = 30, screenshot: str = "") -> dict:
    """The real app in headless Chromium: the first screen (seconds and bytes), the latent pad's frame after a key
    and the commit's rerun after its release (see browser.py)."""
    from .browser import bench_ui as run

    return run(runs, presses, screenshot)


@register("drag")
def bench_drag(seconds: float = 5.0, models: str = "ae-mlp-z2,ae-conv-z16,ae-rnn-rows-z16") -> dict:
    """Drag the Explorer's latent pad or slider in headless Chromium per model: frames, fps, websocket frames while
    dragging, the release's rerun, weights bytes and decoder parity (see drag.py)."""
    from .drag import bench_drag as run

    return run(seconds, models)


@register("compare")
def bench_compare(clicks: int = 10) -> dict:
    """The compare page with 4 models in headless Chromium: seconds per whole rerun (see bench_ui.py)."""
    from .browser import bench_compare as run

    return run(clicks)


@register("applications")
def bench_applications(part: str = "all", umap: bool = False, tsne: bool = True, seeds: int = 5) -> dict:
    """The application pages' figures: 2-D maps, features, rate-distortion, augmentation gain, imputation (app_bench.py)."""
    from .uses import run

    return run(part, umap, tsne, seeds)


@register("signals")
def bench_signals(model: str = "ae-rnn-signals-z8") -> dict:
    """Anomalous spans in the 1,000 test signals, found by a pretrained recurrent autoencoder: precision, recall."""
    from .. import io
    from .anomaly import series

    path = io.PRETRAINED / f"{model}.safetensors"
    if not path.exists():
        raise SystemExit(f"There is no {path}; run 'aeviz pretrain' or name another signals model.")
    return series(io.load(path))


@register("anomaly")
def bench_anomaly(part: str = "all", epochs: int = 80, seed: int = 0, seeds: int = 5) -> dict:
    """One-vs-rest MNIST (part digits: AUROC per digit, a convolutional VAE against PCA) and the tables (part tabular:
    breast-cancer AUROC of an autoencoder, PCA and an IsolationForest; wine's latent map), seeds seeds each."""
    from .anomaly import run

    return run(part, epochs, seed, seeds)


@register("ddp")
def bench_ddp(epochs: int = 5, batch_size: int = 256, repeats: int = 3, arch: str = "mlp") -> dict:
    """aeviz.train's samples/s in 1 and 2 CPU processes under DistributedDataParallel (gloo), and their ratio."""
    from .ddp import bench

    return bench(epochs, batch_size, repeats, arch)


@register("scale")
def bench_scale(students: int = 20, seconds: float = 30.0, replicas: str = "1,2", failover: bool = True,
                failover_window: float = 20.0, switch: float = 0.1, pages: str = ",compare", seed: int = 0) -> dict:
    """Simulated students through aeviz serve (HAProxy) on 1 and 2 replicas: p50/p95 ms, errors, failover_s.

    replicas: comma-separated counts; pages: url paths students switch between ("" is the Explorer).
    """
    from .scale import bench

    return bench(students, seconds, replicas, failover, failover_window, switch, pages, seed)


@register("class")
def bench_class(students: int = 10, seconds: float = 30.0, training: float = 0.1, seed: int = 0,
                browser: bool = True, stagger_s: float = 5.0, replicas: int = 1) -> dict:
    """One streamlit server (or aeviz serve's replicas) and N simulated students (a share training), plus one
    Chromium page: p50/p95 per action kind, failures, the server's RSS and CPU, what the browser feels, the exit
    status after SIGTERM."""
    from .classroom import bench

    return bench(students, seconds, training, seed, browser, stagger_s, replicas)


@register("actions")
def bench_actions(reps: int = 10) -> dict:
    """The server's CPU per action kind (first screen, reload, release, map click, page, preset, model, poll), one
    student and nothing else running: the floor under `aeviz bench class` (actions.py)."""
    from .actions import bench

    return bench(reps)


@register("teacher")
def bench_teacher(students: int = 5, pushes: int = 10, board_entries: int = 30, screenshots: str = "") -> dict:
    """A teacher and students in headless Chromium: push-to-student seconds, pushes followed, board render (teacher.py)."""
    from .teacher import run

    return run(students, pushes, board_entries, screenshots)
