"""Every page of the Streamlit app, driven through AppTest by widget key, on a small synthetic experiment.

The experiment (tests/fake_experiment.py) is written to a temporary cache root; FMAPS_CACHE points
the app at it and FMAPS_ONLY=1 hides the shipped demo and ./cache, so the tests do not depend on them.
"""

from __future__ import annotations

import io
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from experiments.reader import Experiment
from tests.fake_experiment import CLASSES, write_fake_experiment

APP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "app.py")
TIMEOUT = 600  # seconds per script run; generous for busy CI machines (a run takes ~1 s on an idle one)


@pytest.fixture(scope="module", autouse=True)
def heavy_imports():
    """Import torch, Plotly and the app's modules once here, so no script run's timeout pays for them."""
    import core.attacks  # noqa: F401
    import ui.loaders  # noqa: F401
    import ui.pair_views  # noqa: F401


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cache")
    path = write_fake_experiment(str(root))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FMAPS_CACHE", str(root))
        patch.setenv("FMAPS_ONLY", "1")
        yield str(root), path


def app_on(page: str | None = None):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    if page is not None:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def gallery_data(at, key: str) -> dict:
    """The data the thumbnail gallery (ui/gallery.py) with this key was drawn with."""
    [element] = [e for e in at.get("bidi_component") if e.proto.id.endswith(key)]
    return json.loads(element.proto.json)


def click_gallery(at, key: str, index: int) -> None:
    """Click thumbnail `index` of the gallery with this key and rerun, as the browser would: AppTest has no
    driver for components v2, so the click is the trigger value the component's script sends."""
    from streamlit.components.v2.bidi_component.main import _make_trigger_id
    from streamlit.proto.WidgetStates_pb2 import WidgetState

    [element] = [e for e in at.get("bidi_component") if e.proto.id.endswith(key)]
    states = at._tree.get_widget_states()
    states.widgets.append(WidgetState(id=_make_trigger_id(element.proto.id, "events"),
                                      json_trigger_value=json.dumps([{"event": "picked", "value": index}])))
    at._run(states)


def charts(at) -> list:
    return list(at.get("plotly_chart"))


def image_captions(at) -> list[str]:
    """The caption of every st.image picture on the page, in order."""
    return [text for element in at.get("image") for text in element.captions]


# The pictures of one image's views (ui.pair_views, pictures mode), by caption start: images, maps, filtered, spectra
PAIR_PICTURES = ("Clean image ·", "Adversarial image ·", "Perturbation, amplified", "Essential map, RGB composite",
                 "Adversarial map, RGB composite", *(f"{m} map · {c} channel" for m in ("essential", "adversarial")
                                                     for c in ("red", "green", "blue")),
                 "map value: 0 (left)", "Clean image × essential map", "Adversarial image × adversarial map",
                 *(f"Spectrum of the {name} image" for name in ("clean", "adversarial", "filtered clean",
                                                                "filtered adversarial")), "log(1 + |F x|)")


def pair_pictures(at) -> list[str]:
    """The PAIR_PICTURES shown, in their order (each at most once)."""
    captions = image_captions(at)
    shown = [start for start in PAIR_PICTURES if any(c.startswith(start) for c in captions)]
    assert all(sum(c.startswith(start) for c in captions) == 1 for start in shown), captions
    return shown


