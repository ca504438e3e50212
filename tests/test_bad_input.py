"""Bad input, everywhere it enters: one table of cases, each asserted.

Each row of `BAD_INPUTS` is (entry point, case, builder, message fragment). The builder makes the
bad input under the test's tmp_path and returns the command line (CLI rows) or the file's bytes
(upload rows). CLI rows run `python -m precompute ...` in-process (`precompute.cli.main`) and
assert: exit code 2, exactly one non-empty line on stderr, the fragment in it, no traceback, and
nothing changed on disk: the shared cache root (an existing experiment: every file's bytes and
its manifest) and the test's own tmp_path (no experiment directory, checkpoint or export
half-written). Upload rows drive the Lab page (Streamlit AppTest): one error on the page with the
fragment, no exception, the cache unchanged.

`VALID_ODD_IMAGES`: 16-bit, grey, palette, RGBA and 1x1 images must load (data folders and uploads
alike), with the right pixels, not be refused.

Covered elsewhere, not repeated here: `correlate` NaN/inf in b, mismatched N, 2 rows, unreadable,
object and complex arrays (tests/test_correlate_cli.py); checkpoints of another architecture or
class count, pickled code and truncated files at the library level (tests/test_models.py); upload
decoding of every mode and the not-an-image upload on the page (tests/test_user_image.py,
tests/test_app_pages.py); relative paths that leave an experiment at the store level
(tests/test_cache_store.py); unknown preset/model/attack, eps range, missing data/checkpoint,
--out a file or unwritable to its user, resnet20 weights for resnet18 (tests/test_pipeline.py).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from experiments.store import manifest_checksum
from precompute.cli import main
from tests.fake_experiment import write_fake_experiment
from tests.test_user_image import encode, noise, palette, png_claiming_size, rgba_on_white, sixteen_bit, truncated

UPLOAD = "app: Lab upload"


@dataclass(frozen=True)
class World:
    """Inputs shared by every row: a cache root holding one experiment, a good ImageFolder, good arrays."""

    cache: Path  # cache root with one (fake, valid) experiment
    experiment: Path
    good: Path  # ImageFolder: cat/ and dog/, two 32x32 PNGs each
    a: Path  # (20, 12) maps, rows paired with b
    b: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    base = tmp_path_factory.mktemp("world")
    cache = base / "cache"
    experiment = Path(write_fake_experiment(str(cache)))
    good = base / "good"
    for k, cls in enumerate(("cat", "dog")):
        (good / cls).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (32, 32), (40 * k, 60 * i, 90)).save(good / cls / f"{i}.png")
    rng = np.random.default_rng(0)
    a = rng.uniform(size=(20, 12))
    np.save(base / "a.npy", a)
    np.save(base / "b.npy", a + 0.1 * rng.normal(size=a.shape))
    return World(cache, experiment, good, base / "a.npy", base / "b.npy")


# ---------- builders of bad inputs ----------
def png() -> bytes:
    return encode(noise("RGB", 128, 128))


def jpeg() -> bytes:
    return encode(noise("RGB", 128, 128), "JPEG")


BAD_FILES: dict[str, Callable[[], bytes]] = {
    "not-an-image": lambda: b"this is not an image",
    "empty-file": lambda: b"",
    "truncated-png": lambda: truncated(png(), 0.5),
    "truncated-jpeg": lambda: truncated(jpeg(), 0.6),
    "bomb-10000x10000": lambda: png_claiming_size(10000, 10000),  # 100 MP: Pillow only warns
    "bomb-20000x20000": lambda: png_claiming_size(20000, 20000),  # 400 MP: Pillow raises
}


def folder_with(tmp_path: Path, world: World, case: str, name: str = "bad") -> str:
    """A copy of the good ImageFolder with one bad file in cat/ (sorted first, so --limit 2 reads it)."""
    root = tmp_path / f"folder-{name}"
    shutil.copytree(world.good, root)
    ext = ".jpg" if "jpeg" in case else ".png"
    (root / "cat" / f"0-bad{ext}").write_bytes(BAD_FILES[case]())
    return str(root)


def run_args(world: World, *extra: str) -> list[str]:
    """A tiny run (if it ever started) into the shared cache root; later options override earlier ones."""
    return ["run", "--data", str(world.good), "--limit", "2", "--attacks", "pgd", "--eps", "8", "--min-steps", "1",
            "--max-steps", "2", "--train-data", "none", "--permutations", "2", "--repairings", "0", "--device", "cpu",
            "--quiet", "--out", str(world.cache), *extra]  # fmt: skip


def train_args(tmp_path: Path, world: World, *extra: str) -> list[str]:
    return ["train-model", "--data", str(world.good), "--epochs", "1", "--batch-size", "2", "--device", "cpu",
            "--out", str(tmp_path / "model.pt"), *extra]  # fmt: skip


def save(tmp_path: Path, name: str, array: np.ndarray) -> str:
    np.save(tmp_path / name, array)
    return str(tmp_path / name)


def raw(tmp_path: Path, name: str, data: bytes) -> str:
    (tmp_path / name).write_bytes(data)
    return str(tmp_path / name)


class CreatesAFile:
    """Unpickling this calls open(marker, 'w'): code that must never run when a checkpoint is read."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def evil_checkpoint(tmp_path: Path) -> str:
    from core.models.resnet20 import ResNet20

    path = tmp_path / "evil.pt"
    torch.save({"state_dict": ResNet20(10).state_dict(), "extra": CreatesAFile(str(tmp_path.parent / "pwned"))}, path)
    return str(path)


