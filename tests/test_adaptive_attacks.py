"""Adaptive attacks on the class-map defence (core/attacks_adaptive/), on the shipped ResNet-20, Foolbox's
20 CIFAR-10 samples and the shipped demo's PGD class maps. Two images and 2-10 steps (queries) per attack, one
torch thread: these prove the machinery (budgets, strength against the non-adaptive attack, the PGD loop against
a plain per-image loop), not the paper's numbers, in seconds."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.attack_keys import ADAPTIVE_ATTACKS, adaptive_attack_key, adaptive_attack_of, parse_attack_key
from core.attacks import run_attack
from core.attacks_adaptive import (
    AdaptiveResult,
    accuracy_at,
    accuracy_falls_to_zero,
    adaptive_pgd,
    more_effort_does_not_help,
    robustness_curve,
    run_adaptive_attack,
    transfer_attack,
    white_box_beats_gradient_free,
)
from core.attacks_adaptive.square import window_share
from core.defended import DefendedClassifier

DEMO_MAPS = sorted(Path(__file__).resolve().parents[1].glob("assets/demo/*/class_maps/pgd-8/maps.npy"))
FLOAT_SLACK = 1e-6  # |x_adv - x| may exceed ε by float rounding of x0 + clip(x - x0, -ε, ε)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread for these two-image batches: as fast on an idle machine, and on a loaded one it spares
    the OpenMP spin-waiting that made two threads 10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def defended(shipped_model) -> DefendedClassifier:
    assert DEMO_MAPS, "the shipped demo cache holds class_maps/pgd-8/maps.npy"
    return DefendedClassifier.from_stored(shipped_model, torch.from_numpy(np.load(DEMO_MAPS[0])))


@pytest.fixture(scope="module")
def samples(cifar_samples) -> tuple[torch.Tensor, torch.Tensor]:
    """The first 2 samples, (2, 3, 32, 32) in [0, 1], and their labels."""
    return cifar_samples.images[:2].float() / 255, cifar_samples.labels[:2]


# samples the non-adaptive PGD 8/255 (Foolbox's 40 steps) leaves correctly classified under the demo's PGD class
# maps and adaptive PGD with a few steps does not: the ones on which an adaptive attack has something to show
SURVIVORS = [3, 7]


@pytest.fixture(scope="module")
def survivors(cifar_samples) -> tuple[torch.Tensor, torch.Tensor]:
    return cifar_samples.images[SURVIVORS].float() / 255, cifar_samples.labels[SURVIVORS]


def _within_budget(result: AdaptiveResult, images: torch.Tensor, eps: float) -> None:
    assert result.adversarial.min() >= 0 and result.adversarial.max() <= 1
    assert float((result.adversarial - images).abs().max()) <= eps + FLOAT_SLACK
    torch.testing.assert_close(result.linf, (result.adversarial - images).flatten(1).abs().amax(1), rtol=0, atol=0)


def _defended_by_hand(defended: DefendedClassifier, images: torch.Tensor) -> torch.Tensor:
    """A plain two-pass defended prediction, image by image."""
    with torch.no_grad():
        out = []
        for image in images:
            pick = int(defended.model(image[None]).argmax())
            filtered = torch.fft.ifft2(defended.class_maps[pick] * torch.fft.fft2(image)).real
            out.append(int(defended.model(filtered[None]).argmax()))
    return torch.tensor(out)


@pytest.mark.parametrize("name", [n for n, spec in ADAPTIVE_ATTACKS.items() if spec.needs_eps])
def test_fixed_budget_attacks_stay_within_eps_and_judge_with_the_defence(defended, samples, name):
    images, labels = samples
    eps = 3 / 255
    result = run_adaptive_attack(name, defended, images, labels, eps, steps=2 if name.startswith("pgd") else 10)
    _within_budget(result, images, eps)
    assert result.pred.tolist() == _defended_by_hand(defended, result.adversarial).tolist()


@pytest.fixture(scope="module")
def at_8(defended, survivors) -> dict[str, AdaptiveResult]:
    """Defended accuracy at 8/255: Table IV's non-adaptive PGD (Foolbox's 40 steps) against adaptive PGD with
    5 (BPDA) and 2 (all maps, K + 1 passes a step) steps."""
    images, labels = survivors
    return {
        "transfer": transfer_attack(defended, images, labels, 8 / 255),
        "pgd+bpda": run_adaptive_attack("pgd+bpda", defended, images, labels, 8 / 255, steps=5),
        "pgd+all-maps": run_adaptive_attack("pgd+all-maps", defended, images, labels, 8 / 255, steps=2),
    }


@pytest.mark.parametrize("name", ["pgd+bpda", "pgd+all-maps"])
def test_adaptive_pgd_is_stronger_than_the_non_adaptive_attack(at_8, survivors, name):
    images, _ = survivors
    _within_budget(at_8[name], images, 8 / 255)
    assert at_8["transfer"].accuracy() == 1.0  # the non-adaptive attack leaves both images correct...
    assert at_8[name].accuracy() == 0.0  # ...the attack that knows the defence fools both


def test_bpda_reaches_zero_at_a_large_eps(defended, samples):
    images, labels = samples
    check = accuracy_falls_to_zero(
        lambda eps: run_adaptive_attack("pgd+bpda", defended, images, labels, eps, steps=3).accuracy(), [8, 32]
    )
    assert check.passed, check.message
    assert check.measured["32"] == 0.0


def _reference_pgd(defended, image, label, eps, steps, noise, loss_of):
    """Foolbox's LinfPGD update for one image, keeping the first iterate the defence misclassifies."""
    x0 = image[None]
    x = (x0 + noise[None]).clamp(0, 1)
    for step in range(steps + 1):
        with torch.no_grad():
            if int(_defended_by_hand(defended, x)[0]) != label:
                return x[0], True
        if step == steps:
            return x[0], False
        leaf = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(loss_of(leaf, torch.tensor([label])), leaf)
        x = x0 + (x + eps / 30 * grad.sign() - x0).clamp(-eps, eps)
        x = x.clamp(0, 1)


