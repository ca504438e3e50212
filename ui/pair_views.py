"""One image's full set of views on a page (Explore and the Lab): `render_pair_views` draws an ImageViews.

Clean and adversarial images with the perturbation, the two maps (RGB composite, per-channel heat maps, pooled
view for large maps), the filtered images, spectra, top-3 classes, cosine and radial profile, each with a
caption, then the downloads.

Two renderings of the same sections, in one order (`_draw_sections`): pictures (the default, `PictureSections`:
st.image panels, markdown tables of the top-3 classes and of the radial profile; the browser draws them in
milliseconds) and interactive Plotly charts (`ChartSections`: zoom, hover values; a toggle away, but each chart
costs the browser hundreds of ms).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

from ui.arrays import POOL_SIZE
from ui.image_views import ImageViews
from ui.pair_downloads import DownloadItem, download_items
from ui.pair_figures import PairFigures, build_pair_figures
from ui.pair_pictures import PairPictures, Shown, build_pair_pictures, encode_pair_pictures
from ui.views import caption, chart, show_pictures


class PictureSections:
    """The pictures rendering of each section: bold headings, st.image rows, markdown tables."""

    top3_noun = "table"  # how the filtered images' caption refers to the top-3 view

    def __init__(self, built: PairPictures[Shown]) -> None:
        self.built = built

    def images(self) -> None:
        st.markdown("**Clean, adversarial and the perturbation between them**")
        for row in self.built.images:
            show_pictures(row)

    def top3(self) -> None:
        if self.built.top3 is not None:
            st.markdown("**The model's top 3 classes for each image**")
            st.markdown(self.built.top3)

    def maps(self, views: ImageViews, notes: Sequence[str]) -> None:
        maps = self.built.maps
        if maps is not None:
            st.markdown("**The maps as RGB composites** (white: kept in all three colour channels; black: removed)")
        cols = st.columns([3, 2])  # the two maps (with their axes) on the left, as the panels below; the numbers right
        show_pictures(maps.maps_rgb[0] if maps is not None else [], cols[0])
        with cols[1]:
            show_cosine(views)
            if notes:
                st.caption("; ".join(notes))
            if maps is not None:
                st.markdown("**Radial profile**: mean map value in rings of frequency radius\n\n" + maps.radial)
        if maps is not None:
            caption(maps.note)

    def channels(self) -> None:
        maps = self.built.maps
        if maps is None:
            return
        st.markdown("**One heat map per colour channel** (Viridis, 0 to 1)")
        for row in maps.maps_channels:
            show_pictures(row)
        show_pictures([maps.maps_channels_bar])
        caption(maps.note)

    def filtered(self) -> None:
        for row in self.built.filtered or []:
            show_pictures(row)

    def spectra(self) -> None:
        st.markdown("**Log-magnitude spectra log(1 + |F x|), channel mean (Magma, one shared scale)**")
        for row in self.built.spectra:
            show_pictures(row)
        show_pictures([self.built.spectra_bar])
        caption(self.built.spectra_note)


class ChartSections:
    """The interactive rendering of each section: one Plotly chart each, keyed `{key_prefix}_{section}`."""

    top3_noun = "panels"  # how the filtered images' caption refers to the top-3 view

    def __init__(self, built: PairFigures, key_prefix: str, file_stem: str, size: int) -> None:
        self.built, self.key_prefix, self.file_stem, self.size = built, key_prefix, file_stem, size

    def _chart(self, name: str) -> None:
        figure = getattr(self.built, name)
        if figure is not None:
            chart(figure, key=f"{self.key_prefix}_{name}", filename=f"{self.file_stem}_{name}")

    def images(self) -> None:
        self._chart("images")

    def top3(self) -> None:
        self._chart("top3")

    def maps(self, views: ImageViews, notes: Sequence[str]) -> None:
        cols = st.columns([2, 1])
        with cols[0]:
            self._chart("maps_rgb")
            if notes:
                st.caption("; ".join(notes))
        with cols[1]:
            show_cosine(views)
            self._chart("radial")

    def channels(self) -> None:
        self._chart("maps_channels")
        if self.size > 64:
            caption("Large maps: drag to zoom into a region of a heat map, double-click to zoom out, or switch on "
                    "the pooled view above.")

    def filtered(self) -> None:
        self._chart("filtered")

    def spectra(self) -> None:
        self._chart("spectra")


def show_cosine(views: ImageViews) -> None:
    """The pair's cosine similarity, and where it stands among the experiment's pairs when the page says so."""
    if views.cosine is not None:
        st.metric("Cosine similarity of the two maps", f"{views.cosine:.3f}",
                  help="cos(M_E, M_A) over all 3·H·W entries; 1 = same shape, 0 = no overlap")
        if views.cosine_context:
            st.caption(views.cosine_context)


def _map_notes(views: ImageViews) -> list[str]:
    """'essential: N of M entries non-zero, mean …' for each map there is."""
    return [f"{name}: {int((m > 0).sum())} of {m.size} entries non-zero, mean {m.mean():.3f}"
            for name, m in (("essential", views.essential), ("adversarial", views.adversarial_map)) if m is not None]


def _draw_sections(sections: PictureSections | ChartSections, views: ImageViews, model_note: str) -> None:
    """Every section in the page's order, with the text both renderings share."""
    sections.images()
    if views.adversarial is not None:
        cols = st.columns(4)
        cols[0].metric("L∞ norm of the perturbation", f"{views.linf:.4f}",
                       help=f"= {views.linf * 255:.2f}/255 of the pixel range")
        cols[1].metric("L2 norm of the perturbation", f"{views.l2:.3f}",
                       help="Euclidean norm over all 3·H·W pixel values in [0, 1]")
    else:
        st.info("This experiment has no attack: only the essential map is shown.")
    caption("The adversarial image looks the same as the clean one, yet the model's answer changes. The "
            "perturbation is scaled up until its largest pixel change reaches black or white, so you can see it; "
            "its norms are in pixel units of [0, 1].")
    sections.top3()
    if sections.built.top3 is None:
        st.caption("no model loaded: probabilities unavailable")
    caption("The model's three most probable classes for the clean and adversarial images and for each image "
            "filtered by its map (✓ marks the true class)." + (f" {model_note}" if model_note else ""))

    st.subheader("The two frequency maps")
    for name, map_display, status in (("Essential map", views.essential, views.clean.map_status),
                                      ("Adversarial map", views.adversarial_map, views.adversarial_status)):
        if map_display is None:
            st.warning(f"**{name}**: {status}")
    sections.maps(views, _map_notes(views))
    caption("A map keeps (1) or removes (0) each spatial frequency of each colour channel; the zero frequency "
            "(the image's mean colour) sits in the centre, the highest frequencies at the edges. The essential map "
            "keeps what the model needs for the right answer on the clean image; the adversarial map keeps what it "
            "needs to give the attack's wrong answer on the adversarial image. The radial profile averages each "
            "map over rings of equal frequency radius.")
    sections.channels()

    st.subheader("Images filtered by their maps")
    if sections.built.filtered is not None:
        sections.filtered()
    elif views.layer != "input" and views.essential is not None:
        st.info(f"These maps filter the model's {views.layer} features, not the image: there is no filtered image "
                "to show. The top-3 above ('× essential map', '× adversarial map') are the model's predictions with "
                f"its {views.layer} features filtered by each map.")
    else:
        st.info("No map, nothing to filter.")
    caption("What the model sees through each map. The filtered clean image keeps its class with only the "
            f"essential frequencies; the filtered adversarial image keeps the attack's wrong class (see the top-3 "
            f"{sections.top3_noun} above).")

    sections.spectra()
    caption("Where each image's energy lies in frequency. Natural images concentrate it at low frequencies "
            "(the centre); filtering by a sparse map leaves only a few bright points.")