def resnet20_state(tmp_path: Path, name: str, nan: bool = False) -> str:
    from core.models.resnet20 import ResNet20

    state = ResNet20(10).state_dict()
    if nan:
        state["linear.weight"][0, 0] = float("nan")
    torch.save(state, tmp_path / name)
    return str(tmp_path / name)


def checkpoint_named(tmp_path: Path, model: str) -> str:
    """The project's layout, recording another model's name."""
    from core.models.checkpoints import save_checkpoint
    from core.models.resnet20 import ResNet20

    save_checkpoint(str(tmp_path / "other.pt"), ResNet20(10), model, "none", {})
    return str(tmp_path / "other.pt")


def truncated_checkpoint(tmp_path: Path) -> str:
    path = resnet20_state(tmp_path, "truncated.pt")
    Path(path).write_bytes(Path(path).read_bytes()[:5000])
    return path


def copied_experiment(tmp_path: Path, world: World, edit: Callable[[dict], None], recompute: bool = True) -> str:
    """A copy of the experiment (in its own cache root under tmp_path) with an edited manifest."""
    exp = tmp_path / "cache" / world.experiment.name
    shutil.copytree(world.experiment, exp)
    manifest = json.loads((exp / "manifest.json").read_text())
    edit(manifest)
    if recompute:  # a crafted manifest: its own checksum made to match
        manifest["manifest_sha256"] = manifest_checksum(manifest)
    (exp / "manifest.json").write_text(json.dumps(manifest))
    return str(exp)


def escaping_entry(manifest: dict) -> None:
    """List a file outside the experiment under a name the 'maps' prune pattern matches."""
    info = dict(manifest["arrays"]["maps/essential/maps.npy"])
    manifest["arrays"]["maps/../../../victim/maps.npy"] = info


def hand_edit(manifest: dict) -> None:
    manifest["config"]["lam"] = 9.0



