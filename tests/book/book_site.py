"""What the browser suite's fixtures and tests share: paths, the page list, Visit.

A module of its own (not ``conftest``) so that importing it never depends on which
``conftest.py`` pytest loaded last.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

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
