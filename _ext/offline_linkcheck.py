"""Sphinx's linkcheck for the links inside the book; the web only when asked.

CI has no network, so ``make linkcheck`` ignores every http(s) URL and checks the
local links (files the pages point at). ``make linkcheck-external`` sets
``LINKCHECK_EXTERNAL=1`` and checks the external links as well.
"""

from __future__ import annotations

import os

EXTERNAL = r"^https?://"


def ignore_external(app, config) -> None:
    if os.environ.get("LINKCHECK_EXTERNAL") != "1":
        config.linkcheck_ignore = [*config.linkcheck_ignore, EXTERNAL]


def setup(app):
    app.connect("config-inited", ignore_external)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
