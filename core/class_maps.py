"""Class-level Fourier maps and the defence that uses them (METHOD §5).

One map per class c, trained on the training split so that filtering by it keeps clean images of
class c classified as c and *reverts* adversarial images that the attack pushed into c back to
their true label. At test time the model's own first prediction picks the map, so the defence
needs no ground truth: ŷ = f(x), prediction = f(x filtered by M_ŷ).

Training all K classes as one batch of K maps is the same arithmetic as one class at a time:
each class's loss depends only on its own map, the batch loss is the sum of the class losses,
`SlotAdam` keeps per-class Adam state and step counts, and every class draws its minibatches from
its own seeded generator, so grouping changes nothing but float rounding (`classes_at_once`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from core.bases import Basis, get_basis
from core.compiled_step import compiled_network
from core.fourier import apply_fourier_maps
from core.hidden_layers import INPUT, feature_shape, layer_features, split_at
from core.map_training import SlotAdam, check_images, fold_batchnorm, folded_once, frozen_eval
from core.stopping import MapFitSettings, SlotHistory

FULL = "full"  # ClassMapConfig.batch_size: every step on the class's whole pool (no minibatch draw)


@dataclass
class ClassMapConfig(MapFitSettings):
    """Hyper-parameters of class-level map training. Defaults: METHOD §5 (the published setting).

    `stop_rule` comes from MapFitSettings, shared with the per-image config; so does the check of lam, lr
    and the rule, which `validate` extends by the minibatch size.
    """

    lam: float = 0.001  # weight of the L1 penalty λ·Σ|M|, summed over all C·H·W entries of the class map
    lr: float = 0.01  # Adam learning rate (betas 0.9, 0.999, eps 1e-8)
    min_steps: int = 500  # the stop test is only tried once the iteration number e exceeds this
    max_steps: int = 5000  # stop unconditionally once e exceeds this (at most max_steps + 1 iterations)
    tol: float = 1e-3  # converged when |avg_e - mean(last `window` avg)| < tol
    window: int = 20  # how many recent avg values (avg_e included) the running mean covers
    batch_size: int | str = 128  # images per minibatch, per class and per step (clean and adversarial alike);
    #                              FULL: the class's whole pool at every step, as the published code trains
    adversarial_step: bool = True  # False: clean steps only, i.e. plain class-level essential maps
    seed: int = 0  # seeds the minibatch draws (one generator per class, derived from this)

    def validate(self) -> None:
        """Raise ValueError on settings the loop cannot honour."""
        super().validate()
        if self.batch_size != FULL and not (isinstance(self.batch_size, int) and self.batch_size >= 1):
            raise ValueError(f"expected batch_size >= 1 or {FULL!r}, got {self.batch_size!r}")


@dataclass
class ClassMapResult:
    """One map per class and how its training ended."""

    maps: torch.Tensor  # (K, C, H, W) float32 in [0, 1], natural FFT order; ones for a class with no data
    iterations: torch.Tensor  # (K,) int64: iterations run (the e at which the class stopped); 0 = no data
    final_loss: torch.Tensor  # (K,) float64: the last avg (mean of the last adversarial and clean losses); nan = no data


@dataclass
class DefenceAccuracy:
    """Accuracy of a set of images without and with the class-map defence."""

    plain: float  # share of images with f(x) == label
    defended: float  # share with f(x filtered by M_f(x)) == label
    count: int  # number of images


def _class_seeds(seed: int, num_classes: int) -> list[int]:
    """One generator seed per class, so a class's draws do not depend on which classes train with it."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 2**62, (num_classes,), generator=generator).tolist()


def _draw(pool: torch.Tensor, generator: torch.Generator, batch_size: int | str) -> torch.Tensor:
    """A minibatch of pool indices without replacement; the whole pool (in index order, the generator untouched)
    when it is no larger or batch_size is FULL."""
    if batch_size == FULL or pool.numel() <= batch_size:
        return pool
    order = torch.randperm(pool.numel(), generator=generator)[:batch_size]
    return pool[order.to(pool.device)]


