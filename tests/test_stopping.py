"""The shared stop rule of map training (core.stopping) against the rule written out on a full loss list."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest

from core.class_maps import ClassMapConfig
from core.map_training import MapTrainConfig
from core.stopping import SlotHistory, StopRule


def reference_stop_step(losses: list[float], min_steps: int, max_steps: int, tol: float, window: int) -> int | None:
    """METHOD §2: the first t with (t > min_steps and |loss_t - mean(L[-window:])| < tol) or t > max_steps."""
    for t in range(1, len(losses) + 1):
        so_far = np.array(losses[:t])
        if (t > min_steps and abs(so_far[-1] - so_far[-window:].mean()) < tol) or t > max_steps:
            return t
    return None


def decaying(steps: int, rate: float) -> list[float]:
    return [1.0 + rate**t for t in range(1, steps + 1)]


def oscillating(steps: int) -> list[float]:
    return [1.0 + 0.1 * (-1) ** t for t in range(1, steps + 1)]


@pytest.mark.parametrize(
    ("losses", "rule"),
    [
        (decaying(200, 0.7), StopRule(min_steps=3, max_steps=100, tol=1e-3, window=4)),
        (decaying(200, 0.7), StopRule(min_steps=30, max_steps=100, tol=1e-3, window=4)),  # min_steps binds
        (decaying(200, 0.9), StopRule(min_steps=0, max_steps=100, tol=1e-2, window=50)),  # window longer than t
        (oscillating(200), StopRule(min_steps=5, max_steps=40, tol=1e-3, window=2)),  # never converges: max_steps
        (oscillating(200), StopRule(min_steps=0, max_steps=0, tol=0.0, window=1)),  # one step only
        ([2.0] * 10, StopRule(min_steps=0, max_steps=5, tol=1e-9, window=1)),  # window 1 always converged
    ],
    ids=["decay", "min-steps-binds", "long-window", "max-steps", "one-step", "window-one"],
)
def test_slot_history_stops_where_the_rule_on_the_full_list_does(losses, rule):
    expected = reference_stop_step(losses, rule.min_steps, rule.max_steps, rule.tol, rule.window)
    assert expected is not None and expected <= rule.max_steps + 1
    history = SlotHistory(rule, slots=2)
    stopped = None
    for loss in losses:
        history.record(1, loss + 5.0)  # another slot with its own losses does not interfere
        if history.record(0, loss):
            stopped = history.steps[0]
            break
    assert stopped == expected
    assert len(history.recent[0]) == min(rule.window, expected)


def test_restart_and_keep_follow_the_slots():
    rule = StopRule(min_steps=2, max_steps=10, tol=1e-6, window=3)
    history = SlotHistory(rule, slots=3)
    for slot, loss in [(0, 1.0), (1, 2.0), (2, 3.0), (0, 1.5), (2, 3.5)]:
        history.record(slot, loss)
    history.restart(2)
    assert history.steps == [2, 1, 0] and list(history.recent[2]) == []
    history.keep([2, 0])
    assert history.steps == [0, 2] and [list(r) for r in history.recent] == [[], [1.0, 1.5]]
    # a restarted slot counts from one again: min_steps must pass before it may converge on equal losses
    assert [history.record(0, 4.0) for _ in range(3)] == [False, False, True]


@pytest.mark.parametrize("config_class", [MapTrainConfig, ClassMapConfig], ids=["per-image", "class"])
@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"lam": -0.1}, r"expected lam >= 0, got -0.1"),
        ({"lr": 0.0}, r"expected lr > 0, got 0.0"),
        ({"min_steps": -1}, r"expected 0 <= min_steps <= max_steps, got -1 and 5000"),
        ({"min_steps": 10, "max_steps": 5}, r"expected 0 <= min_steps <= max_steps, got 10 and 5"),
        ({"tol": -1e-3}, r"expected tol >= 0, got -0.001"),
        ({"window": 0}, r"expected window >= 1, got 0"),
    ],
    ids=["lam", "lr", "min-steps", "max-below-min", "tol", "window"],
)
def test_both_configs_check_the_shared_fields_alike(config_class, override, message):
    with pytest.raises(ValueError, match=message):
        config_class(**override).validate()


def test_configs_keep_their_fields_and_describe_their_rule():
    """The mixin adds no dataclass field (asdict, and so the cache hashes, stay as they were)."""
    assert [f.name for f in fields(MapTrainConfig)] == ["lam", "lr", "min_steps", "max_steps", "tol", "window"]
    assert [f.name for f in fields(ClassMapConfig)] == [
        "lam", "lr", "min_steps", "max_steps", "tol", "window", "batch_size", "adversarial_step", "seed"]
    assert MapTrainConfig(min_steps=7, max_steps=9, tol=0.5, window=3).stop_rule == StopRule(7, 9, 0.5, 3)
    assert ClassMapConfig().stop_rule == StopRule(500, 5000, 1e-3, 20)
    with pytest.raises(ValueError, match=r"expected batch_size >= 1 or 'full', got 0"):
        ClassMapConfig(batch_size=0).validate()
    MapTrainConfig().validate()
    ClassMapConfig().validate()
