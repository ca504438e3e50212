"""Models: the third-party ResNet-20's accuracy, parameter counts, checkpoint safety and round trips."""

from __future__ import annotations

import pytest
import torch

from core.models.checkpoints import CheckpointError, save_checkpoint
from core.models.registry import MODELS, build_model, count_parameters
from core.models.resnet20 import ResNet20
from tests.conftest import AKAMASTER


def accuracy(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, batch: int = 250) -> float:
    with torch.no_grad():
        preds = torch.cat([model(images[i : i + batch]).argmax(1) for i in range(0, len(images), batch)])
    return (preds == labels).double().mean().item()


def test_third_party_resnet20_needs_its_normalisation(akamaster_model, cifar_test_float):
    """Its README: 91.5 % on test-1000 with ImageNet normalisation, ~40 % on raw [0, 1] inputs."""
    images, labels = cifar_test_float
    assert len(labels) == 1000
    normalised = accuracy(akamaster_model, images, labels)
    raw = accuracy(build_model("resnet20", checkpoint=str(AKAMASTER), input_norm="none"), images, labels)
    print(f"test-1000 accuracy: {normalised:.3f} normalised, {raw:.3f} raw")
    assert normalised >= 0.91
    assert raw < normalised - 0.3  # the normalisation inside the model is applied


def test_resnet20_parameter_count_matches_the_closed_form():
    conv = lambda cin, cout: 9 * cin * cout  # noqa: E731  3x3, no bias
    bn = lambda c: 2 * c  # noqa: E731  weight and bias
    block = lambda cin, cout: conv(cin, cout) + bn(cout) + conv(cout, cout) + bn(cout)  # noqa: E731
    stages = [block(16, 16)] * 3 + [block(16, 32)] + [block(32, 32)] * 2 + [block(32, 64)] + [block(64, 64)] * 2
    expected = conv(3, 16) + bn(16) + sum(stages) + 64 * 10 + 10  # stem, 9 blocks, linear head
    assert expected == 269_722
    assert count_parameters(ResNet20(10)) == expected
    assert count_parameters(build_model("resnet20")) == expected  # the wrapper adds no parameters


def test_vit_head_keeps_torchvision_naming():
    net = build_model("vit_b_16").net
    keys = [k for k in net.state_dict() if k.startswith("heads.")]
    assert keys == ["heads.head.weight", "heads.head.bias"]
    assert net.state_dict()["heads.head.weight"].shape == (10, 768)


@pytest.mark.parametrize("name", list(MODELS))
def test_random_model_gives_logits_and_survives_a_checkpoint_round_trip(name, tmp_path):
    torch.manual_seed(0)
    spec = MODELS[name]
    model = build_model(name, input_norm="imagenet")
    x = torch.rand(1, 3, spec.input_size, spec.input_size)  # (1, 3, S, S)
    with torch.no_grad():
        logits = model(x)
    assert logits.shape == (1, 10) and torch.isfinite(logits).all()
    path = tmp_path / f"{name}.pt"
    save_checkpoint(str(path), model.net, name, "imagenet", {"note": "round trip"})
    reloaded = build_model(name, checkpoint=str(path))  # input_norm comes from the checkpoint
    assert reloaded.input_norm == "imagenet"
    with torch.no_grad():
        assert torch.equal(reloaded(x), logits)


def test_checkpoint_of_another_architecture_is_refused(tmp_path):
    path = tmp_path / "resnet18-weights.pt"
    torch.save(build_model("resnet18").net.state_dict(), path)  # a bare state dict: no model name to check
    with pytest.raises(CheckpointError, match=r"does not fit the ResNet20 model: \d+ missing .*\d+ unexpected"):
        build_model("resnet20", checkpoint=str(path))


def test_checkpoint_with_other_class_count_names_the_shape(tmp_path):
    path = tmp_path / "resnet20-100.pt"
    torch.save(ResNet20(100).state_dict(), path)
    with pytest.raises(CheckpointError, match=r"wrong shape \(e.g. linear.weight: \(100, 64\) vs \(10, 64\)\)"):
        build_model("resnet20", checkpoint=str(path))


def test_checkpoint_for_another_model_name_is_refused(tmp_path):
    path = tmp_path / "named.pt"
    save_checkpoint(str(path), ResNet20(10), "resnet18", "none", {})
    with pytest.raises(CheckpointError, match="is for model 'resnet18', not 'resnet20'"):
        build_model("resnet20", checkpoint=str(path))


class Settings:
    """A custom class: torch.save pickles it by reference to this module."""

    def __init__(self) -> None:
        self.lr = 0.1


class CreatesAFile:
    """Unpickling this calls open(marker, 'w'): code that must never run when a checkpoint is read."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("payload", ["custom-class", "code-on-load"])
def test_checkpoint_with_pickled_code_is_refused_without_running_it(payload, tmp_path):
    path = tmp_path / "evil.pt"
    marker = tmp_path / "pwned"
    obj = Settings() if payload == "custom-class" else CreatesAFile(str(marker))
    torch.save({"state_dict": ResNet20(10).state_dict(), "extra": obj}, path)
    with pytest.raises(CheckpointError, match="weights_only=True"):
        build_model("resnet20", checkpoint=str(path))
    assert not marker.exists()


def test_missing_and_corrupt_checkpoints(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        build_model("resnet20", checkpoint=str(tmp_path / "missing.pt"))
    truncated = tmp_path / "truncated.pt"
    torch.save(ResNet20(10).state_dict(), truncated)
    truncated.write_bytes(truncated.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="could not read checkpoint"):
        build_model("resnet20", checkpoint=str(truncated))


def test_unknown_model_name():
    with pytest.raises(ValueError, match=r"expected a model in \['resnet18', 'resnet20', 'vit_b_16'\], got 'vgg'"):
        build_model("vgg")