@dataclass
class _ClassData:
    """The training images of every class, as pools of indices with one minibatch generator per class."""

    clean_images: torch.Tensor  # (N, C, H, W) in [0, 1]
    clean_labels: torch.Tensor  # (N,) int64: the target of each clean image
    adv_images: torch.Tensor | None  # (M, C, H, W); None without adversarial steps
    adv_true_labels: torch.Tensor | None  # (M,) int64: the target of each adversarial image
    clean_pools: list[torch.Tensor]  # per class: indices of its clean images
    adv_pools: list[torch.Tensor]  # per class: indices of the adversarial images pushed into it
    generators: list[torch.Generator]  # per class: its minibatch draws
    apply_maps: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = apply_fourier_maps  # the basis's filter


def _check_class_inputs(
    clean_images: torch.Tensor,
    clean_labels: torch.Tensor,
    adv_images: torch.Tensor | None,
    adv_labels: torch.Tensor | None,
    adv_true_labels: torch.Tensor | None,
    num_classes: int,
    config: ClassMapConfig,
    classes_at_once: int | None,
) -> None:
    """ValueError unless the arguments of `train_class_maps` fit together."""
    config.validate()
    check_images(clean_images, clean_labels, name="clean_images", label_name="clean_labels")
    if num_classes < 1:
        raise ValueError(f"expected num_classes >= 1, got {num_classes}")
    if config.adversarial_step:
        check_images(adv_images, adv_labels, name="adv_images", label_name="adv_labels")
        check_images(adv_images, adv_true_labels, name="adv_images", label_name="adv_true_labels")
        if adv_images.shape[1:] != clean_images.shape[1:]:
            raise ValueError(
                f"expected adv_images of image shape {tuple(clean_images.shape[1:])}, got {tuple(adv_images.shape[1:])}"
            )
        if adv_images.device != clean_images.device:
            raise ValueError(f"expected adv_images on {clean_images.device}, got {adv_images.device}")
    for name, labels in (("clean_labels", clean_labels), ("adv_labels", adv_labels if config.adversarial_step else None)):
        if labels is not None and labels.numel() and labels.max() >= num_classes:
            raise ValueError(f"expected {name} < num_classes = {num_classes}, got {labels.max().item()}")
    if classes_at_once is not None and classes_at_once < 1:
        raise ValueError(f"expected classes_at_once >= 1 or None, got {classes_at_once}")


def _class_data(
    clean_images: torch.Tensor,
    clean_labels: torch.Tensor,
    adv_images: torch.Tensor | None,
    adv_labels: torch.Tensor | None,
    adv_true_labels: torch.Tensor | None,
    num_classes: int,
    config: ClassMapConfig,
) -> _ClassData:
    """Pools and generators per class; no adversarial pools (all empty) without adversarial steps."""
    device = clean_images.device
    adv_pools: list[torch.Tensor] = [torch.zeros(0, dtype=torch.int64, device=device)] * num_classes
    if config.adversarial_step:
        adv_pools = [torch.nonzero(adv_labels == c).flatten() for c in range(num_classes)]
    clean_pools = [torch.nonzero(clean_labels == c).flatten() for c in range(num_classes)]
    generators = [torch.Generator().manual_seed(s) for s in _class_seeds(config.seed, num_classes)]
    return _ClassData(clean_images, clean_labels, adv_images, adv_true_labels, clean_pools, adv_pools, generators)


