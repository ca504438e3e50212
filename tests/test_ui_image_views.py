"""One image's views (ui.image_views.ImageViews): built from a cache by ui.compute, read alike by the pictures, the
Plotly charts and the downloads. No Streamlit run (the pages' own tests are in tests/test_app_pages.py)."""

from __future__ import annotations

import csv
import io
import pickle

import numpy as np
import pytest
import torch

from tests.fake_experiment import CLASSES, write_fake_experiment


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    from experiments.reader import Experiment

    return Experiment(write_fake_experiment(str(tmp_path_factory.mktemp("views"))))


@pytest.fixture(scope="module")
def model():
    from core.models.registry import build_model

    torch.manual_seed(0)  # the fake experiment's classifier as the app builds it: random weights after this seed
    return build_model("resnet20", num_classes=len(CLASSES), input_norm="none").eval()


def test_views_hold_the_cache_s_arrays_and_the_model_s_predictions(experiment, model):
    from core.fourier import apply_fourier_maps, to_natural_order
    from ui.compute import build_image_views

    views = build_image_views(experiment, 3, "fmn", model)
    attack = experiment.attack("fmn")
    np.testing.assert_array_equal(views.clean.image, experiment.image(3))
    np.testing.assert_array_equal(views.adversarial.image, np.asarray(attack["adversarial"][3], np.float32))
    assert (views.index, views.image_id, views.attack_key, views.label) == (3, "3.png", "fmn", int(experiment.labels()[3]))
    assert views.success == bool(attack["success"][3]) and views.lab is None
    # the norms the attack stage stored (float32 there, float64 here)
    assert views.linf == pytest.approx(float(attack["linf"][3]), rel=1e-5)
    assert views.l2 == pytest.approx(float(attack["l2"][3]), rel=1e-5)
    for side, (stored, _) in ((views.clean, experiment.essential_map(3)),
                              (views.adversarial, experiment.adversarial_map("fmn", 3))):
        np.testing.assert_array_equal(side.map, stored)
        natural = to_natural_order(torch.from_numpy(np.array(stored)))[None].double()  # (1, 3, H, W)
        expected = apply_fourier_maps(torch.from_numpy(side.image)[None].double(), natural)[0].numpy()  # torch filter
        np.testing.assert_allclose(side.filtered, expected, atol=1e-5)
        with torch.no_grad():
            probs = torch.softmax(model(torch.from_numpy(side.filtered)[None]).double(), dim=1)[0].numpy()
        np.testing.assert_allclose(side.filtered_probs, probs, atol=1e-6)
    e, a = views.essential.astype(np.float64).ravel(), views.adversarial_map.astype(np.float64).ravel()
    assert views.cosine == pytest.approx(float(e @ a / np.linalg.norm(e) / np.linalg.norm(a)), rel=1e-12)


def test_views_without_attack_or_model_and_bad_index(experiment):
    from ui.compute import build_image_views
    from ui.image_views import NO_ATTACK

    views = build_image_views(experiment, 3, None, None)
    assert views.adversarial is None and views.adversarial_map is None and views.adversarial_status == NO_ATTACK
    assert views.linf is None and views.l2 is None and views.cosine is None and views.success is None
    assert views.clean.filtered is not None and views.clean.filtered_probs is None  # filtered, not classified
    assert [name for name, _ in views.probability_sets()] == ["clean"]
    with pytest.raises(ValueError, match=r"expected an image index in \[0, 6\), got 6"):
        build_image_views(experiment, 6, None, None)


def test_views_survive_pickling_as_st_cache_data_stores_them(experiment, model):
    from ui.compute import build_image_views

    views = build_image_views(experiment, 3, "pgd-8", model)
    copy = pickle.loads(pickle.dumps(views))
    assert copy is not views and type(copy) is type(views)
    for name in ("image", "probs", "spectrum", "map", "filtered", "filtered_spectrum", "filtered_probs"):
        for side, side_copy in ((views.clean, copy.clean), (views.adversarial, copy.adversarial)):
            np.testing.assert_array_equal(getattr(side_copy, name), getattr(side, name))
    assert (copy.linf, copy.l2, copy.cosine, copy.image_id) == (views.linf, views.l2, views.cosine, views.image_id)


@pytest.mark.parametrize("pooled", [False, True], ids=["native", "pooled"])
def test_pictures_and_charts_draw_the_same_pixels(tmp_path, pooled):
    """Both renderings read one ImageViews: the pictures' pixels (enlarged, framed) are the charts' z values."""
    from experiments.reader import Experiment
    from ui.compute import build_image_views
    from ui.pair_figures import build_pair_figures
    from ui.pair_pictures import build_pair_pictures
    from ui.pictures import AXIS_BOTTOM

    experiment = Experiment(write_fake_experiment(str(tmp_path), size=224, model="resnet18", name="large"))
    views = build_image_views(experiment, 3, "fmn", None)
    pictures, charts = build_pair_pictures(views, CLASSES, pooled), build_pair_figures(views, CLASSES, pooled)
    assert pictures.top3 is not None and charts.top3 is not None  # the stored probabilities, no model needed
    for (picture, _), trace in zip(pictures.images[0], charts.images.data, strict=True):
        np.testing.assert_array_equal(picture, np.asarray(trace.z))  # 224 px: shown at native size
    cells = 32 if pooled else 224
    for (panel, _), trace in zip(pictures.maps.maps_rgb[0], charts.maps_rgb.data, strict=True):
        inside = panel[:-AXIS_BOTTOM, panel.shape[1] - 224:, :3]  # (224, 224, 3) right of the axis gutter
        np.testing.assert_array_equal(inside[:: 224 // cells, :: 224 // cells], np.asarray(trace.z))
        assert trace.dx == (7 if pooled else 1)
    assert len(pictures.filtered[0]) == len(charts.filtered.data) == 2


def test_downloads_carry_the_views(experiment, model):
    from dataclasses import replace

    from ui.compute import build_image_views
    from ui.image_views import LabRun
    from ui.pair_downloads import download_items

    views = build_image_views(experiment, 3, "fmn", model)
    items = {name: data for _, name, data, _ in download_items(views, CLASSES, "stem")}
    assert list(items) == ["stem_essential.npy", "stem_essential.png", "stem_adversarial_map.npy",
                           "stem_adversarial_map.png", "stem_clean.png", "stem_adversarial.png", "stem_filtered_clean.png",
                           "stem_filtered_adversarial.png", "stem_summary.csv"]
    np.testing.assert_array_equal(np.load(io.BytesIO(items["stem_essential.npy"]), allow_pickle=False), views.essential)
    [row] = csv.DictReader(io.StringIO(items["stem_summary.csv"].decode()))
    assert row["image"] == "3.png" and row["attack"] == "fmn" and row["true_class"] == CLASSES[views.label]
    assert row["adversarial_pred"] == CLASSES[int(np.argmax(views.adversarial.probs))]
    assert float(row["cosine"]) == pytest.approx(views.cosine, rel=1e-12)
    lab = replace(views, attack_key=None, image_id="upload", lab=LabRun(attack="pgd", eps=8 / 255, lam=0.1,
                                                                         clean_pred=0, adv_pred=1))
    [row] = csv.DictReader(io.StringIO(download_items(lab, CLASSES, "lab")[-1][2].decode()))
    assert (row["image"], row["attack"]) == ("upload", "pgd")
