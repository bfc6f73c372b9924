"""Two fixes that keep the pages free of JavaScript console errors.

- sphinx-thebe's configuration script is added twice (once by Jupyter Book, once by
  sphinx-book-theme); the second copy redeclares ``const THEBE_JS_URL`` and throws.
  We drop exact duplicates from each page's scripts.
- myst-nb's widget scripts leak from the pages with widgets onto every page; we keep
  them only where the page has widget state to render.
- pydata-sphinx-theme starts in mode ``""`` when the page context has no
  ``default_mode`` and logs "Got invalid theme mode"; we set it to ``auto`` (follow
  the reader's system), through ``html_context`` as that theme documents.
"""

from __future__ import annotations

import os

from myst_nb.sphinx_ import NbMetadataCollector


def default_mode_auto(app, config) -> None:
    config.html_context = {"default_mode": "auto", **config.html_context}


def _has_widgets(env, pagename: str) -> bool:
    try:
        return "ipywidgets_state" in NbMetadataCollector.get_js_files(env, pagename)
    except KeyError:  # genindex, search: not documents
        return False


def drop_duplicate_and_stray_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    # the same file or inline body, with the same attributes, added twice (the copies
    # may differ in priority only); keep the first in load order
    seen = set()
    if not _has_widgets(app.env, pagename):
        for path in app.config.nb_ipywidgets_js:  # mark them seen: they are dropped
            seen.update({(path, ()), (f"_static/{path}", ())})
    unique = []
    for script in sorted(scripts, key=lambda js: js.priority):
        key = (os.fspath(script.filename or ""), tuple(sorted((k, str(v)) for k, v in script.attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique  # in place: the handlers after this one add to the same list


def setup(app):
    app.connect("config-inited", default_mode_auto)
    # late, after myst-nb adds a page's widget scripts (priority 500)
    app.connect("html-page-context", drop_duplicate_and_stray_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
