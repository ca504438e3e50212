"""JavaScript predicates about a Streamlit page, for Playwright's `wait_for_function`.

Shared by the browser benchmarks (bench/app_latency.py, bench/load_test.py) and the end-to-end test
(tests/e2e/test_browser.py), so that all three agree on when a page has finished updating.
"""

# The script run has ended (not running, no rerun requested, not the initial state) and no element is
# stale (greyed out, waiting for the run to replace it).
IDLE_JS = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    if (!app) return false;
    const state = app.getAttribute('data-test-script-state');
    return state !== 'running' && state !== 'rerunRequested' && state !== 'initial'
        && document.querySelectorAll('[data-stale="true"]').length === 0;
}"""

# Every st.image picture on the page has loaded and has a size.
PICTURES_LOADED_JS = """() => [...document.querySelectorAll('[data-testid="stImage"] img')]
    .every(img => img.complete && img.naturalWidth > 0)"""