def _all_maps_loss(defended):
    def loss(x, y):
        total = F.cross_entropy(defended.model(x), y, reduction="sum")
        for k in range(defended.class_maps.shape[0]):  # every branch, one at a time
            filtered = torch.fft.ifft2(defended.class_maps[k] * torch.fft.fft2(x)).real
            total = total + F.cross_entropy(defended.model(filtered), y, reduction="sum")
        return total

    return loss


@pytest.mark.parametrize("objective", ["bpda", "all-maps"])
def test_pgd_loop_equals_a_plain_per_image_loop(defended, samples, objective):
    images, labels = samples
    images, labels = images[:2], labels[:2]
    eps, steps = 2 / 255, 2
    result = adaptive_pgd(defended, images, labels, eps, objective=objective, steps=steps, seed=5, batch_size=2)
    noise = torch.empty(images.shape).uniform_(-eps, eps, generator=torch.Generator().manual_seed(5))
    if objective == "bpda":
        def loss_of(x, y):
            return F.cross_entropy(defended(x), y, reduction="sum")
    else:
        loss_of = _all_maps_loss(defended)
    outcomes = [_reference_pgd(defended, images[i], int(labels[i]), eps, steps, noise[i], loss_of) for i in range(2)]
    expected = torch.stack([x for x, _ in outcomes])
    # sign(grad) of near-zero entries can flip with float rounding of batched vs single-image passes
    assert float((result.adversarial - expected).abs().gt(1e-5).double().mean()) < 0.01
    assert result.fooled.tolist() == [fooled for _, fooled in outcomes]


def test_restarts_never_weaken_the_attack(defended, samples):
    images, labels = samples
    once = adaptive_pgd(defended, images, labels, 1 / 255, steps=2, restarts=1)
    thrice = adaptive_pgd(defended, images, labels, 1 / 255, steps=2, restarts=3)
    assert bool((once.fooled & ~thrice.fooled).sum() == 0)  # the first restart is the same run
    check = more_effort_does_not_help(once.accuracy(), thrice.accuracy(), len(labels), tolerance=1.0)
    assert check.passed and check.measured["more"] <= check.measured["base"]


def test_fmn_through_the_defence_finds_fooling_points(defended, samples):
    images, labels = samples
    result = run_adaptive_attack("fmn+defended", defended, images, labels, steps=5)
    norms = result.min_norms()
    assert result.fooled.any()
    assert result.pred.tolist() == _defended_by_hand(defended, result.adversarial).tolist()
    fooled = result.fooled
    torch.testing.assert_close(norms[fooled], result.linf[fooled], rtol=0, atol=0)
    assert torch.isinf(norms[~fooled]).all()
    for eps in (0.0, 4 / 255, 1.0):
        assert accuracy_at(norms, eps) == float((norms > eps).double().mean())


def test_robustness_curve_rows(defended, samples):
    images, labels = samples
    curve = robustness_curve(defended, images, labels, (0, 16), attacks=("pgd+bpda",), steps=3)
    bare = run_attack(defended.model, images, labels, "pgd", eps=16 / 255, steps=3)
    with torch.no_grad():
        clean_bare = float((defended.model(images).argmax(1) == labels).double().mean())
    clean_defended = float((_defended_by_hand(defended, images) == labels).double().mean())
    assert curve.undefended[0] == clean_bare and curve.non_adaptive[0] == clean_defended
    assert curve.adaptive["pgd+bpda"][0] == clean_defended
    assert curve.worst_case[1] <= min(curve.non_adaptive[1], curve.adaptive["pgd+bpda"][1])
    assert curve.undefended[1] == float((bare.adv_pred == labels).double().mean())
    assert curve.n == 2


