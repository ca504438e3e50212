"""`python -m precompute fetch-data DIR`: the shared data the full test suite reads, from their published sources.

    python -m precompute fetch-data ~/fmaps-shared --limit 1000    # the layout the tests use
    FMAPS_SHARED=~/fmaps-shared python -m pytest

Writes, in the layout of the shared data folder (`tests/conftest.py`):
- DIR/data/cifar10/test-<N>/<class>/<index 5 digits>.png: CIFAR-10's first N test images (N = --limit,
  default all 10 000), downloaded through torchvision (`CIFAR10(root, train=False, download=True)`);
- DIR/data/cifar10/train-<M>/...: its first M training images (--train-limit, default 4000; 0: none);
- DIR/models/resnet20-akamaster.th: the third-party ResNet-20 of the pytorch_resnet_cifar10 release.

Every file is checked before anything is put in place: torchvision checks the archive's md5; the
pixels and labels of the first 1000 test and 4000 train images against a sha256 of the shared
copies (PNG is lossless, so every written file is read back and must equal its decoded image);
the checkpoint's bytes against the release's sha256. A failed check is a one-line error and leaves
nothing behind (the work happens in a temporary folder inside DIR). --url-base points both
downloads at a mirror: a URL or a local folder holding cifar-10-python.tar.gz and resnet20-12fca82f.th.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from precompute.writable import check_writable_dir

if TYPE_CHECKING:
    from torchvision.datasets import CIFAR10

CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/" + CIFAR10_ARCHIVE  # torchvision's CIFAR10.url
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"  # torchvision's CIFAR10.tgz_md5
CHECKPOINT_FILE = "resnet20-12fca82f.th"
CHECKPOINT_URL = "https://github.com/akamaster/pytorch_resnet_cifar10/raw/master/pretrained_models/" + CHECKPOINT_FILE
CHECKPOINT_SHA256 = "12fca82f0bebc4135bf1f32f6e3710e61d5108578464b84fd6d7f5c1b04036c8"  # 1 099 231 bytes
CHECKPOINT_NAME = "resnet20-akamaster.th"
# split -> (images checked, sha256 of `pixel_digest` over them): ../shared's test-1000 and train-4000
EXPECTED_PIXELS = {
    "test": (1000, "75c10806c8d2c7f887e77d1de6721dc7e26fb4faa3cbdadd43f4841eb50c0a8d"),
    "train": (4000, "ece558b68384db449cf3bfc1d96efd8a4846f3b21847be8272b7f9676580c84b"),
}
SPLIT_SIZES = {"test": 10_000, "train": 50_000}


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="download CIFAR-10 images and the third-party ResNet-20 the tests use")
    p.add_argument("dir", help="folder to fill (then FMAPS_SHARED=DIR python -m pytest)")
    p.add_argument("--limit", type=int, default=SPLIT_SIZES["test"], help="first N test images (1000: the tests' test-1000)")
    p.add_argument("--train-limit", type=int, default=4000, help="first M training images (0: none)")
    p.add_argument("--url-base", default=None,
                   help=f"a mirror: URL or local folder with {CIFAR10_ARCHIVE} and {CHECKPOINT_FILE} "
                        "(default: their published sources)")
    p.add_argument("--archive-md5", default=CIFAR10_MD5,
                   help="md5 of the CIFAR-10 archive torchvision checks (another one for a mirror's own archive; "
                        "the image hashes are still checked)")


def pixel_digest(images: np.ndarray, labels: Iterable[int]) -> str:
    """sha256 over the images in order, each its label as one byte then its pixels. images: uint8 (N, 32, 32, 3)."""
    digest = hashlib.sha256()
    for image, label in zip(images, labels, strict=True):
        digest.update(bytes([int(label)]))
        digest.update(np.ascontiguousarray(image, dtype=np.uint8).tobytes())
    return digest.hexdigest()


def _check_args(args: argparse.Namespace) -> None:
    if not 1 <= args.limit <= SPLIT_SIZES["test"]:
        raise ValueError(f"expected --limit between 1 and {SPLIT_SIZES['test']}, got {args.limit}")
    if not 0 <= args.train_limit <= SPLIT_SIZES["train"]:
        raise ValueError(f"expected --train-limit between 0 (none) and {SPLIT_SIZES['train']}, got {args.train_limit}")
    if os.path.exists(args.dir) and not os.path.isdir(args.dir):
        raise ValueError(f"expected DIR to be a folder, got the file {args.dir!r}")
    if len(args.archive_md5) != 32 or any(c not in "0123456789abcdef" for c in args.archive_md5.lower()):
        raise ValueError(f"expected --archive-md5 to be 32 hex digits, got {args.archive_md5!r}")


def _is_local(base: str | None) -> bool:
    return base is not None and "://" not in base


def _source(base: str | None, file: str, default: str) -> str:
    """Where `file` comes from: the published URL, or `file` under the mirror (URL or local folder)."""
    if base is None:
        return default
    return os.path.join(base, file) if _is_local(base) else f"{base.rstrip('/')}/{file}"


def _cifar10(root: str, train: bool, base: str | None, md5: str) -> CIFAR10:
    """torchvision's CIFAR10 under root, downloaded (or copied from a local mirror) and md5-checked on the way."""
    from torchvision.datasets import CIFAR10

    attributes: dict = {"url": _source(base, CIFAR10_ARCHIVE, CIFAR10_URL), "tgz_md5": md5}
    if md5 != CIFAR10_MD5:  # a mirror's own archive: its md5 vouches for it; the published files' md5s do not apply
        attributes["train_list"] = [[name, None] for name, _ in CIFAR10.train_list]
        attributes["test_list"] = [[name, None] for name, _ in CIFAR10.test_list]
        attributes["meta"] = {**CIFAR10.meta, "md5": None}
    source = type("CIFAR10FromSource", (CIFAR10,), attributes)
    archive = os.path.join(root, CIFAR10_ARCHIVE)
    if _is_local(base) and not os.path.isfile(archive):
        if not os.path.isfile(attributes["url"]):
            raise ValueError(f"expected {CIFAR10_ARCHIVE} in the local --url-base {base!r}, got no such file")
        os.makedirs(root, exist_ok=True)
        shutil.copyfile(attributes["url"], archive)  # torchvision then checks its md5 and extracts it
    try:
        return source(root, train=train, download=True)
    except (RuntimeError, OSError, urllib.error.URLError) as err:
        reason = " ".join(str(err).split()) or type(err).__name__
        raise ValueError(f"could not get CIFAR-10 from {attributes['url']} (md5 {md5}): {reason}") from None


