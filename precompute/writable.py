"""The one check every command that writes makes before any work: can we really write there?"""

from __future__ import annotations

import os
import tempfile


def check_writable_dir(directory: str, option: str = "--out") -> None:
    """Raise PermissionError (one line naming `option`) unless files can be created in `directory`.

    A directory that does not exist yet counts as writable when its nearest existing ancestor is (the
    commands create it). os.access alone says yes to root almost everywhere (/proc, read-only mounts),
    so a folder is created there and removed again."""
    existing = directory
    while existing and not os.path.exists(existing):
        existing = os.path.dirname(existing)
    existing = existing or "."
    if not os.path.isdir(existing) or not os.access(existing, os.W_OK):
        raise PermissionError(f"expected a writable directory for {option}, got {directory!r}")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".fmaps-write-probe-", dir=existing))
    except OSError as err:
        raise PermissionError(f"expected a writable directory for {option}, got {directory!r} "
                              f"({existing!r}: {err.strerror})") from None
