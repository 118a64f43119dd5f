"""One-off measurements behind aeviz.jobs' design (not a test): worker start-up, throughput in a worker vs in the
server process, and what reading a worker's progress costs the server.

    PYTHONPATH=. python scripts/measure_jobs.py [--repeats 3]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import aeviz
from aeviz import jobs
from aeviz.data import load

READY = "; import os, sys, time; sys.stdout.write(repr(time.time())); sys.stdout.flush(); os._exit(0)"


def startup(repeats: int) -> None:
    env = jobs._worker_env()
    for label, code in (("python alone", "pass"), ("import torch + aeviz", "import aeviz.jobs, aeviz.train"),
                        ("+ scikit-learn + digits", ("import aeviz.jobs, aeviz.train; from aeviz.data import load; "
                                                     "load('digits')")),
                        ("+ the first Adam (imports torch._dynamo)",
                         ("import aeviz.jobs, aeviz.train; from aeviz.data import load; load('digits'); "
                         "from aeviz.train import optimizer; optimizer(aeviz.build(aeviz.config_for('digits')), aeviz.TrainConfig())"))):
        times = []
        for _ in range(repeats):  # from launch until the code has run (the child's exit is not counted)
            t = time.time()
            out = subprocess.run([sys.executable, "-c", code + READY], env=env, check=True, capture_output=True)
            times.append(float(out.stdout) - t)
        print(f"start-up, {label}: median {statistics.median(times):.2f} s ({', '.join(f'{x:.2f}' for x in times)})")


def _nap(_) -> int:
    time.sleep(2)
    return os.getpid()


def broken_pool() -> None:
    """What one killed worker does to a ProcessPoolExecutor: every job in it fails, and so does the next submit."""
    import multiprocessing
    import signal
    from concurrent.futures import ProcessPoolExecutor

    ex = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))
    futures = [ex.submit(_nap, i) for i in range(4)]
    time.sleep(1.5)
    os.kill(next(iter(ex._processes)), signal.SIGKILL)
    outcomes = []
    for f in [*futures, ex.submit(_nap, 0)]:
        try:
            f.result()
            outcomes.append("ok")
        except Exception as err:
            outcomes.append(type(err).__name__)
    ex.shutdown()
    print(f"ProcessPoolExecutor, one of 2 workers killed: 4 jobs -> {outcomes[:4]}, next submit -> {outcomes[4]}")


def wait(pool, job, cond):
    while not cond(s := pool.status(job)):
        time.sleep(0.01)
    return s


def submit_to_first_step(repeats: int) -> None:
    pool = jobs.JobPool(1)
    mc = aeviz.config_for("digits", hidden=(16,), latent_dim=2)
    hello, first = [], []
    for i in range(repeats):
        time.sleep(1.5)  # the previous worker's exit must not overlap
        t = time.perf_counter()
        job = pool.submit(f"m{i}", mc, aeviz.TrainConfig(epochs=1, max_train=200))
        wait(pool, job, lambda s: s.worker)
        hello.append(time.perf_counter() - t)
        wait(pool, job, lambda s: s.step > 0)
        first.append(time.perf_counter() - t)
        wait(pool, job, lambda s: s.done)
    pool.shutdown()
    print(f"pool: submit -> worker has torch: median {statistics.median(hello):.2f} s; "
          f"submit -> first step (digits): median {statistics.median(first):.2f} s")


def throughput(repeats: int, dataset: str, epochs: int) -> None:
    mc = aeviz.config_for(dataset, latent_dim=2)  # the default MLP (512, 256)
    tc = aeviz.TrainConfig(epochs=epochs, eval_every=0)
    n = len(load(dataset).x_train) * epochs
    pool = jobs.JobPool(1)
    inproc, worker, reader_cpu, server_cpu, train_s = [], [], [], [], []
    for i in range(repeats):
        time.sleep(1.5)
        _, hist = aeviz.train(mc, tc, load(dataset))
        inproc.append(hist.samples_per_s)
        time.sleep(1.5)
        cpu0, r0 = time.process_time(), pool.reader_cpu_s
        job = pool.submit(f"t{i}", mc, tc)
        s = pool.status(job)
        while not s.done:  # the page's poll: one status copy every 0.5 s
            time.sleep(0.5)
            s = pool.status(job)
        worker.append(n / s.history["seconds"])
        reader_cpu.append(pool.reader_cpu_s - r0)
        server_cpu.append(time.process_time() - cpu0)
        train_s.append(s.seconds)
    pool.shutdown()
    print(f"throughput {dataset} mlp(512,256) z=2, {epochs} epochs: in-process median "
          f"{statistics.median(inproc):,.0f} samples/s ({', '.join(f'{x:,.0f}' for x in inproc)}); in a worker "
          f"median {statistics.median(worker):,.0f} samples/s ({', '.join(f'{x:,.0f}' for x in worker)})")
    print(f"server CPU while a worker trained: reader thread {1000 * statistics.median(reader_cpu):.1f} ms, whole "
          f"process {1000 * statistics.median(server_cpu):.0f} ms (page polling every 0.5 s incl.), "
          f"over {statistics.median(train_s):.1f} s of worker wall time per job")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}, cores {os.cpu_count()}")
    broken_pool()
    startup(args.repeats)
    submit_to_first_step(args.repeats)
    throughput(args.repeats, "mnist", 3)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
