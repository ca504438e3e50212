"""Numpy helpers behind the app's views: frequency axes, radial profiles, pooling, top-k, pixels.

Pure functions of numpy arrays (no Streamlit, no torch), so the figures and their tests need
nothing else. Maps arrive centred (fftshift-ed: zero frequency at [H // 2, W // 2]), as the cache
stores them.
"""

from __future__ import annotations

import numpy as np

POOL_SIZE = 32  # side of the pooled view of large maps, as the correlations pool them


def frequency_axis(n: int) -> np.ndarray:
    """Frequency in cycles/image of each index of a centred axis of length n: -n//2 .. n - n//2 - 1.

    For even n (32, 224) this is -n/2 .. n/2 - 1, with 0 at index n // 2 (the fftshift convention).
    """
    if n < 1:
        raise ValueError(f"expected an axis length >= 1, got {n}")
    return np.arange(n) - n // 2


def pooled_frequency_axis(n: int, size: int) -> np.ndarray:
    """Centre frequency (cycles/image) of each of `size` equal bins of a centred axis of length n."""
    if size < 1 or n % size:
        raise ValueError(f"expected a bin count dividing {n}, got {size}")
    return frequency_axis(n).reshape(size, n // size).mean(axis=1)


def pool_map(map_display: np.ndarray, size: int) -> np.ndarray:
    """Block-average a centred (C, H, W) map to (C, size, size); H and W must be multiples of size.

    Block averaging equals adaptive average pooling when the size divides evenly (224 -> 32: 7×7
    blocks), which is what the correlations use for large maps.
    """
    if map_display.ndim != 3:
        raise ValueError(f"expected a map of shape (C, H, W), got {map_display.shape}")
    c, h, w = map_display.shape
    if h % size or w % size:
        raise ValueError(f"expected H and W divisible by {size}, got {h}x{w}")
    return map_display.reshape(c, size, h // size, size, w // size).mean(axis=(2, 4))  # (C, size, size)


def display_map(map_display: np.ndarray, pooled: bool, size: int = POOL_SIZE) -> tuple[np.ndarray, int]:
    """A centred (C, H, W) map as a view shows it, and the frequencies one shown cell spans along each side.

    pooled: block-average maps larger than `size` (and divisible by it) to (C, size, size), as the correlations
    pool them (224 -> 32: 7 frequencies per cell); otherwise, and for small maps, the map itself and 1.
    """
    n = map_display.shape[-1]
    if not pooled or n <= size or n % size:
        return map_display, 1
    return pool_map(map_display, size), n // size


def radius_grid(height: int, width: int) -> np.ndarray:
    """(H, W) distance of each centred frequency from the zero frequency, in cycles/image."""
    fy, fx = np.meshgrid(frequency_axis(height), frequency_axis(width), indexing="ij")
    return np.sqrt(fy.astype(np.float64) ** 2 + fx.astype(np.float64) ** 2)


def _ring_sums(map_display: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Sum of a centred (C, H, W) or (H, W) map over each ring of rounded radius r, the ring's entry
    count (channels included), both (R,), and the largest radius present."""
    if map_display.ndim == 2:
        map_display = map_display[None]
    if map_display.ndim != 3:
        raise ValueError(f"expected a map of shape (C, H, W) or (H, W), got {map_display.shape}")
    c, h, w = map_display.shape
    ring = np.rint(radius_grid(h, w)).astype(np.int64)  # (H, W)
    sums = np.bincount(ring.ravel(), weights=map_display.astype(np.float64).sum(axis=0).ravel())  # (R,)
    counts = np.bincount(ring.ravel()) * c  # (R,)
    return sums, counts, int(ring.max())


def radial_profile(map_display: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean map value in rings of integer radius around the zero frequency, over all channels.

    map_display: (C, H, W) or (H, W) centred. Returns radii (R,) in cycles/image (0, 1, 2, ...)
    and values (R,): the mean of the map over the frequencies whose rounded radius is r, i.e. the
    share of each ring the map keeps. Radii with no frequency are left out.
    """
    sums, counts, _ = _ring_sums(map_display)
    radii = np.flatnonzero(counts)
    return radii, sums[radii] / counts[radii]


def radial_bands(map_display: np.ndarray) -> list[tuple[int, int, float]]:
    """Mean map value in octave-wide rings of frequency radius: the radial profile in a few numbers.

    map_display: (C, H, W) or (H, W) centred. Rings by rounded radius r (cycles/image, as in
    radial_profile): 0, 1-2, 3-4, 5-8, 9-16, 17-32, ... up to the largest radius present.
    Returns (first radius, last radius, mean value over the ring's frequencies and channels) per ring.
    """
    sums, counts, top = _ring_sums(map_display)
    starts = [0, 1] + [2 ** k + 1 for k in range(1, max(1, top).bit_length() + 1)]
    out = []
    for first, following in zip(starts, starts[1:], strict=False):
        if first > top:
            break
        last = min(following - 1, top)
        n = int(counts[first:last + 1].sum())
        if n:
            out.append((first, last, float(sums[first:last + 1].sum() / n)))
    return out


def top_k(probs: np.ndarray, k: int = 3) -> list[tuple[int, float]]:
    """The k most probable classes of one (K,) probability vector as (class, probability), best first."""
    if probs.ndim != 1:
        raise ValueError(f"expected a (K,) probability vector, got shape {probs.shape}")
    order = np.argsort(-probs, kind="stable")[: max(0, k)]
    return [(int(i), float(probs[i])) for i in order]


def to_hwc_uint8(image: np.ndarray) -> np.ndarray:
    """(3, H, W) float in [0, 1] -> (H, W, 3) uint8 for display (values clipped)."""
    if image.ndim != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"expected an image of shape (3, H, W), got {image.shape}")
    if image.shape[0] == 1:
        image = np.repeat(image, 3, axis=0)
    return np.rint(np.clip(image, 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0)


def amplified_perturbation(clean: np.ndarray, adversarial: np.ndarray) -> tuple[np.ndarray, float]:
    """Perturbation scaled so that its largest entry reaches the edge of [0, 1], around mid-grey.

    Returns the (3, H, W) picture 0.5 + δ / (2·max|δ|) and the gain applied (1 / (2·max|δ|));
    a zero perturbation gives plain grey and gain 0.
    """
    delta = adversarial.astype(np.float64) - clean.astype(np.float64)  # (3, H, W)
    peak = float(np.abs(delta).max()) if delta.size else 0.0
    if peak == 0:
        return np.full(clean.shape, 0.5), 0.0
    gain = 1 / (2 * peak)
    return 0.5 + delta * gain, gain


def perturbation_norms(clean: np.ndarray, adversarial: np.ndarray) -> tuple[float, float]:
    """(L∞, L2) of adversarial − clean in [0, 1] pixel units."""
    delta = (adversarial.astype(np.float64) - clean.astype(np.float64)).ravel()
    return float(np.abs(delta).max(initial=0.0)), float(np.linalg.norm(delta))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two flattened maps; 0 when either is all zeros (as core.metrics.cosine)."""
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / norm) if norm > 0 else 0.0


def log_spectrum(image: np.ndarray) -> np.ndarray:
    """Centred log(1 + |FFT2|) of a (C, H, W) image, averaged over channels -> (H, W)."""
    if image.ndim != 3:
        raise ValueError(f"expected an image of shape (C, H, W), got {image.shape}")
    spectrum = np.fft.fftshift(np.fft.fft2(image.astype(np.float64)), axes=(-2, -1))
    return np.log1p(np.abs(spectrum)).mean(axis=0)


def filter_by_map(image: np.ndarray, map_display: np.ndarray) -> np.ndarray:
    """x_F = Re(IFFT2(M ⊙ FFT2(x))) of one (C, H, W) image with its centred (C, H, W) map -> (C, H, W) float32.

    The same filter as core.fourier.apply_fourier_maps (tested against it), in numpy, so the pages
    that only show stored maps need no torch (importing it costs seconds on a first page).
    """
    image = np.asarray(image, dtype=np.float64)
    map_natural = np.fft.ifftshift(np.asarray(map_display, dtype=np.float64), axes=(-2, -1))
    if map_natural.shape != image.shape:
        raise ValueError(f"expected a map of shape {image.shape}, got {map_natural.shape}")
    return np.fft.ifft2(map_natural * np.fft.fft2(image)).real.astype(np.float32)