def train_class_maps(
    model: nn.Module,
    clean_images: torch.Tensor,
    clean_labels: torch.Tensor,
    adv_images: torch.Tensor | None,
    adv_labels: torch.Tensor | None,
    adv_true_labels: torch.Tensor | None,
    num_classes: int,
    config: ClassMapConfig | None = None,
    *,
    classes_at_once: int | None = None,
    fuse_batchnorm: bool = True,
    channels_last: bool | None = None,
    progress: Callable[[int, int], None] | None = None,
    basis: str | Basis = "fourier",
    layer: str = INPUT,
    loss_trace: list[list[float]] | None = None,
    compile: bool = False,
) -> ClassMapResult:
    """Train one Fourier map per class (METHOD §5).

    clean_images: (N, C, H, W) in [0, 1] with clean_labels (N,): pass only images the model
    classifies correctly (the caller selects them; this function does not re-check).
    adv_images: (M, C, H, W) with adv_labels (M,) = f(x_adv) and adv_true_labels (M,): pass only
    successful attacks on correctly classified images. M may be 0; with adversarial_step=False the
    adversarial arguments are ignored (None allowed).

    Iteration e = 1, 2, ... for every class c still training: one Adam step on a minibatch of the
    adversarial images with adversarial label c (target: their true label), then one Adam step on a
    minibatch of the clean images of class c (target c); each step's loss is the *mean* CE over its
    minibatch + λ·Σ|M_c| (METHOD does not say; the mean is PyTorch's default reduction, and a CE
    summed over 128 images would make λ = 0.001 negligible), and the map is clamped to [0, 1]
    after each step. (The paper's text names the clean step first; METHOD §5, which records the
    published implementation, puts the adversarial step first, as done here.) avg_e = (loss_adv + loss_clean) / 2, each loss from the
    forward pass before its step; stop by `StopRule` on the avg values (e > min_steps and
    |avg_e − mean(last window avg)| < tol, or e > max_steps). A class with no adversarial images trains
    on clean steps only and avg_e = loss_clean (and symmetrically); a class with neither keeps a map of ones.

    classes_at_once: how many classes train together as one batch of maps (None: all K); the
    result does not depend on it beyond float rounding. fuse_batchnorm: train against
    `fold_batchnorm(model)` (same function, fewer ops). channels_last: as in `train_maps` (None:
    on CPU only). progress(finished classes, K) is called
    after every iteration. compile: the network under torch.compile (core.compiled_step.compiled_network). loss_trace: an empty list that receives K lists, each class's avg_e per iteration
    (the values the stop rule saw), for benchmarks of the rule.

    config.batch_size FULL: every step of class c on its whole pool, in index order, with no draw (the
    published code's full batch); the mean CE over the pool is then the exact loss of the map, not an estimate.
    """
    config = config or ClassMapConfig()
    _check_class_inputs(clean_images, clean_labels, adv_images, adv_labels, adv_true_labels, num_classes, config,
                        classes_at_once)
    basis = get_basis(basis)
    _, tail = split_at(model, layer)
    basis.map_shape(feature_shape(model, layer, clean_images.shape))  # ValueError on a size the basis cannot take
    if layer != INPUT:  # the maps filter the layer's features: computed once, the steps run the rest of the model
        clean_images = layer_features(model, layer, clean_images)
        if config.adversarial_step:
            adv_images = layer_features(model, layer, adv_images)
    data = _class_data(clean_images, clean_labels, adv_images, adv_labels, adv_true_labels, num_classes, config)
    data.apply_maps = basis.apply
    device = clean_images.device
    result = ClassMapResult(
        maps=torch.ones((num_classes, *clean_images.shape[1:]), dtype=torch.float32, device=device),
        iterations=torch.zeros(num_classes, dtype=torch.int64),
        final_loss=torch.full((num_classes,), float("nan"), dtype=torch.float64),
    )
    trainable = [c for c in range(num_classes) if data.clean_pools[c].numel() or data.adv_pools[c].numel()]
    group_size = classes_at_once or max(1, len(trainable))
    if channels_last is None:
        channels_last = device.type == "cpu"
    finished = num_classes - len(trainable)
    if loss_trace is not None:
        loss_trace[:] = [[] for _ in range(num_classes)]

    def report(classes_done: int) -> None:
        nonlocal finished
        finished += classes_done
        if progress is not None:
            progress(finished, num_classes)

    with frozen_eval(model):
        network = (folded_once if compile else fold_batchnorm)(tail) if fuse_batchnorm else tail
        network = compiled_network(network) if compile else network  # compile: core.compiled_step, for long runs
        for start in range(0, len(trainable), group_size):
            _train_group(network, trainable[start : start + group_size], data, config, channels_last, result, report,
                         loss_trace)
    return result


