"""Thread policy: one OpenMP pool per busy training, never more threads than cores in total.

Measured on a 2-core machine (see README, `aeviz bench threads`): one training alone runs
faster on 2 threads, but two trainings at once run about twice as fast with 1 thread each,
because two 2-thread OpenMP pools thrash the cores. So each training takes
cores // (trainings running now) threads, re-checked every epoch.
"""
from __future__ import annotations

import contextlib
import os
import threading

_lock = threading.Lock()
_busy = 0


def cores() -> int:
    """CPU cores this process may use (AEVIZ_THREADS overrides)."""
    if os.environ.get("AEVIZ_THREADS"):
        return max(1, int(os.environ["AEVIZ_THREADS"]))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def limit_before_torch() -> None:
    """Default every new thread's OpenMP/MKL pool to 1 before torch starts (Streamlit reruns are new threads)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")


def fair_share() -> int:
    """Threads one training should use now: the cores split between the trainings running."""
    with _lock:
        return max(1, cores() // max(1, _busy))


@contextlib.contextmanager
def training_slot():
    """Count this training as busy while inside the block."""
    global _busy
    with _lock:
        _busy += 1
    try:
        yield
    finally:
        with _lock:
            _busy -= 1


def apply(n: int | None = None) -> int:
    """Set this thread's torch pool to n threads (default: the fair share); return n."""
    import torch

    n = n or fair_share()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
