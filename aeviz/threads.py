"""Thread policy: one OpenMP pool per busy training, never more threads than cores in total.

Measured with `aeviz bench threads` on a shared 2-core machine (load 3-17 from other work):
- With OpenMP's default spin-waiting a 2-thread training ran 2-22x slower than a 1-thread one, burning
  4-12x the CPU per sample, because a spinning pool collapses when anything else wants a core. With idle
  pool threads sleeping (OMP_WAIT_POLICY=PASSIVE, set before torch starts) it never collapsed: 1.0-4x the
  speed of a 1-thread training (more the busier the machine) at a CPU cost per sample within 10 %.
- Two trainings in one process (Streamlit sessions) with 1 thread each used 5-17 % less CPU per sample
  than with 2 each; 2 each was ahead by the clock only while other processes loaded the cores (by 85 %
  at load ~9, by -1 % at load ~3), i.e. only by taking CPU from them.
So each training takes cores // (trainings running now) threads, re-checked every epoch.
AEVIZ_THREADS pins the threads per training instead.
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
    """Before torch starts: every new thread's OpenMP/MKL pool has 1 thread, and idle pool threads sleep.

    Streamlit reruns are new threads. libgomp's default is to spin while waiting, and a spinning pool
    collapses when another process wants its core (`aeviz bench threads`, case alone_2_active).
    """
    for var, value in (("OMP_NUM_THREADS", "1"), ("MKL_NUM_THREADS", "1"), ("OMP_WAIT_POLICY", "PASSIVE")):
        os.environ.setdefault(var, value)


def fair_share() -> int:
    """Threads one training should use now: AEVIZ_THREADS if set, else the cores split between the trainings."""
    if os.environ.get("AEVIZ_THREADS"):
        return max(1, int(os.environ["AEVIZ_THREADS"]))
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
