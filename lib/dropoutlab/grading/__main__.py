"""Command line: ``python -m dropoutlab.grading {assign,grade,list}``.

    python -m dropoutlab.grading assign [--source hands_on] [--out _build/exercises]
    python -m dropoutlab.grading grade SUBMISSION.ipynb ... --out results.csv [--seed S] [--timeout SECONDS]
    python -m dropoutlab.grading list
"""

from __future__ import annotations

import argparse
import sys

from . import exercise_ids
from ._core import EXERCISES


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dropoutlab.grading", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    a = sub.add_parser("assign", help="write the student notebooks (solutions replaced by stubs)")
    a.add_argument("--source", default="hands_on", help="folder of solution notebooks (default: hands_on)")
    a.add_argument("--out", default="_build/exercises", help="where to write them (default: _build/exercises)")

    g = sub.add_parser("grade", help="grade submitted notebooks, one CSV row per submission x exercise")
    g.add_argument("submissions", nargs="+", help="submitted .ipynb files")
    g.add_argument("--out", default="results.csv", help="CSV to write (default: results.csv)")
    g.add_argument("--seed", type=int, default=None, help="grading seed (default: a random one, printed)")
    g.add_argument("--timeout", type=float, default=60.0, help="seconds per cell and per exercise (default: 60)")
    g.add_argument("--exercise", action="append", dest="exercises", metavar="ID",
                   help="grade only this exercise id (repeatable; default: what each notebook declares)")

    sub.add_parser("list", help="list the exercise ids")

    args = parser.parse_args(argv)
    if args.command == "assign":
        from .notebooks import assign

        try:
            written = assign(args.source, args.out)
        except (FileNotFoundError, ValueError) as error:
            parser.error(str(error))
        for path in written:
            print(f"wrote {path}")
        print(f"{len(written)} student notebook(s) in {args.out}")
        return 0
    if args.command == "grade":
        from .batch import grade

        try:
            rows = grade(args.submissions, out=args.out, seed=args.seed, timeout=args.timeout, exercises=args.exercises)
        except (FileNotFoundError, ValueError) as error:
            parser.error(str(error))
        print(f"{len(rows)} row(s) written to {args.out}")
        return 0
    for exercise_id in exercise_ids():
        ex = EXERCISES[exercise_id]
        print(f"{exercise_id:28s} {ex.notebook}.ipynb  def {ex.answer_name}(...)  {len(ex.checks)} checks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
