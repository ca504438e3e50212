"""Remember which cache files already matched their checksum, so the app's listing re-hashes only what changed.

The app deep-checks every experiment it lists (sha256 of every file against the manifest) on the first page
of every server start. That reads every byte: 0.3 s for the 272 MB CIFAR-10 reproduction on a 2-core
machine, seconds for Imagenette experiments of several GB. A file whose size, modification time, change time,
inode and device are all what they were when its bytes last matched the manifest's sha256 is taken as
unchanged and not read again: the quick check that git's index, make and rsync rely on.

What still gets re-hashed: any rewrite, truncation or replacement (new mtime/ctime or inode), a copy of the
experiment elsewhere (new inode), a file whose manifest sha256 changed, and any file so new that a change in
the same clock tick could hide (git's "racy" case: it is recorded only once it is RACY_S old). The change
time cannot be set back from user space, so even an mtime restored by hand (`touch -d`) is noticed. What is
not noticed is a change below the file system (bit rot on the disk), which `python -m precompute list`,
which always re-hashes everything, still finds.

The record is one small JSON file per user, `$XDG_CACHE_HOME/fmaps/verified.json` (`~/.cache/...`); the
environment variable FMAPS_VERIFIED names another file, or, set to an empty string, turns remembering off.
A missing, unreadable or unwritable record only means re-hashing: it never stops a listing.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time

RACY_S = 2.0  # a file changed less than this long ago may change again within the same timestamp
ENV = "FMAPS_VERIFIED"
_VERSION = 1

Stamp = tuple[int, int, int, int, int]  # (size, mtime_ns, ctime_ns, inode, device)


def default_path() -> str | None:
    """Where the record lives: $FMAPS_VERIFIED ('' = nowhere), else the user's cache directory."""
    if ENV in os.environ:
        return os.environ[ENV] or None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "fmaps", "verified.json")


def stamp_of(stat: os.stat_result) -> Stamp:
    """What must be unchanged for a file to count as the one that matched: size, both times, inode, device."""
    return (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino, stat.st_dev)


class VerifiedFiles:
    """Files known to have matched a sha256, each with the stamp it had then. path=None: remember nothing."""

    def __init__(self, path: str | None, racy_s: float | None = None) -> None:
        self.path, self.racy_ns = path, int((RACY_S if racy_s is None else racy_s) * 1e9)
        self.known: dict[str, list] = {}  # absolute path -> [size, mtime_ns, ctime_ns, inode, device, sha256]
        self.changed = False
        if path is None:
            return
        with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
            with open(path) as fh:
                data = json.load(fh)
            if data.get("version") == _VERSION and isinstance(data.get("files"), dict):
                self.known = {k: v for k, v in data["files"].items() if isinstance(v, list) and len(v) == 6}

    def matches(self, full: str, stat: os.stat_result, sha256: str) -> bool:
        """Whether `full`, as it is now (`stat`), is the file that last matched `sha256`."""
        entry = self.known.get(os.path.abspath(full))
        return entry is not None and entry[5] == sha256 and tuple(entry[:5]) == stamp_of(stat)

    def record(self, full: str, stat: os.stat_result, sha256: str) -> None:
        """`full` (as `stat` describes it) has just been read and matched `sha256`: remember it, unless racy."""
        if time.time_ns() - max(stat.st_mtime_ns, stat.st_ctime_ns) < self.racy_ns:
            return
        self.known[os.path.abspath(full)] = [*stamp_of(stat), sha256]
        self.changed = True

    def forget(self, full: str) -> None:
        """`full` did not match (or is gone): it must be read again next time."""
        if self.known.pop(os.path.abspath(full), None) is not None:
            self.changed = True

    def save(self) -> None:
        """Write the record atomically if anything changed, dropping files that no longer exist. Best effort:
        a read-only home or a full disk costs the next listing its shortcut, nothing else."""
        if self.path is None or not self.changed:
            return
        files = {k: v for k, v in self.known.items() if os.path.exists(k)}
        with contextlib.suppress(OSError):
            directory = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(directory, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".verified-", dir=directory)
            try:
                with os.fdopen(fd, "w") as fh:
                    json.dump({"version": _VERSION, "files": files}, fh)
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.remove(tmp)
                raise
        self.changed = False
