"""Import the heavy modules (pandas, Plotly, torch, the models, the attacks) in the background once the first page is out.

The Home page and the sidebar draw from stored arrays alone, so a first visit does not wait for torch
(seconds to import). Pages that need a model (Explore's predictions, Defence, Lab) would pay that on
their first visit instead; this thread pays it while the user reads Home. A page that imports torch
while the thread is still at it simply waits for the same import to finish (Python's import lock).
"""

from __future__ import annotations

import threading

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
    threading.Thread(target=_import_heavy_modules, name="fmaps-prewarm", daemon=True).start()


__all__ = ["prewarm_in_background"]
