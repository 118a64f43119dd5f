"""Thread policy: one OpenMP pool per busy training, one core left for everything else.

Measured with `aeviz bench threads` on a shared 2-core machine: a training whose OpenMP pool has as many
threads as there are cores collapses (10-20x slower) as soon as anything else wants a core, because every
parallel region waits at a barrier for the thread that was descheduled; a 1-thread training never collapses.
So each training takes (cores - 1) // (trainings running now) threads, at least 1, re-checked every epoch:
on 2 cores that is always 1 thread. AEVIZ_THREADS pins the threads per training instead.
"""
from __future__ import annotations

import contextlib
import os
import threading

_lock = threading.Lock()
_busy = 0


def cores() -> int:
    """CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def limit_before_torch() -> None:
    """Default every new thread's OpenMP/MKL pool to 1 before torch starts (Streamlit reruns are new threads)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")


def fair_share() -> int:
    """Threads one training should use now: AEVIZ_THREADS if set, else all cores but one, split between trainings."""
    if os.environ.get("AEVIZ_THREADS"):
        return max(1, int(os.environ["AEVIZ_THREADS"]))
    with _lock:
        return max(1, (cores() - 1) // max(1, _busy))


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
