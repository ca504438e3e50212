"""Load and save classifier weights safely (`weights_only=True`: no pickled code runs).

Accepted layouts: a bare state dict; `{"state_dict": ...}` (e.g. pytorch_resnet_cifar10 releases,
possibly with `module.` prefixes from DataParallel); the project's own files, which add
`{"model": name, "input_norm": ..., "record": {...}}` and, from train-model, `"classes"`: the
training folder's class names in label order (what each output means).

Every refusal is a one-line `CheckpointError` (a ValueError) that says what was expected: a file
torch.save wrote (not empty, not another format), tensors only (no pickled objects: nothing in
the file runs), finite weights, and keys and shapes that fit the model.
"""

from __future__ import annotations

import json
import os
import pickle
import re
from typing import Any

import torch
from torch import nn


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model."""


ZIP_MAGIC = b"PK\x03\x04"  # torch.save's default (zip) format
PICKLE_MAGIC = b"\x80"  # the legacy format (_use_new_zipfile_serialization=False) starts with a pickle protocol byte
EXPECTED = "expected a PyTorch checkpoint written by torch.save (a state dict of tensors)"


def _first_line(err: BaseException) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err)).strip()  # torch colours parts of its messages
    return text.splitlines()[0] if text else type(err).__name__


def _refused_objects(err: BaseException) -> str:
    """The pickled globals torch's weights_only loader refused, e.g. 'builtins.open', as far as it names them."""
    names = sorted(set(re.findall(r"GLOBAL ([\w.]+)", str(err))))
    return ", ".join(names) if names else _first_line(err)


def read_checkpoint(path: str) -> dict[str, Any]:
    """Return {"state_dict": ..., **metadata} from any accepted layout."""
    if not os.path.isfile(path):
        raise CheckpointError(f"expected a checkpoint file, got {path!r} (no such file)")
    with open(path, "rb") as fh:
        head = fh.read(4)
    if not head:
        raise CheckpointError(f"{EXPECTED}, got an empty file {path!r} (0 bytes)")
    if not (head.startswith(ZIP_MAGIC) or head.startswith(PICKLE_MAGIC)):
        raise CheckpointError(f"{EXPECTED}, got {path!r}, which is another kind of file (it starts with {head!r})")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"refused to load {path!r}: besides tensors it carries pickled Python objects ({_refused_objects(err)}), "
            "which could run code; checkpoints are only read with weights_only=True, so save a state dict of tensors"
        ) from None
    except Exception as err:  # torch raises RuntimeError, EOFError, OSError, zipfile errors...
        raise CheckpointError(
            f"could not read checkpoint {path!r} (truncated or damaged?): {type(err).__name__}: {_first_line(err)}"
        ) from None
    if not isinstance(raw, dict):
        raise CheckpointError(f"expected a dict of tensors in {path!r}, got {type(raw).__name__}")
    meta = {k: v for k, v in raw.items() if k != "state_dict"} if "state_dict" in raw else {}
    state = raw["state_dict"] if "state_dict" in raw else raw
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"expected a state dict of tensors in {path!r}")
    for key, value in state.items():
        if value.is_floating_point() or value.is_complex():
            bad = int((~torch.isfinite(value)).sum())
            if bad:
                raise CheckpointError(f"expected finite weights in {path!r}, got {bad} NaN/inf entries in {key}")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    return {"state_dict": state, **meta}


def load_state_into(net: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Strictly load `state` into `net`, explaining mismatches (missing keys, shapes)."""
    own = net.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in state if k in own and own[k].shape != state[k].shape]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if wrong:
            k = wrong[0]
            parts.append(f"{len(wrong)} of wrong shape (e.g. {k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)})")
        raise CheckpointError(
            f"checkpoint {source!r} does not fit the {type(net).__name__} model: " + "; ".join(parts)
        )
    net.load_state_dict(state, strict=False)


def save_checkpoint(
    path: str, net: nn.Module, model_name: str, input_norm: str, record: dict, classes: list[str] | None = None
) -> None:
    """Write the project's checkpoint layout atomically (temporary file, then rename).

    classes: the class names of the outputs in label order, recorded when given
    (`core.models.registry.model_class_names` reads them back).
    """
    payload = {
        "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
        "model": model_name,
        "input_norm": input_norm,
        "record": json.loads(json.dumps(record, default=str)),  # plain types only: loadable with weights_only
    }
    if classes is not None:
        payload["classes"] = [str(name) for name in classes]
    tmp = f"{path}.tmp-{os.getpid()}"
    torch.save(payload, tmp)
    os.replace(tmp, path)
