"""Progress bars with ETA (tqdm) and one summary line per stage; silent with --quiet."""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


class Progress:
    """Factory of per-stage bars; `note` prints one line (to stderr, so --json stdout stays clean)."""

    def __init__(self, quiet: bool = False, rank: int = 0) -> None:
        self.quiet = quiet
        self.rank = rank

    def bar(self, stage: str, total: int, initial: int = 0) -> Any:
        if self.quiet:
            return _Silent()
        prefix = f"[rank {self.rank}] " if self.rank else ""
        return tqdm(total=total, initial=initial, desc=f"{prefix}{stage}", unit="img", file=sys.stderr, leave=False, dynamic_ncols=True)

    def note(self, line: str) -> None:
        if not self.quiet and self.rank == 0:
            print(line, file=sys.stderr, flush=True)
