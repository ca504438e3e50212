"""Import the heavy modules (pandas, Plotly, torch, the models, the attacks) in the background once the first page is out.

The Home page and the sidebar draw from stored arrays alone, so a first visit does not wait for torch
(seconds to import). Pages that need a model (Explore's predictions, Defence, Lab) would pay that on
their first visit instead; this thread pays it while the user reads Home. A page that imports torch
while the thread is still at it simply waits for the same import to finish (Python's import lock).

The thread starts PREWARM_DELAY_S after the first script run has sent its page. Started at once, it took one
of a 2-core machine's cores, and the GIL, while the browser was still loading Streamlit's JavaScript and the
page's pictures (which this process serves): the first page was drawn 0.2-1.0 s later (bench/app_latency.py,
four alternating runs each). The browser needs about 1 s after the run has ended.
"""

from __future__ import annotations

import threading

PREWARM_DELAY_S = 1.5
_started = threading.Event()


def _import_heavy_modules() -> None:
    import core.attacks  # noqa: F401  foolbox and eagerpy, for the Lab
    import core.models.registry  # noqa: F401  torch, torchvision
    import ui.compute  # noqa: F401
    import ui.figures  # noqa: F401  pandas and Plotly, for the interactive charts


def prewarm_in_background() -> None:
    """Start the background import once per server process (later calls do nothing)."""
    if _started.is_set():
        return
    _started.set()
    timer = threading.Timer(PREWARM_DELAY_S, _import_heavy_modules)
    timer.name, timer.daemon = "fmaps-prewarm", True
    timer.start()


__all__ = ["prewarm_in_background"]
