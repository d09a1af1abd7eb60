"""The documentation site: it builds with ``mkdocs build --strict`` (executing every tutorial on reduced
sizes), its code examples run, and it renders in a real headless browser.

Needs the ``docs`` extra (``pip install -e ".[docs]"``, which ``.ci/run`` installs) and, for the browser
test, Chromium (``apt-get install chromium``; ``.ci/run`` installs it) driven by Playwright.
"""
import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
TUTORIALS = sorted((DOCS / "tutorials").glob("[0-9][0-9]_*.py"))


def _code_blocks(path):
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def test_every_tutorial_is_in_the_nav_and_ends_with_what_it_showed():
    nav = (ROOT / "mkdocs.yml").read_text()
    assert len(TUTORIALS) >= 12
    for path in TUTORIALS:
        text = path.read_text()
        assert f"tutorials/{path.name}" in nav, path.name
        assert "format_name: percent" in text and "SCRATCHNN_DOCS_QUICK" in text or path.name.startswith("01_"), path
        assert "## What this showed" in text, path.name


GUIDE_PAGES = [p for d in ("guide", "how-it-works") for p in sorted((DOCS / d).glob("*.md"))] + [
    DOCS / "getting-started.md"]


@pytest.mark.parametrize("page", GUIDE_PAGES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_python_examples_in_the_guide_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    import matplotlib
    matplotlib.use("Agg")
    import scratchnn

    for i, code in enumerate(_code_blocks(page)):
        scratchnn.set_default_dtype("float32")
        scratchnn.set_seed(0)
        try:
            exec(compile(code, f"{page.name} example {i + 1}", "exec"), {"__name__": "__docs__"})
        finally:
            scratchnn.set_default_dtype("float32")
            from scratchnn.layers import LAYERS, base
            for name in [n for n, c in LAYERS.items() if not c.__module__.startswith("scratchnn.")]:
                LAYERS.pop(name)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site built as CI builds it: strict, every tutorial executed with SCRATCHNN_DOCS_QUICK=1."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocs_jupyter")
    out = tmp_path_factory.mktemp("site")
    # the notebooks draw their figures inline, so no MPLBACKEND=Agg (CI exports it); one BLAS thread per
    # process, since the executing kernels and the build share the machine's cores
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env.update(SCRATCHNN_DOCS_QUICK="1", NO_MKDOCS_2_WARNING="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stderr[-4000:]
    return out


def test_site_builds_strict_with_every_tutorial_executed(site):
    for path in TUTORIALS:
        page = site / "tutorials" / path.stem / "index.html"
        assert page.exists(), path.name
        html = page.read_text()
        assert "What this showed" in html and "Traceback" not in html, path.name
    assert (site / "reference" / "layers" / "index.html").exists()
    assert "im2col" in (site / "search" / "search_index.json").read_text()


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def served(site):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_site_renders_in_a_headless_browser(served):
    sync_api = pytest.importorskip("playwright.sync_api")
    chromium = _chromium()
    if chromium is None:
        pytest.skip("no Chromium here (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page()
        errors = []
        page.on("console", lambda m: errors.append(f"{page.url}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(f"{page.url}: {e}"))

        page.goto(served + "/")
        assert "scratchnn" in page.title()

        page.goto(served + "/tutorials/01_neuron_graph/")  # a tutorial with its plot
        page.wait_for_load_state("networkidle")
        sizes = page.eval_on_selector_all("img", "els => els.map(e => [e.complete, e.naturalWidth])")
        assert sizes and all(done and width > 0 for done, width in sizes), sizes
        page.wait_for_selector("mjx-container", timeout=15000)  # its math, typeset by the local MathJax

        page.goto(served + "/how-it-works/batchnorm/")  # a page of derivations
        page.wait_for_selector("mjx-container svg", timeout=15000)

        page.goto(served + "/reference/layers/")  # the API reference, from the docstrings
        assert page.locator("h2#scratchnn.layers.Conv2D, [id='scratchnn.layers.Conv2D']").count() >= 1

        page.goto(served + "/")
        page.keyboard.press("/")  # Material's search shortcut; "s" and "/" open it
        page.fill("input.md-search__input", "im2col")
        page.wait_for_selector(".md-search-result__item", timeout=15000)
        assert page.locator(".md-search-result__item").count() >= 1
        browser.close()
    assert not errors, errors