def _write_split(data: CIFAR10, split: str, count: int, folder: str) -> None:
    """The first `count` images of a torchvision CIFAR10 as PNGs folder/<class>/<index>.png, checked twice:
    the decoded images against EXPECTED_PIXELS, every written file read back against its image."""
    images, labels = data.data, list(data.targets)  # (N, 32, 32, 3) uint8, N labels
    checked, expected = EXPECTED_PIXELS[split]
    if len(labels) < max(count, checked):
        raise ValueError(f"expected at least {max(count, checked)} CIFAR-10 {split} images in the archive, got {len(labels)}")
    got = pixel_digest(images[:checked], labels[:checked])
    if got != expected:
        raise ValueError(f"expected CIFAR-10 {split} images 0-{checked - 1} with sha256 {expected}, got {got}")
    for name in data.classes:
        os.makedirs(os.path.join(folder, name))
    for index in range(count):
        path = os.path.join(folder, data.classes[labels[index]], f"{index:05d}.png")
        Image.fromarray(images[index]).save(path)
        with Image.open(path) as written:
            if not np.array_equal(np.asarray(written.convert("RGB")), images[index]):
                raise ValueError(f"expected {path!r} to read back as CIFAR-10 {split} image {index}, got other pixels")


def _fetch_checkpoint(base: str | None, path: str) -> None:
    """The third-party ResNet-20 at `path`, its bytes checked against CHECKPOINT_SHA256."""
    source = _source(base, CHECKPOINT_FILE, CHECKPOINT_URL)
    try:
        if _is_local(base):
            shutil.copyfile(source, path)
        else:
            with urllib.request.urlopen(source, timeout=60) as response, open(path, "wb") as out:
                shutil.copyfileobj(response, out)
    except (OSError, urllib.error.URLError) as err:
        reason = " ".join(str(getattr(err, "reason", err)).split()) or type(err).__name__
        raise ValueError(f"could not get the ResNet-20 checkpoint from {source}: {reason}") from None
    with open(path, "rb") as fh:
        got = hashlib.file_digest(fh, "sha256").hexdigest()
    if got != CHECKPOINT_SHA256:
        raise ValueError(f"expected {source} with sha256 {CHECKPOINT_SHA256}, got {got}")


def run(args: argparse.Namespace) -> int:
    _check_args(args)
    created = not os.path.exists(args.dir)
    os.makedirs(args.dir, exist_ok=True)
    check_writable_dir(args.dir)
    targets = {  # final path -> what to put there (done in the work folder first)
        os.path.join(args.dir, "data", "cifar10", f"test-{args.limit}"): ("test", args.limit),
        **({os.path.join(args.dir, "data", "cifar10", f"train-{args.train_limit}"): ("train", args.train_limit)}
           if args.train_limit else {}),
        os.path.join(args.dir, "models", CHECKPOINT_NAME): ("checkpoint", 0),
    }
    present = [path for path in targets if os.path.exists(path)]
    for path in present:
        print(f"{path} is there already: kept (delete it to fetch it again)")
    todo = {path: what for path, what in targets.items() if path not in present}
    if not todo:
        return 0
    work = tempfile.mkdtemp(prefix=".fetch-data-", dir=args.dir)
    try:
        staged = {}
        for path, (what, count) in todo.items():
            staged[path] = os.path.join(work, os.path.basename(path))
            if what == "checkpoint":
                _fetch_checkpoint(args.url_base, staged[path])
            else:
                data = _cifar10(os.path.join(work, "torchvision"), what == "train", args.url_base, args.archive_md5)
                _write_split(data, what, count, staged[path])
        for path, source in staged.items():  # everything checked: move into place
            os.makedirs(os.path.dirname(path), exist_ok=True)
            os.replace(source, path)
            print(f"wrote {path}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if created and not os.listdir(args.dir):  # a failed fetch leaves no trace, not even the folder it made
            os.rmdir(args.dir)
    print(f"FMAPS_SHARED={args.dir} python -m pytest  # runs the tests that need these files")
    return 0
