"""Short pauses for the garbage collector while a class uses the server.

CPython's full collection walks every tracked object. A server that has imported torch, plotly, pandas and
Streamlit and loaded the zoo holds about 330,000 of them, and with 30 students it ran a full collection every few
seconds, each one stopping every session for ~200 ms (`aeviz bench class`, gc callbacks in the server). Nearly all
of those objects live as long as the process: modules, functions, the cached zoo. `settle` moves them out of the
collector's reach (gc.freeze) once a page has been imported and drawn, so later collections walk only what the
sessions made since.
"""
from __future__ import annotations

import gc
import threading

_done: set[str] = set()
_lock = threading.Lock()


def settle(what: str) -> bool:
    """Once per `what` and process: collect the garbage there is, then freeze every object alive now. Whether this
    call did it. Objects frozen and later dropped are freed as usual unless they sit in a reference cycle, so this is
    done a bounded number of times: once per page."""
    if what in _done:
        return False
    with _lock:
        if what in _done:
            return False
        _done.add(what)
        gc.collect()
        gc.freeze()
        return True
