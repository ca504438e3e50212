"""`python -m precompute fetch-data`: offline, against a local HTTP server (or folder) that serves a small
CIFAR-10 archive in torchvision's format (Foolbox's 20 bundled test images, a few made-up training
images) and a stand-in checkpoint; wrong hashes are refused in one line and leave nothing behind."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import pickle
import re
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import precompute.fetch_data_cmd as fetch
from core.data.datasets import CIFAR10_CLASSES, load_dataset
from precompute.cli import main
from tests.conftest import AKAMASTER, CIFAR_TEST, CIFAR_TRAIN, cifar_sample_pngs, needs_shared

N_TRAIN = 15  # made-up training images, 3 per batch file


def sample_images() -> tuple[np.ndarray, list[int]]:
    """Foolbox's 20 PNGs read with PIL: (20, 32, 32, 3) uint8 in canonical order and their labels."""
    files = cifar_sample_pngs()
    images = np.stack([np.asarray(Image.open(files[i][0]).convert("RGB")) for i in range(20)])
    return images, [files[i][1] for i in range(20)]


def train_images() -> tuple[np.ndarray, list[int]]:
    """Training images unlike the test ones (the samples turned by 90 degrees), labels counting down."""
    images, _ = sample_images()
    return np.ascontiguousarray(np.rot90(images[:N_TRAIN], axes=(1, 2))), [9 - i % 10 for i in range(N_TRAIN)]


def sha256_of(images: np.ndarray, labels: list[int]) -> str:
    """Reference for fetch-data's image hash, written out: per image its label byte, then its HWC pixels."""
    digest = hashlib.sha256()
    for k in range(len(labels)):
        digest.update(bytes([labels[k]]) + images[k].astype(np.uint8).tobytes())
    return digest.hexdigest()


def cifar_archive() -> bytes:
    """cifar-10-python.tar.gz as torchvision reads it: pickled dicts of (n, 3072) CHW rows and labels."""
    def batch(images: np.ndarray, labels: list[int]) -> bytes:
        rows = images.transpose(0, 3, 1, 2).reshape(len(images), 3072)  # (n, 32, 32, 3) -> (n, 3 * 32 * 32)
        return pickle.dumps({"data": rows, "labels": labels})

    test, test_labels = sample_images()
    train, train_labels = train_images()
    members = {"batches.meta": pickle.dumps({"label_names": list(CIFAR10_CLASSES)}), "test_batch": batch(test, test_labels)}
    for k in range(5):
        members[f"data_batch_{k + 1}"] = batch(train[3 * k : 3 * k + 3], train_labels[3 * k : 3 * k + 3])
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the small archive and a stand-in checkpoint under the published file names."""
    folder = tmp_path_factory.mktemp("mirror")
    (folder / fetch.CIFAR10_ARCHIVE).write_bytes(cifar_archive())
    torch.save({"state_dict": {"linear.bias": torch.arange(10.0)}, "best_prec1": 1.0}, folder / fetch.CHECKPOINT_FILE)
    return folder


@pytest.fixture(scope="module")
def server(mirror: Path) -> Iterator[str]:
    """http://127.0.0.1:<free port> serving the mirror folder from a thread."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    class QuietServer(http.server.ThreadingHTTPServer):
        def handle_error(self, request: object, client_address: object) -> None:
            pass  # torchvision's redirect probe hangs up early: a broken pipe here, not an error of the test

    httpd = QuietServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(mirror)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    thread.join()