# (entry point, case, builder(tmp_path, world) -> argv list or upload bytes, message fragment)
BAD_INPUTS = [
    # --- data folders: precompute run --data / --train-data, train-model --data / --test-data ---
    *[
        pytest.param("run --data", case, lambda t, w, case=case: run_args(w, "--data", folder_with(t, w, case)), fragment,
                     id=f"run-data-{case}")
        for case, fragment in [
            ("not-an-image", "cat/0-bad.png': not an image Pillow can read"),
            ("empty-file", r"got an empty file \(0 bytes\)"),
            ("truncated-png", "truncated or corrupt PNG data"),
            ("truncated-jpeg", "truncated or corrupt JPEG data"),
            ("bomb-10000x10000", "image too large: 100 megapixels"),
        ]
    ],
    *[
        pytest.param("run --train-data", case,
                     lambda t, w, case=case: run_args(w, "--train-data", folder_with(t, w, case)), fragment,
                     id=f"run-train-data-{case}")
        for case, fragment in [
            ("truncated-jpeg", "--train-data .*truncated or corrupt JPEG data"),
            ("bomb-20000x20000", "--train-data .*image too large: 400 megapixels"),
        ]
    ],
    *[
        pytest.param(f"train-model {option}", case,
                     lambda t, w, case=case, option=option: train_args(t, w, option, folder_with(t, w, case)), fragment,
                     id=f"train-model{option[1:]}-{case}")
        for option, case, fragment in [
            ("--data", "not-an-image", "expected only readable images in the data folder"),
            ("--data", "truncated-png", "truncated or corrupt PNG data"),
            ("--test-data", "empty-file", "got an empty file"),
            ("--test-data", "bomb-10000x10000", "image too large"),
        ]
    ],
    pytest.param("run --data", "no class folders",
                 lambda t, w: run_args(w, "--data", str(w.good / "cat")), "expected class sub-folders",
                 id="run-data-images-without-class-folders"),
    # --- checkpoints: run --checkpoint, train-model --backbone-weights ---
    pytest.param("run --checkpoint", "pickled code", lambda t, w: run_args(w, "--checkpoint", evil_checkpoint(t)),
                 r"carries pickled Python objects \((io|builtins)\.open\).*weights_only=True", id="run-checkpoint-pickled-code"),
    pytest.param("run --checkpoint", "another model (project layout)",
                 lambda t, w: run_args(w, "--checkpoint", checkpoint_named(t, "resnet18")),
                 "is for model 'resnet18', not 'resnet20'", id="run-checkpoint-for-resnet18"),
    pytest.param("run --checkpoint", "NaN weights",
                 lambda t, w: run_args(w, "--checkpoint", resnet20_state(t, "nan.pt", nan=True)),
                 "expected finite weights .* 1 NaN/inf entries in linear.weight", id="run-checkpoint-nan-weights"),
    pytest.param("run --checkpoint", "empty file", lambda t, w: run_args(w, "--checkpoint", raw(t, "e.pt", b"")),
                 "expected a PyTorch checkpoint written by torch.save .* empty file", id="run-checkpoint-empty"),
    pytest.param("run --checkpoint", "not a checkpoint (.npy)",
                 lambda t, w: run_args(w, "--checkpoint", save(t, "maps.npy", np.zeros(3))),
                 "another kind of file", id="run-checkpoint-is-npy"),
    pytest.param("run --checkpoint", "truncated", lambda t, w: run_args(w, "--checkpoint", truncated_checkpoint(t)),
                 r"could not read checkpoint .* \(truncated or damaged\?\)", id="run-checkpoint-truncated"),
    pytest.param("run --checkpoint", "a directory", lambda t, w: run_args(w, "--checkpoint", str(t)),
                 r"expected --checkpoint to be a file, .* \(a directory\)", id="run-checkpoint-directory"),
    pytest.param("train-model --backbone-weights", "pickled code",
                 lambda t, w: train_args(t, w, "--model", "resnet18", "--backbone-weights", evil_checkpoint(t)),
                 "weights_only=True", id="train-model-backbone-pickled-code"),
    pytest.param("train-model --backbone-weights", "another model",
                 lambda t, w: train_args(t, w, "--model", "resnet18", "--backbone-weights", resnet20_state(t, "r20.pt")),
                 "does not fit the ResNet model", id="train-model-backbone-resnet20-weights"),
    pytest.param("train-model --init", "pickled code", lambda t, w: train_args(t, w, "--init", evil_checkpoint(t)),
                 "weights_only=True", id="train-model-init-pickled-code"),
    pytest.param("train-model --init", "another model",
                 lambda t, w: train_args(t, w, "--init", checkpoint_named(t, "resnet18")),
                 "is for model 'resnet18', not 'resnet20'", id="train-model-init-for-resnet18"),
    pytest.param("train-model --init", "with backbone weights",
                 lambda t, w: train_args(t, w, "--model", "resnet18", "--init", checkpoint_named(t, "resnet18"),
                                         "--backbone-weights", resnet20_state(t, "r20.pt")),
                 "either --init .* or --backbone-weights, not both", id="train-model-init-and-backbone"),
    # --- correlate input arrays ---
    pytest.param("correlate", "empty file", lambda t, w: ["correlate", str(w.a), raw(t, "e.npy", b"")],
                 r"\(an empty file, 0 bytes\)", id="correlate-empty-file"),
    pytest.param("correlate", "zero features",
                 lambda t, w: ["correlate", save(t, "a0.npy", np.zeros((20, 0))), save(t, "b0.npy", np.zeros((20, 0)))],
                 r"at least one feature per row, got shape \(20, 0\)", id="correlate-zero-features"),
    pytest.param("correlate", "zero rows",
                 lambda t, w: ["correlate", save(t, "a0.npy", np.zeros((0, 12))), save(t, "b0.npy", np.zeros((0, 12)))],
                 "at least 3 paired rows, got 0", id="correlate-zero-rows"),
    pytest.param("correlate", "-inf in (N, C, H, W) maps",
                 lambda t, w: ["correlate", save(t, "a.npy", np.where(np.eye(4)[None, None] > 0, -np.inf, 1.0) * np.ones((5, 3, 4, 4))),
                               save(t, "b.npy", np.ones((5, 3, 4, 4)))],
                 "finite values in a, got 60 NaN/inf", id="correlate-inf-in-a"),
    pytest.param("correlate", "unpaired sets (another number of rows)",
                 lambda t, w: ["correlate", save(t, "a.npy", np.ones((5, 3, 4, 4))), save(t, "b.npy", np.ones((6, 3, 8, 8)))],
                 r"same number of paired rows, got 5 \(a\) and 6 \(b\)", id="correlate-unpaired-rows"),
    pytest.param("correlate", "constant features (all rows identical)",
                 lambda t, w: ["correlate", save(t, "c.npy", np.full((20, 12), 0.5)), str(w.b)],
                 "all 20 rows of a identical", id="correlate-constant-rows"),
    pytest.param("correlate", "duplicate rows (nearest-neighbour distance 0 everywhere)",
                 lambda t, w: ["correlate", save(t, "d.npy", np.repeat(np.load(w.a)[:10], 2, axis=0)), str(w.b)],
                 r"distinct nearest neighbours .* 20 of 20 rows of a duplicated \(10 distinct\)", id="correlate-duplicate-rows"),
    # --- CLI options: precompute run ---
    *[
        pytest.param("run options", " ".join(extra), lambda t, w, extra=extra: run_args(w, *extra), fragment,
                     id="run-" + "-".join(e.strip("-") or "empty" for e in extra))
        for extra, fragment in [
            (("--lam", "nan"), r"expected --lam >= 0 \(a finite number\), got nan"),
            (("--lr", "inf"), "expected --lr > 0"),
            (("--tol", "nan"), "expected --tol >= 0"),
            (("--class-lam", "-1"), "expected --class-lam >= 0"),
            (("--image-size", "0"), "expected --image-size >= 1, got 0"),
            (("--model", "vit_b_16", "--image-size", "8"), "expected --image-size 224 for vit_b_16"),
            (("--repairings", "-1"), "expected --repairings >= 0"),
            (("--train-limit", "0"), "expected --train-limit >= 1"),
            (("--class-batch-size", "0"), "expected --class-batch-size >= 1"),
            (("--attack-steps", "0"), "expected --attack-steps >= 1"),
            (("--bf16", "--bf16-float32-steps", "-1"), r"expected --bf16-float32-steps >= 0 \(0: every step in bf16\), got -1"),
            (("--bf16-float32-steps", "100"), "expected --bf16 with --bf16-float32-steps"),
            (("--class-min-steps", "5", "--class-max-steps", "2"), "--class-min-steps <= --class-max-steps, got 5 and 2"),
            (("--data", "samples", "--split", "train"), r"expected --split in \['test'\] for samples"),
            (("--data", ""), "expected --data .* got an empty string"),
            (("--out", ""), "expected --out to be a cache root directory, got an empty string"),
            (("--data", "cifar10", "--data-root", "/nonexistent"), "--data cifar10: CIFAR-10 not found under '/nonexistent'"),
            (("--batch-size", "many"), "argument --batch-size: invalid batch size"),
            (("--fold-batchnorm", "maybe"), "argument --fold-batchnorm: invalid on or off value: 'maybe'"),
            (("--adaptive-attacks", "pgd+bpda"), "expected --train-data with --adaptive-attacks .* got --train-data none"),
            (("--robustness-curve",), "expected --train-data with --robustness-curve"),
            (("--adaptive-attacks", "pgd+nothing"), "expected --adaptive-attacks from .* got 'pgd\\+nothing'"),
            (("--adaptive-attacks", "pgd+bpda", "--eps", "300"), r"expected --eps in \(0, 255\] \(units of 1/255\), got 300"),
            (("--adaptive-attacks", "pgd+bpda", "--eps", "0"), r"expected --eps in \(0, 255\]"),
            (("--adaptive-steps", "0"), "expected --adaptive-steps >= 1"),
            (("--adaptive-restarts", "0"), "expected --adaptive-restarts >= 1"),
        ]
    ],
    # --- CLI options: precompute train-model ---
    *[
        pytest.param("train-model options", " ".join(extra), lambda t, w, extra=extra: train_args(t, w, *extra), fragment,
                     id="train-model-" + "-".join(e.strip("-") for e in extra))
        for extra, fragment in [
            (("--lr", "nan"), "expected --lr > 0"),
            (("--epochs", "0"), "expected --epochs >= 1"),
            (("--label-smoothing", "2"), r"expected --label-smoothing in \[0, 1\)"),
            (("--threads", "0"), "expected --threads >= 1"),
            (("--milestones", "0"), "expected --milestones to be epochs >= 1"),
            (("--crop-padding", "-1"), "expected --crop-padding >= 0"),
            (("--average-from", "9"), "expected --average-from between 0 .off. and --epochs=1, got 9"),
            (("--backbone-weights", "imagenet"), "expected --backbone-weights none for resnet20"),
            (("--data", "samples"), "expected --data to be an ImageFolder directory"),
        ]
    ],
    pytest.param("train-model options", "--out a directory", lambda t, w: train_args(t, w, "--out", str(t)),
                 "expected --out to be a checkpoint file path, got the directory", id="train-model-out-directory"),
    # --- outputs where nothing can be written, not even by root (os.access says root may write in /proc) ---
    pytest.param("run --out", "unwritable", lambda t, w: run_args(w, "--out", "/proc/fmaps-cache"),
                 "expected a writable directory for --out, got '/proc/fmaps-cache'", id="run-out-unwritable"),
    pytest.param("train-model --out", "unwritable", lambda t, w: train_args(t, w, "--out", "/proc/model.pt"),
                 "expected a writable directory for --out, got '/proc'", id="train-model-out-unwritable"),
    pytest.param("train-model --out", "missing folder", lambda t, w: train_args(t, w, "--out", str(t / "no" / "m.pt")),
                 "expected --out in an existing directory", id="train-model-out-missing-folder"),
    pytest.param("export --out", "unwritable", lambda t, w: ["export", str(w.experiment), "--out", "/proc/pairs.npz"],
                 "expected a writable directory for --out, got '/proc'", id="export-out-unwritable"),
    # --- cache directories and paths that try to leave them ---
    pytest.param("run --out", "an experiment directory", lambda t, w: run_args(w, "--out", str(w.experiment)),
                 "expected --out to be a cache root .* got the experiment directory", id="run-out-is-an-experiment"),
    pytest.param("run --out", "inside an experiment", lambda t, w: run_args(w, "--out", str(w.experiment / "maps")),
                 "got a folder inside the experiment", id="run-out-inside-an-experiment"),
    pytest.param("report DIR", "manifest path leaving the experiment",
                 lambda t, w: ["report", copied_experiment(t, w, escaping_entry)],
                 "damaged: expected a relative path inside the experiment .* 'maps/../../../victim/maps.npy'",
                 id="report-manifest-path-escapes"),
    pytest.param("export DIR", "manifest path leaving the experiment",
                 lambda t, w: ["export", copied_experiment(t, w, escaping_entry), "--out", str(t / "pairs.npz")],
                 "expected a relative path inside the experiment", id="export-manifest-path-escapes"),
    pytest.param("prune DIR", "manifest path leaving the experiment",
                 lambda t, w: ["prune", copied_experiment(t, w, escaping_entry), "--drop", "maps"],
                 "expected a relative path inside the experiment", id="prune-manifest-path-escapes"),
    pytest.param("report DIR", "manifest edited by hand",
                 lambda t, w: ["report", copied_experiment(t, w, hand_edit, recompute=False)],
                 "manifest was edited by hand", id="report-manifest-edited"),
    pytest.param("report DIR", "not an experiment", lambda t, w: ["report", str(w.cache)],
                 "no manifest.json; not an experiment directory", id="report-cache-root-not-experiment"),
    pytest.param("export --out", "the experiment's own manifest",
                 lambda t, w: ["export", copied_experiment(t, w, lambda m: None), "--out",
                               str(t / "cache" / w.experiment.name / "manifest.json")],
                 "inside the experiment", id="export-out-into-the-experiment"),
    pytest.param("export --eps", "nan", lambda t, w: ["export", str(w.experiment), "--out", str(t / "x.npz"), "--attack", "pgd",
                                                      "--eps", "nan"],
                 "in 1/255 units", id="export-eps-nan"),
    pytest.param("export --out", "a directory",
                 lambda t, w: ["export", str(w.experiment), "--out", str(t)], "Is a directory",
                 id="export-out-is-a-directory"),
    # --- uploaded files (the Lab page) ---
    *[
        pytest.param(UPLOAD, case, lambda t, w, case=case: BAD_FILES[case](), fragment, id=f"upload-{case}")
        for case, fragment in [
            ("empty-file", r"got an empty file \(0 bytes\)"),
            ("truncated-png", "truncated or corrupt PNG data"),
            ("truncated-jpeg", "truncated or corrupt JPEG data"),
            ("bomb-10000x10000", "image too large: 100 megapixels"),
            ("bomb-20000x20000", "image too large: 400 megapixels"),
        ]
    ],
]  # fmt: skip


