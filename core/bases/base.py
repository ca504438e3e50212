"""The interface every map basis implements: transform, mask, inverse, and what the coefficients mean.

A map M (C, H, W) in [0, 1] filters an image x (B, C, H, W) in a basis as x_F = inverse(mask(forward(x), M)),
where `mask` is M ⊙ coefficients for the linear bases (Fourier amplitude, DCT, wavelet) and acts on the phase
alone for `phase`. Maps in computation are in the basis's natural order; they are stored and shown in its
display order (`to_display_order`: fftshift for the Fourier bases, the identity for the others).

Every transform acts on the last two axes with device-agnostic torch ops, so it is batched over any leading
axes, differentiable, and runs on CPU and CUDA in the images' dtype (float32 in the project, float64 in the
gradient checks).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

import torch

from core.bases.layout import MapLayout


class Basis(ABC):
    """One basis in which a map filters images. Subclasses set `name`, `description` and the transforms."""

    name: ClassVar[str]
    description: ClassVar[str]  # one line, for tables and drop-downs
    orthonormal: ClassVar[bool] = False  # real orthonormal transform: energy kept (Parseval), no redundancy

    @property
    def key(self) -> str:
        """The basis with its options as one name (e.g. 'wavelet-db2-L3'), for cache names and labels."""
        return self.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.key!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Basis) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)

    def check_size(self, height: int, width: int) -> None:
        """ValueError unless the basis can transform (H, W) images (any size from 1 × 1 here)."""
        if height < 1 or width < 1:
            raise ValueError(f"expected an image size of at least 1 × 1 for the {self.key} basis, got {height} × {width}")

    def map_shape(self, image_shape: Sequence[int]) -> tuple[int, int, int]:
        """The (C, H, W) shape of a map for images of shape (..., C, H, W), after checking the size."""
        if len(image_shape) < 3:
            raise ValueError(f"expected an image shape (..., C, H, W), got {tuple(image_shape)}")
        channels, height, width = (int(s) for s in image_shape[-3:])
        self.check_size(height, width)
        return channels, height, width

    @abstractmethod
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(..., H, W) real -> coefficients (..., H, W) in natural order (complex for the Fourier bases)."""

    @abstractmethod
    def inverse(self, coefficients: torch.Tensor) -> torch.Tensor:
        """Coefficients (..., H, W) in natural order -> real (..., H, W); inverse(forward(x)) = x."""

    def mask(self, coefficients: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        """The coefficients filtered by maps (natural order, broadcast over the batch): M ⊙ coefficients."""
        return maps * coefficients

    def apply(self, images: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        """inverse(mask(forward(images), maps)).

        images: (B, C, H, W) real. maps: (B, C, H, W), or (C, H, W) / (1, C, H, W) shared by the batch, natural order.
        Returns (B, C, H, W) real.
        """
        if maps.shape[-3:] != images.shape[-3:]:
            raise ValueError(f"expected maps of shape (..., {tuple(images.shape[-3:])}), got {tuple(maps.shape)}")
        self.check_size(*images.shape[-2:])
        return self.inverse(self.mask(self.forward(images), maps))

    def nonredundant(self, height: int, width: int) -> torch.Tensor:
        """(H, W) bool in display order: True at the coefficients to count once (all of them unless overridden)."""
        self.check_size(height, width)
        return torch.ones(height, width, dtype=torch.bool)

    @abstractmethod
    def layout(self, height: int, width: int) -> MapLayout:
        """How to draw a map of (H, W) coefficients in display order."""

    def to_display_order(self, maps: torch.Tensor) -> torch.Tensor:
        """Natural order -> the order maps are stored and shown in. (..., H, W) -> (..., H, W)."""
        return maps

    def to_natural_order(self, maps: torch.Tensor) -> torch.Tensor:
        """Display order -> natural order; inverse of `to_display_order`."""
        return maps
