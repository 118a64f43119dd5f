"""`aeviz bench ddp`: aeviz.train's samples/s in 1 and 2 CPU processes under DistributedDataParallel (gloo).

Each configuration runs in fresh spawned processes that meet through a file:// rendezvous in a temporary folder
(no ports). Every process trains once to warm up (the first Adam step imports torch._dynamo: seconds), then the
timed training; the figure is rank 0's History.samples_per_s: the global samples per second of the loop.
`run_ranks` is also what tests/core/test_ddp.py uses to compare a DDP step with a single-process one.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file

from ..config import ModelConfig, TrainConfig


def _rank(rank: int, world: int, folder: str, mc: ModelConfig, tc: TrainConfig, warm: TrainConfig | None) -> None:
    """One process: join the group (world > 1), train (after a warm-up run), write its weights and history."""
    from ..train import train

    folder_ = Path(folder)
    if world > 1:
        dist.init_process_group("gloo", init_method=(folder_ / "rendezvous").as_uri(), rank=rank, world_size=world)
    try:
        if warm is not None:
            train(mc, warm)
        cpu = time.process_time()
        model, hist = train(mc, tc)
        cpu = time.process_time() - cpu
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder_ / f"rank{rank}.safetensors"))
        (folder_ / f"rank{rank}.json").write_text(json.dumps({
            "samples_per_s": hist.samples_per_s, "samples": hist.samples, "seconds": hist.seconds,
            "status": hist.status, "loss": hist.train["loss"], "step_loss": hist.step_loss, "cpu_s": cpu}))
    finally:
        if world > 1:
            dist.destroy_process_group()
    # Done and written: leave without the interpreter's teardown, where gloo's threads sometimes aborted the process
    # ("terminate called without an active exception", SIGABRT) after the work was done; spawn sees exit code 0.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def run_ranks(world: int, mc: ModelConfig, tc: TrainConfig, folder: Path,
              warm: TrainConfig | None = None) -> list[tuple[dict[str, torch.Tensor], dict]]:
    """Train mc with tc in `world` spawned processes (one process group when world > 1); each rank's
    (weights, history summary), read back from `folder` (which must be empty)."""
    import torch.multiprocessing as mp

    mp.spawn(_rank, args=(world, str(folder), mc, tc, warm), nprocs=world, join=True)
    return [(load_file(str(folder / f"rank{r}.safetensors")), json.loads((folder / f"rank{r}.json").read_text()))
            for r in range(world)]


def bench(epochs: int = 5, batch_size: int = 256, repeats: int = 3, arch: str = "mlp") -> dict:
    """samples/s of aeviz.train on MNIST in 1 and 2 processes, medians of round-robin repeats, and their ratio."""
    from .. import config_for
    from . import mnist_mlp

    mc = mnist_mlp() if arch == "mlp" else config_for("mnist", arch=arch, latent_dim=16)
    tc = TrainConfig(epochs=epochs, batch_size=batch_size, eval_every=0)
    warm = replace(tc, epochs=1, max_train=4 * batch_size)
    rates: dict[int, list[float]] = {1: [], 2: []}
    per_cpu: dict[int, list[float]] = {1: [], 2: []}
    loads = []
    for _ in range(repeats):  # round-robin, so drift on a shared machine hits both alike
        for world in rates:
            loads.append(os.getloadavg()[0])
            with tempfile.TemporaryDirectory(prefix="aeviz-ddp-") as tmp:
                ranks = run_ranks(world, mc, tc, Path(tmp), warm)
            rates[world].append(ranks[0][1]["samples_per_s"])
            per_cpu[world].append(ranks[0][1]["samples"] / sum(h["cpu_s"] for _, h in ranks))
    med = {w: statistics.median(v) for w, v in rates.items()}
    cpu = {w: statistics.median(v) for w, v in per_cpu.items()}
    ratio = med[2] / med[1]
    print(f"MNIST {arch} autoencoder ({mc.label}), {epochs} epochs of {tc.batch_size}-sample global batches, "
          f"1 torch thread per process, gloo on the CPU; medians of {repeats} round-robin repeats; load average "
          f"{statistics.mean(loads):.1f} on {os.cpu_count()} cores (the wall-clock figures measure the neighbours too; "
          f"per CPU second, the cost of the all-reduces).")
    print(f"  {'':<12} {'samples/s':>10} {'per CPU s':>10}   wall-clock runs")
    for world, values in rates.items():
        print(f"  {world} process{'es' if world > 1 else '  '} {med[world]:10.0f} {cpu[world]:10.0f}   "
              f"{' '.join(f'{v:.0f}' for v in values)}")
    print(f"  ratio 2/1    {ratio:10.2f} {cpu[2] / cpu[1]:10.2f}")
    return {"samples_per_s_1": round(med[1], 1), "samples_per_s_2": round(med[2], 1), "ratio": round(ratio, 3),
            "samples_per_cpu_s_1": round(cpu[1], 1), "samples_per_cpu_s_2": round(cpu[2], 1),
            "cpu_ratio": round(cpu[2] / cpu[1], 3), "load_avg": round(statistics.mean(loads), 2),
            "epochs": epochs, "batch_size": batch_size, "repeats": repeats, "arch": arch}
