"""Measure the room store: room_state calls per second (what polling students cost) and submit latency.

    python -m aeviz.classroom.measure [--seconds 2] [--submits 60]

SQLite runs in a temporary folder (both connection modes); Redis on a redis-server this script starts on
127.0.0.1 (--save '' --appendonly no) and stops. Not a test: numbers depend on the machine.
"""
from __future__ import annotations

import argparse
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from .store import Limits, View

ROOM_STATE_THREADS = 30  # 30 students polling, each rerun on its own thread in one Streamlit process


def _checkpoint(nbytes: int) -> bytes:
    from safetensors.numpy import save

    return save({"w": np.random.default_rng(0).random(nbytes // 4, dtype=np.float32)}, metadata={"aeviz": "{}"})


def _latencies_us(fn, seconds: float, fresh_thread: bool = False) -> np.ndarray:
    """Microseconds per fn() call on this thread (or, with fresh_thread, each call on a new thread, as a Streamlit
    rerun is), for `seconds`. Medians resist a busy machine better than rates do."""
    out, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        if fresh_thread:
            t = threading.Thread(target=fn)
            t.start()
            t.join()
        else:
            fn()
        out.append(time.perf_counter() - start)
    return np.array(out) * 1e6


def _rate_threads(fn, seconds: float, threads: int) -> float:
    """Calls per second of fn() from `threads` long-lived threads at once."""
    counts = [0] * threads
    stop = time.perf_counter() + seconds

    def run(i):
        while time.perf_counter() < stop:
            fn()
            counts[i] += 1

    start = time.perf_counter()
    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sum(counts) / (time.perf_counter() - start)


def _submit_ms(store, blob: bytes, count: int) -> list[float]:
    room, _ = store.open_room()
    _, token = store.join(room.code, "Bench")
    times = []
    for i in range(count):
        start = time.perf_counter()
        store.submit(room.code, token, f"m{i}", {"i": i}, blob)
        times.append((time.perf_counter() - start) * 1000)
    return times


def _report(name: str, store, seconds: float, submits: int, blob: bytes) -> None:
    room, secret = store.open_room()
    store.push_view(room.code, secret, View("explorer", "vae-2d", {"digit": "3", "z0": "0.5", "z1": "-1.2"}))
    store.set_task(room.code, secret, "Train a VAE with beta = 4 and submit it. " * 20)

    def state():
        return store.room_state(room.code)

    state()
    one = _latencies_us(state, seconds)
    many = _rate_threads(state, seconds, ROOM_STATE_THREADS)
    fresh = _latencies_us(state, seconds, fresh_thread=True)
    ms = np.array(_submit_ms(store, blob, submits))
    print(f"{name:27s} room_state: median {np.median(one):4.0f} us, p95 {np.percentile(one, 95):4.0f} us "
          f"({len(one) / seconds:6.0f}/s on 1 thread; {many:6.0f}/s on {ROOM_STATE_THREADS} threads); "
          f"from a new thread each call: median {np.median(fresh):4.0f} us | "
          f"submit {len(blob) / 1e6:.1f} MB x{submits}: p50 {np.percentile(ms, 50):4.1f} ms, "
          f"p95 {np.percentile(ms, 95):5.1f} ms, max {ms.max():5.1f} ms")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per room_state measurement")
    parser.add_argument("--submits", type=int, default=60, help="1 MB submissions per backend")
    parser.add_argument("--redis-server", default="/usr/bin/redis-server")
    args = parser.parse_args(argv)
    limits = Limits(entries_per_room=10_000, submissions_per_minute=10**9, bytes_per_entry=2_000_000)
    blob = _checkpoint(1_000_000)
    from .sqlite import SQLiteStore

    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("pool", "thread", "shared"):
            _report(f"sqlite ({mode} connection)", SQLiteStore(Path(tmp) / mode, limits, connections=mode),
                    args.seconds, args.submits, blob)
        if not Path(args.redis_server).exists():
            print(f"redis: {args.redis_server} is not installed; skipped")
            return
        import redis

        from .redis_store import RedisStore

        port = _free_port()
        proc = subprocess.Popen([args.redis_server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                 "--appendonly", "no", "--dir", tmp], stdout=subprocess.DEVNULL)
        try:
            client = redis.Redis(port=port)
            for _ in range(200):
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.05)
            _report("redis (127.0.0.1)", RedisStore(client, limits), args.seconds, args.submits, blob)
            print(f"redis used_memory after the run: {client.info('memory')['used_memory_human']}")
        finally:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
