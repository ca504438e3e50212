"""Shared code of the Streamlit app (app.py, pages/): loaders, figures, views, state, downloads.

Pure parts (arrays.py, figures.py, downloads.py, paper_numbers.py) import no Streamlit and are
tested directly; the rest wraps them for the pages.
"""
