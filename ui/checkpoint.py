"""Find the classifier weights an experiment was computed with, on this machine.

The manifest keeps the checkpoint path used when the experiment was built, which may not exist here;
the file is also looked for relative to the repository and in assets/ by name, and accepted only if
its sha256 matches the one recorded. No Streamlit here: a plain function, tested directly.
"""

from __future__ import annotations

import os

from core.paths import REPO
from experiments.config import ExperimentConfig
from experiments.file_hash import sha256_file


def resolve_checkpoint(config: ExperimentConfig) -> tuple[str | None, str]:
    """The weights file to load for an experiment, and a sentence about it.

    None: build the model without a checkpoint (resnet18 / vit_b_16 experiments built with random or
    backbone weights). FileNotFoundError when no file with the recorded sha256 is found.
    """
    if config.checkpoint is None or config.checkpoint_sha256 == "random-or-backbone-weights":
        return None, "no classifier checkpoint: the backbone is rebuilt with the experiment's seed"
    name = os.path.basename(config.checkpoint)
    candidates = [config.checkpoint, os.path.join(REPO, config.checkpoint), os.path.join(REPO, "assets", name)]
    for candidate in dict.fromkeys(candidates):
        if not os.path.isfile(candidate):
            continue
        if config.checkpoint_sha256 and sha256_file(candidate) != config.checkpoint_sha256:
            continue
        return candidate, f"weights {os.path.relpath(candidate, REPO) if candidate.startswith(REPO) else candidate}"
    raise FileNotFoundError(
        f"the model weights of this experiment ({name}, sha256 {config.checkpoint_sha256[:12] or '?'}) "
        f"are not on this machine; put the file in assets/ or rebuild the experiment"
    )