def snapshot(path: Path) -> dict[str, str]:
    """sha256 of every file under path (the manifest included; the writer lock file is not data)."""
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


@pytest.fixture(scope="module")
def lab(world: World):
    """The app on the Lab page, 'my own image' chosen, reading only the shared cache root."""
    from streamlit.testing.v1 import AppTest

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FMAPS_CACHE", str(world.cache))
        patch.setenv("FMAPS_ONLY", "1")
        at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=600).run()
        at.switch_page("pages/lab.py").run()
        at.radio(key="lab_source").set_value("my own image (PNG or JPEG)").run()
        assert not at.exception, [e.value for e in at.exception]
        yield at


def upload(lab, name: str, data: bytes) -> tuple[list[str], list[str]]:
    """Upload `data` on the Lab page; the page's error messages and captions."""
    lab.file_uploader(key="lab_upload").set_value((name, data, "image/png")).run()
    assert not lab.exception, [e.value for e in lab.exception]
    return [e.value for e in lab.error], [c.value for c in lab.caption]


@pytest.mark.parametrize(("entry", "case", "build", "message"), BAD_INPUTS)
def test_bad_input_is_refused_with_one_clear_line(entry, case, build, message, world, tmp_path, capsys, request):
    made = build(tmp_path, world)
    cache_before, tmp_before = snapshot(world.cache), snapshot(tmp_path)
    if entry == UPLOAD:
        lab = request.getfixturevalue("lab")
        errors, _ = upload(lab, f"{case}.png", made)
        assert len(errors) == 1 and errors[0].startswith(f"Could not use {case}.png: "), errors
        assert re.search(message, errors[0]), errors[0]
    else:
        code = main(made)
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2, err
        assert len(lines) == 1 and lines[0].startswith("error: "), err
        assert "Traceback" not in err
        assert re.search(message, lines[0]), lines[0]
        assert snapshot(tmp_path) == tmp_before  # nothing half-written: no experiment, checkpoint or export
    assert snapshot(world.cache) == cache_before  # the existing experiment: same files, same bytes, same manifest
    assert not (tmp_path.parent / "pwned").exists()  # no pickled code ran


