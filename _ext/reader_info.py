"""Show each notebook page's estimated reading time and its execution time.

The line goes under the page title: "About 12 min to read · executed in 31.0 s".
The reading time is the core path's: the prose at ``PROSE_WORDS_PER_MINUTE`` and the
code shown unfolded at ``CODE_LINES_PER_MINUTE``. Cell outputs, dropdowns (folded
details, exercise solutions) and the sections a reader may skip ("Going further: …",
"Exercises", "References") are not counted; ``tools/chapter_stats.py`` applies the
same rule to the notebook sources. The execution
time is myst-nb's execution data, the same numbers as the execution-statistics page
(for a notebook taken from the cache: the run that filled the cache).
"""

from __future__ import annotations

import math

from docutils import nodes
from myst_nb.sphinx_ import NbMetadataCollector

PROSE_WORDS_PER_MINUTE = 200
CODE_LINES_PER_MINUTE = 30


OFF_CORE_SECTIONS = ("going further", "exercises", "references")
FOLDED_CLASSES = {"cell_output", "tag_hide-input", "dropdown", "solution"}


def _skipped(node: nodes.Node) -> bool:
    """True inside a cell output, a folded cell or dropdown, or an off-core section."""
    while node is not None:
        if isinstance(node, nodes.Element):
            if FOLDED_CLASSES & set(node.get("classes", [])):
                return True
            if isinstance(node, nodes.section) and node.children:
                title = node.children[0]
                if isinstance(title, nodes.title) and title.astext().strip().lower().startswith(OFF_CORE_SECTIONS):
                    return True
        node = node.parent
    return False


def reading_minutes(doctree: nodes.document) -> int:
    """Estimated minutes to read the page, rounded up, at least 1."""
    words = 0
    code_lines = 0
    for block in doctree.findall(nodes.literal_block):
        if not _skipped(block):
            code_lines += len(block.astext().splitlines())
    for text in doctree.findall(nodes.Text):
        parent = text.parent
        if isinstance(parent, (nodes.literal_block, nodes.raw, nodes.math_block, nodes.comment)):
            continue
        if _skipped(parent):
            continue
        words += len(text.astext().split())
    minutes = words / PROSE_WORDS_PER_MINUTE + code_lines / CODE_LINES_PER_MINUTE
    return max(1, math.ceil(minutes))


def add_reader_info(app, doctree: nodes.document, docname: str) -> None:
    exec_data = NbMetadataCollector.get_exec_data(app.env, docname)
    if not exec_data:
        return  # not a notebook page
    sections = list(doctree.findall(nodes.section))
    if not sections:
        return
    minutes = reading_minutes(doctree)
    line = nodes.paragraph(classes=["reader-info"])
    line += nodes.inline(text=f"About {minutes} min to read", classes=["reading-time"])
    line += nodes.Text(" · ")
    runtime = exec_data.get("runtime")
    if exec_data.get("succeeded") and runtime is not None:
        line += nodes.inline(text=f"executed in {runtime:.1f} s", classes=["execution-time"])
    else:
        line += nodes.inline(text="not executed", classes=["execution-time"])
    title = sections[0].next_node(nodes.title)
    sections[0].insert(sections[0].index(title) + 1 if title is not None else 0, line)


def setup(app):
    app.connect("doctree-resolved", add_reader_info)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