def _train_group(
    network: nn.Module,
    group: list[int],
    data: _ClassData,
    config: ClassMapConfig,
    channels_last: bool,
    result: ClassMapResult,
    report: Callable[[int], None],
    loss_trace: list[list[float]] | None = None,
) -> None:
    """Train the maps of the classes `group` as one batch until each stops; write them into `result`.

    report(classes finished in this iteration) is called after every iteration; loss_trace[c] gets class c's avg_e.
    """
    maps = torch.ones((len(group), *data.clean_images.shape[1:]), dtype=data.clean_images.dtype,
                      device=data.clean_images.device)  # (G, C, H, W)
    adam = SlotAdam(maps, lr=config.lr)
    history = SlotHistory(config.stop_rule, len(group))
    active = list(range(len(group)))  # positions in `group` still training
    while active:
        averages = _iteration(network, maps, adam, [(p, group[p]) for p in active], data, config, channels_last)
        still = []
        for p in active:
            if loss_trace is not None:
                loss_trace[group[p]].append(averages[p])
            if history.record(p, averages[p]):
                result.maps[group[p]] = maps[p].float()
                result.iterations[group[p]] = history.steps[p]
                result.final_loss[group[p]] = averages[p]
            else:
                still.append(p)
        report(len(active) - len(still))
        active = still


def _iteration(
    network: nn.Module,
    maps: torch.Tensor,
    adam: SlotAdam,
    classes: list[tuple[int, int]],
    data: _ClassData,
    config: ClassMapConfig,
    channels_last: bool,
) -> dict[int, float]:
    """One iteration for the (position, class) pairs `classes`: the adversarial step, then the clean step.

    maps: (G, C, H, W) updated in place. Returns {position: avg_e}, the mean of the losses of the steps
    the class took (one of them when one of its pools is empty).
    """
    adv_parts = [(p, _draw(data.adv_pools[c], data.generators[c], config.batch_size)) for p, c in classes]
    adv_losses = _step(network, maps, adam, data.adv_images, data.adv_true_labels, adv_parts, config.lam, channels_last,
                       data.apply_maps)
    clean_parts = [(p, _draw(data.clean_pools[c], data.generators[c], config.batch_size)) for p, c in classes]
    clean_losses = _step(network, maps, adam, data.clean_images, data.clean_labels, clean_parts, config.lam,
                         channels_last, data.apply_maps)
    averages = {}
    for p, _ in classes:
        parts = [losses[p] for losses in (adv_losses, clean_losses) if p in losses]
        averages[p] = sum(parts) / len(parts)
    return averages


def _step(
    model: nn.Module,
    maps: torch.Tensor,
    adam: SlotAdam,
    images: torch.Tensor,
    targets: torch.Tensor,
    parts: list[tuple[int, torch.Tensor]],
    lam: float,
    channels_last: bool,
    apply_maps: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = apply_fourier_maps,
) -> dict[int, float]:
    """One Adam step for every map position p in `parts` on its minibatch `rows`; returns {p: loss}.

    maps: (G, C, H, W) updated in place (only the positions in parts). Each class's loss is the mean
    CE over its own rows + λ·Σ|M_p|; the step's objective is their sum, so each map gets its own gradient.
    """
    parts = [(p, rows) for p, rows in parts if rows.numel()]
    if not parts:
        return {}
    device = maps.device
    positions = torch.tensor([p for p, _ in parts], device=device)  # (P,)
    rows = torch.cat([r for _, r in parts])  # (R,)
    owner = torch.cat([torch.full((r.numel(),), i, device=device) for i, (_, r) in enumerate(parts)])  # (R,) in 0..P-1
    counts = torch.tensor([r.numel() for _, r in parts], device=device, dtype=maps.dtype)  # (P,)
    losses = class_map_step(model, maps, adam, images[rows], targets[rows], positions, owner, counts, lam,
                            channels_last, apply_maps)
    return dict(zip([p for p, _ in parts], losses.tolist(), strict=True))


