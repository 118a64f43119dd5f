"""Thread policy: one torch thread per training, and idle OpenMP threads sleep.

Measured on a 2-core machine with `aeviz bench threads --arch mlp|conv|rnn` (README, "Serving a class"):
- OpenMP's default spin-waiting makes a 2-thread training 1.2-1.6x faster than a 1-thread one while it is alone,
  but a spinning pool collapses (2-22x slower) as soon as anything else wants a core: another student's
  training, the Streamlit server, UMAP. So OMP_WAIT_POLICY=PASSIVE is set before torch starts.
- With sleeping pool threads, waking them costs more than these small models' operations save: a second thread
  made a lone training 0.72-0.90x as fast (MLP, conv and GRU alike), and 0.60-0.83x beside a busy core.
- Two trainings at once (two students) with 1 thread each ran 1.21-1.38x faster in total than with 2 each.
So every training uses 1 thread, whatever else runs. AEVIZ_THREADS sets another number, for example on a
machine that serves one person (then OMP_WAIT_POLICY=ACTIVE too, for the spinning speed-up).
"""
from __future__ import annotations

import os


def cores() -> int:
    """CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


LIMITS = (("OMP_NUM_THREADS", "1"), ("MKL_NUM_THREADS", "1"), ("OMP_WAIT_POLICY", "PASSIVE"))


def limit_before_torch() -> None:
    """Before torch starts: every new thread's OpenMP/MKL pool has 1 thread, and idle pool threads sleep.

    Streamlit reruns are new threads. libgomp's default is to spin while waiting, and a spinning pool
    collapses when another process wants its core (`aeviz bench threads`, case alone_2_active).
    A value the user already set wins.
    """
    for var, value in LIMITS:
        os.environ.setdefault(var, value)


def per_training() -> int:
    """Threads one training uses: AEVIZ_THREADS if set, else 1."""
    value = os.environ.get("AEVIZ_THREADS", "").strip()
    return max(1, int(value)) if value.isdigit() else 1


def apply(n: int | None = None) -> int:
    """Set this thread's torch pool to n threads (default: per_training()); return n.

    Needed in every thread that trains: torch's thread setting does not carry over to new threads.
    """
    import torch

    n = n or per_training()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
