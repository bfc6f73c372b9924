"""Fixtures of the browser suite: the built book, served on 127.0.0.1, seen in Chromium.

The book must be built first (``make book``; ``make test`` builds it before this
suite). Chromium is Debian's (``/usr/bin/chromium``, or ``DROPOUT_CHROMIUM``), driven
by Playwright with ``--headless --no-sandbox``; Playwright never downloads a browser.
Every request to a host other than 127.0.0.1 is blocked and recorded, so the suite
proves that the book works offline.

The fixtures live here, not in a ``conftest.py``: ``tests/conftest.py`` is imported
as ``conftest`` by the library tests, and a second one would shadow it. The test
module registers this one with ``pytest_plugins``; it has no asserts to rewrite
(PYTEST_DONT_REWRITE), since the test module imports it first.
"""

from __future__ import annotations

import functools
import os
import threading
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
BOOK = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = os.environ.get("DROPOUT_CHROMIUM", "/usr/bin/chromium")
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
# the folders of assets, not pages
ASSET_DIRS = {"_static", "_sources", "_downloads", "_images"}
# generous: a page loads in well under a second; a loaded CI machine may be slow
TIMEOUT_MS = 60_000


def built_pages() -> list[str]:
    """Every HTML page of the built book, relative to its root."""
    if not (BOOK / "index.html").is_file():
        return ["index.html"]  # the `book` fixture fails with the reason
    return sorted(p.relative_to(BOOK).as_posix() for p in BOOK.rglob("*.html")
                  if p.relative_to(BOOK).parts[0] not in ASSET_DIRS)


def local_file(url: str, base_url: str) -> Path | None:
    """The built file a local URL serves, or None for a URL off this book."""
    if not url.startswith(base_url):
        return None
    path = unquote(urlsplit(url).path)[len(urlsplit(base_url).path):]
    target = BOOK / path
    return target / "index.html" if target.is_dir() else target


@dataclass
class Visit:
    """A page opened in its own browser context, with what went wrong while loading."""

    page: object
    url: str
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    blocked_requests: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        return ([f"console error: {e}" for e in self.console_errors]
                + [f"failed request: {r}" for r in self.failed_requests]
                + [f"request off this machine (blocked): {r}" for r in self.blocked_requests])


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def book() -> Path:
    if not (BOOK / "index.html").is_file():
        pytest.fail(f"no built book at {BOOK}: run `make book` first (`make test` builds it before this suite)")
    return BOOK


@pytest.fixture(scope="session")
def base_url(book):
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(book)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).is_file():
        pytest.fail(f"no Chromium at {CHROMIUM}: `make test` installs Debian's chromium with apt; "
                    "elsewhere set CHROMIUM=/path/to/chromium (make) or DROPOUT_CHROMIUM (pytest)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=["--headless", "--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def visit(browser, base_url):
    """Open a page of the book (path relative to its root) and wait until it settled."""
    contexts = []

    def open_page(path: str, *, color_scheme: str = "light", width: int = 1280) -> Visit:
        context = browser.new_context(color_scheme=color_scheme, viewport={"width": width, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        visit = Visit(page=context.new_page(), url=urljoin(base_url, path))

        def route(route):
            if urlsplit(route.request.url).hostname in LOCAL_HOSTS:
                route.continue_()
            else:
                visit.blocked_requests.append(route.request.url)
                route.abort("blockedbyclient")

        context.route("**/*", route)
        page = visit.page
        page.on("console", lambda m: visit.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: visit.console_errors.append(f"uncaught: {e}"))
        page.on("requestfailed", lambda r: visit.failed_requests.append(f"{r.url} ({r.failure})"))
        page.on("response", lambda r: visit.failed_requests.append(f"{r.url} (HTTP {r.status})")
                if r.status >= 400 else None)
        page.goto(visit.url, wait_until="load")
        page.wait_for_load_state("networkidle")
        # MathJax 3 typesets after load; its startup promise resolves when it is done
        page.evaluate("""async () => {
            if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
        }""")
        return visit

    yield open_page
    for context in contexts:
        context.close()
