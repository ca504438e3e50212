"""The app's pages, one file per page: Streamlit runs each as a script (st.Page("pages/home.py") in app.py).

A package like the other layers, so that the import contracts (pyproject.toml, `lint-imports`) and the
package's discovery see every page."""
