"""Explore's attack comparison (ui/compare.py): maps in order, cosines against numpy, pictures with axes."""

from __future__ import annotations

import numpy as np
import pytest

from tests.fake_experiment import write_fake_experiment
from ui.compare import cosine_rows, cosine_table, image_maps, map_panels, missing_notes
from ui.pictures import AXIS_BOTTOM, axis_gutter

RNG = np.random.default_rng(3)


def sparse_map(size: int = 8) -> np.ndarray:
    return (RNG.random((3, size, size)) > 0.7) * RNG.random((3, size, size))  # (3, H, W) in [0, 1]


def numpy_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a.ravel(), b.ravel()) / np.linalg.norm(a) / np.linalg.norm(b))


def test_cosine_table_is_symmetric_and_matches_numpy():
    maps = [("essential", sparse_map(), "kept"), ("adversarial, FMN", sparse_map(), "kept"),
            ("adversarial, DeepFool", None, "the attack failed"), ("adversarial, PGD ε=8/255", sparse_map(), "kept")]
    lines = cosine_table(maps).splitlines()
    present = [m for m in maps if m[1] is not None]
    assert lines[0] == "| | essential | adversarial, FMN | adversarial, PGD ε=8/255 |"
    cells = [[c.strip() for c in line.strip("|").split("|")][1:] for line in lines[2:]]  # (3, 3) strings
    for i, (_, a, _) in enumerate(present):
        for j, (_, b, _) in enumerate(present):
            assert cells[i][j] == ("–" if i == j else f"{numpy_cosine(a, b):.3f}")
    rows = cosine_rows(maps)  # the CSV: the same matrix at full precision, 1 on the diagonal
    assert [r["map"] for r in rows] == [name for name, _, _ in present]
    assert rows[0]["adversarial, FMN"] == pytest.approx(numpy_cosine(present[0][1], present[1][1]), rel=1e-12)
    assert rows[2]["adversarial, PGD ε=8/255"] == pytest.approx(1.0)
    assert missing_notes(maps) == ["adversarial, DeepFool: the attack failed"]
    assert cosine_table(maps[:1] + maps[2:3]) is None  # one map: nothing to compare


def test_map_panels_have_axes_and_say_how_sparse():
    m = sparse_map(32)
    [(picture, text)] = map_panels([("essential", m, "kept"), ("adversarial, FMN", None, "no map")])
    assert picture.shape == (160 + AXIS_BOTTOM, axis_gutter(32) + 160, 4)  # 32×32 enlarged 5×
    assert text == f"essential · {int((m > 0).sum())} of 3072 non-zero"


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    from experiments.reader import Experiment

    return Experiment(write_fake_experiment(str(tmp_path_factory.mktemp("cache"))))


def test_image_maps_read_every_attack_in_order(fake):
    maps = image_maps(fake, 3)
    assert fake.attack_keys == ["fmn", "pgd-8"]
    assert [name for name, _, _ in maps] == ["essential", "adversarial, FMN", "adversarial, PGD ε=8/255"]
    essential, _ = fake.essential_map(3)
    np.testing.assert_array_equal(maps[0][1], essential)
    for (_, m, status), key in zip(maps[1:], fake.attack_keys, strict=True):
        expected, expected_status = fake.adversarial_map(key, 3)
        assert status == expected_status and (m is None) == (expected is None)
