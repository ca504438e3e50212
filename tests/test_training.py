"""Classifier training (core.training) against plain reference loops written here from METHOD §6."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from core.training import TrainConfig, _lr_at, random_crop_flip, train_classifier


def test_random_crop_flip_matches_a_per_image_loop():
    images = torch.rand(6, 3, 8, 8)
    out = random_crop_flip(images, padding=2, flip=True, generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)  # same draws, same order: dy, dx, flip mask
    dy = torch.randint(0, 5, (6,), generator=g)
    dx = torch.randint(0, 5, (6,), generator=g)
    flip = torch.rand(6, generator=g) < 0.5
    for i in range(6):
        padded = torch.zeros(3, 12, 12)
        padded[:, 2:10, 2:10] = images[i]
        expected = padded[:, dy[i] : dy[i] + 8, dx[i] : dx[i] + 8]
        if flip[i]:
            expected = expected.flip(2)
        torch.testing.assert_close(out[i], expected, rtol=0, atol=0)


def test_multistep_lr_divides_by_ten_at_the_milestones():
    config = TrainConfig(epochs=200, lr=0.1, milestones=(100, 150), gamma=0.1)
    steps = 782
    assert _lr_at(config, 0, steps) == pytest.approx(0.1)
    assert _lr_at(config, 100 * steps - 1, steps) == pytest.approx(0.1)
    assert _lr_at(config, 100 * steps, steps) == pytest.approx(0.01)
    assert _lr_at(config, 150 * steps, steps) == pytest.approx(0.001)


def test_onecycle_lr_rises_then_decays_to_zero():
    config = TrainConfig(epochs=10, lr=0.2, schedule="onecycle", warmup_fraction=0.2)
    steps = 10
    lrs = [_lr_at(config, s, steps) for s in range(100)]
    assert lrs[0] == pytest.approx(0.2 * 0.04)
    assert max(lrs) == pytest.approx(0.2)
    peak = lrs.index(max(lrs))
    assert all(a <= b for a, b in zip(lrs[:peak], lrs[1 : peak + 1], strict=True))
    assert all(a >= b for a, b in zip(lrs[peak:-1], lrs[peak + 1 :], strict=True))
    assert lrs[-1] < 1e-3


def test_one_epoch_equals_plain_sgd_by_hand():
    """SGD with momentum, weight decay and the multistep lr, written out by hand, gives the same weights."""
    torch.manual_seed(0)
    make = lambda: nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 5))  # noqa: E731
    model, reference = make(), make()
    reference.load_state_dict(model.state_dict())
    images = torch.randint(0, 256, (40, 3, 4, 4), dtype=torch.uint8)
    labels = torch.randint(0, 5, (40,))
    config = TrainConfig(epochs=2, batch_size=16, lr=0.1, momentum=0.9, weight_decay=1e-3, milestones=(1,),
                         crop_padding=0, flip=False, seed=5)
    record = train_classifier(model, images, labels, images, labels, config)

    generator = torch.Generator().manual_seed(5)
    buffers = [torch.zeros_like(p) for p in reference.parameters()]
    steps_per_epoch = math.ceil(40 / 16)
    for epoch in range(2):
        order = torch.randperm(40, generator=generator)
        lr = 0.1 if epoch < 1 else 0.01
        for k in range(steps_per_epoch):
            idx = order[k * 16 : (k + 1) * 16]
            loss = F.cross_entropy(reference(images[idx].float() / 255), labels[idx])
            grads = torch.autograd.grad(loss, list(reference.parameters()))
            with torch.no_grad():
                for p, g, buf in zip(reference.parameters(), grads, buffers, strict=True):
                    d = g + 1e-3 * p
                    buf.mul_(0.9).add_(d) if (epoch, k) != (0, 0) else buf.copy_(d)
                    p.sub_(lr * buf)
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    assert [e["epoch"] for e in record["epochs"]] == [1, 2]
    assert record["epochs"][-1]["lr_end"] == pytest.approx(0.01)
    assert 0 <= record["epochs"][-1]["test_acc"] <= 1


def test_cuda_graph_needs_cuda():
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 5))
    images = torch.zeros(8, 3, 4, 4, dtype=torch.uint8)
    labels = torch.zeros(8, dtype=torch.int64)
    with pytest.raises(ValueError, match="CUDA"):
        train_classifier(model, images, labels, images, labels, TrainConfig(epochs=1, batch_size=4, cuda_graph=True))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_graph_training_matches_eager_training():
    """Graph replay runs the same steps as eager training (up to float rounding), lr changes included."""
    torch.manual_seed(0)
    make = lambda: nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),  # noqa: E731
                                 nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5)).cuda()
    eager, graphed = make(), make()
    graphed.load_state_dict(eager.state_dict())
    images = torch.randint(0, 256, (64, 3, 8, 8), dtype=torch.uint8, device="cuda")
    labels = torch.randint(0, 5, (64,), device="cuda")
    base = dict(epochs=3, batch_size=16, lr=0.05, milestones=(2,), crop_padding=0, flip=False, seed=1)
    train_classifier(eager, images, labels, images.cpu(), labels.cpu(), TrainConfig(**base))
    train_classifier(graphed, images, labels, images.cpu(), labels.cpu(), TrainConfig(**base, cuda_graph=True))
    for p, q in zip(eager.parameters(), graphed.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-3, atol=1e-4)


def test_resumed_training_equals_uninterrupted_training():
    """Stopping after epoch 1 and resuming from the saved state gives the same weights as 2 epochs at once."""
    torch.manual_seed(0)
    make = lambda: nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),  # noqa: E731
                                 nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    whole, first = make(), make()
    first.load_state_dict(whole.state_dict())
    images = torch.randint(0, 256, (30, 3, 6, 6), dtype=torch.uint8)
    labels = torch.randint(0, 3, (30,))
    config = TrainConfig(epochs=2, batch_size=8, milestones=(1,), crop_padding=2, seed=4)
    train_classifier(whole, images, labels, images, labels, config)

    states = []

    def keep(state):
        states.append(copy.deepcopy(state))
        if len(states) == 1:
            raise KeyboardInterrupt  # the run is killed after epoch 1 has been saved

    with pytest.raises(KeyboardInterrupt):
        train_classifier(first, images, labels, images, labels, config, on_state=keep)
    resumed = make()  # a fresh process: new weights, overwritten by the state
    record = train_classifier(resumed, images, labels, images, labels, config, resume=states[0])
    assert [e["epoch"] for e in record["epochs"]] == [1, 2]
    for p, q in zip(whole.state_dict().values(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def _small_bn_net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))


def test_weight_averaging_is_the_mean_of_the_epoch_end_weights_with_recomputed_batchnorm():
    """average_from: the returned weights are the plain mean of the weights saved after each averaged epoch,
    and BatchNorm's statistics are those of the averaged network on shuffled batches of the training images
    (sorted by class here, as an image folder is: in that order the batch variances would be smaller)."""
    torch.manual_seed(0)
    model = _small_bn_net()
    labels = torch.arange(3).repeat_interleave(10)  # (30,) sorted by class
    images = (torch.rand(30, 3, 6, 6) * 80 + labels[:, None, None, None] * 80).to(torch.uint8)  # class-dependent
    config = TrainConfig(epochs=4, batch_size=10, lr=0.05, milestones=(), crop_padding=0, flip=False, seed=2,
                         average_from=2)
    snapshots = []
    record = train_classifier(model, images, labels, images, labels, config,
                              on_state=lambda state: snapshots.append(copy.deepcopy(state["model"])))
    assert record["averaged"]["epochs_averaged"] == 3 and record["averaged"]["from_epoch"] == 2
    averaged = snapshots[1:]  # the weights after epochs 2, 3 and 4
    final = model.state_dict()
    for name in ("0.weight", "0.bias", "1.weight", "1.bias", "4.weight", "4.bias"):
        expected = sum(s[name] for s in averaged) / len(averaged)
        torch.testing.assert_close(final[name], expected, rtol=1e-6, atol=1e-7)
        assert not torch.allclose(final[name], averaged[-1][name])  # not just the last epoch's weights
    # BatchNorm: the mean over the 3 batches of each batch's channel mean and unbiased variance of conv(x),
    # the batches in the order of a permutation drawn from a generator seeded with config.seed
    x = images.float() / 255
    conv = F.conv2d(x, final["0.weight"], final["0.bias"], padding=1)  # (30, 4, 6, 6)
    order = torch.randperm(30, generator=torch.Generator().manual_seed(2))
    batches = conv[order].split(10)
    mean = torch.stack([b.mean(dim=(0, 2, 3)) for b in batches]).mean(0)
    var = torch.stack([b.var(dim=(0, 2, 3), unbiased=True) for b in batches]).mean(0)
    torch.testing.assert_close(final["1.running_mean"], mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(final["1.running_var"], var, rtol=1e-5, atol=1e-6)
    sorted_var = torch.stack([b.var(dim=(0, 2, 3), unbiased=True) for b in conv.split(10)]).mean(0)
    assert (sorted_var < 0.8 * var).all()  # class-sorted batches would have missed the between-class variance
    assert record["averaged"]["test_acc"] == pytest.approx(
        (model.eval()(x).argmax(1) == labels).float().mean().item())


def test_resumed_weight_averaging_equals_uninterrupted_averaging():
    torch.manual_seed(0)
    whole, first = _small_bn_net(), _small_bn_net()
    first.load_state_dict(whole.state_dict())
    images = torch.randint(0, 256, (30, 3, 6, 6), dtype=torch.uint8)
    labels = torch.randint(0, 3, (30,))
    config = TrainConfig(epochs=3, batch_size=8, milestones=(), crop_padding=2, seed=4, average_from=1)
    expected = train_classifier(whole, images, labels, images, labels, config)
    states = []

    def keep(state):
        states.append(copy.deepcopy(state))
        if len(states) == 2:
            raise KeyboardInterrupt  # killed after epoch 2, with two epochs averaged

    with pytest.raises(KeyboardInterrupt):
        train_classifier(first, images, labels, images, labels, config, on_state=keep)
    resumed = _small_bn_net()
    record = train_classifier(resumed, images, labels, images, labels, config, resume=states[1])
    assert record["averaged"] == expected["averaged"]
    for p, q in zip(whole.state_dict().values(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


@pytest.mark.parametrize("average_from", [-1, 5])
def test_weight_averaging_needs_an_epoch_of_the_run(average_from):
    model = _small_bn_net()
    images = torch.zeros(4, 3, 6, 6, dtype=torch.uint8)
    labels = torch.zeros(4, dtype=torch.int64)
    with pytest.raises(ValueError, match="expected average_from between 0 .off. and epochs=4"):
        train_classifier(model, images, labels, images, labels, TrainConfig(epochs=4, average_from=average_from))


def test_adam_head_only_trains_only_the_head_like_plain_adam():
    """--optimizer adam --head-only: the backbone stays as it was; the head follows torch Adam by hand."""
    torch.manual_seed(0)
    make = lambda: nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 6), nn.ReLU(), nn.Linear(6, 3))  # noqa: E731
    model, reference = make(), make()
    reference.load_state_dict(model.state_dict())
    images = torch.randint(0, 256, (12, 3, 4, 4), dtype=torch.uint8)
    labels = torch.randint(0, 3, (12,))
    config = TrainConfig(epochs=1, batch_size=12, lr=0.01, optimizer="adam", weight_decay=0.0, milestones=(),
                         crop_padding=0, flip=False, head_only=True, head_prefix="3.")
    train_classifier(model, images, labels, images, labels, config)
    torch.testing.assert_close(model[1].weight, reference[1].weight, rtol=0, atol=0)  # frozen backbone
    head = [reference[3].weight, reference[3].bias]
    adam = torch.optim.Adam(head, lr=0.01)
    loss = F.cross_entropy(reference(images.float() / 255), labels)
    adam.zero_grad()
    loss.backward()
    adam.step()
    torch.testing.assert_close(model[3].weight, reference[3].weight, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(model[3].bias, reference[3].bias, rtol=1e-5, atol=1e-7)


def test_train_model_init_starts_from_the_checkpoint_and_keeps_its_record(tmp_path):
    """`train-model --init`: the new run starts from the given weights (with a vanishing learning rate the
    convolutions stay where the checkpoint put them, while a run without --init starts elsewhere) and its
    record names the checkpoint (sha256) and carries the checkpoint's own record."""
    import hashlib

    from PIL import Image

    from core.models.checkpoints import read_checkpoint, save_checkpoint
    from core.models.resnet20 import ResNet20
    from precompute.cli import main

    folder = tmp_path / "data"
    for k, cls in enumerate(["cat", "dog"]):
        (folder / cls).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (32, 32), (50 * k + 20, 30 * i, 90)).save(folder / cls / f"{i}.png")
    torch.manual_seed(5)
    start = tmp_path / "start.pt"
    save_checkpoint(str(start), ResNet20(10), "resnet20", "none", {"note": "the earlier run"})
    common = ["train-model", "--data", str(folder), "--epochs", "1", "--batch-size", "4", "--lr", "1e-9",
              "--momentum", "0", "--weight-decay", "0", "--device", "cpu"]
    assert main([*common, "--init", str(start), "--out", str(tmp_path / "warm.pt")]) == 0
    assert main([*common, "--out", str(tmp_path / "cold.pt")]) == 0
    before = read_checkpoint(str(start))["state_dict"]
    warm, cold = read_checkpoint(str(tmp_path / "warm.pt")), read_checkpoint(str(tmp_path / "cold.pt"))
    convs = [k for k in before if k.endswith("conv1.weight") or k == "linear.weight"]
    assert convs
    for key in convs:
        assert torch.allclose(warm["state_dict"][key], before[key], atol=1e-6), key
        assert not torch.allclose(cold["state_dict"][key], before[key], atol=1e-3), key
    init = warm["record"]["init"]
    assert init["sha256"] == hashlib.sha256(start.read_bytes()).hexdigest()
    assert init["record"] == {"note": "the earlier run"} and "init" not in cold["record"]