def test_square_schedule_matches_the_reference():
    def p_selection(p_init, it, n_iters):  # the reference code's schedule, as written there
        it = int(it / n_iters * 10000)
        if 10 < it <= 50:
            return p_init / 2
        elif 50 < it <= 200:
            return p_init / 4
        elif 200 < it <= 500:
            return p_init / 8
        elif 500 < it <= 1000:
            return p_init / 16
        elif 1000 < it <= 2000:
            return p_init / 32
        elif 2000 < it <= 4000:
            return p_init / 64
        elif 4000 < it <= 6000:
            return p_init / 128
        elif 6000 < it <= 8000:
            return p_init / 256
        elif 8000 < it <= 10000:
            return p_init / 512
        return p_init

    for queries in (100, 1000, 5000):
        assert [window_share(0.8, q, queries) for q in range(queries)] == [p_selection(0.8, q, queries)
                                                                           for q in range(queries)]


def _result(fooled: list[bool]) -> AdaptiveResult:
    n = len(fooled)
    labels = torch.zeros(n, dtype=torch.int64)
    return AdaptiveResult(torch.zeros(n, 1, 1, 1), torch.tensor(fooled, dtype=torch.int64), labels, torch.zeros(n))


def test_sanity_checks_pass_and_fail_on_known_numbers():
    table = {1 / 255: 0.6, 8 / 255: 0.2, 32 / 255: 0.0}
    assert accuracy_falls_to_zero(table.get, [1, 8, 32]).passed
    assert not accuracy_falls_to_zero({**table, 32 / 255: 0.1}.get, [1, 8, 32]).passed  # stuck above 0
    assert not accuracy_falls_to_zero({**table, 8 / 255: 0.7}.get, [1, 8, 32]).passed  # rises with ε
    assert more_effort_does_not_help(0.50, 0.45, 20).passed  # one image of 20
    assert not more_effort_does_not_help(0.50, 0.40, 20).passed  # two images: not converged
    white, free = _result([True, True, False, False]), _result([False, False, True, True])
    check = white_box_beats_gradient_free(white, free, tolerance=0.0)
    assert check.passed and check.measured["missed"] == 2  # equal accuracy (0.5), different images
    assert not white_box_beats_gradient_free(white, _result([True, True, True, False]), tolerance=0.0).passed
    masked = white_box_beats_gradient_free(_result([False] * 4), _result([True, True, False, False]))
    assert not masked.passed and "masked" in masked.message


def test_keys_of_adaptive_attacks():
    assert adaptive_attack_key("pgd+bpda", 8 / 255) == "pgd-8+bpda"
    assert adaptive_attack_key("pgd+all-maps", 1 / 255) == "pgd-1+all-maps"
    assert adaptive_attack_key("fmn+defended") == "fmn+defended"
    assert adaptive_attack_key("square+defended", 8 / 255) == "square-8+defended"
    parsed = parse_attack_key("pgd-8+all-maps")
    assert (parsed.name, parsed.eps_255, parsed.variant) == ("pgd", 8.0, "all-maps")
    assert [adaptive_attack_of(k) for k in ("pgd-8+bpda", "fmn+defended", "pgd-8", "pgd-8+other")] == [
        "pgd+bpda", "fmn+defended", None, None]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        pytest.param(lambda d, x, y: run_adaptive_attack("pgd+bpda", d, x, y, 0.0), r"expected eps in \(0, 1\]",
                     id="eps-zero"),
        pytest.param(lambda d, x, y: run_adaptive_attack("pgd+bpda", d, x, y, 1.5), r"expected eps in \(0, 1\]",
                     id="eps-above-one"),
        pytest.param(lambda d, x, y: run_adaptive_attack("square+defended", d, x, y, math.nan),
                     r"expected eps in \(0, 1\]", id="eps-nan"),
        pytest.param(lambda d, x, y: run_adaptive_attack("pgd+bpda", d, x, y, None), r"expected eps in \(0, 1\]",
                     id="eps-missing"),
        pytest.param(lambda d, x, y: run_adaptive_attack("fmn+defended", d, x, y, 8 / 255), "expected eps=None",
                     id="eps-for-fmn"),
        pytest.param(lambda d, x, y: run_adaptive_attack("pgd+nothing", d, x, y, 8 / 255),
                     "expected an adaptive attack in", id="unknown"),
        pytest.param(lambda d, x, y: run_adaptive_attack("pgd+bpda", d.model, x, y, 8 / 255),
                     "expected a DefendedClassifier", id="bare-model"),
        pytest.param(lambda d, x, y: adaptive_pgd(d, x, y, 8 / 255, steps=0), "expected steps >= 1", id="no-steps"),
        pytest.param(lambda d, x, y: adaptive_pgd(d, x * 2, y, 8 / 255), r"expected images in \[0, 1\]",
                     id="images-out-of-range"),
        pytest.param(lambda d, x, y: adaptive_pgd(d, x, y[:1], 8 / 255), "expected one label per image",
                     id="labels-short"),
        pytest.param(lambda d, x, y: adaptive_attack_key("pgd+bpda", 2.0), r"expected eps in \(0, 1\]",
                     id="key-eps"),
    ],
)
def test_bad_input_is_one_line(defended, samples, call, message):
    images, labels = samples
    with pytest.raises(ValueError, match=message) as error:
        call(defended, images, labels)
    assert "\n" not in str(error.value)
