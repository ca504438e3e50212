"""The batched per-image map trainer against a plain one-image-at-a-time loop (METHOD §2).

The reference below is written from METHOD §2 alone: torch.optim.Adam on one map, the Fourier
layer spelled out with torch.fft, the published order (loss, step, clamp, then the stop test).
Step counts are shrunk (and, outside the agreement test, the learning rate raised) so the tests run in seconds, yet images stop
at different steps and the batch (4 slots for 12 images) is refilled.

The model and images come from the `real_case` fixture: the third-party ResNet-20 on test-1000 with the shared
data, else the shipped ResNet-20 on Foolbox's 20 samples, so the tests run on any clone. The two agreement tests,
whose thresholds were measured on the third-party model and these 12 images, stay behind the shared data.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from core.map_training import MapResult, MapTrainConfig, SlotAdam, fold_batchnorm, train_maps

# 12 images spread over test-1000 (some misclassified by the model: failed maps must agree too); the first 12
# of the samples on a clone without test-1000
IMAGE_INDICES = list(range(0, 1000, 83))[:12]
# The agreement test runs at METHOD's learning rate 0.01 (FAST's 0.1 makes the trajectories chaotic enough that
# rounding alone moves 2 of the 12 maps below the 0.99 cosine on an AVX512 CPU, commit 0b3aa23), with fewer steps than
# METHOD's 500-5000 so it stays at ~30 s. Measured on that CPU with these settings: 11 of these 12 images reach
# cosine >= 0.99 (the criterion: >= 90 %), but on 36 images spread over test-1000 only 31 (86 %) do; the
# misses are maps at the edge of collapse (total mass < 1, the kept decision flipping on 2 of 36), where the
# lambda = 0.5 problem has several sparse optima and rounding picks one. So the 90 % holds on this set, not in general.
AGREEMENT = MapTrainConfig(lam=0.5, lr=0.01, min_steps=100, max_steps=200, tol=1e-2, window=20)
FAST = MapTrainConfig(lam=0.5, lr=0.1, min_steps=10, max_steps=40, tol=1e-2, window=20)


def plain_map(model, image, target, config, early_model=None, early_steps=0):
    """One map, one image: the loop as METHOD §2 states it. image (C, H, W), target () int64.
    With early_model: steps 1..early_steps go through it instead of `model`."""
    fourier_map = torch.ones_like(image, requires_grad=True)  # (C, H, W)
    optimizer = torch.optim.Adam([fourier_map], lr=config.lr)
    losses = []
    t = 0
    while True:
        t += 1
        optimizer.zero_grad()
        filtered = torch.fft.ifft2(fourier_map * torch.fft.fft2(image)).real
        logits = (early_model if early_model is not None and t <= early_steps else model)(filtered[None])  # (1, K)
        loss = F.cross_entropy(logits, target[None]) + config.lam * fourier_map.abs().sum()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            fourier_map.clamp_(0, 1)
        losses.append(loss.item())
        converged = t > config.min_steps and abs(losses[-1] - np.mean(losses[-config.window :])) < config.tol
        if converged or t > config.max_steps:
            kept = logits.argmax(dim=1).item() == target.item()
            return fourier_map.detach(), t, kept


@pytest.fixture(scope="module")
def model(real_case) -> nn.Module:
    return real_case.model


@pytest.fixture(scope="module")
def twelve(real_case) -> tuple[torch.Tensor, torch.Tensor]:
    """(12, 3, 32, 32) float images and (12,) labels."""
    indices = IMAGE_INDICES if len(real_case.labels) > max(IMAGE_INDICES) else list(range(12))
    return real_case.images[indices], real_case.labels[indices]


@pytest.fixture(scope="module")
def batched(model, twelve) -> tuple[MapResult, list]:
    images, labels = twelve
    calls = []
    result = train_maps(model, images, labels, FAST, batch_size=4, progress=lambda d, n: calls.append((d, n)))
    return result, calls


# the third-party model only: the 90 % criteria were measured on it and these 12 images, which hold misclassified
# ones (the shipped model gets the samples right)
def test_batched_matches_plain_loop(akamaster_model, twelve):
    images, labels = twelve
    result = train_maps(akamaster_model, images, labels, AGREEMENT, batch_size=4)  # 4 slots for 12 images: refilled
    steps = result.steps.tolist()
    assert len(set(steps)) > 1, f"images should stop at different steps to exercise refill, got {steps}"
    assert min(steps) > AGREEMENT.min_steps and max(steps) <= AGREEMENT.max_steps + 1

    cosines, same_kept, step_diffs = [], [], []
    for i in range(len(IMAGE_INDICES)):
        ref_map, ref_steps, ref_kept = plain_map(akamaster_model, images[i], labels[i], AGREEMENT)
        cosines.append(F.cosine_similarity(ref_map.flatten(), result.maps[i].flatten(), dim=0, eps=1e-12).item())
        same_kept.append(ref_kept == bool(result.kept[i]))
        step_diffs.append(steps[i] - ref_steps)
    print("cosine(batched, plain) per image:", np.round(cosines, 5).tolist())
    print("same kept/failed decision:", same_kept, " step differences:", step_diffs)
    print("batched steps:", steps, " kept:", result.kept.tolist())
    assert np.mean(np.array(cosines) >= 0.99) >= 0.9
    assert np.mean(same_kept) >= 0.9
    assert result.kept.any() and not result.kept.all(), "the set should hold kept and failed images"


class CountingScaled(nn.Module):
    """model(x) · scale, counting the images it is given (a different loss landscape when scale != 1)."""

    def __init__(self, model: nn.Module, scale: float) -> None:
        super().__init__()
        self.model, self.scale, self.rows = model, scale, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.rows += x.shape[0]
        return self.model(x) * self.scale


# the third-party model only: on the shipped model and the samples it passes (cosines 1.0 but one 0.86) yet takes
# ~90 s (the third-party model: 13 s)
def test_early_model_takes_the_first_steps_of_every_image(akamaster_model, twelve):
    """`early_model` computes steps 1..early_steps of each image, `model` the rest, in batches that are split
    when refilled slots sit on both sides of that step: against the plain loop switching models at that step,
    and against the closed-form count of images each model saw."""
    images, labels = (t[:6] for t in twelve)
    early_steps = 50
    late, early = CountingScaled(akamaster_model, 1.0).eval(), CountingScaled(akamaster_model, 3.0).eval()
    result = train_maps(late, images, labels, AGREEMENT, batch_size=4, fuse_batchnorm=False,
                        early_model=early, early_steps=early_steps)  # 4 slots for 6 images: refilled, so split
    steps = result.steps
    assert early.rows == int(steps.clamp(max=early_steps).sum())
    assert late.rows == int((steps - early_steps).clamp(min=0).sum())
    cosines, differs = [], []
    for i in range(len(labels)):
        ref_map, ref_steps, _ = plain_map(akamaster_model, images[i], labels[i], AGREEMENT,
                                          early_model=early, early_steps=early_steps)
        cosines.append(F.cosine_similarity(ref_map.flatten(), result.maps[i].flatten(), dim=0, eps=1e-12).item())
        if i < 3:  # enough to see the switch matter (measured: 1.0, 0.62, 1.0)
            alone, _, _ = plain_map(akamaster_model, images[i], labels[i], AGREEMENT)
            differs.append(F.cosine_similarity(ref_map.flatten(), alone.flatten(), dim=0, eps=1e-12).item())
    print("cosine(batched, plain with the same switch):", np.round(cosines, 5).tolist())
    print("cosine(plain with the switch, plain without):", np.round(differs, 5).tolist())
    assert np.mean(np.array(cosines) >= 0.98) >= 5 / 6  # measured: 5 at >= 0.999, one at 0.990 (AVX512)
    assert min(differs) < 0.99  # the early model matters, so the agreement above is not by default
    assert train_maps(late, images[:2], labels[:2], FAST, early_steps=early_steps).steps.tolist() == \
        train_maps(late, images[:2], labels[:2], FAST).steps.tolist()  # no early_model: early_steps is ignored


def test_split_forward_puts_each_slot_through_its_network_in_slot_order(model, twelve):
    """Slots on both sides of early_steps: one pass per network, the logits back in slot order,
    against each image run alone through the network its step count picks."""
    from core.map_training import _Networks

    images = twelve[0][:5]
    late, early = CountingScaled(model, 1.0).eval(), CountingScaled(model, 3.0).eval()
    steps = [7, 0, 5, 4, 2]  # early_steps 5: slots 1, 3 and 4 are still early
    with torch.no_grad():
        logits = _Networks(late, early, early_steps=5, channels_last=False).forward_for(steps)(images)  # (5, K)
        expected = torch.cat([(early if t < 5 else late)(images[i : i + 1]) for i, t in enumerate(steps)])
    assert (early.rows, late.rows) == (3 + 3, 2 + 2)  # the split pass, then the reference one by one
    torch.testing.assert_close(logits, expected, rtol=0, atol=1e-4)
    with torch.no_grad():
        all_late = model(images)  # (5, K)
    assert not torch.allclose(logits[[1, 3, 4]], all_late[[1, 3, 4]], atol=1e-2), "the networks must differ"


def test_progress_counts_finished_images(batched):
    _, calls = batched
    done = [d for d, _ in calls]
    assert done == sorted(done) and calls[-1] == (12, 12) and all(n == 12 for _, n in calls)


def test_maps_within_unit_interval_and_shapes(batched, twelve):
    result, _ = batched
    assert result.maps.shape == twelve[0].shape and result.maps.dtype == torch.float32
    assert result.maps.min() >= 0 and result.maps.max() <= 1
    assert result.steps.shape == result.kept.shape == result.final_pred.shape == result.final_loss.shape == (12,)
    assert torch.equal(result.kept, result.final_pred == twelve[1])


def test_final_loss_is_ce_plus_l1_of_the_last_forward(model, twelve):
    """With max_steps = 0 every image takes exactly one step from the all-ones map: loss = CE(f(x)) + λ·C·H·W."""
    images, labels = twelve
    config = MapTrainConfig(lam=0.5, lr=0.01, min_steps=0, max_steps=0, tol=0.0)
    result = train_maps(model, images[:3], labels[:3], config, batch_size=2)
    with torch.no_grad():
        ce = F.cross_entropy(model(images[:3]), labels[:3], reduction="none").double()
    expected = ce + 0.5 * images[0].numel()
    assert result.steps.tolist() == [1, 1, 1]
    assert torch.allclose(result.final_loss, expected, rtol=0, atol=1e-3)
    assert (result.maps < 1).any(), "the one Adam step must have moved the maps"


def test_slot_adam_matches_torch_adam():
    """One slot against torch.optim.Adam for 60 steps; a refilled slot against a fresh torch Adam."""
    generator = torch.Generator().manual_seed(0)
    start = torch.rand(2, 3, 5, 5, generator=generator)  # (S, C, H, W)
    grads = torch.randn(60, 2, 3, 5, 5, generator=generator) * torch.logspace(-3, 1, 60).view(60, 1, 1, 1, 1)

    slots = start.clone()
    adam = SlotAdam(slots, lr=0.01)
    reference = [start[0].clone().requires_grad_(True), None]
    torch_adams = [torch.optim.Adam([reference[0]], lr=0.01), None]
    for step in range(60):
        if step == 25:  # slot 1 takes a new "image": fresh state, its own step count from 1
            with torch.no_grad():
                slots[1] = start[1]
            adam.reset(torch.tensor([1]))
            reference[1] = start[1].clone().requires_grad_(True)
            torch_adams[1] = torch.optim.Adam([reference[1]], lr=0.01)
        adam.step(slots, grads[step])
        for slot in (0, 1):
            if reference[slot] is not None:
                reference[slot].grad = grads[step, slot].clone()
                torch_adams[slot].step()
    assert adam.steps.tolist() == [60, 35]
    assert (slots[0] - reference[0].detach()).abs().max() <= 1e-6
    assert (slots[1] - reference[1].detach()).abs().max() <= 1e-6
    assert (slots[0] - start[0]).abs().max() > 0.1, "the parameters must actually have moved"


def test_slot_adam_rows_leave_other_slots_untouched():
    params = torch.ones(3, 2)
    adam = SlotAdam(params, lr=0.1)
    adam.step(params, torch.ones(3, 2), rows=torch.tensor([0, 2]))
    assert adam.steps.tolist() == [1, 0, 1]
    assert torch.equal(params[1], torch.ones(2)) and torch.allclose(params[0], torch.full((2,), 0.9))


def test_lam_zero_keeps_maps_near_ones_and_the_label(model, real_case):
    images, labels = real_case.images, real_case.labels
    with torch.no_grad():
        correct = (model(images[:40]).argmax(dim=1) == labels[:40]).nonzero().flatten()[:6]
    config = MapTrainConfig(lam=0.0, lr=0.01, min_steps=3, max_steps=5, tol=1e-5)
    result = train_maps(model, images[correct], labels[correct], config, batch_size=4)
    assert result.kept.all()
    # Adam moves an entry by about lr per step at most; the CE alone never empties the map
    assert result.maps.min() >= 1 - 2 * config.lr * (config.max_steps + 1)
    # most entries stay near 1 (measured mean: third-party model 0.9903, shipped model on the samples 0.9813,
    # against 0.94 if every entry took all six lr-sized steps down)
    print("mean of the lam = 0 maps:", result.maps.mean().item())
    assert result.maps.mean() > {"akamaster": 0.99, "shipped": 0.975}[real_case.name]


def test_fold_batchnorm_same_function(model, twelve):
    images, _ = twelve
    folded = fold_batchnorm(model)
    assert folded is not model and not folded.training
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()), "the original is untouched"
    assert not any(p.requires_grad for p in folded.parameters())
    with torch.no_grad():
        assert torch.allclose(folded(images), model(images), rtol=0, atol=1e-4)


def test_deterministic(model, twelve):
    images, labels = twelve
    config = MapTrainConfig(lr=0.1, min_steps=2, max_steps=4, tol=1e-2)
    first = train_maps(model, images[:5], labels[:5], config, batch_size=2)
    second = train_maps(model, images[:5], labels[:5], config, batch_size=2)
    assert torch.equal(first.maps, second.maps) and torch.equal(first.steps, second.steps)


def test_model_left_as_found(model, twelve):
    images, labels = twelve
    model.train()
    try:
        train_maps(model, images[:1], labels[:1], MapTrainConfig(min_steps=0, max_steps=0))
        assert model.training
        assert not any(p.grad is not None for p in model.parameters())
    finally:
        model.eval()


def test_empty_input(model):
    result = train_maps(model, torch.zeros(0, 3, 32, 32), torch.zeros(0, dtype=torch.int64))
    assert result.maps.shape == (0, 3, 32, 32) and result.steps.numel() == 0


@pytest.mark.parametrize(
    ("images", "targets", "kwargs", "message"),
    [
        (torch.rand(3, 32, 32), torch.zeros(3, dtype=torch.int64), {}, r"expected images as a float tensor \(N, C, H, W\)"),
        (torch.rand(4, 3, 32, 32), torch.zeros(3, dtype=torch.int64), {}, r"expected one target per image \(4\), got 3"),
        (torch.rand(2, 3, 32, 32), torch.zeros(2), {}, r"expected targets as an int64 tensor"),
        (torch.rand(2, 3, 32, 32) * 255, torch.zeros(2, dtype=torch.int64), {}, r"expected images in \[0, 1\]"),
        (torch.rand(2, 3, 32, 32), -torch.ones(2, dtype=torch.int64), {}, r"expected non-negative targets"),
        (torch.rand(2, 3, 32, 32), torch.zeros(2, dtype=torch.int64), {"batch_size": 0}, r"expected batch_size >= 1"),
        (
            torch.rand(2, 3, 32, 32),
            torch.zeros(2, dtype=torch.int64),
            {"config": MapTrainConfig(min_steps=10, max_steps=5)},
            r"expected 0 <= min_steps <= max_steps",
        ),
        (torch.rand(2, 3, 32, 32), torch.zeros(2, dtype=torch.int64), {"early_steps": -1}, r"expected early_steps >= 0"),
    ],
    ids=["3d-images", "targets-length", "float-targets", "not-unit-range", "negative-target", "batch-size", "steps",
         "early-steps"],
)
def test_bad_input(model, images, targets, kwargs, message):
    with pytest.raises(ValueError, match=message):
        train_maps(model, images, targets, **kwargs)
