"""`python -m precompute train-model`: train a classifier (METHOD §6) and save a checkpoint.

Example (the shipped ResNet-20's CPU schedule, then its warm restart; README "The shipped model"):
    python -m precompute train-model --model resnet20 --data /path/train --test-data ../shared/data/cifar10/test-1000 \
        --epochs 70 --schedule onecycle --lr 0.2 --batch-size 128 --nesterov --weight-decay 5e-4 --seed 1 --out r20-70.pt
    python -m precompute train-model --model resnet20 --init r20-70.pt --data /path/train --test-data ... \
        --epochs 10 --schedule onecycle --lr 0.02 --batch-size 128 --nesterov --weight-decay 5e-4 --seed 2 --out m.pt
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time

import torch

from core.data.datasets import label_by_class_names
from core.data.image_folder import load_image_folder
from core.devices import resolve_device
from core.models.checkpoints import read_checkpoint, save_checkpoint
from core.models.registry import build_model, get_model_spec, model_class_names
from core.models.weights import resolve_backbone_weights
from core.training import TrainConfig, train_classifier
from experiments.file_hash import sha256_file
from experiments.paths import recorded_path
from precompute.writable import check_writable_dir


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="train a classifier and save its checkpoint")
    d = TrainConfig()
    p.add_argument("--model", default="resnet20")
    p.add_argument("--data", required=True, help="ImageFolder directory with the training images")
    p.add_argument("--test-data", help="ImageFolder directory evaluated after every epoch")
    p.add_argument("--out", required=True, help="checkpoint file to write")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--momentum", type=float, default=d.momentum)
    p.add_argument("--optimizer", choices=["sgd", "adam"], default=d.optimizer,
                   help="sgd (ResNet-20, METHOD §6) or adam (the Imagenette heads: --optimizer adam --schedule onecycle --lr 0.01)")
    p.add_argument("--nesterov", action="store_true")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--schedule", choices=["multistep", "onecycle"], default=d.schedule)
    p.add_argument("--milestones", type=int, nargs="*", default=list(d.milestones))
    p.add_argument("--label-smoothing", type=float, default=d.label_smoothing)
    p.add_argument("--average-from", type=int, default=d.average_from, metavar="EPOCH",
                   help="stochastic weight averaging: save the average of the weights at the end of epochs EPOCH.."
                        "--epochs (1-based), BatchNorm statistics recomputed on the training images; 0 (default): off. "
                        "Not in METHOD; e.g. with --init, a constant lr (--schedule multistep --milestones) and 10 epochs")
    p.add_argument("--crop-padding", type=int, default=d.crop_padding)
    p.add_argument("--no-flip", action="store_true")
    p.add_argument("--head-only", action="store_true", help="train only the classification head")
    p.add_argument("--input-norm", choices=["none", "imagenet"], default=None)
    p.add_argument(
        "--backbone-weights",
        default="none",
        help="resnet18/vit_b_16 backbone: a weights file, 'imagenet' (torchvision cache or download) or 'none'",
    )
    p.add_argument(
        "--init",
        default=None,
        help="start from this checkpoint of the same model (a fine-tune or a warm restart of a finished run: "
        "a new schedule from its weights); its training record is kept under 'init' in the new one",
    )
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--cuda-graph",
        choices=["auto", "on", "off"],
        default="auto",
        help="replay each SGD step as a captured CUDA graph (auto: on CUDA with the multistep schedule); "
        "drops the last partial batch of every epoch",
    )
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--restart", action="store_true", help="ignore the saved state of an interrupted run of --out")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")


def validate_args(args: argparse.Namespace) -> None:
    """Refuse bad options before any data is decoded (one ValueError / PermissionError line each)."""
    get_model_spec(args.model)
    if not args.out:
        raise ValueError("expected --out to be a checkpoint file path, got an empty string")
    if os.path.isdir(args.out):
        raise ValueError(f"expected --out to be a checkpoint file path, got the directory {args.out!r}")
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir):
        raise ValueError(f"expected --out in an existing directory, got {args.out!r} ({out_dir!r} does not exist)")
    check_writable_dir(out_dir)
    for option, path in (("--data", args.data), ("--test-data", args.test_data)):
        if path is not None and not os.path.isdir(path):
            raise ValueError(f"expected {option} to be an ImageFolder directory (root/<class>/<image>), got {path!r}")
    if args.epochs < 1:
        raise ValueError(f"expected --epochs >= 1, got {args.epochs}")
    if args.batch_size < 1:
        raise ValueError(f"expected --batch-size >= 1, got {args.batch_size}")
    if not (math.isfinite(args.lr) and args.lr > 0):
        raise ValueError(f"expected --lr > 0 (a finite number), got {args.lr:g}")
    for option, value in (("--momentum", args.momentum), ("--weight-decay", args.weight_decay)):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"expected {option} >= 0 (a finite number), got {value:g}")
    if not (0 <= args.label_smoothing < 1):
        raise ValueError(f"expected --label-smoothing in [0, 1), got {args.label_smoothing:g}")
    if args.crop_padding < 0:
        raise ValueError(f"expected --crop-padding >= 0, got {args.crop_padding}")
    if not 0 <= args.average_from <= args.epochs:
        raise ValueError(f"expected --average-from between 0 (off) and --epochs={args.epochs}, got {args.average_from}")
    if args.average_from and args.head_only:
        raise ValueError("expected --average-from 0 with --head-only (weight averaging is for whole-model training)")
    bad = [m for m in args.milestones if m < 1]
    if bad:
        raise ValueError(f"expected --milestones to be epochs >= 1, got {bad[0]}")
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"expected --threads >= 1, got {args.threads}")
    if args.init is not None and args.backbone_weights not in (None, "none"):
        raise ValueError("expected either --init (a whole classifier) or --backbone-weights, not both")
    if args.model == "resnet20" and args.backbone_weights not in (None, "none"):
        raise ValueError(
            f"expected --backbone-weights none for resnet20 (it has no pretrained backbone; resnet18 and vit_b_16 do), "
            f"got {args.backbone_weights!r}"
        )


def _read_state(path: str, device: torch.device) -> dict:
    """The saved state of an interrupted run, or a ValueError saying how to start over."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # damaged, truncated, pickled objects...
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(
            f"could not read {path!r}, the saved state of an interrupted run ({type(err).__name__}: {first}); "
            "pass --restart to start over"
        ) from None
    if not isinstance(state, dict) or not {"model", "optimizer", "generator", "record"} <= set(state):
        raise ValueError(f"expected {path!r} to hold the saved state of an interrupted run; pass --restart to start over")
    return state


