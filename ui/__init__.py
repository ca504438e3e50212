"""Shared code of the Streamlit app (app.py, pages/): loaders, figures, views, state, downloads.

Pure parts (arrays.py, figures.py, downloads.py, compare.py, and one image's views: image_views.py,
pair_pictures.py, pair_figures.py, pair_downloads.py, tables.py) import no Streamlit and are tested
directly; the rest wraps them for the pages.
"""
