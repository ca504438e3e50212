"""Map bases (core.bases) on real images against independent references.

References: the Fourier filter spelled out with torch.fft (bit for bit), scipy.fft.dctn / idctn(norm="ortho") for
the DCT, PyWavelets' wavedec2 / waverec2 (mode="periodization", packed by coeffs_to_array) for the wavelets, the
closed forms of what masking one coefficient does, Parseval, and torch.autograd.gradcheck in float64.
Images: Foolbox's 20 CIFAR-10 samples, float32 in [0, 1].
"""

from __future__ import annotations

import numpy as np
import pytest
import pywt
import scipy.fft
import torch

from core.bases import BASES, WAVELETS, Basis, get_basis, possible_levels
from core.data.datasets import load_dataset
from core.fourier import apply_fourier_maps, to_display_order
from core.metrics.half_spectrum import hermitian_partner_index

# float32 round trip of a [0, 1] image through a transform and back: measured ≤ 9e-7 on the samples
IDENTITY_ATOL = 2e-6
WAVELET_BASES = [get_basis("wavelet", wavelet=w, levels=levels) for w in WAVELETS for levels in (1, 2, 3)]
ALL_BASES = [basis for basis in BASES.values() if basis.name != "wavelet"] + WAVELET_BASES  # BASES' own wavelet is haar L3
ORTHONORMAL = [basis for basis in ALL_BASES if basis.orthonormal]


def ids(bases: list[Basis]) -> list[str]:
    return [basis.key for basis in bases]


@pytest.fixture(scope="module")
def samples() -> torch.Tensor:
    """(20, 3, 32, 32) float32 in [0, 1]."""
    return load_dataset("samples").images.float() / 255


@pytest.fixture(scope="module")
def random_maps(samples) -> torch.Tensor:
    """(20, 3, 32, 32) in [0, 1], one map per image."""
    return torch.rand(samples.shape, generator=torch.Generator().manual_seed(0))


def test_the_registry_names_every_basis_once_with_fourier_the_default():
    assert list(BASES) == ["fourier", "phase", "dct", "wavelet"]
    assert all(name == basis.name for name, basis in BASES.items())
    assert get_basis() is BASES["fourier"]
    assert get_basis("wavelet", wavelet="db2", levels=2).key == "wavelet-db2-L2"


def test_fourier_is_bit_for_bit_the_published_filter(samples, random_maps):
    fourier = BASES["fourier"]
    spelled_out = torch.fft.ifft2(random_maps * torch.fft.fft2(samples)).real  # METHOD §1 written out
    assert torch.equal(fourier.apply(samples, random_maps), spelled_out)
    assert torch.equal(fourier.apply(samples, random_maps), apply_fourier_maps(samples, random_maps))
    assert torch.equal(fourier.inverse(fourier.mask(fourier.forward(samples), random_maps)), spelled_out)
    shared = random_maps[0]  # (C, H, W) broadcast over the batch, as apply_fourier_maps takes it
    assert torch.equal(fourier.apply(samples, shared), apply_fourier_maps(samples, shared))


@pytest.mark.parametrize("basis", ALL_BASES, ids=ids(ALL_BASES))
def test_the_identity_mask_gives_the_image_back(basis, samples):
    filtered = basis.apply(samples, torch.ones(samples.shape[1:]))
    assert filtered.dtype == torch.float32 and filtered.shape == samples.shape
    assert torch.allclose(filtered, samples, rtol=0, atol=IDENTITY_ATOL)
    assert torch.allclose(basis.inverse(basis.forward(samples)), samples, rtol=0, atol=IDENTITY_ATOL)


@pytest.mark.parametrize("basis", ALL_BASES, ids=ids(ALL_BASES))
def test_the_batched_filter_is_the_one_image_filter(basis, samples, random_maps):
    images, maps = samples[:6], random_maps[:6]
    batched = basis.apply(images, maps)
    one_by_one = torch.stack([basis.apply(image[None], one_map)[0] for image, one_map in zip(images, maps, strict=True)])
    assert torch.allclose(batched, one_by_one, rtol=0, atol=1e-6)


@pytest.mark.parametrize("basis", [b for b in ALL_BASES if b.name != "phase"], ids=ids([b for b in ALL_BASES if b.name != "phase"]))
def test_the_zero_mask_gives_the_zero_image(basis, samples):
    assert torch.equal(basis.apply(samples, torch.zeros(samples.shape[1:])), torch.zeros_like(samples))


@pytest.mark.parametrize("basis", ORTHONORMAL, ids=ids(ORTHONORMAL))
def test_orthonormal_bases_keep_the_energy(basis, samples):
    coefficients = basis.forward(samples.double())
    assert torch.allclose(coefficients.square().sum(dim=(-2, -1)), samples.double().square().sum(dim=(-2, -1)),
                          rtol=1e-12, atol=0)