def class_map_step(
    model: nn.Module,
    maps: torch.Tensor,
    adam: SlotAdam,
    images: torch.Tensor,
    targets: torch.Tensor,
    positions: torch.Tensor,
    owner: torch.Tensor,
    counts: torch.Tensor,
    lam: float,
    channels_last: bool,
    apply_maps: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = apply_fourier_maps,
) -> torch.Tensor:
    """One Adam step of the maps at `positions` on the minibatch rows they own; the tensor work of `_step`.

    maps: (G, C, H, W) natural FFT order, updated in place at `positions` (P,) together with `adam`'s state.
    images: (R, C, H, W) and targets (R,): the rows of all P minibatches, row r belonging to the map at
    positions[owner[r]]; counts (P,): rows per map, in maps.dtype. Returns the detached losses (P,): mean CE
    over a map's rows + λ·Σ|M|. No host sync.
    """
    leaf = maps.detach().requires_grad_(True)
    own_maps = leaf.index_select(0, positions)  # (P, C, H, W)
    # index_select, not own_maps[owner]: its backward is index_add_, a fixed-order sum. The backward of
    # advanced indexing (index_put_ with accumulate) can add one map's rows in thread-dependent order on a
    # CPU when one map's rows are split between threads; two demo builds with it had different class maps
    # (6.5e-5 apart after 210 steps on 2 threads). tests/test_class_maps.py::test_step_gradient_sums_in_a_fixed_order
    # fails with advanced indexing and passes with index_select.
    filtered = apply_maps(images, own_maps.index_select(0, owner))  # (R, C, H, W)
    if channels_last:
        filtered = filtered.contiguous(memory_format=torch.channels_last)
    logits = model(filtered)  # (R, K)
    ce = F.cross_entropy(logits, targets, reduction="none")  # (R,)
    ce_mean = torch.zeros(counts.shape[0], dtype=ce.dtype, device=maps.device).index_add_(0, owner, ce) / counts  # (P,)
    losses = ce_mean + lam * own_maps.abs().sum(dim=(1, 2, 3))  # (P,)
    (grad,) = torch.autograd.grad(losses.sum(), leaf)
    with torch.no_grad():
        adam.step(maps, grad, rows=positions)
        maps.clamp_(0, 1)
    return losses.detach()


def _check_class_maps(images: torch.Tensor, class_maps: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or not images.is_floating_point():
        raise ValueError(f"expected images as a float tensor (N, C, H, W), got {getattr(images, 'shape', type(images))}")
    if class_maps.dim() != 4 or class_maps.shape[1:] != images.shape[1:]:
        raise ValueError(f"expected class_maps of shape (K, {', '.join(map(str, images.shape[1:]))}), got {tuple(class_maps.shape)}")
    if class_maps.device != images.device:
        raise ValueError(f"expected class_maps on the images' device {images.device}, got {class_maps.device}")


@torch.no_grad()
def defended_predict(
    model: nn.Module, images: torch.Tensor, class_maps: torch.Tensor, *, batch_size: int = 256
) -> tuple[torch.Tensor, torch.Tensor]:
    """The defence: ŷ = f(x), then f(x filtered by the map of ŷ). Uses no ground truth.

    images: (N, C, H, W) in [0, 1]; class_maps: (K, C, H, W) natural FFT order, K = the model's classes.
    Returns (first_pred (N,), defended_pred (N,)) int64 on the images' device.
    """
    _check_class_maps(images, class_maps)
    if batch_size < 1:
        raise ValueError(f"expected batch_size >= 1, got {batch_size}")
    first, defended = [], []
    with frozen_eval(model):
        for start in range(0, images.shape[0], batch_size):
            x = images[start : start + batch_size]  # (B, C, H, W)
            pred = model(x).argmax(dim=1)  # (B,)
            if pred.max() >= class_maps.shape[0]:
                raise ValueError(f"expected a map for every class the model predicts, got {class_maps.shape[0]} maps")
            first.append(pred)
            defended.append(model(apply_fourier_maps(x, class_maps[pred].to(x.dtype))).argmax(dim=1))
    empty = torch.zeros(0, dtype=torch.int64, device=images.device)
    return (torch.cat(first) if first else empty), (torch.cat(defended) if defended else empty)


def defence_accuracy(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, class_maps: torch.Tensor, *, batch_size: int = 256
) -> DefenceAccuracy:
    """Accuracy of `images` (N, C, H, W) against `labels` (N,), without and with the defence."""
    check_images(images, labels, label_name="labels")
    first, defended = defended_predict(model, images, class_maps, batch_size=batch_size)
    count = images.shape[0]
    if count == 0:
        return DefenceAccuracy(float("nan"), float("nan"), 0)
    return DefenceAccuracy(
        (first == labels).double().mean().item(), (defended == labels).double().mean().item(), count
    )
