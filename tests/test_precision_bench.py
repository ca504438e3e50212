"""bench/bench_precision.py emulates TF32 convolutions on a CPU; the README's TF32 figure rests on that emulation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench import bench_precision as bench


def test_truncation_keeps_ten_mantissa_bits_against_a_float64_reference():
    """Against an independent reference: floor(|x| · 2^(10 - e)) / 2^(10 - e) with e the exponent, in float64."""
    x = torch.randn(10_000, generator=torch.Generator().manual_seed(0)) * 100
    exponent = torch.floor(torch.log2(x.abs().double()))
    scale = 2.0 ** (10 - exponent)
    reference = torch.sign(x.double()) * torch.floor(x.abs().double() * scale) / scale
    assert torch.equal(bench.truncate_to_tf32(x).double(), reference)
    assert not torch.equal(bench.truncate_to_tf32(x), x)  # it does round


def test_the_emulated_convolution_and_its_input_gradient():
    """The bench's own self-check, then: the emulated conv stays within TF32's error of float32 conv2d."""
    bench.check_emulation()
    g = torch.Generator().manual_seed(1)
    conv = nn.Conv2d(16, 16, 3, padding=1).requires_grad_(False)
    x = torch.rand(2, 16, 8, 8, generator=g)
    exact, emulated = F.conv2d(x, conv.weight, conv.bias, padding=1), bench.Tf32Emulated(conv)(x)
    error = (emulated - exact).abs().max() / exact.abs().max()
    assert 1e-6 < error < 2e-3, error  # float32 conv differs far less; TF32's operands are off by up to 2^-10
