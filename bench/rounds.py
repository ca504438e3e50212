"""Timing shared by the step benchmarks: interleaved rounds, so that a load spike on a shared machine hits every
variant alike, and the choice of variants from a comma-separated flag.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Mapping, Sequence

import torch


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU), so that a timer reads finished work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved_rounds(steps: Mapping[str, Callable[[], None]], rounds: int, steps_per_round: int, batch: int,
                       device: torch.device) -> dict[str, list[float]]:
    """name -> image-steps/s of each round: every round runs `steps_per_round` calls of each step in turn."""
    rates: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            synchronize(device)
            start = time.perf_counter()
            for _ in range(steps_per_round):
                step()
            synchronize(device)
            rates[name].append(batch * steps_per_round / (time.perf_counter() - start))
    return rates


def median_rates(rounds: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """name -> the median round's rate: the number a benchmark reports."""
    return {name: statistics.median(r) for name, r in rounds.items()}


def pick_variants(parser: argparse.ArgumentParser, text: str, known: Sequence[str]) -> list[str]:
    """The comma-separated variants of `text`, in its order; the parser's usage error names the known ones."""
    variants = [v for v in text.split(",") if v]
    unknown = sorted(set(variants) - set(known))
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; expected some of {list(known)}")
    return variants