def pillow_rgb(data: bytes) -> np.ndarray:
    """Pillow's own RGB conversion (3, H, W): the reference for images without alpha or 16-bit data."""
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB")).transpose(2, 0, 1)


def uniform(rgb: tuple[int, int, int]) -> Callable[[np.ndarray], bool]:
    return lambda x: bool((x == np.array(rgb, np.uint8)[:, None, None]).all())


def left_right(left: tuple[int, int, int], right: tuple[int, int, int]) -> Callable[[np.ndarray], bool]:
    return lambda x: uniform(left)(x[:, :, :16]) and uniform(right)(x[:, :, 16:])


VALID_ODD_IMAGES = [
    pytest.param(sixteen_bit, left_right((255, 255, 255), (128, 128, 128)), id="16-bit-scaled-not-clipped"),
    pytest.param(lambda: encode(Image.new("L", (32, 32), 77)), uniform((77, 77, 77)), id="grayscale"),
    pytest.param(palette, lambda x: np.array_equal(x, pillow_rgb(palette())), id="palette"),
    pytest.param(rgba_on_white, left_right((255, 0, 0), (255, 255, 255)), id="rgba-composited-on-white"),
    pytest.param(lambda: encode(Image.new("RGB", (1, 1), (0, 128, 255))), uniform((0, 128, 255)), id="1x1-resized"),
]  # fmt: skip


@pytest.mark.parametrize(("make", "check"), VALID_ODD_IMAGES)
def test_valid_odd_images_load_from_folders_and_uploads(make, check, tmp_path, world, request):
    """Not refused: a data folder decodes them to the right 32x32 RGB pixels, and the Lab takes them."""
    from core.data.datasets import check_source, load_dataset

    root = tmp_path / "folder"
    shutil.copytree(world.good, root)
    (root / "cat" / "0-odd.png").write_bytes(make())
    check_source(str(root))  # what `precompute run` does before any work: no error
    images = load_dataset(str(root), size=32)
    assert images.ids[0] == "cat/0-odd.png" and images.images.shape == (5, 3, 32, 32)
    assert check(images.images[0].numpy())
    errors, captions = upload(request.getfixturevalue("lab"), "odd.png", make())
    assert errors == []
    assert any("image is resized to 32×32" in c for c in captions), captions
