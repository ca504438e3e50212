"""The defended classifier (core/defended.py) against a plain two-pass loop, `defended_predict`, numpy's
ifftshift and a gradient computed by hand through the picked branch; and its one-line errors."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.class_maps import defended_predict
from core.defended import DefendedClassifier

DEMO_MAPS = sorted(Path(__file__).resolve().parents[1].glob("assets/demo/*/class_maps/pgd-8/maps.npy"))
# samples the defence classifies differently from the bare model (2, 3, 4) and one it leaves alone (5)
CHANGED_AND_NOT = [2, 3, 4, 5]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread for these few-image batches: as fast on an idle machine, and on a loaded one it spares
    the OpenMP spin-waiting that made two threads 10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def stored_maps() -> np.ndarray:
    """The shipped demo's class maps trained against PGD 8/255, as cached: (10, 3, 32, 32), centred."""
    assert DEMO_MAPS, "the shipped demo cache holds class_maps/pgd-8/maps.npy"
    return np.load(DEMO_MAPS[0])


@pytest.fixture(scope="module")
def samples(cifar_samples) -> tuple[torch.Tensor, torch.Tensor]:
    """Four of the 20 samples, (4, 3, 32, 32) in [0, 1], and their labels."""
    return cifar_samples.images[CHANGED_AND_NOT].float() / 255, cifar_samples.labels[CHANGED_AND_NOT]


@pytest.fixture(scope="module")
def defended(shipped_model, stored_maps) -> DefendedClassifier:
    return DefendedClassifier.from_stored(shipped_model, torch.from_numpy(stored_maps))


def test_stored_maps_are_unshifted_like_numpy(defended, stored_maps):
    expected = np.fft.ifftshift(stored_maps, axes=(-2, -1))
    np.testing.assert_array_equal(defended.class_maps.numpy(), expected)


def test_predictions_equal_a_plain_two_pass_loop_and_defended_predict(defended, shipped_model, samples):
    images, _ = samples
    maps = defended.class_maps  # (10, 3, 32, 32) natural order
    expected = []
    with torch.no_grad():
        for image in images:  # one image at a time: first pass, then the filter written out with numpy's FFT
            first = int(shipped_model(image[None]).argmax())
            spectrum = np.fft.fft2(image.double().numpy()) * maps[first].double().numpy()
            filtered = torch.from_numpy(np.fft.ifft2(spectrum).real).float()
            expected.append(int(shipped_model(filtered[None]).argmax()))
        got = defended(images).argmax(dim=1)
    _, reference = defended_predict(shipped_model, images, maps)
    assert got.tolist() == expected
    assert got.tolist() == reference.tolist()
    # the defence changes some predictions of these images (otherwise the comparison could not fail)
    assert got.tolist() != shipped_model(images).argmax(dim=1).tolist()


def test_foolbox_sees_the_same_logits(defended, samples):
    import foolbox

    images, _ = samples
    fmodel = foolbox.PyTorchModel(defended, bounds=(0, 1))
    with torch.no_grad():
        torch.testing.assert_close(fmodel(images[:2]), defended(images[:2]), rtol=0, atol=0)


def test_gradient_is_the_picked_branch_computed_by_hand(shipped_model, stored_maps, samples):
    """d CE / d x through the defence = the filter's adjoint Re(FFT2(M ⊙ IFFT2(g))) applied to the model's
    gradient g at the filtered image (the filter is linear and real; the DFT matrix is symmetric)."""
    model = copy.deepcopy(shipped_model).double()
    defended = DefendedClassifier.from_stored(model, torch.from_numpy(stored_maps).double())
    images, labels = samples
    x, y = images[:2].double(), labels[:2]
    picks = defended.pick(x)
    # the pick must not change near x, or the branch's gradient would not be the defence's
    nearby = x + 1e-4 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0), dtype=x.dtype)
    assert defended.pick(nearby.clamp(0, 1)).tolist() == picks.tolist()

    leaf = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(defended(leaf), y, reduction="sum"), leaf)

    maps = defended.class_maps[picks]  # (2, 3, 32, 32)
    filtered = torch.fft.ifft2(maps * torch.fft.fft2(x)).real.requires_grad_(True)
    (at_filtered,) = torch.autograd.grad(F.cross_entropy(model(filtered), y, reduction="sum"), filtered)
    by_hand = torch.fft.fft2(maps * torch.fft.ifft2(at_filtered)).real
    assert grad.abs().max() > 1e-3  # a real gradient, not zeros
    torch.testing.assert_close(grad, by_hand, rtol=0, atol=1e-6)


def test_eval_only(defended, shipped_model, stored_maps):
    assert not defended.training
    defended.eval()
    with pytest.raises(ValueError, match="expected the defended classifier in eval mode"):
        defended.train()
    trained = copy.deepcopy(shipped_model).train()
    with pytest.raises(ValueError, match="expected a model in eval mode"):
        DefendedClassifier(trained, torch.from_numpy(stored_maps))


@pytest.mark.parametrize(
    ("maps", "message"),
    [
        pytest.param(None, "expected class maps .* got None", id="missing"),
        pytest.param(torch.ones(3, 32, 32), r"expected class maps of shape \(K, C, H, W\)", id="three-dims"),
        pytest.param(torch.ones(0, 3, 32, 32), "with K >= 1", id="no-maps"),
        pytest.param(torch.ones(10, 3, 32, 32, dtype=torch.int64), "as a float tensor", id="integer"),
        pytest.param(np.ones((10, 3, 32, 32), np.float32), "as a float tensor", id="numpy"),
        pytest.param(torch.full((10, 3, 32, 32), 1.5), r"expected class maps in \[0, 1\]", id="above-one"),
    ],
)
def test_bad_maps_are_refused(shipped_model, maps, message):
    with pytest.raises(ValueError, match=message):
        DefendedClassifier(shipped_model, maps)


def test_maps_that_do_not_fit_the_model_or_images(shipped_model, samples):
    images, _ = samples
    nine = DefendedClassifier(shipped_model, torch.ones(9, 3, 32, 32))
    with pytest.raises(ValueError, match=r"expected one class map per class of the model \(10\), got 9"):
        nine(images[:2])
    small = DefendedClassifier(shipped_model, torch.ones(10, 3, 16, 16))
    with pytest.raises(ValueError, match=r"expected images of shape \(N, 3, 16, 16\) to match the class maps"):
        small(images[:2])
