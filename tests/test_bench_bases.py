"""bench/bench_bases.py's cases: parsed as the CLI's basis keys and layers, refused as train_maps refuses them."""

from __future__ import annotations

import pytest
import torch

from bench.bench_bases import CASES, make_step, parse_case
from core.hidden_layers import INPUT
from core.models.registry import build_model


def test_cases_name_a_basis_and_a_layer():
    basis, layer = parse_case("wavelet-db2-L3@layer1")
    assert (basis.key, layer) == ("wavelet-db2-L3", "layer1")
    assert parse_case("dct")[1] == INPUT
    assert all(parse_case(case)[0].key == case.split("@")[0] for case in CASES)
    with pytest.raises(ValueError):
        parse_case("fft@layer1")


def test_a_step_runs_where_the_trainer_runs_and_is_refused_where_it_is_refused():
    torch.manual_seed(0)
    model = build_model("resnet20", num_classes=10, input_norm="none").eval()
    images, targets = torch.rand(2, 3, 32, 32), torch.tensor([1, 2])
    make_step(model, "dct@layer1", images, targets, channels_last=True)()  # one step: features 16 × 32 × 32
    with pytest.raises(ValueError, match="level"):  # db2 takes at most 2 levels at layer2's 16 × 16
        make_step(model, "wavelet-db2-L3@layer2", images, targets, channels_last=True)
    with pytest.raises(ValueError, match="layer1"):  # the message lists the layers possible
        make_step(model, "fourier@layer9", images, targets, channels_last=True)