def _pictures(views: ImageViews, classes: Sequence[str], pooled: bool) -> PairPictures[Shown]:
    return encode_pair_pictures(build_pair_pictures(views, classes, pooled))


@st.cache_resource(show_spinner=False, max_entries=32)
def _cached_figures(cache_key: tuple, pooled: bool, _views: ImageViews, _classes: tuple) -> PairFigures:
    # Shared, never copied: Plotly figures are slow to build (validation) and st.plotly_chart only reads them.
    return build_pair_figures(_views, _classes, pooled)


@st.cache_resource(show_spinner=False, max_entries=32)
def _cached_pictures(cache_key: tuple, pooled: bool, _views: ImageViews, _classes: tuple) -> PairPictures[Shown]:
    # Shared, never copied: st.image only reads the bytes.
    return _pictures(_views, _classes, pooled)


@st.cache_resource(show_spinner=False, max_entries=32)
def _cached_download_items(cache_key: tuple, file_stem: str, _views: ImageViews, _classes: tuple) -> list[DownloadItem]:
    # Shared, never copied: bytes are immutable, and encoding 224-pixel PNGs on every rerun would slow switching.
    return download_items(_views, _classes, file_stem)


def _session_memo(name: str, key: tuple, build: Callable[[], object]) -> Any:
    """`build()` kept in this session's state under `name` for `key`: one result at a time (a user's own image)."""
    store = st.session_state.setdefault(name, {})
    if key not in store:
        store.clear()
        store[key] = build()
    return store[key]