def test_fourier_energy_is_h_w_times_the_image_energy(samples):
    spectrum = BASES["fourier"].forward(samples.double())
    assert torch.allclose(spectrum.abs().square().sum(dim=(-2, -1)), 32 * 32 * samples.double().square().sum(dim=(-2, -1)),
                          rtol=1e-12, atol=0)


def test_dct_agrees_with_scipy(samples, random_maps):
    dct = BASES["dct"]
    images = samples.double().numpy()
    coefficients = scipy.fft.dctn(images, axes=(-2, -1), norm="ortho")
    assert np.allclose(dct.forward(samples.double()).numpy(), coefficients, rtol=0, atol=1e-12)
    assert np.allclose(dct.forward(samples).numpy(), coefficients, rtol=0, atol=1e-5)  # float32
    masked = random_maps.double().numpy() * coefficients
    reference = scipy.fft.idctn(masked, axes=(-2, -1), norm="ortho")
    assert np.allclose(dct.apply(samples.double(), random_maps.double()).numpy(), reference, rtol=0, atol=1e-12)
    assert np.allclose(dct.apply(samples, random_maps).numpy(), reference, rtol=0, atol=1e-5)


def test_dct_takes_rectangular_and_odd_sizes():
    images = torch.rand(2, 3, 5, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    reference = scipy.fft.dctn(images.numpy(), axes=(-2, -1), norm="ortho")
    assert np.allclose(BASES["dct"].forward(images).numpy(), reference, rtol=0, atol=1e-12)


def pywt_pyramid(images: np.ndarray, wavelet: str, levels: int) -> np.ndarray:
    """(B, C, H, W) -> PyWavelets' packed pyramid of every channel, (B, C, H, W)."""
    return np.stack([np.stack([
        pywt.coeffs_to_array(pywt.wavedec2(channel, wavelet, mode="periodization", level=levels))[0]
        for channel in image]) for image in images])


@pytest.mark.parametrize("basis", WAVELET_BASES, ids=ids(WAVELET_BASES))
def test_wavelet_agrees_with_pywavelets(basis, samples, random_maps):
    images = samples[:4].double()
    reference = pywt_pyramid(images.numpy(), basis.wavelet, basis.levels)
    assert np.allclose(basis.forward(images).numpy(), reference, rtol=0, atol=1e-12)
    assert np.allclose(basis.forward(samples[:4]).numpy(), reference, rtol=0, atol=1e-5)  # float32
    masked = random_maps[:4].double().numpy() * reference
    _, slices = pywt.coeffs_to_array(pywt.wavedec2(images[0, 0].numpy(), basis.wavelet, mode="periodization",
                                                   level=basis.levels))
    rebuilt = np.stack([np.stack([
        pywt.waverec2(pywt.array_to_coeffs(channel, slices, output_format="wavedec2"), basis.wavelet,
                      mode="periodization") for channel in image]) for image in masked])
    assert np.allclose(basis.apply(images, random_maps[:4].double()).numpy(), rebuilt, rtol=0, atol=1e-12)


@pytest.mark.parametrize("basis", WAVELET_BASES, ids=ids(WAVELET_BASES))
def test_wavelet_subbands_are_pywavelets_rectangles(basis):
    _, slices = pywt.coeffs_to_array(pywt.wavedec2(np.zeros((32, 32)), basis.wavelet, mode="periodization",
                                                   level=basis.levels))
    orientation = {"da": "horizontal", "ad": "vertical", "dd": "diagonal"}  # pywt's cH, cV, cD

    def rect(s: tuple[slice, slice]) -> tuple[tuple[int, int], tuple[int, int]]:
        return tuple((sl.start or 0, sl.stop) for sl in s)

    expected = {("approximation", basis.levels): rect(slices[0])}
    for position, details in enumerate(slices[1:]):  # wavedec2: deepest level first
        for key, name in orientation.items():
            expected[(name, basis.levels - position)] = rect(details[key])
    bands = basis.layout(32, 32).subbands
    assert {(b.orientation, b.level): (b.rows, b.cols) for b in bands} == expected
    covered = torch.zeros(32, 32, dtype=torch.int64)
    for band in bands:
        covered[slice(*band.rows), slice(*band.cols)] += 1
    assert torch.equal(covered, torch.ones_like(covered))  # the subbands tile the map once


def one_coefficient_off(shape: tuple[int, ...], index: tuple[int, int]) -> torch.Tensor:
    maps = torch.ones(shape)
    maps[:, index[0], index[1]] = 0
    return maps


@pytest.mark.parametrize("basis", ORTHONORMAL, ids=ids(ORTHONORMAL))
@pytest.mark.parametrize("index", [(0, 0), (3, 17), (31, 30)], ids=["origin", "middle", "corner"])
def test_masking_one_coefficient_of_a_real_basis_changes_that_one_alone(basis, index, samples):
    images = samples.double()
    before = basis.forward(images)
    after = basis.forward(basis.apply(images, one_coefficient_off(images.shape[1:], index)))
    expected = before.clone()
    expected[..., index[0], index[1]] = 0
    assert torch.allclose(after, expected, rtol=0, atol=1e-12)


def partner(index: tuple[int, int], size: int = 32) -> tuple[int, int]:
    """The natural-order index of frequency −k."""
    return (-index[0]) % size, (-index[1]) % size


@pytest.mark.parametrize("index", [(3, 17), (1, 0), (30, 5)])
def test_masking_one_fourier_amplitude_halves_it_and_its_hermitian_partner(index, samples):
    """Re(·) gives X'(k) = (Y(k) + conj(Y(−k))) / 2 with Y = M ⊙ X: with M(k) = 0 the pair {k, −k} keeps X / 2."""
    fourier, images = BASES["fourier"], samples.double()
    before = fourier.forward(images)
    after = fourier.forward(fourier.apply(images, one_coefficient_off(images.shape[1:], index)))
    expected = before.clone()
    for k in (index, partner(index)):
        expected[..., k[0], k[1]] = before[..., k[0], k[1]] / 2
    assert torch.allclose(after, expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("index", [(3, 17), (1, 0), (30, 5)])
def test_masking_one_phase_keeps_the_amplitudes_and_moves_that_pair_alone(index, samples):
    """With M(k) = 0: Y(k) = |X(k)|, so X'(k) = (|X(k)| + X(k)) / 2 and X'(−k) its conjugate; the rest stays."""
    phase, images = BASES["phase"], samples.double()
    before = phase.forward(images)
    after = phase.forward(phase.apply(images, one_coefficient_off(images.shape[1:], index)))
    expected = before.clone()
    expected[..., index[0], index[1]] = (before[..., index[0], index[1]].abs() + before[..., index[0], index[1]]) / 2
    expected[..., partner(index)[0], partner(index)[1]] = expected[..., index[0], index[1]].conj()
    assert torch.allclose(after, expected, rtol=0, atol=1e-10)


def test_zero_phase_gives_the_symmetric_zero_phase_image(samples):
    images = samples.double()
    zero_phase = BASES["phase"].apply(images, torch.zeros(images.shape[1:], dtype=torch.float64))
    assert torch.allclose(zero_phase, torch.fft.ifft2(torch.fft.fft2(images).abs()).real, rtol=0, atol=1e-12)
    mirrored = torch.roll(torch.flip(zero_phase, dims=(-2, -1)), shifts=(1, 1), dims=(-2, -1))  # x(−n mod N)
    assert torch.allclose(mirrored, zero_phase, rtol=0, atol=1e-12)
    assert torch.allclose(torch.fft.fft2(zero_phase).abs(), torch.fft.fft2(images).abs(), rtol=0, atol=1e-9)


def test_phase_has_finite_gradients_at_zero_coefficients():
    images = torch.zeros(1, 2, 4, 4, dtype=torch.float64)
    images[0, 0] = torch.rand(4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))  # channel 1 all zero
    images.requires_grad_(True)
    maps = torch.full((2, 4, 4), 0.5, dtype=torch.float64, requires_grad=True)
    BASES["phase"].apply(images, maps).square().sum().backward()
    assert torch.isfinite(images.grad).all() and torch.isfinite(maps.grad).all()


GRADCHECK_CASES = [
    (BASES["fourier"], (3, 5)), (BASES["phase"], (3, 5)), (BASES["dct"], (4, 6)),
    (get_basis("wavelet", wavelet="haar", levels=2), (4, 8)), (get_basis("wavelet", wavelet="db2", levels=1), (6, 8)),
]


@pytest.mark.parametrize("basis, size", GRADCHECK_CASES, ids=[b.key for b, _ in GRADCHECK_CASES])
def test_gradients_flow_to_images_and_maps(basis, size):
    generator = torch.Generator().manual_seed(3)
    # odd sizes for the Fourier bases: no Nyquist coefficient, whose phase (0 or π) would sit on the branch cut
    images = torch.rand(1, 2, *size, dtype=torch.float64, generator=generator).requires_grad_(True)
    maps = torch.rand(1, 2, *size, dtype=torch.float64, generator=generator).requires_grad_(True)
    assert torch.autograd.gradcheck(basis.apply, (images, maps), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("size", [(32, 32), (7, 6)], ids=["32x32", "7x6"])
def test_fourier_and_phase_keep_one_frequency_of_each_hermitian_pair(size):
    height, width = size
    rows, cols = hermitian_partner_index(height)[:, None], hermitian_partner_index(width)[None, :]  # fftshift-ed −k
    spectrum = to_display_order(torch.fft.fft2(torch.rand(3, height, width, generator=torch.Generator().manual_seed(4))))
    assert torch.allclose(spectrum, spectrum[..., rows, cols].conj(), atol=1e-5)  # the partners are what they claim
    self_conjugate = (rows == torch.arange(height)[:, None]) & (cols == torch.arange(width)[None, :])  # (H, W)
    for basis in (BASES["fourier"], BASES["phase"]):
        keep = basis.nonredundant(height, width)
        partner_kept = keep[rows, cols]
        assert keep[self_conjugate].all()
        assert (keep ^ partner_kept)[~self_conjugate].all()  # exactly one of every other pair
    assert BASES["fourier"].nonredundant(32, 32).sum().item() == (32 * 32 + 4) // 2  # 4 self-conjugate at even sizes


@pytest.mark.parametrize("basis", ORTHONORMAL, ids=ids(ORTHONORMAL))
def test_real_orthonormal_bases_have_no_redundant_coefficient(basis):
    assert basis.nonredundant(32, 32).all()


@pytest.mark.parametrize("basis", ALL_BASES, ids=ids(ALL_BASES))
def test_display_order_round_trips(basis, random_maps):
    assert torch.equal(basis.to_natural_order(basis.to_display_order(random_maps)), random_maps)
    layout = basis.layout(32, 32)
    assert len(layout.row_values) == 32 and len(layout.col_values) == 32
    if basis.name in ("fourier", "phase"):  # stored fftshift-ed, zero frequency at the centre
        assert torch.equal(basis.to_display_order(random_maps), torch.fft.fftshift(random_maps, dim=(-2, -1)))
        assert layout.origin == (16, 16) and layout.row_values[16] == 0 and layout.col_values[0] == -16
    else:
        assert torch.equal(basis.to_display_order(random_maps), random_maps) and layout.origin == (0, 0)


@pytest.mark.parametrize("basis, size, message", [
    (get_basis("wavelet", wavelet="haar", levels=3), (12, 12), r"at most 2 haar levels for 12 × 12"),
    (get_basis("wavelet", wavelet="db2", levels=4), (32, 32), r"at most 3 db2 levels for 32 × 32"),
    (get_basis("wavelet", wavelet="haar", levels=1), (7, 8), r"at most 0 haar levels for 7 × 8"),
    (get_basis("wavelet", wavelet="db2", levels=1), (4, 4), r"at most 0 db2 levels for 4 × 4 .*levels <= 0"),
    (BASES["dct"], (0, 4), r"at least 1 × 1 for the dct basis, got 0 × 4"),
], ids=["haar-not-divisible", "db2-too-deep", "odd", "db2-too-small", "empty"])
def test_bad_sizes_are_refused_in_one_line(basis, size, message):
    images = torch.zeros(1, 3, *size)
    with pytest.raises(ValueError, match=message) as error:
        basis.apply(images, torch.ones(images.shape[1:]))
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match=message):
        basis.map_shape(images.shape)


def test_possible_levels_follow_pywavelets_max_level():
    for wavelet in WAVELETS:
        for size in (8, 16, 32, 64, 224):
            expected = pywt.dwt_max_level(size, pywt.Wavelet(wavelet).dec_len)
            while size % 2**expected:  # and the size must halve that often
                expected -= 1
            assert possible_levels(size, size, wavelet) == expected, (wavelet, size)


@pytest.mark.parametrize("name, options, message", [
    ("fft", {}, r"expected a basis in \['dct', 'fourier', 'phase', 'wavelet'\], got 'fft'"),
    ("wavelet", {"wavelet": "sym4"}, r"expected a wavelet in \['db2', 'haar'\], got 'sym4'"),
    ("wavelet", {"levels": 0}, r"expected levels >= 1, got 0"),
    ("dct", {"levels": 2}, r"expected options the dct basis takes, got \['levels'\]"),
], ids=["name", "wavelet", "levels", "option"])
def test_bad_bases_are_refused(name, options, message):
    with pytest.raises(ValueError, match=message):
        get_basis(name, **options)


def test_maps_of_the_wrong_shape_are_refused(samples):
    for basis in BASES.values():
        with pytest.raises(ValueError, match=r"expected maps of shape \(\.\.\., \(3, 32, 32\)\), got \(3, 16, 16\)"):
            basis.apply(samples, torch.ones(3, 16, 16))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("basis", ALL_BASES, ids=ids(ALL_BASES))
def test_cuda_agrees_with_cpu(basis, samples, random_maps):
    on_gpu = basis.apply(samples.cuda(), random_maps.cuda())
    assert on_gpu.device.type == "cuda" and on_gpu.dtype == torch.float32
    assert torch.allclose(on_gpu.cpu(), basis.apply(samples, random_maps), rtol=0, atol=1e-5)
