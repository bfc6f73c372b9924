"""Checks for the hands-on exercises, student notebooks and a batch grader.

In an exercise notebook::

    from dropoutlab.grading import check
    check("inverted_dropout", inverted_dropout)   # displays a pass/fail list

:func:`check` returns a :class:`Report`. Its checks are behavioural and
statistical (tolerances of six standard deviations of the statistic), and
when an answer is wrong they name the mistake they recognise. An exception,
a wrong type or a wrong shape from the learner's code becomes a line of
feedback, never an error.

For instructors, ``python -m dropoutlab.grading assign`` writes the student
notebooks and ``python -m dropoutlab.grading grade`` grades submissions; see
:mod:`dropoutlab.grading.notebooks` and :mod:`dropoutlab.grading.batch`.
"""

from __future__ import annotations

from ._core import EXERCISES, FALSE_FAILURE, SIGMAS, CheckResult, Exercise, Report
from .exercises import load_all as _load_all

__all__ = ["check", "exercise_ids", "Report", "CheckResult", "Exercise", "EXERCISES", "SIGMAS", "FALSE_FAILURE"]

DEFAULT_SEED = 0


def exercise_ids() -> tuple[str, ...]:
    """Every exercise id :func:`check` knows, sorted."""
    _load_all()
    return tuple(sorted(EXERCISES))


def check(exercise_id: str, answer, *, seed: int | None = None) -> Report:
    """Check a learner's answer to one exercise.

    Args:
        exercise_id: which exercise, e.g. ``"inverted_dropout"``; see :func:`exercise_ids`.
        answer: the learner's function (the function itself, not its result).
        seed: the seed the checks draw their data from, an int in [0, 2**63).
            ``None`` uses the default seed, 0, so a notebook prints the same
            report every run; an instructor grades with a seed of their own,
            so an answer that hard-codes numbers fails.

    Returns:
        A :class:`Report` with ``.passed``, ``.score``, ``.max_score``,
        ``.feedback`` (plain text) and ``.mistakes`` (codes of the known wrong
        answers it recognised). A notebook shows it as a pass/fail table.

    Raises:
        TypeError: ``exercise_id`` is not a string or ``seed`` not an int.
        ValueError: ``exercise_id`` is unknown or ``seed`` out of range.

    Example:
        >>> from dropoutlab.grading import check
        >>> report = check("inverted_dropout", lambda x, p, training=True, generator=None: x)
        >>> report.passed, "returns_x" in report.mistakes
        (False, True)
    """
    _load_all()
    if not isinstance(exercise_id, str):
        raise TypeError(f"exercise_id must be a string, got {exercise_id!r} of type {type(exercise_id).__name__}")
    if exercise_id not in EXERCISES:
        known = ", ".join(sorted(EXERCISES))
        raise ValueError(f"exercise_id must be one of {known}; got {exercise_id!r}")
    if seed is None:
        seed = DEFAULT_SEED
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int or None, got {seed!r} of type {type(seed).__name__}")
    if not 0 <= seed < 2**63:
        raise ValueError(f"seed must be in [0, 2**63), got {seed}")
    return EXERCISES[exercise_id].grade(answer, seed)


_load_all()  # register every exercise, so EXERCISES is complete on import