def _init_record(path: str) -> dict:
    """Where a warm-started run came from: the checkpoint's path (as given, see recorded_path), sha256 and its own
    training record."""
    return {"checkpoint": recorded_path(path), "sha256": sha256_file(path), "record": read_checkpoint(path).get("record")}


def run(args: argparse.Namespace) -> int:
    validate_args(args)
    spec = get_model_spec(args.model)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    if args.cuda_graph == "on" and device.type != "cuda":
        raise ValueError(f"expected a CUDA device for --cuda-graph on, got {device}")
    cuda_graph = args.cuda_graph == "on" or (
        args.cuda_graph == "auto" and device.type == "cuda" and args.schedule == "multistep" and args.optimizer == "sgd"
    )
    config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        momentum=args.momentum,
        optimizer=args.optimizer,
        nesterov=args.nesterov,
        weight_decay=args.weight_decay,
        schedule=args.schedule,
        milestones=tuple(args.milestones),
        label_smoothing=args.label_smoothing,
        crop_padding=args.crop_padding,
        flip=not args.no_flip,
        seed=args.seed,
        head_only=args.head_only,
        head_prefix=spec.head_prefix,
        cuda_graph=cuda_graph,
        average_from=args.average_from,
    )
    # the model first: a bad --backbone-weights file is refused before the data are decoded
    weights = resolve_backbone_weights(args.model, args.backbone_weights) if args.model != "resnet20" else None
    model = build_model(args.model, checkpoint=args.init, input_norm=args.input_norm, backbone_weights=weights)
    init = _init_record(args.init) if args.init else None
    t0 = time.perf_counter()
    # labels follow the class folders' names (the model's, else the training folder's own); the checkpoint records them
    train = label_by_class_names(load_image_folder(args.data, size=spec.input_size),
                                 model_class_names(args.model, args.init), args.data)
    test = label_by_class_names(load_image_folder(args.test_data, size=spec.input_size), train.classes,
                                args.test_data) if args.test_data else train
    print(f"data: {len(train.labels)} train, {len(test.labels)} test images ({time.perf_counter() - t0:.0f}s to decode)")
    net = model.net
    model.to(device)
    for p in model.parameters():
        p.requires_grad_(True)

    def report(e: dict) -> None:
        print(
            f"epoch {e['epoch']:3d}  loss {e['train_loss']:.4f}  train {100 * e['train_acc']:.2f}%  "
            f"test {100 * e['test_acc']:.2f}%  lr {e['lr_end']:.4f}  {e['elapsed_s']:.0f}s",
            flush=True,
        )

    state_path = args.out + ".state.pt"  # after every epoch: a killed run resumes, losing at most one epoch
    resume = None
    if os.path.isfile(state_path) and not args.restart:
        resume = _read_state(state_path, device)
        print(f"resuming from {state_path} after epoch {len(resume['record']['epochs'])} (--restart to start over)")

    def save_state(state: dict) -> None:
        tmp = f"{state_path}.tmp-{os.getpid()}"
        torch.save(state, tmp)
        os.replace(tmp, state_path)

    record = train_classifier(
        model, train.images.to(device), train.labels.to(device), test.images, test.labels, config, report,
        resume=resume, on_state=save_state,
    )
    record.update(
        model=args.model,
        input_norm=model.input_norm,
        train_data=recorded_path(args.data),  # as given; inside the repository relative to it
        test_data=recorded_path(args.test_data) if args.test_data else None,
        n_train=len(train.labels),
        n_test=len(test.labels),
        machine=f"{platform.node()} {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, {device}",
        torch=str(torch.__version__),
    )
    if init is not None:
        record["init"] = init
    save_checkpoint(args.out, net, args.model, model.input_norm, record, classes=train.classes)
    with open(os.path.splitext(args.out)[0] + ".train.json", "w") as fh:
        json.dump(record, fh, indent=1)
    os.remove(state_path)
    final = record["averaged"]["test_acc"] if "averaged" in record else record["epochs"][-1]["test_acc"]
    what = f"the average of {record['averaged']['epochs_averaged']} epochs' weights, " if "averaged" in record else ""
    print(f"saved {args.out} ({what}test accuracy {100 * final:.2f}%) in {record['wall_s'] / 60:.1f} min")
    return 0
