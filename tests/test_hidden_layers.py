"""Models split at a hidden layer (core.hidden_layers) against the whole model and a hand-written forward pass.

ResNet-20: the project's shipped checkpoint on 8 of Foolbox's CIFAR-10 samples; ResNet-18: torchvision's
architecture with seeded random weights on two samples resized to 224 px; ViT-B/16 only for the refusal.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from core.bases import BASES, get_basis
from core.data.datasets import load_dataset
from core.hidden_layers import INPUT, MaskedAt, feature_shape, layer_features, layer_names, split_at
from core.models.normalization import NormalizedClassifier
from core.models.registry import build_model
from core.models.torchvision_models import build_resnet18, build_vit_b_16
from tests.conftest import SHIPPED_MODEL

# logits of maps of ones against the plain model: the float32 round trip of the transform (≤ 2e-6 per feature)
# grows through the rest of the network to ≤ 2e-5 on these images (measured), logits being of order 10
ONES_ATOL = 1e-4
RESNET20_SHAPES = {"input": (3, 32, 32), "layer1": (16, 32, 32), "layer2": (32, 16, 16), "layer3": (64, 8, 8)}
RESNET18_SHAPES = {"input": (3, 224, 224), "layer1": (64, 56, 56), "layer2": (128, 28, 28), "layer3": (256, 14, 14),
                   "layer4": (512, 7, 7)}


@pytest.fixture(scope="module")
def samples() -> torch.Tensor:
    return load_dataset("samples", limit=8).images.float() / 255  # (8, 3, 32, 32)


@pytest.fixture(scope="module")
def resnet20() -> torch.nn.Module:
    return build_model("resnet20", checkpoint=str(SHIPPED_MODEL))


@pytest.fixture(scope="module")
def resnet18() -> torch.nn.Module:
    torch.manual_seed(0)
    model = NormalizedClassifier(build_resnet18(10, None), "imagenet").eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@pytest.fixture(scope="module")
def samples_224() -> torch.Tensor:
    return load_dataset("samples", limit=2, size=224).images.float() / 255  # (2, 3, 224, 224)


@pytest.fixture(scope="module")
def resnet20_logits(resnet20, samples) -> torch.Tensor:
    with torch.no_grad():
        return resnet20(samples)  # (8, 10)


@pytest.fixture(scope="module")
def resnet18_logits(resnet18, samples_224) -> torch.Tensor:
    with torch.no_grad():
        return resnet18(samples_224)  # (2, 10)


def test_layer_names():
    assert layer_names(build_model("resnet20")) == tuple(RESNET20_SHAPES)
    assert layer_names(NormalizedClassifier(build_resnet18(10, None))) == tuple(RESNET18_SHAPES)


@pytest.mark.parametrize("layer", list(RESNET20_SHAPES))
def test_resnet20_head_then_tail_is_the_model(resnet20, samples, resnet20_logits, layer):
    head, tail = split_at(resnet20, layer)
    with torch.no_grad():
        features = head(samples)
        assert tuple(features.shape[1:]) == RESNET20_SHAPES[layer] == feature_shape(resnet20, layer, samples.shape)
        assert torch.allclose(tail(features), resnet20_logits, rtol=0, atol=1e-6)


@pytest.mark.parametrize("layer", list(RESNET18_SHAPES))
def test_resnet18_head_then_tail_is_the_model(resnet18, samples_224, resnet18_logits, layer):
    head, tail = split_at(resnet18, layer)
    with torch.no_grad():
        features = head(samples_224)
        assert tuple(features.shape[1:]) == RESNET18_SHAPES[layer] == feature_shape(resnet18, layer, samples_224.shape)
        assert torch.allclose(tail(features), resnet18_logits, rtol=0, atol=1e-6)


@pytest.mark.parametrize("basis", list(BASES))
@pytest.mark.parametrize("layer", list(RESNET20_SHAPES))
def test_maps_of_ones_leave_the_logits(resnet20, samples, resnet20_logits, layer, basis):
    masked = MaskedAt(resnet20, layer, basis)
    shape = masked.map_shape(samples.shape)
    assert shape == RESNET20_SHAPES[layer]
    with torch.no_grad():
        logits = masked(samples, torch.ones(shape))
        assert torch.allclose(logits, resnet20_logits, rtol=0, atol=ONES_ATOL)


def test_masked_at_is_the_hand_written_forward_with_the_filter_inside(resnet20, samples, resnet20_logits):
    """ResNet-20's forward spelled out (shipped model: no input normalisation), the DCT filter after layer2."""
    net = resnet20.net
    maps = torch.rand(8, 32, 16, 16, generator=torch.Generator().manual_seed(0))  # one map per image
    dct = BASES["dct"]
    with torch.no_grad():
        features = net.layer2(net.layer1(F.relu(net.bn1(net.conv1(samples)))))  # (8, 32, 16, 16)
        filtered = dct.inverse(maps * dct.forward(features))
        expected = net.linear(F.adaptive_avg_pool2d(net.layer3(filtered), 1).flatten(1))
        logits = MaskedAt(resnet20, "layer2", "dct")(samples, maps)
    assert torch.allclose(logits, expected, rtol=0, atol=1e-6)
    assert not torch.allclose(logits, resnet20_logits, rtol=0, atol=1e-2)  # the maps did filter


