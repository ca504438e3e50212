"""bfloat16 autocast for the classifier (`precompute run --bf16`) leaves the maps equivalent to float32."""

from __future__ import annotations

import torch
from torch import nn

from core.map_training import MapTrainConfig, fold_batchnorm, train_maps
from precompute.bf16 import Bf16Classifier, Float32Island


def _cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a, b = a.flatten(1).double(), b.flatten(1).double()
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-12)


def test_bf16_maps_match_float32_maps(akamaster_model, cifar_test_float, monkeypatch):
    """Maps trained through a bf16 classifier, as `run --bf16` trains them, against the float32 ones.

    Real images, the third-party ResNet-20, the published λ = 0.5; on CUDA when there is one (where
    bf16 is meant to be used), else on the CPU, whose autocast implements the same bf16 rounding.
    Issue 3 asks for per-image cosine ≥ 0.98; bf16 does not reach it, and neither does float32 under
    another operation order. bench/bench_precision.py on 96 images (published schedule, session 13):
    float32 with BatchNorm unfolded 85 at ≥ 0.98, emulated TF32 convolutions 81, bf16 as `--bf16` runs
    it (first convolution in float32) 69, everything in bf16 61. The published λ makes the maps so
    sparse (~60 of 3072 entries) that any rounding can tip an image to another sparse optimum, and
    bf16 rounds most. On these 12 images (150-300 steps): 10 at ≥ 0.99 and 0.96, 0.69 (0.89, 0.58
    with the first convolution in bf16 too). So bf16 is off by default and the README says it is not
    per-image equivalent. Required here, to catch a bf16 path that breaks the maps altogether:
    median ≥ 0.99, cosine ≥ 0.98 and the same kept/failed decision for at least two thirds of the
    images each; the distributions are printed.
    (A bf16 path that silently computes in float32 passes this; the next tests catch that.)
    """
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # on a GPU: float32, not TF32, convolutions
    images, labels = cifar_test_float
    model = akamaster_model.to(device)
    with torch.no_grad():
        correct = (model(images[:64].to(device)).argmax(1).cpu() == labels[:64]).nonzero().flatten()[:12]
    x, y = images[correct].to(device), labels[correct].to(device)
    config = MapTrainConfig(lam=0.5, min_steps=150, max_steps=300)
    full = train_maps(model, x, y, config, batch_size=12)
    half = train_maps(Bf16Classifier(model, device.type).eval(), x, y, config, batch_size=12)  # as `run --bf16` does
    cosine = _cosine(full.maps, half.maps)
    print("per-image cosine bf16 vs float32:", [round(c, 4) for c in cosine.tolist()])
    print("kept float32:", full.kept.tolist(), "kept bf16:", half.kept.tolist())
    assert (cosine >= 0.98).double().mean() >= 2 / 3, cosine
    assert cosine.median() >= 0.99, cosine
    assert (full.kept == half.kept).double().mean() >= 2 / 3
    akamaster_model.cpu()


def test_folding_batchnorm_keeps_the_bf16_autocast(akamaster_model, cifar_test_float):
    """The map trainers and attacks fold BatchNorm by tracing the model with torch.fx, which records tensor
    operations only: traced, the bf16 wrapper's autocast context vanished and `run --bf16` computed in float32.
    The wrapper now folds its inner model and stays a bf16 wrapper."""
    x = cifar_test_float[0][:16]
    wrapped = Bf16Classifier(akamaster_model, "cpu").eval()
    folded = fold_batchnorm(wrapped)
    assert isinstance(folded, Bf16Classifier)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in folded.modules())
    assert isinstance(folded.model.get_submodule(first_conv_name(folded.model)), Float32Island)
    with torch.no_grad():
        full, half = akamaster_model(x), folded(x)
        assert (half - full).abs().max() > 1e-3  # bfloat16 arithmetic (the traced copy was within 3e-6 of float32)
        assert (half.argmax(1) == full.argmax(1)).double().mean() >= 0.75
        assert torch.allclose(fold_batchnorm(akamaster_model)(x), full, atol=1e-4)  # float32: the same function


def first_conv_name(model: nn.Module) -> str:
    return next(name for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, Float32Island)))


def conv_output_dtypes(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.dtype]]:
    """The model's output on x, and the output dtype of each Conv2d in the order they ran."""
    dtypes: list[torch.dtype] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: dtypes.append(out.dtype))
             for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            return model(x), dtypes
    finally:
        for hook in hooks:
            hook.remove()


def test_bf16_keeps_the_first_convolution_in_float32_and_leaves_the_model_alone(akamaster_model, cifar_test_float):
    """Under the wrapper the first convolution (which reads the filtered image) computes in float32 and every
    later one in bfloat16, folded or not; the caller's model keeps its structure and shares its weights."""
    x = cifar_test_float[0][:4]
    before = [type(m) for m in akamaster_model.modules()]
    wrapped = Bf16Classifier(akamaster_model, "cpu").eval()
    assert [type(m) for m in akamaster_model.modules()] == before  # not modified
    assert {id(p) for p in wrapped.parameters()} == {id(p) for p in akamaster_model.parameters()}  # shared
    for model in (wrapped, fold_batchnorm(wrapped)):
        logits, dtypes = conv_output_dtypes(model, x)
        assert logits.dtype == torch.float32
        assert len(dtypes) == sum(isinstance(m, nn.Conv2d) for m in model.modules()) > 1
        assert dtypes[0] == torch.float32 and set(dtypes[1:]) == {torch.bfloat16}, dtypes
    again = Bf16Classifier(wrapped.model, "cpu")  # wrapping a wrapped tree adds no second island
    island = again.model.get_submodule(first_conv_name(again.model))
    assert isinstance(island, Float32Island) and isinstance(island.module, nn.Conv2d)
