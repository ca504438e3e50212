"""The stop rule of map training (METHOD §2 and §5) and the settings both map trainers share.

Per-image maps and class maps stop the same way: after step t, with L the list of that map's losses
so far (loss_t last), stop when (t > min_steps and |loss_t − mean(L[-window:])| < tol) or t > max_steps.
So a map takes at least min_steps + 1 and at most max_steps + 1 steps.

`StopRule` is that rule, `SlotHistory` keeps the step count and recent losses of every slot of a batch
(one map per slot) and asks the rule, `MapFitSettings` gives both trainers' configs one check of the
fields they share (lam, lr and the rule's four). Plain Python floats throughout: the decision is made on
the host from the losses of one step, so it cannot sit inside a compiled tensor step.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class StopRule:
    """When a map stops training; t counts the steps it has taken, the current one included."""

    min_steps: int  # the convergence test is only tried once t exceeds this
    max_steps: int  # stop unconditionally once t exceeds this
    tol: float  # converged when |loss_t - mean(last `window` losses)| < tol
    window: int  # how many recent losses (loss_t included) the running mean covers

    def validate(self) -> None:
        """Raise ValueError on a rule the trainers cannot honour."""
        if self.min_steps < 0 or self.max_steps < self.min_steps:
            raise ValueError(f"expected 0 <= min_steps <= max_steps, got {self.min_steps} and {self.max_steps}")
        if self.tol < 0:
            raise ValueError(f"expected tol >= 0, got {self.tol}")
        if self.window < 1:
            raise ValueError(f"expected window >= 1, got {self.window}")

    def stops(self, t: int, recent: deque[float]) -> bool:
        """Whether a map stops after step t; `recent` holds its last `window` losses, loss_t last."""
        loss = recent[-1]
        converged = t > self.min_steps and abs(loss - sum(recent) / len(recent)) < self.tol
        return converged or t > self.max_steps


class SlotHistory:
    """Step count and last `window` losses of each slot of a batch of maps, and the rule's verdict on them.

    A slot is a position in the batch; `restart` gives it a new map, `keep` follows the batch when
    it shrinks.
    """

    def __init__(self, rule: StopRule, slots: int) -> None:
        self.rule = rule
        self.steps = [0] * slots  # steps taken by the map in each slot
        self.recent = [deque(maxlen=rule.window) for _ in range(slots)]  # its last `window` losses

    def record(self, slot: int, loss: float) -> bool:
        """Count one step of `slot` with loss `loss`; True when its map stops now."""
        self.steps[slot] += 1
        self.recent[slot].append(loss)
        return self.rule.stops(self.steps[slot], self.recent[slot])

    def restart(self, slot: int) -> None:
        """A new map takes `slot`: no steps, no losses."""
        self.steps[slot] = 0
        self.recent[slot].clear()

    def keep(self, rows: list[int]) -> None:
        """Drop all slots but `rows`, in that order: the batch shrank."""
        self.steps = [self.steps[s] for s in rows]
        self.recent = [self.recent[s] for s in rows]


class MapFitSettings:
    """What the per-image and the class-map configs share: the loss weight, the Adam lr and the stop rule.

    A mixin for those dataclasses, which declare the fields themselves (each with its own default and
    comment); it adds no fields, so their asdict() and hashes are unchanged.
    """

    lam: float  # weight of the L1 penalty λ·Σ|M|
    lr: float  # Adam learning rate
    min_steps: int
    max_steps: int
    tol: float
    window: int

    @property
    def stop_rule(self) -> StopRule:
        """The stop rule these settings describe."""
        return StopRule(min_steps=self.min_steps, max_steps=self.max_steps, tol=self.tol, window=self.window)

    def validate(self) -> None:
        """Raise ValueError on settings the trainers cannot honour."""
        if self.lam < 0:
            raise ValueError(f"expected lam >= 0, got {self.lam}")
        if self.lr <= 0:
            raise ValueError(f"expected lr > 0, got {self.lr}")
        self.stop_rule.validate()