def no_errors(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def test_home_shows_picker_figure_and_build_command(cache_root):
    _, path = cache_root
    at = app_on()
    no_errors(at)
    assert at.title[0].value.startswith("Essential and adversarial frequencies")
    picker = at.sidebar.selectbox(key="experiment")
    assert picker.value == path and len(picker.options) == 1
    from experiments.reader import find_experiments

    [listing] = find_experiments([os.path.dirname(path)])
    label = listing.describe()  # the sidebar repeats the whole label under the (narrow) box
    assert [c.value for c in at.sidebar.caption if c.value.startswith(label)] and "N=6" in label
    assert any(os.path.basename(path) in m.value for m in at.markdown)
    assert not charts(at)  # the Fig. 1 picture is drawn with st.image: no Plotly on the first page
    captions = image_captions(at)  # 3 rows × (original, adversarial, both filtered), the prediction under each
    assert len(captions) == 12 and all("predicted: " in c for c in captions)
    assert [c.split(" ·")[0] for c in captions[::4]] == ["#2", "#3", "#4"]  # images with both FMN maps
    headers = ["**A: original**", "**B: adversarial**", "**C: A × essential map**", "**D: B × adversarial map**"]
    assert set(headers) <= {m.value for m in at.markdown}
    assert at.metric[0].value == "6"  # N images
    assert any("`python -m precompute run --preset cifar10-paper`" in m.value for m in at.markdown)
    at.selectbox(key="home_attack").set_value("pgd-8").run()
    no_errors(at)
    assert not charts(at) and len(image_captions(at)) == 12
    assert any("(PGD" in m.value for m in at.markdown)


def test_home_points_from_the_small_demo_to_the_shipped_reproduction(cache_root, monkeypatch):
    """The 20-image demo names the larger experiments already listed (the shipped results); the fake one (N = 6),
    alone in its cache, has none to name."""
    def pointers(at) -> list[str]:
        return [i.value for i in at.info if "Already computed" in i.value]

    assert not pointers(app_on())
    assets = os.path.join(os.path.dirname(APP), "assets")
    monkeypatch.setenv("FMAPS_CACHE", os.pathsep.join([os.path.join(assets, "demo"), os.path.join(assets, "results")]))
    at = app_on()
    no_errors(at)
    assert at.sidebar.selectbox(key="experiment").value.endswith(os.path.join("demo", os.listdir(os.path.join(assets, "demo"))[0]))
    [text] = pointers(at)
    shipped = sorted(os.listdir(os.path.join(assets, "results")))
    assert len(shipped) >= 2 and text.count("N=1000") == len(shipped) and "[shipped results]" in text
    assert "resnet20 (resnet20-akamaster)" in text and "resnet20 (resnet20-cifar10)" in text  # the weights tell them apart


def test_explore_drives_gallery_attack_and_image(cache_root):
    _, path = cache_root
    experiment = Experiment(path)
    at = app_on("pages/explore.py")
    no_errors(at)
    # default: the first image with both maps (image 0 is misclassified, image 1 has no FMN map)
    assert at.selectbox(key="explore_image").value == 2
    at.selectbox(key="explore_image").set_value(3).run()
    no_errors(at)
    linf = float(experiment.attack("fmn")["linf"][3])
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["L∞ norm of the perturbation"] == f"{linf:.4f}"
    ess, _ = experiment.essential_map(3)
    adv, _ = experiment.adversarial_map("fmn", 3)
    expected = float(ess.ravel() @ adv.ravel() / np.linalg.norm(ess) / np.linalg.norm(adv))
    assert metrics["Cosine similarity of the two maps"] == f"{expected:.3f}"
    summary = experiment.correlation("fmn")  # the pair among its attack's pairs: rank counted by hand
    stored = float(summary["cosine"][list(summary["positions"]).index(3)])
    rank = 1 + sum(v > stored for v in summary["cosine"])
    assert any(c.value.startswith(f"Stored for the tables: {stored:.3f}, rank {rank} of {len(summary['cosine'])} pairs")
               for c in at.caption)
    # pictures by default: every view present, the top-3 classes and the radial profile as tables
    assert not charts(at) and pair_pictures(at) == list(PAIR_PICTURES)
    tables = [m.value for m in at.markdown if m.value.startswith("| |") or "radius (cycles/image)" in m.value]
    assert len(tables) == 2 and tables[0].count("\n| ") == 3 and "| 0 | " in tables[1]
    true_class = CLASSES[int(experiment.labels()[3])]
    assert f"{true_class} ✓" in tables[0]
    assert any("±16 cycles/image" in c.value for c in at.caption)
    # the same views as interactive Plotly charts, one toggle away
    at.toggle(key="explore_interactive").set_value(True).run()
    no_errors(at)
    assert len(charts(at)) == 7  # images, top-3 bars, RGB maps, radial profile, channels, filtered, spectra
    assert not pair_pictures(at)
    at.toggle(key="explore_interactive").set_value(False).run()
    assert not charts(at) and pair_pictures(at) == list(PAIR_PICTURES)

    at.selectbox(key="explore_class").set_value("cat").run()  # images 1 and 5
    assert at.selectbox(key="explore_image").options == ["#1 cat ✓", "#5 cat ✓ · both maps"]
    gallery = gallery_data(at, "explore_gallery")
    assert [item[0] for item in gallery["items"]] == [1, 5]  # the class's images, titled like the picker
    assert [item[2] for item in gallery["items"]] == ["#1 cat ✓", "#5 cat ✓ · both maps"]
    assert gallery["selected"] == 5 and all(item[1].startswith("data:image/png;base64,") for item in gallery["items"])
    click_gallery(at, "explore_gallery", 1)
    no_errors(at)
    assert at.selectbox(key="explore_image").value == 1
    assert any("attack did not change the prediction" in w.value for w in at.warning)

    assert at.selectbox(key="explore_attack").options == ["FMN", "PGD"]  # the registry's labels
    at.selectbox(key="explore_attack").set_value("pgd").run()
    assert at.selectbox(key="explore_eps").value == "pgd-8"
    assert at.selectbox(key="explore_eps").label == "PGD budget ε"
    assert at.selectbox(key="explore_eps").options == ["ε = 8/255"]
    at.selectbox(key="explore_image").set_value(5).run()
    assert any("no longer classified as the target" in w.value for w in at.warning)

    at.selectbox(key="explore_class").set_value("all classes").run()
    at.selectbox(key="explore_image").set_value(0).run()
    no_errors(at)
    assert sum("misclassifies the clean image" in w.value for w in at.warning) == 2
    assert "explore_dl_" in str(at.get("download_button")) or any("explore_dl_" in str(b.proto.id) for b in at.get("download_button"))


def test_explore_compares_every_attack_on_one_image(cache_root):
    """Off by default (an image switch pays nothing); on: one picture per existing map and their cosines."""
    _, path = cache_root
    experiment = Experiment(path)
    at = app_on("pages/explore.py")
    at.selectbox(key="explore_image").set_value(3).run()
    assert not any("Cosine similarity between the maps" in m.value for m in at.markdown)
    at.toggle(key="explore_compare").set_value(True).run()
    no_errors(at)
    [table] = [m.value for m in at.markdown if m.value.startswith("**Cosine similarity between the maps**")]
    essential, _ = experiment.essential_map(3)
    fmn, _ = experiment.adversarial_map("fmn", 3)
    expected = float(essential.ravel() @ fmn.ravel() / np.linalg.norm(essential) / np.linalg.norm(fmn))
    row = next(line for line in table.splitlines() if line.startswith("| **essential** |"))
    assert row.split("|")[3].strip() == f"{expected:.3f}"  # essential vs adversarial FMN
    shown = [c for c in image_captions(at) if c.endswith(" of 3072 non-zero")]
    maps = [experiment.essential_map(3)[0]] + [experiment.adversarial_map(k, 3)[0] for k in experiment.attack_keys]
    assert len(shown) == sum(m is not None for m in maps) >= 2
    assert any("explore_compare_csv" in str(b.proto.id) for b in at.get("download_button"))


def test_correlations_table_and_distributions(cache_root):
    _, path = cache_root
    experiment = Experiment(path)
    at = app_on("pages/correlations.py")
    no_errors(at)
    table = at.dataframe[0].value
    assert list(table["attack"]) == ["FMN", "PGD ε=8/255"]
    fmn = experiment.correlation("fmn")
    assert int(table["N pairs"][0]) == fmn["n"]
    assert table["cosine mean ± std"][0] == f"{fmn['cosine_mean']:.2f} ± {fmn['cosine_std']:.2f}"
    null = [(fmn["id_a"] + fmn["id_b"] - z) / max(fmn["id_a"], fmn["id_b"]) for z in fmn["null_ids"]]
    assert table["shuffled IdCor (median)"][0] == f"{np.median(null):.2f}"  # IdCor's baseline, by hand
    assert table["paper: SVCCA / cosine / IdCor / p"][0] == "0.25 / 0.49 ± 0.27 / 0.66 / 0.01"
    assert table["paper: SVCCA / cosine / IdCor / p"][1].startswith("0.30 / ")
    keys = [getattr(c, "key", None) for c in charts(at)]
    n_charts = len(keys)
    assert n_charts >= 5  # cosine histogram, null distribution, per class, class-averaged maps, eps sweep
    at.selectbox(key="corr_attack").set_value("pgd-8").run()
    no_errors(at)
    assert len(charts(at)) == n_charts


def test_correlations_warn_where_the_sample_size_forces_the_numbers(cache_root, monkeypatch):
    """The shipped demo (20 pairs) gets a warning naming every forced SVCCA / unreliable IdCor; the fake experiment
    shows exactly the caveats core.metrics.caveats finds for it (none or some), nothing invented."""
    from core.metrics.caveats import correlation_caveats

    def warnings_text(at) -> str:
        return "\n".join(w.value for w in at.warning if "this experiment is small" in w.value)

    _, path = cache_root
    fake = Experiment(path)
    expected = [text for key in fake.attack_keys for text in correlation_caveats(fake.correlation(key) or {})]
    shown = warnings_text(app_on("pages/correlations.py"))
    assert all(text in shown for text in expected) and bool(shown) == bool(expected)

    demo_root = os.path.join(os.path.dirname(APP), "assets", "demo")
    monkeypatch.setenv("FMAPS_CACHE", demo_root)
    at = app_on("pages/correlations.py")
    no_errors(at)
    shown = warnings_text(at)
    assert "**FMN**: SVCCA is inflated by the sample size: with 20 pairs, 17 of its 18" in shown
    assert shown.count("IdCor is not meaningful here") == 3  # FMN, PGD, DeepFool: IDs of 38–77 from 20 points


def test_defence_live_prediction_matches_core(cache_root):
    import torch

    from core.class_maps import defended_predict
    from core.fourier import to_natural_order

    _, path = cache_root
    experiment = Experiment(path)
    at = app_on("pages/defence.py")
    no_errors(at)
    at.selectbox(key="defence_maps").set_value("pgd-8").run()
    at.selectbox(key="defence_image").set_value(4).run()
    at.selectbox(key="defence_attack").set_value("fmn").run()
    no_errors(at)
    model = _fake_model()
    maps = to_natural_order(torch.from_numpy(np.array(experiment.class_maps("pgd-8"))))
    clean = torch.from_numpy(experiment.image(4))[None]
    adversarial = torch.from_numpy(np.array(experiment.attack("fmn")["adversarial"][4]))[None]
    shown = [m.value for m in at.markdown if m.value.startswith("Defended prediction")]
    for image, text in zip((clean, adversarial), shown, strict=True):
        _, defended = defended_predict(model, image, maps)
        assert text.startswith(f"Defended prediction: **{CLASSES[int(defended[0])]}**")
    assert len(shown) == 2
    assert any("Table IV" in s.value for s in at.subheader)
    n = experiment.defence_table()["n"]  # the sampling note: sqrt(0.25 / n), the widest standard error of a share
    assert any(f"share of {n} images, so its standard error is up to ±{(0.25 / n) ** 0.5:.2f}" in c.value for c in at.caption)
    # pictures by default: the two images and the two maps they pick, and the probabilities as tables
    assert len(charts(at)) == 3  # grid, ours, paper
    captions = image_captions(at)
    assert [c.split(" ·")[0] for c in captions] == ["Clean image", "2. Map of class “" + shown_first(at, 0) + "”",
                                                    "Adversarial image (FMN)", "2. Map of class “" + shown_first(at, 1) + "”"]
    tables = [m.value for m in at.markdown if m.value.startswith("**3. Defended")]
    for table, text in zip(tables, shown, strict=True):  # the defended prediction heads its table
        defended = text.split("**")[1]
        assert table.splitlines()[4].startswith(f"| 1 | {defended}")
    at.toggle(key="defence_interactive").set_value(True).run()
    no_errors(at)
    assert len(charts(at)) == 11  # grid, 2 × (image, first, map, defended), ours, paper
    assert not image_captions(at)


def shown_first(at, case: int) -> str:
    """The class of the live defence's first prediction for case 0 (clean) or 1 (adversarial)."""
    return [m.value for m in at.markdown if m.value.startswith("First prediction")][case].split("**")[1]


def test_explore_large_maps_have_a_pooled_view(tmp_path, monkeypatch):
    write_fake_experiment(str(tmp_path), size=224, model="resnet18", name="large")
    monkeypatch.setenv("FMAPS_CACHE", str(tmp_path))
    monkeypatch.setenv("FMAPS_ONLY", "1")
    at = app_on("pages/explore.py")
    no_errors(at)

    def rgb_map_steps() -> list[float]:
        traces = [trace for c in charts(at) for trace in json.loads(c.proto.spec)["data"]]
        return [t.get("dx", 1) for t in traces if t["type"] == "image" and "f_x" in t.get("hovertemplate", "")]

    def map_notes() -> list[str]:
        return [c.value for c in at.caption if c.value.startswith("Centre = zero frequency")]

    # pictures: the maps at native resolution, the caption says where to zoom (sizes: tests/test_ui_pictures.py)
    assert not charts(at) and pair_pictures(at) == list(PAIR_PICTURES)
    assert any("native resolution" in n and "interactive charts" in n and "±112" in n for n in map_notes())
    at.toggle(key="explore_pooled").set_value(True).run()
    no_errors(at)
    assert any("pooled to 32×32" in n and "7×7" in n for n in map_notes())
    at.toggle(key="explore_interactive").set_value(True).run()
    no_errors(at)
    assert rgb_map_steps() == [7, 7]  # pooled to 32×32: one cell per 7×7 block of frequencies
    at.toggle(key="explore_pooled").set_value(False).run()
    no_errors(at)
    assert rgb_map_steps() == [1, 1]  # essential and adversarial map at full 224×224 resolution


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def _fake_model():
    """The fake experiment's classifier as the app builds it: a ResNet-20 with the seed's random weights."""
    import torch

    from core.models.registry import build_model

    torch.manual_seed(0)
    return build_model("resnet20", num_classes=len(CLASSES), input_norm="none")


def test_lab_trains_live_and_survives_bad_uploads(cache_root):
    import torch

    _, path = cache_root
    image = Experiment(path).image(3)
    with torch.no_grad():  # the class the random model sees, so that the essential map is trained
        seen = int(_fake_model()(torch.from_numpy(image)[None]).argmax())
    at = app_on("pages/lab.py")
    no_errors(at)
    at.selectbox(key="lab_image").set_value(3).run()
    at.selectbox(key="lab_label").set_value(seen).run()
    at.number_input(key="lab_max_steps").set_value(30).run()
    at.number_input(key="lab_min_steps").set_value(20).run()
    at.selectbox(key="lab_attack").set_value("pgd").run()
    at.button(key="lab_train").click().run()
    no_errors(at)
    result = at.session_state["lab_result"]
    run = result.lab
    assert run.attack == "pgd" and run.eps == pytest.approx(8 / 255) and run.clean_pred == seen
    assert result.image_id == "image3" and len(run.run_id) == 32 and run.seconds > 0
    assert any(m.value.startswith("### Result for `image3`") for m in at.markdown)
    assert 21 <= run.steps["essential"] <= 31  # trained: min_steps + 1 .. max_steps + 1 steps
    kept = [m for m in (result.essential, result.adversarial_map) if m is not None]
    assert all(m.shape == (3, 32, 32) for m in kept)
    # pictures: always the images and spectra; with a kept map also the map pictures and filtered images
    shown = pair_pictures(at)
    assert not charts(at) and {"Clean image ·", "Perturbation, amplified", "Spectrum of the clean image"} <= set(shown)
    assert ("Essential map, RGB composite" in shown) == (result.essential is not None)
    assert ("Adversarial map, RGB composite" in shown) == (result.adversarial_map is not None)
    assert len(at.warning) == 2 - len(kept)  # a map that was not kept says why
    at.toggle(key="lab_interactive").set_value(True).run()
    no_errors(at)
    # interactive: always images, top-3, spectra; with a kept map also RGB maps, channels, radial profile, filtered
    assert len(charts(at)) == 3 + (4 if kept else 0)
    at.toggle(key="lab_interactive").set_value(False).run()

    at.radio(key="lab_source").set_value("my own image (PNG or JPEG)").run()
    at.file_uploader(key="lab_upload").set_value(("notes.png", b"this is not an image", "image/png")).run()
    assert at.error and "Could not use notes.png" in at.error[0].value and "not an image" in at.error[0].value
    assert not at.exception
    at.file_uploader(key="lab_upload").set_value(("photo.png", _png(50, 40), "image/png")).run()
    no_errors(at)
    assert any("50×40 px image is resized to 32×32" in c.value for c in at.caption)
    assert not at.button(key="lab_train").disabled


def test_method_page_has_formulas(cache_root):
    at = app_on("pages/method.py")
    no_errors(at)
    formulas = [latex.value for latex in at.latex]
    assert any(r"\mathcal{F}^{-1}" in f and r"M \odot" in f for f in formulas)
    assert any("IdCor" in f for f in formulas) and any(r"\lambda" in f for f in formulas)
    assert any("Caveats" in h.value for h in at.header)


@pytest.mark.parametrize("page", ["pages/explore.py", "pages/correlations.py", "pages/defence.py", "pages/lab.py"])
def test_pages_explain_how_to_build_without_experiments(tmp_path, monkeypatch, page):
    monkeypatch.setenv("FMAPS_CACHE", str(tmp_path))
    monkeypatch.setenv("FMAPS_ONLY", "1")
    at = app_on(page)
    no_errors(at)
    assert any("python -m precompute run --preset demo" in i.value for i in at.info)


def test_damaged_experiment_is_listed_and_skipped(tmp_path, monkeypatch):
    good = write_fake_experiment(str(tmp_path), name="good")
    bad = write_fake_experiment(str(tmp_path), name="bad", seed=1)
    with open(os.path.join(bad, "test", "labels.npy"), "r+b") as fh:  # alter one array's bytes
        fh.seek(-1, os.SEEK_END)
        fh.write(b"\x07")
    broken = os.path.join(str(tmp_path), "broken")
    shutil.copytree(good, broken)
    with open(os.path.join(broken, "manifest.json"), "w") as fh:
        fh.write("{not json")
    monkeypatch.setenv("FMAPS_CACHE", str(tmp_path))
    monkeypatch.setenv("FMAPS_ONLY", "1")
    at = app_on()  # AppTest shows app.py's sidebar widgets on the default page only
    no_errors(at)
    options = at.sidebar.selectbox(key="experiment").options
    assert len(options) == 1 and options[0].startswith("good:")
    warnings = [w.value for w in at.sidebar.warning]
    assert any("checksum differs" in w for w in warnings) and any("unreadable" in w for w in warnings)
    at.switch_page("pages/explore.py").run()
    no_errors(at)
    assert at.selectbox(key="explore_image").value == 2  # the good experiment is shown


def test_incomplete_experiment_says_how_to_finish(tmp_path, monkeypatch):
    from experiments.config import ExperimentConfig
    from experiments.store import ExperimentStore

    config = ExperimentConfig(name="partial", data="fake-data")
    store = ExperimentStore(str(tmp_path / config.experiment_id()))
    store.create(config.experiment_id(), config.to_dict(), {"config_hash": config.config_hash()})
    store.write_arrays("test", {"images": np.zeros((2, 3, 32, 32), np.uint8), "labels": np.zeros(2, np.int64)})
    store.write_json("test/meta.json", {"ids": ["0.png", "1.png"], "classes": list(CLASSES)})
    store.mark_stage("test", n=2)  # interrupted before the classify stage
    monkeypatch.setenv("FMAPS_CACHE", str(tmp_path))
    monkeypatch.setenv("FMAPS_ONLY", "1")
    at = app_on("pages/explore.py")
    no_errors(at)
    assert any("is incomplete" in w.value and "resumes" in w.value for w in at.warning)


# ---------- a results-only copy (`python -m precompute prune DIR --drop train images maps`) ----------

@pytest.fixture(scope="module")
def pruned_root(tmp_path_factory):
    """The fake experiment and its results-only copy, each under its own root."""
    from experiments.store import ExperimentStore
    from precompute.prune_cmd import PATTERNS

    root = tmp_path_factory.mktemp("results-only")
    path = write_fake_experiment(str(root))
    full = write_fake_experiment(str(tmp_path_factory.mktemp("full")))
    store = ExperimentStore(path)
    for what in ("train", "images", "maps"):
        for pattern in PATTERNS[what]:
            store.drop(pattern)
    return str(root), path, full


@pytest.fixture
def pruned(pruned_root, monkeypatch):
    root, path, full = pruned_root
    monkeypatch.setenv("FMAPS_CACHE", root)
    monkeypatch.setenv("FMAPS_ONLY", "1")
    return Experiment(path), Experiment(full)


def results_only_note(at, experiment: Experiment) -> str:
    """The one results-only message of the page, checked to carry the command that rebuilds the experiment."""
    from experiments.rebuild import rebuild_command

    notes = [i.value for i in at.info if "results-only copy" in i.value]
    assert len(notes) == 1, [i.value for i in at.info]
    assert rebuild_command(experiment.config) in notes[0] and "python -m precompute run" in notes[0]
    return notes[0]


def test_results_only_home_lists_and_explains(pruned):
    experiment, _ = pruned
    at = app_on()
    no_errors(at)
    picker = at.sidebar.selectbox(key="experiment")
    assert picker.value == experiment.path and picker.options[0].split(" [")[0].endswith("(results only)")
    assert "Fig.-1" in results_only_note(at, experiment)
    assert not charts(at) and at.metric[0].value == "6"
    assert any("results-only copy" in m.value and experiment.id in m.value for m in at.markdown)


def test_results_only_explore_shows_the_numbers(pruned):
    experiment, full = pruned
    at = app_on("pages/explore.py")
    no_errors(at)
    assert at.selectbox(key="explore_image").value == 2  # map statuses still pick the first image with both maps
    assert not at.get("bidi_component")  # no gallery
    results_only_note(at, experiment)
    at.selectbox(key="explore_image").set_value(3).run()
    no_errors(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["L∞ norm of the perturbation"] == f"{float(full.attack('fmn')['linf'][3]):.4f}"
    fmn = experiment.correlation("fmn")
    stored = float(fmn["cosine"][list(fmn["positions"]).index(3)])  # as the correlation stage computed it
    assert metrics["Cosine similarity of the two maps"] == f"{stored:.3f}" and metrics["Attack"] == "succeeded"
    ess = full.essential_map(3)[0]
    table = at.dataframe[0].value
    assert list(table["map"]) == ["essential", "adversarial"] and list(table["status"]) == ["map kept"] * 2
    assert int(table["non-zero entries"][0]) == int((ess > 0).sum())
    assert not charts(at)  # the top-3 classes, clean and adversarial, as a table
    top3 = [m.value for m in at.markdown if m.value.startswith("| |")]
    assert len(top3) == 1 and top3[0].startswith("| | clean | adversarial |") and top3[0].count("\n| ") == 3
    at.selectbox(key="explore_image").set_value(1).run()  # FMN failed on image 1
    no_errors(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Attack"] == "failed" and "Cosine similarity of the two maps" not in metrics
    assert "attack did not change the prediction" in at.dataframe[0].value["status"][1]
    at.selectbox(key="explore_attack").set_value("pgd").run()
    at.selectbox(key="explore_image").set_value(0).run()  # misclassified: no maps at all
    no_errors(at)
    assert "misclassifies the clean image" in at.dataframe[0].value["status"][0]


def test_results_only_correlations_keep_every_number(pruned):
    experiment, full = pruned
    at = app_on("pages/correlations.py")
    no_errors(at)
    table = at.dataframe[0].value  # the Table I rows, from the copy's summaries, as for the full experiment
    assert list(table["attack"]) == ["FMN", "PGD ε=8/255"]
    for row, key in enumerate(("fmn", "pgd-8")):
        summary = full.correlation(key)
        assert int(table["N pairs"][row]) == summary["n"]
        assert table["cosine mean ± std"][row] == f"{summary['cosine_mean']:.2f} ± {summary['cosine_std']:.2f}"
        assert table["IdCor"][row] == f"{summary['idcor']:.2f}" and table["p"][row] == f"{summary['p_value']:.3f}"
        assert table["re-paired cosine"][row] == f"{summary['repaired_cosine_mean']:.2f}"
    assert table["paper: SVCCA / cosine / IdCor / p"][0] == "0.25 / 0.49 ± 0.27 / 0.66 / 0.01"
    assert "class-averaged maps" in results_only_note(at, experiment)
    specs = [json.loads(c.proto.spec) for c in charts(at)]
    assert len(specs) == 4  # cosine histogram, null distribution, per class, ε sweep (no class-averaged maps)
    lines = [shape.get("x0") for spec in specs for shape in spec["layout"].get("shapes", [])]
    assert any(x == pytest.approx(full.correlation("fmn")["repaired_cosine_mean"]) for x in lines if x is not None)
    at.selectbox(key="corr_attack").set_value("pgd-8").run()
    no_errors(at)
    assert len(charts(at)) == 4


def test_results_only_defence_keeps_class_maps_and_table(pruned):
    experiment, _ = pruned
    at = app_on("pages/defence.py")
    no_errors(at)
    assert "live defence" in results_only_note(at, experiment)
    assert not [s for s in at.selectbox if s.key == "defence_image"]
    assert any("Table IV" in s.value for s in at.subheader)
    assert len(charts(at)) == 3  # class-map grid, Table IV ours and the paper's


def test_results_only_lab_trains_uploads_only(pruned):
    experiment, _ = pruned
    at = app_on("pages/lab.py")
    no_errors(at)
    assert "picking an image" in results_only_note(at, experiment)
    assert at.button(key="lab_train").disabled
    at.radio(key="lab_source").set_value("my own image (PNG or JPEG)").run()
    at.file_uploader(key="lab_upload").set_value(("photo.png", _png(40, 40), "image/png")).run()
    no_errors(at)
    assert not at.button(key="lab_train").disabled and not [i for i in at.info if "results-only" in i.value]


def test_results_only_method_page(pruned):
    at = app_on("pages/method.py")
    no_errors(at)
    assert any("λ = 0.1" in m.value for m in at.markdown)


# ---------- the statistics stage, the noise ceiling and compact maps on the Correlations page ----------

@pytest.fixture(scope="module")
def statistics_root(tmp_path_factory):
    """A fake experiment of 40 images with its statistics and noise ceiling, and a compact results-only copy."""
    from precompute.cli import main
    from tests.fake_statistics import add_noise_ceiling, add_statistics

    root = tmp_path_factory.mktemp("statistics")
    path = write_fake_experiment(str(root), n=40)
    add_statistics(path)
    add_noise_ceiling(path)
    compact_root = tmp_path_factory.mktemp("compact")
    compact = str(compact_root / os.path.basename(path))
    shutil.copytree(path, compact)
    assert main(["prune", compact, "--drop", "train", "images", "maps", "--compact-maps"]) == 0
    return str(root), path, str(compact_root), compact


def test_correlations_show_intervals_power_curve_and_ceiling(statistics_root, monkeypatch):
    root, path, _, _ = statistics_root
    monkeypatch.setenv("FMAPS_CACHE", root)
    monkeypatch.setenv("FMAPS_ONLY", "1")
    experiment = Experiment(path)
    at = app_on("pages/correlations.py")
    no_errors(at)
    [table] = [d.value for d in at.dataframe if "within-class p" in d.value.columns]
    stats = experiment.statistics("fmn")
    full = stats["full"]
    low, high = full["idcor_ci"]
    assert int(table["N pairs"][0]) == stats["n"] == experiment.correlation("fmn")["n"]
    assert table["IdCor [95 % CI]"][0] == f"{full['idcor']:.2f} [{low:.2f}, {high:.2f}]"
    assert table["within-class p"][0] == f"{full['p_value_within_class']:.3f}"
    assert table["CKA"][0] == f"{full['cka']:.2f}"
    assert f"({stats['half_spectrum_delta']['cka']:+.2f})" in table["half spectrum: cosine / SVCCA / CKA / IdCor (change)"][0]
    captions = " ".join(c.value for c in at.caption)
    assert "within-class p" in captions and "the similarity a class alone explains" in captions
    specs = {c.proto.id.split("-")[-1] if c.proto.id else "": json.loads(c.proto.spec) for c in charts(at)}
    power = next(spec for spec in specs.values() if "number of pairs" in json.dumps(spec["layout"].get("title", "")))
    lines = [shape for shape in power["layout"]["shapes"]]
    assert any(s.get("y0") == 0.05 and s.get("y1") == 0.05 for s in lines)  # the 0.05 line
    assert any(s.get("x0") == stats["n"] for s in lines)  # the observed N
    assert any("Noise ceiling" in s.value for s in at.subheader)
    assert f"N = {experiment.noise_ceiling()['n']} images" in captions


def test_compact_copy_shows_its_maps_on_the_correlations_page(statistics_root, monkeypatch):
    _, _, compact_root, compact = statistics_root
    monkeypatch.setenv("FMAPS_CACHE", compact_root)
    monkeypatch.setenv("FMAPS_ONLY", "1")
    at = app_on("pages/correlations.py")
    no_errors(at)
    assert not [i for i in at.info if "class-averaged maps" in i.value]  # the maps are there, compact
    titles = [json.dumps(json.loads(c.proto.spec)["layout"].get("title", "")) for c in charts(at)]
    assert any("Class-averaged maps" in t for t in titles)


def test_compact_copy_shows_its_maps_on_explore(statistics_root, monkeypatch):
    _, path, compact_root, compact = statistics_root
    monkeypatch.setenv("FMAPS_CACHE", compact_root)
    monkeypatch.setenv("FMAPS_ONLY", "1")
    at = app_on("pages/explore.py")
    no_errors(at)
    index = at.selectbox(key="explore_image").value
    full = Experiment(path)
    maps = [full.essential_map(index)[0]] + [full.adversarial_map(k, index)[0] for k in full.attack_keys]
    shown = [c for c in image_captions(at) if c.endswith(" of 3072 non-zero")]
    assert len(shown) == sum(m is not None for m in maps) >= 2
    assert "its maps" not in results_only_note(at, Experiment(compact))


def _with_adaptive_results(path: str) -> dict:
    """Add an adaptive block and a robustness curve to a fake experiment, as the adaptive stages write them."""
    from experiments.format import robustness_curve_json, robustness_curve_stage
    from experiments.store import ExperimentStore

    store = ExperimentStore(path)
    table = store.load_json("defence/table.json")
    block = {"rows": ["fmn+defended", "pgd-8+bpda"], "columns": ["fmn", "pgd-8"],
             "accuracy": {"fmn+defended": {"fmn": 0.125, "pgd-8": 0.25}, "pgd-8+bpda": {"fmn": 0.0, "pgd-8": 0.375}},
             "accuracy_clean_correct": {"fmn+defended": {"fmn": 0.2, "pgd-8": 0.3},
                                        "pgd-8+bpda": {"fmn": 0.0, "pgd-8": 0.45}},
             "extends": {"fmn+defended": "fmn", "pgd-8+bpda": "pgd-8"}, "settings": {}, "n": 6, "n_clean_correct": 5,
             "checks": [{"check": "adaptive_beats_non_adaptive", "row": "pgd-8+bpda", "column": "pgd-8",
                         "against": "pgd-8", "passed": False, "measured": {}, "message": "accuracy 0.375 adaptive"}]}
    store.write_json("defence/table.json", {**table, "adaptive": block})
    curve = {"eps_255": [0, 1, 2, 4, 8, 16], "rows": ["undefended", "non_adaptive", "pgd+bpda", "worst_case"],
             "accuracy": {r: [1.0, 0.8, 0.6, 0.4, 0.2, 0.0] for r in ["undefended", "non_adaptive", "pgd+bpda",
                                                                     "worst_case"]}, "n": 6, "checks": []}
    store.write_json(robustness_curve_json("pgd-8"), curve)
    store.mark_stage(robustness_curve_stage("pgd-8"), n=6)
    return {**table, "adaptive": block}


def test_defence_adaptive_table_curve_and_live_attack(tmp_path, monkeypatch):
    import pages.defence as defence_page

    path = write_fake_experiment(str(tmp_path))
    table = _with_adaptive_results(path)
    monkeypatch.setenv("FMAPS_CACHE", str(tmp_path))
    monkeypatch.setenv("FMAPS_ONLY", "1")
    at = app_on("pages/defence.py")
    no_errors(at)
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in charts(at)]
    assert any(t.startswith("Adaptive attacks (N = 6") for t in titles), titles
    assert any(t.startswith("Accuracy against ε, class maps trained against PGD ε=8/255") for t in titles), titles
    [frame] = list(at.dataframe)  # the adaptive table's records, the page's only dataframe
    shown = frame.value
    bpda = shown[(shown["attack on the defence"] == "PGD ε=8/255 + bpda") & (shown["class maps"] == "PGD ε=8/255")]
    assert bpda["accuracy (all N)"].tolist() == [0.375] and bpda["accuracy (clean-correct)"].tolist() == [0.45]
    assert bpda["Table IV, same attack ignoring the defence"].tolist() == [table["accuracy"]["pgd-8"]["pgd-8"]]
    assert any("**failed**: adaptive beats non adaptive" in m.value for m in at.markdown)
    assert any("does not make the model robust" in m.value for m in at.markdown)
    # the live adaptive attack on the picked image, against the same function called directly
    at.selectbox(key="defence_maps").set_value("pgd-8").run()
    at.selectbox(key="defence_image").set_value(2).run()
    at.button(key="defence_adaptive_go").click().run()
    no_errors(at)
    experiment = Experiment(path)
    expected = defence_page.live_attack_result(_fake_model(), experiment.class_maps("pgd-8"), experiment.image(2),
                                               int(experiment.labels()[2]))
    [verdict] = [m.value for m in at.markdown if m.value.startswith("Adaptive PGD-BPDA")]
    assert f"defended prediction **{CLASSES[expected['pred']]}**" in verdict
    holds = expected["pred"] == int(experiment.labels()[2])
    assert verdict.endswith("the defence still holds for this image." if holds else
                            "the defence does not hold for this image.")


# ---------- every page in every map basis and at a hidden layer (docs/BASES.md) ----------

BASIS_CASES = {  # case id -> write_fake_experiment options; the manifest's basis key / layer each writes
    "phase": {"basis": "phase"},
    "dct": {"basis": "dct"},
    "wavelet-db2-L2": {"basis": "wavelet", "wavelet": "db2", "wavelet_levels": 2},
    "fourier-layer1": {"layer": "layer1"},
}
LAYOUT_NOTES = {"phase": "Fourier phase map", "dct": "DCT map: top-left = (0, 0)",
                "wavelet-db2-L2": "Wavelet map wavelet-db2-L2", "fourier-layer1": "of the layer1 features"}
AXIS_TITLES = {"phase": "f_x (cycles/image)", "dct": "horizontal frequency k_x",
               "wavelet-db2-L2": "column of the packed coefficients", "fourier-layer1": "f_x (cycles/image)"}


@pytest.fixture(scope="module")
def basis_root(tmp_path_factory):
    """One fake experiment per case and a fourier one beside them: same model and data, maps elsewhere."""
    root = tmp_path_factory.mktemp("bases")
    paths = {case: write_fake_experiment(str(root), name=f"fake-{case}", **options)
             for case, options in BASIS_CASES.items()}
    paths["fourier"] = write_fake_experiment(str(root), name="fake-fourier")
    return str(root), paths


def _on(basis_root, monkeypatch, case: str):
    root, paths = basis_root
    monkeypatch.setenv("FMAPS_CACHE", root)
    monkeypatch.setenv("FMAPS_ONLY", "1")
    at = app_on()
    at.selectbox(key="experiment").set_value(paths[case]).run()
    return at


@pytest.mark.parametrize("case", list(BASIS_CASES))
def test_explore_draws_maps_in_their_basis_layout(basis_root, monkeypatch, case):
    at = _on(basis_root, monkeypatch, case)
    at.switch_page("pages/explore.py").run()
    no_errors(at)
    at.selectbox(key="explore_image").set_value(2).run()  # image 2 has both maps under PGD
    no_errors(at)
    captions = [c.value for c in at.caption]
    assert any(LAYOUT_NOTES[case] in c for c in captions), captions
    shown = image_captions(at)
    if case == "fourier-layer1":
        assert any("map at layer1, mean of 16 channels" in c for c in shown), shown
        assert not any(c.startswith("Clean image × essential map") for c in shown)  # no filtered image at a layer
        assert any("filter the model's layer1 features, not the image" in i.value for i in at.info)
    else:
        assert any(c.startswith("Clean image × essential map") for c in shown)
    at.toggle(key="explore_interactive").set_value(True).run()
    no_errors(at)
    [channels] = [c for c in charts(at) if "One heat map per colour channel" in json.loads(c.proto.spec)["layout"]
                  ["title"]["text"]]
    layout = json.loads(channels.proto.spec)["layout"]
    titles = [v["title"]["text"] for k, v in layout.items() if k.startswith("xaxis") and v.get("title")]
    assert any(AXIS_TITLES[case] in t for t in titles), titles
    assert layout["coloraxis"]["cmin"] == 0 and layout["coloraxis"]["cmax"] == 1
    if case.startswith("wavelet"):
        assert len(layout["shapes"]) == 6 * 7  # 2 maps × 3 channels × (1 + 3 · 2) subbands outlined


@pytest.mark.parametrize("case", list(BASIS_CASES))
def test_every_other_page_renders_in_each_basis(basis_root, monkeypatch, case):
    at = _on(basis_root, monkeypatch, case)
    pages = ["pages/home.py", "pages/correlations.py", "pages/defence.py", "pages/lab.py", "pages/method.py"]
    for page in pages:
        at.switch_page(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])
    at.switch_page("pages/correlations.py").run()
    [table] = [d.value for d in at.dataframe if any(" · N" in str(c) for c in d.value.columns)]  # Table I per basis
    where = "fourier at layer1" if case == "fourier-layer1" else case
    assert {f"{where} · N", "fourier · N", f"{where} · IdCor (p)"} <= set(table.columns)
    own = Experiment(basis_root[1][case]).correlation("pgd-8")
    from core.attack_keys import attack_label

    row = table[table["attack"] == attack_label("pgd-8")].iloc[0]
    assert int(row[f"{where} · N"]) == own["n"] and row[f"{where} · SVCCA"] == f"{own['svcca']:.2f}"



@pytest.mark.parametrize("case", list(BASIS_CASES))
def test_defence_page_defends_in_each_basis(basis_root, monkeypatch, case):
    """The live defence filters in the experiment's basis at its layer: its predictions are the core defended
    classifier's, and the class maps are drawn in the basis's layout."""
    import torch

    from core.bases import basis_from_key
    from core.defended import DefendedClassifier

    at = _on(basis_root, monkeypatch, case)
    at.switch_page("pages/defence.py").run()
    no_errors(at)
    at.selectbox(key="defence_maps").set_value("pgd-8").run()
    at.selectbox(key="defence_image").set_value(2).run()
    at.selectbox(key="defence_attack").set_value("pgd-8").run()
    no_errors(at)
    experiment = Experiment(basis_root[1][case])
    manifest = experiment.manifest
    defended = DefendedClassifier.from_stored(_fake_model(), torch.from_numpy(np.array(experiment.class_maps("pgd-8"))),
                                              basis=basis_from_key(manifest["basis"]), layer=manifest["layer"])
    images = torch.from_numpy(np.stack([experiment.image(2), np.array(experiment.attack("pgd-8")["adversarial"][2])]))
    first, prediction = defended.predictions(images)
    shown = [m.value for m in at.markdown if m.value.startswith(("First prediction", "Defended prediction"))]
    assert shown[0::2] == [f"First prediction: **{CLASSES[int(k)]}**" for k in first]
    assert [s.split(" (")[0] for s in shown[1::2]] == [f"Defended prediction: **{CLASSES[int(k)]}**" for k in prediction]
    [grid] = [c for c in charts(at) if "Class-level maps trained against" in json.loads(c.proto.spec)["layout"]
              ["title"]["text"]]
    layout = json.loads(grid.proto.spec)["layout"]
    assert LAYOUT_NOTES[case] in " ".join(a["text"] for a in layout["annotations"])
    if case.startswith("wavelet"):
        assert len(layout["shapes"]) == len(CLASSES) * 7  # one map per class × (1 + 3 · 2) subbands outlined
    at.button(key="defence_adaptive_go").click().run()  # the live adaptive attack in this basis and layer
    no_errors(at)
    assert [m.value for m in at.markdown if m.value.startswith("Adaptive PGD-BPDA")]

def _editor(at, start: str | None = None):
    at.switch_page("pages/lab.py").run()
    at.selectbox(key="lab_image").set_value(2).run()
    at.toggle(key="lab_editor_on").set_value(True).run()
    no_errors(at)
    if start is not None:
        at.selectbox(key="lab_editor_start").set_value(start).run()
        no_errors(at)
    return at


def _kept(at) -> float:
    [metric] = [m for m in at.metric if m.label == "Entries kept"]
    return float(metric.value.rstrip(" %"))


@pytest.mark.parametrize("case", ["fourier", *BASIS_CASES])
def test_lab_mask_editor_in_each_basis(basis_root, monkeypatch, case):
    """Start from the image's essential map (in the experiment's basis and layer), then from ones: a low-pass
    band, or unticking a subband, keeps fewer entries, and the top 3 are shown throughout."""
    at = _editor(_on(basis_root, monkeypatch, case), "essential map of image #2")
    essential = Experiment(basis_root[1][case]).essential_map(2)[0]
    assert _kept(at) == pytest.approx(100 * float((essential > 0.5).mean()), abs=0.05)
    assert any("top 3 through the mask" in m.value for m in at.markdown)
    at.selectbox(key="lab_editor_start").set_value("all ones (every coefficient kept)").run()
    basis = {"fourier-layer1": "fourier", "wavelet-db2-L2": "wavelet-db2-L3"}.get(case, case)  # the editor's choices
    at.selectbox(key="lab_editor_basis").set_value(basis).run()
    no_errors(at)
    assert _kept(at) == 100.0
    if basis.startswith("wavelet"):
        at.checkbox(key="lab_editor_band_level_1_diagonal").uncheck().run()
        assert _kept(at) == pytest.approx(75.0, abs=0.05)  # level 1's diagonal: a quarter of the 32 × 32 pyramid
    else:
        at.radio(key="lab_editor_band").set_value("low-pass").run()
        at.slider(key="lab_editor_radius").set_value(4.0).run()
        from ui.basis_figures import map_layout
        from ui.mask_editor import LOW_PASS, band_region

        expected = band_region(map_layout(basis, 32, 32), LOW_PASS, 4.0).mean()
        assert _kept(at) == pytest.approx(100 * expected, abs=0.05)
    no_errors(at)
    assert any("lab_editor_download" in b.proto.id for b in at.get("download_button"))
