"""Benchmark: the app's experiment listing at a server start, every byte re-hashed against remembered checksums.

The app deep-checks (sha256 against the manifest) every experiment it lists before its first page. With a
record of the files that matched before and have not changed since (experiments/verified.py), a later server
start re-reads nothing. Both are run here, alternating, in one process, over the directories the app would
list (the shipped ones and cache/ by default, or --roots); the page cache is warm in both (the files were read
just before), so the difference is hashing, not the disk.

    python -m bench.bench_listing                       # assets/demo, assets/results and cache/
    python -m bench.bench_listing --roots cache --rounds 7
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from experiments.reader import find_experiments
from experiments.verified import VerifiedFiles

REPO = Path(__file__).resolve().parents[1]


def directory_bytes(roots: list[str]) -> tuple[int, int]:
    """(files, bytes) under the roots."""
    files = total = 0
    for root in roots:
        for folder, _, names in os.walk(root):
            for name in names:
                files += 1
                total += os.path.getsize(os.path.join(folder, name))
    return files, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--roots", nargs="+", default=[str(REPO / "assets" / "demo"), str(REPO / "assets" / "results"),
                                                        str(REPO / "cache")])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    roots = [r for r in args.roots if os.path.isdir(r)]
    files, total = directory_bytes(roots)
    print(f"{len(roots)} roots, {files} files, {total / 1e6:.0f} MB: {', '.join(roots)}")
    with tempfile.TemporaryDirectory() as tmp:
        record = os.path.join(tmp, "verified.json")
        first = VerifiedFiles(record, racy_s=0)
        listings = find_experiments(roots, deep=True, verified=first)  # fills the record (and the page cache)
        first.save()
        problems = [p for item in listings for p in item.problems]
        if problems:
            raise SystemExit(f"damaged experiments, fix them first: {problems[:3]}")
        full: list[float] = []
        remembered: list[float] = []
        for _ in range(args.rounds):
            start = time.perf_counter()
            find_experiments(roots, deep=True)
            full.append(time.perf_counter() - start)
            start = time.perf_counter()
            verified = VerifiedFiles(record, racy_s=0)  # as at a server start: read the record from disk
            find_experiments(roots, deep=True, verified=verified)
            verified.save()
            remembered.append(time.perf_counter() - start)
    a, b = statistics.median(full), statistics.median(remembered)
    print(f"{len(listings)} experiments, median of {args.rounds}: every byte hashed {1000 * a:.1f} ms, "
          f"remembered checksums {1000 * b:.1f} ms: {a / b:.1f}x faster")


if __name__ == "__main__":
    main()
