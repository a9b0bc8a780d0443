"""Browser fixtures: Debian's Chromium driven by Playwright, the app served for real.

The app runs in werkzeug's threaded WSGI server on 127.0.0.1 (a free port) on the test's
own MariaDB database and Redis, CSRF and CSP on. Chromium is `/usr/bin/chromium` (apt
package `chromium`, installed by `scripts/bootstrap`); Playwright never downloads a
browser. Screenshots go to `artifacts/screenshots/` (git-ignored); with
`SURVEY_DOC_SCREENSHOTS=1` the key ones are also written, palette-reduced, to
`docs/screenshots/`.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, make_settings

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
ARTIFACTS = REPO_ROOT / "artifacts" / "screenshots"
DOC_SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture(scope="session")
def chromium():
    """One headless Chromium for the run (each test gets fresh contexts)."""
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed: run scripts/bootstrap")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        # Playwright gives the browser a new empty profile (user-data-dir) of its own.
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class LiveApp:
    """The app served on 127.0.0.1: its base URL and the Flask app (for the DB)."""

    url: str
    app: object
    server: object = field(repr=False)

    def cli(self, *args: str, input: str | None = None):
        """Run one of the app's Flask commands."""
        result = self.app.test_cli_runner().invoke(args=list(args), input=input)
        assert result.exit_code == 0, result.output
        return result


@pytest.fixture
def live_app(mariadb, database, redis_server, redis_db) -> Iterator[LiveApp]:
    """The app in a real threaded WSGI server on a free loopback port."""
    from werkzeug.serving import make_server

    from survey_app import create_app

    app = create_app(make_settings(mariadb, database, redis_server, redis_db),
                     SURVEY_KEEPALIVE_SECONDS=2, ANALYSIS_BOOTSTRAP_REPLICATES=200)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield LiveApp(f"http://127.0.0.1:{server.server_port}", app, server)
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture
def new_page(chromium):
    """Open pages in fresh browser contexts; console errors (CSP included) fail the test."""
    contexts, errors = [], []

    def open_page(viewport=DESKTOP, **options):
        context = chromium.new_context(viewport=viewport, accept_downloads=True, **options)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        return page

    yield open_page
    for context in contexts:
        context.close()
    # 4xx answers are expected in some tests (a form sent back) and logged as errors.
    real = [e for e in errors if "status of 4" not in e]
    assert not real, f"browser console errors: {real}"


def screenshot(target, name: str, *, doc: bool = False, **options) -> Path:
    """Save a PNG of a page or locator under artifacts/screenshots/ (and docs/screenshots/
    when asked and SURVEY_DOC_SCREENSHOTS=1)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    target.screenshot(path=str(path), **options)
    if doc and os.environ.get("SURVEY_DOC_SCREENSHOTS") == "1":
        from PIL import Image

        DOC_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        with Image.open(path) as image:
            image.convert("RGB").quantize(colors=128).save(DOC_SCREENSHOTS / f"{name}.png",
                                                          optimize=True)
    return path
