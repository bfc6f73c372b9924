"""Measure what a reader meets on each notebook page: the core path's reading time,
the computed numbers in running prose and the lines of code shown unfolded.

    python tools/chapter_stats.py [NOTEBOOK ...]      # default: chapters/*.ipynb
    python tools/chapter_stats.py --markdown          # a Markdown table

The rules (the same as `_ext/reader_info.py` uses for the line under each title):

- **Core path**: everything except sections whose heading starts with "Going further"
  (up to the next heading of the same or a higher level), the "Exercises" and
  "References" sections, and dropdowns (a fence with `:class: dropdown`, a
  `{dropdown}`, or an exercise solution). Prose is read at 200 words a minute, unfolded
  code at 30 lines a minute.
- **Computed numbers in running prose**: `{glue:text}` and `{glue}` roles in
  paragraphs, anywhere on the page, outside tables and dropdowns.
- **Unfolded code lines**: non-blank source lines of code cells shown open, that is
  without a `remove-cell`, `remove-input`, `hide-input` or `hide-cell` tag.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path

PROSE_WORDS_PER_MINUTE = 200
CODE_LINES_PER_MINUTE = 30
HIDDEN_TAGS = {"remove-cell", "remove-input", "hide-input", "hide-cell"}
OFF_CORE_SECTIONS = re.compile(r"^(going further|exercises|references)\b", re.IGNORECASE)
GLUE_ROLE = re.compile(r"\{glue(?::text)?\}`[^`]*`")
HEADING = re.compile(r"^(#{1,6})\s+(.*)")
FENCE_OPEN = re.compile(r"^(`{3,}|:{3,})\s*\{([\w:-]+)\}")


def _strip_markup(text: str) -> str:
    """Words as read: roles keep their text, math counts as one word per formula."""
    text = re.sub(r"\$\$.*?\$\$", " formula ", text, flags=re.S)
    text = re.sub(r"\$[^$\n]+\$", " x ", text)
    text = GLUE_ROLE.sub(" 0 ", text)
    text = re.sub(r"\{[\w:-]+\}`([^`<]*)(<[^`]*>)?`", r"\1", text)
    text = re.sub(r"^\s*(`{3,}|:{3,}).*$", " ", text, flags=re.M)
    text = re.sub(r"^\s*:\w[\w-]*:.*$", " ", text, flags=re.M)
    text = re.sub(r"^\s*\(.*\)=\s*$", " ", text, flags=re.M)
    text = re.sub(r"<[^>]+>", " ", text)
    return text


def _markdown_blocks(source: str):
    """Yield (line, in_dropdown, in_table) for each line of a markdown cell."""
    stack: list[tuple[str, bool]] = []  # (fence marker, is dropdown)
    lines = source.splitlines()
    for i, line in enumerate(lines):
        stripped = line.strip()
        opened = FENCE_OPEN.match(stripped)
        if opened:
            marker, directive = opened.group(1), opened.group(2)
            options = "\n".join(lines[i + 1 : i + 6])
            dropdown = directive in {"dropdown", "solution", "solution-start"} or (
                ":class: dropdown" in options
            )
            if directive == "solution-start":
                stack.append(("solution", True))
            elif directive != "solution-end":
                stack.append((marker, dropdown))
            yield line, any(d for _, d in stack), False
            continue
        if stack and stack[-1][0] != "solution" and stripped == stack[-1][0]:
            yield line, any(d for _, d in stack), False
            stack.pop()
            continue
        yield line, any(d for _, d in stack), stripped.startswith("|")


def measure(path: Path) -> dict:
    nb = json.loads(path.read_text())
    words = code_lines = shown_code_lines = prose_numbers = 0
    off_core_level = None  # heading level of the current off-core section
    in_solution = False
    for cell in nb["cells"]:
        source = "".join(cell["source"])
        tags = set(cell.get("metadata", {}).get("tags", []))
        if cell["cell_type"] == "markdown":
            if "solution-start" in source:
                in_solution = True
            for line, in_dropdown, in_table in _markdown_blocks(source):
                heading = HEADING.match(line)
                if heading:
                    level = len(heading.group(1))
                    if off_core_level is not None and level <= off_core_level:
                        off_core_level = None
                    if off_core_level is None and OFF_CORE_SECTIONS.match(heading.group(2)):
                        off_core_level = level
                hidden = in_dropdown or in_solution
                if not hidden and not in_table:
                    prose_numbers += len(GLUE_ROLE.findall(line))
                if off_core_level is None and not hidden:
                    words += len(_strip_markup(line).split())
            if "solution-end" in source:
                in_solution = False
        elif cell["cell_type"] == "code":
            if tags & HIDDEN_TAGS or "install-dropoutlab" in tags:
                continue
            lines = [line for line in source.splitlines() if line.strip()]
            # code in a solution or a Going-further section is off the core path,
            # but the page still shows it unfolded
            shown_code_lines += len(lines)
            if off_core_level is None and not in_solution:
                code_lines += len(lines)
    minutes = words / PROSE_WORDS_PER_MINUTE + code_lines / CODE_LINES_PER_MINUTE
    return {
        "page": path.stem,
        "core_minutes": max(1, math.ceil(minutes)),
        "prose_numbers": prose_numbers,
        "unfolded_code_lines": shown_code_lines,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)
    root = Path(__file__).resolve().parent.parent
    paths = args.notebooks or sorted((root / "chapters").glob("*.ipynb"))
    rows = [measure(p) for p in paths]
    if args.markdown:
        print("| page | core path (min) | numbers in prose | unfolded code lines |")
        print("|---|---:|---:|---:|")
        for r in rows:
            print(f"| {r['page']} | {r['core_minutes']} | {r['prose_numbers']} | {r['unfolded_code_lines']} |")
    else:
        for r in rows:
            print(f"{r['page']:<22} core {r['core_minutes']:>3} min   numbers in prose "
                  f"{r['prose_numbers']:>3}   unfolded code lines {r['unfolded_code_lines']:>4}")


if __name__ == "__main__":
    main()