def _built(views: ImageViews, classes: Sequence[str], key_prefix: str, cache_key: tuple | None, per_session: bool,
           pooled: bool, interactive: bool) -> PairFigures | PairPictures[Shown]:
    """build_pair_figures or the encoded build_pair_pictures, cached as render_pair_views' docstring says."""
    build = build_pair_figures if interactive else _pictures
    if cache_key is None:
        return build(views, classes, pooled)
    if per_session:
        return _session_memo(f"{key_prefix}_{'figures' if interactive else 'pictures'}", (cache_key, pooled),
                             lambda: build(views, classes, pooled))
    cached = _cached_figures if interactive else _cached_pictures
    return cached(cache_key, pooled, views, tuple(classes))


def render_pair_views(views: ImageViews, classes: Sequence[str], key_prefix: str, *, file_stem: str,
                      model_note: str = "", cache_key: tuple | None = None, per_session: bool = False) -> None:
    """All views of one image and its adversarial counterpart (see the module docstring).

    Pictures by default; the toggle `{key_prefix}_interactive` switches to the Plotly charts.
    cache_key: a hashable name of `views` (experiment, image, attack, model); with it the figures or
    pictures are built once and reused, so switching back to an image costs no building. per_session:
    keep them in this session's state instead of the server-wide cache (for a user's own images).
    """
    size = views.clean.image.shape[-1]
    interactive = st.toggle("Interactive charts (zoom, hover values)", key=f"{key_prefix}_interactive",
                            help="Plotly charts instead of pictures: zoom into any panel and read exact values by "
                                 "hovering; slower to draw (about 2 s per image on a small machine).")
    pooled = False
    if size > 64:
        pooled = st.toggle(f"Pooled {POOL_SIZE}×{POOL_SIZE} view of the maps (average over {size // POOL_SIZE}×"
                           f"{size // POOL_SIZE} frequency blocks, as the correlations use)", key=f"{key_prefix}_pooled")
    built = _built(views, classes, key_prefix, cache_key, per_session, pooled, interactive)
    sections = ChartSections(built, key_prefix, file_stem, size) if interactive else PictureSections(built)
    _draw_sections(sections, views, model_note)
    render_view_downloads(views, classes, key_prefix, file_stem, cache_key=cache_key, per_session=per_session)


def render_view_downloads(views: ImageViews, classes: Sequence[str], key_prefix: str, file_stem: str, *,
                          cache_key: tuple | None = None, per_session: bool = False) -> None:
    """The download buttons of one image's views (ui.pair_downloads); encoded once per `cache_key`."""
    if cache_key is None:
        items = download_items(views, classes, file_stem)
    elif per_session:
        items = _session_memo(f"{key_prefix}_downloads", (cache_key, file_stem),
                              lambda: download_items(views, classes, file_stem))
    else:
        items = _cached_download_items(cache_key, file_stem, views, tuple(classes))
    with st.expander("Downloads: maps (.npy), images (PNG), summary (CSV)"):
        st.caption("Maps are centred (zero frequency at [H/2, W/2]), shape (3, H, W), values in [0, 1]. PNGs of image "
                   "panels are written with Pillow; every chart also saves a PNG from its toolbar's camera button.")
        cols = st.columns(4)
        for i, (label, file_name, data, mime) in enumerate(items):
            cols[i % 4].download_button(label, data=data, file_name=file_name, mime=mime,
                                        key=f"{key_prefix}_dl_{file_name}")


__all__ = ["ChartSections", "PictureSections", "render_pair_views", "render_view_downloads", "show_cosine"]