@pytest.fixture
def mirror_hashes(mirror: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """fetch-data expects the mirror's content (its published hashes are for the real files); returns the md5."""
    test, test_labels = sample_images()
    train, train_labels = train_images()
    monkeypatch.setattr(fetch, "EXPECTED_PIXELS", {"test": (20, sha256_of(test, test_labels)),
                                                   "train": (N_TRAIN, sha256_of(train, train_labels))})
    monkeypatch.setattr(fetch, "CHECKPOINT_SHA256", hashlib.sha256((mirror / fetch.CHECKPOINT_FILE).read_bytes()).hexdigest())
    return hashlib.md5((mirror / fetch.CIFAR10_ARCHIVE).read_bytes()).hexdigest()


def error_lines(stderr: str) -> list[str]:
    """The CLI's error lines (stderr also carries torchvision's download progress bar)."""
    return [line for line in stderr.replace("\r", "\n").splitlines() if line.startswith("error:")]


def fetch_args(out: Path, base: str, md5: str, *extra: str) -> list[str]:
    return ["fetch-data", str(out), "--limit", "20", "--train-limit", "12", "--url-base", base, "--archive-md5", md5, *extra]


@pytest.mark.parametrize("where", ["http", "local-folder"])
def test_fetch_writes_the_shared_layout(where, server, mirror, mirror_hashes, tmp_path, capsys):
    out = tmp_path / "shared"
    assert main(fetch_args(out, server if where == "http" else str(mirror), mirror_hashes)) == 0
    assert sorted(p.name for p in out.iterdir()) == ["data", "models"]  # no work folder left
    test_dir, train_dir = out / "data" / "cifar10" / "test-20", out / "data" / "cifar10" / "train-12"
    files = cifar_sample_pngs()
    for index, (path, label) in files.items():  # every file, pixel for pixel, against Foolbox's own PNG
        written = test_dir / CIFAR10_CLASSES[label] / f"{index:05d}.png"
        assert np.array_equal(np.asarray(Image.open(written).convert("RGB")), np.asarray(Image.open(path).convert("RGB")))
    assert len(list(test_dir.glob("*/*.png"))) == 20 and sorted(p.name for p in test_dir.iterdir()) == list(CIFAR10_CLASSES)
    train, train_labels = train_images()
    for index in range(12):
        written = train_dir / CIFAR10_CLASSES[train_labels[index]] / f"{index:05d}.png"
        assert np.array_equal(np.asarray(Image.open(written).convert("RGB")), train[index])
    assert len(list(train_dir.glob("*/*.png"))) == 12
    assert (out / "models" / "resnet20-akamaster.th").read_bytes() == (mirror / fetch.CHECKPOINT_FILE).read_bytes()
    folder, samples = load_dataset(str(test_dir)), load_dataset("samples")  # what the tests then read
    assert folder.ids == samples.ids and torch.equal(folder.images, samples.images) and torch.equal(folder.labels, samples.labels)

    capsys.readouterr()
    assert main(fetch_args(out, server, mirror_hashes)) == 0  # a second run keeps what is there
    assert capsys.readouterr().out.count("is there already: kept") == 3


@pytest.mark.parametrize("wrong", ["checkpoint-sha256", "image-sha256", "archive-md5"])
def test_a_wrong_hash_is_refused_in_one_line_and_leaves_nothing(wrong, server, mirror_hashes, monkeypatch, tmp_path, capsys):
    md5 = mirror_hashes
    if wrong == "checkpoint-sha256":
        monkeypatch.setattr(fetch, "CHECKPOINT_SHA256", "0" * 64)
    elif wrong == "image-sha256":
        monkeypatch.setattr(fetch, "EXPECTED_PIXELS", {**fetch.EXPECTED_PIXELS, "train": (N_TRAIN, "0" * 64)})
    else:
        md5 = "0" * 32
    out = tmp_path / "shared"
    assert main(fetch_args(out, server, md5)) == 2
    err = error_lines(capsys.readouterr().err)
    message = {"checkpoint-sha256": r"with sha256 0{64}, got [0-9a-f]{64}$",
               "image-sha256": r"CIFAR-10 train images 0-14 with sha256 0{64}, got [0-9a-f]{64}$",
               "archive-md5": r"could not get CIFAR-10 from http://127\.0\.0\.1:\d+/cifar-10-python\.tar\.gz .*corrupted"}[wrong]
    assert len(err) == 1 and re.search(message, err[0]), err
    assert not out.exists()  # not even the folder it made

    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(fetch_args(out, server, md5)) == 2
    assert [p.name for p in out.iterdir()] == ["notes.txt"]  # an existing folder keeps only what it had


def test_unreachable_mirror_and_bad_options(tmp_path, capsys):
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for args, message in [
        (["--url-base", f"http://127.0.0.1:{port}", "--train-limit", "0"], "could not get"),
        (["--url-base", str(tmp_path / "nowhere")], "expected cifar-10-python.tar.gz in the local --url-base"),
        (["--limit", "0"], r"expected --limit between 1 and 10000, got 0"),
        (["--train-limit", "50001"], r"expected --train-limit between 0 \(none\) and 50000, got 50001"),
        (["--archive-md5", "xyz"], "expected --archive-md5 to be 32 hex digits"),
    ]:
        assert main(["fetch-data", str(tmp_path / "out"), *args]) == 2
        err = error_lines(capsys.readouterr().err)
        assert len(err) == 1 and re.search(message, err[0]), err
        assert not (tmp_path / "out").exists()


@needs_shared(CIFAR_TEST, CIFAR_TRAIN, AKAMASTER)
def test_published_hashes_are_those_of_the_shared_copies():
    """The hashes fetch-data checks describe ../shared's test-1000, train-4000 and checkpoint (read independently)."""
    for split, folder in (("test", CIFAR_TEST), ("train", CIFAR_TRAIN)):
        files = sorted(folder.glob("*/*.png"), key=lambda p: int(p.stem))
        count, expected = fetch.EXPECTED_PIXELS[split]
        assert [int(p.stem) for p in files] == list(range(count))
        images = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in files])
        assert sha256_of(images, [CIFAR10_CLASSES.index(p.parent.name) for p in files]) == expected, split
    assert hashlib.sha256(AKAMASTER.read_bytes()).hexdigest() == fetch.CHECKPOINT_SHA256
    assert fetch.CHECKPOINT_URL.endswith("/resnet20-12fca82f.th") and fetch.CHECKPOINT_SHA256.startswith("12fca82f")
