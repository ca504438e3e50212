"""A bound on live work (Lab map training): at most LIVE_SLOTS trainings run at once in this server.

Every Streamlit session runs in its own thread of one process, so one module-level semaphore
bounds them all; a session that finds no free slot says so and waits. The semaphore holds no
user data (per-session results live in st.session_state).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

LIVE_SLOTS = 2  # concurrent live trainings; each uses the CPU threads torch gives it
WAIT_LIMIT_S = 300.0  # give up waiting for a slot after this long (seconds)
_SLOTS = threading.BoundedSemaphore(LIVE_SLOTS)


class BusyError(RuntimeError):
    """No live slot became free within the wait limit."""


@contextmanager
def live_slot(on_wait: Callable[[], None] | None = None, *, limit_s: float = WAIT_LIMIT_S,
              slots: threading.BoundedSemaphore | None = None) -> Iterator[None]:
    """Hold one live slot for the block; call on_wait() once if the slots are all taken, then wait.

    Raises BusyError after limit_s seconds without a free slot.
    """
    semaphore = slots or _SLOTS
    if not semaphore.acquire(blocking=False):
        if on_wait is not None:
            on_wait()
        deadline = time.monotonic() + limit_s
        while not semaphore.acquire(timeout=0.5):
            if time.monotonic() > deadline:
                raise BusyError(f"no free slot for live training within {limit_s:.0f} s; try again in a moment")
    try:
        yield
    finally:
        semaphore.release()