def test_masked_at_input_is_the_input_filter(resnet20, samples):
    maps = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = resnet20(BASES["fourier"].apply(samples, maps))
        assert torch.equal(MaskedAt(resnet20)(samples, maps), expected)


def test_gradients_reach_the_maps_at_a_hidden_layer(resnet20, samples):
    masked = MaskedAt(resnet20, "layer1", get_basis("wavelet", wavelet="db2", levels=2))
    maps = torch.full(masked.map_shape(samples.shape), 0.5, requires_grad=True)
    F.cross_entropy(masked(samples[:4], maps), torch.arange(4)).backward()
    assert maps.grad is not None and torch.isfinite(maps.grad).all() and maps.grad.abs().sum() > 0


def test_a_basis_that_cannot_take_the_layer_size_is_refused(resnet18):
    masked = MaskedAt(resnet18, "layer4", "wavelet")  # 7 × 7 features: odd, no wavelet level
    with pytest.raises(ValueError, match=r"at most 0 haar levels for 7 × 7 .*the layer4 features of \(3, 224, 224\)"):
        masked.map_shape((3, 224, 224))
    assert MaskedAt(resnet18, "layer4", "dct").map_shape((3, 224, 224)) == (512, 7, 7)


def test_unknown_layers_are_refused_with_the_possible_ones(resnet20):
    with pytest.raises(ValueError, match=r"expected a layer in \['input', 'layer1', 'layer2', 'layer3'\] for ResNet20, "
                                         r"got 'layer4'"):
        MaskedAt(resnet20, "layer4")


def test_vit_takes_the_input_only():
    vit = NormalizedClassifier(build_vit_b_16(10, None), "imagenet")
    assert layer_names(vit) == (INPUT,)
    with pytest.raises(ValueError, match=r"expected a layer in \['input'\] for VisionTransformer \(its layers hold no "
                                         r"\(C, H, W\) feature maps the split knows\), got 'layer1'") as error:
        MaskedAt(vit, "layer1")
    assert "\n" not in str(error.value)
    head, tail = split_at(vit, INPUT)
    assert tail is vit


def test_layer_features_are_the_head_in_eval_mode_in_chunks(resnet20, samples):
    head, _ = split_at(resnet20, "layer2")
    with torch.no_grad():
        expected = head(samples)  # (8, 32, 16, 16), all at once
    resnet20.train()
    try:
        features = layer_features(resnet20, "layer2", samples, batch_size=3)  # chunks of 3, 3, 2
        assert resnet20.training and all(module.training for module in resnet20.modules())  # mode given back
    finally:
        resnet20.eval()
    assert torch.allclose(features, expected, rtol=0, atol=1e-6) and features.dtype == torch.float32
    assert torch.equal(layer_features(resnet20, INPUT, samples), samples)
