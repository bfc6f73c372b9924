"""The machinery every exercise shares: reports, the registry and the probe.

An exercise is a list of *checks*. Each check calls the learner's answer on
data drawn from the grading seed, looks at what comes back, and either passes
or raises :class:`Mistake` with the code of a known wrong answer (or a plain
description when the answer is wrong in a way the exercise does not know).
The runner turns every outcome, including the learner's own exceptions, into
a line of the :class:`Report`; it never lets one escape.

Statistical checks allow ``SIGMAS`` standard deviations of the statistic they
test. One such check fails a correct answer with probability
``2 * Phi(-6) = 2.0e-9``; an exercise runs fewer than 50 of them, so a correct
answer fails an exercise with probability below ``1e-7``, whatever the seed.
"""

from __future__ import annotations

import html
import math
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

SIGMAS = 6.0
FALSE_FAILURE = math.erfc(SIGMAS / math.sqrt(2.0))  # 2 * Phi(-6), per check

NOT_IMPLEMENTED = "not implemented yet"


class Mistake(Exception):
    """Raised by a check: the answer is wrong.

    Args:
        code: a key of the exercise's ``mistakes`` (a known wrong answer), or
            ``None`` for a wrong answer the exercise cannot name.
        detail: what was measured, e.g. ``"kept values are 1.00 x, expected 1.43 x"``.
    """

    def __init__(self, code: str | None, detail: str = ""):
        super().__init__(code, detail)
        self.code = code
        self.detail = detail


class LearnerError(Exception):
    """The learner's code raised; carries a one-line account of where and what."""

    def __init__(self, call: str, error: BaseException):
        self.call = call
        self.error = error
        self.not_implemented = isinstance(error, NotImplementedError)
        super().__init__(f"{call} raised {type(error).__name__}: {error}")


@dataclass(frozen=True)
class CheckResult:
    """One line of a report."""

    name: str
    points: float
    max_points: float
    message: str = ""
    mistake: str | None = None

    @property
    def passed(self) -> bool:
        return self.points >= self.max_points


@dataclass(frozen=True)
class Report:
    """What :func:`dropoutlab.grading.check` returns.

    Attributes:
        exercise_id: the exercise checked.
        title: its human name.
        seed: the grading seed the data came from.
        results: one :class:`CheckResult` per check, in order.
    """

    exercise_id: str
    title: str
    seed: int
    results: tuple[CheckResult, ...]

    @property
    def score(self) -> float:
        return sum(r.points for r in self.results)

    @property
    def max_score(self) -> float:
        return sum(r.max_points for r in self.results)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def mistakes(self) -> tuple[str, ...]:
        """Codes of the named mistakes seen, first seen first, without repeats."""
        seen: dict[str, None] = {}
        for r in self.results:
            if r.mistake is not None:
                seen.setdefault(r.mistake, None)
        return tuple(seen)

    @property
    def feedback(self) -> str:
        """Plain text, a summary line and then PASS or FAIL for each check with its hint."""
        lines = [f"{self.title} ({self.exercise_id}): {_points(self.score)}/{_points(self.max_score)} points"]
        for r in self.results:
            lines.append(f"  {'PASS' if r.passed else 'FAIL'}  {r.name}")
            if r.message:
                lines.extend(f"        {line}" for line in r.message.splitlines())
        return "\n".join(lines)

    def summary(self) -> str:
        """The failed checks' messages on one line (for a CSV cell); "all checks pass" if none."""
        failed = [r for r in self.results if not r.passed]
        if failed and all(r.mistake == "not_implemented" for r in failed):
            return f"{NOT_IMPLEMENTED} ({len(failed)} of {len(self.results)} checks fail)"
        failed = [f"{r.name}: {r.message.splitlines()[0] if r.message else 'failed'}" for r in failed]
        return " | ".join(failed) if failed else "all checks pass"

    def to_dict(self) -> dict[str, Any]:
        return {
            "exercise_id": self.exercise_id,
            "seed": self.seed,
            "score": self.score,
            "max_score": self.max_score,
            "passed": self.passed,
            "mistakes": list(self.mistakes),
            "summary": self.summary(),
            "feedback": self.feedback,
        }

    def __str__(self) -> str:
        return self.feedback

    def __repr__(self) -> str:
        return self.feedback

    def _repr_html_(self) -> str:
        verdict = "all checks pass" if self.passed else "some checks fail"
        colour = "#009E73" if self.passed else "#D55E00"
        rows = []
        for r in self.results:
            mark, mark_colour = ("&#10004;", "#009E73") if r.passed else ("&#10008;", "#D55E00")
            message = html.escape(r.message).replace("\n", "<br>")
            rows.append(
                f"<tr><td style='color:{mark_colour};font-weight:bold;text-align:center'>{mark}</td>"
                f"<td style='text-align:left'>{html.escape(r.name)}"
                + (f"<br><span style='color:#555'>{message}</span>" if message else "")
                + f"</td><td>{_points(r.points)}/{_points(r.max_points)}</td></tr>"
            )
        return (
            "<div class='dropoutlab-report'>"
            f"<p><strong>{html.escape(self.title)}</strong> "
            f"<code>{html.escape(self.exercise_id)}</code>: "
            f"<strong style='color:{colour}'>{_points(self.score)}/{_points(self.max_score)} points, "
            f"{verdict}</strong></p>"
            "<table><thead><tr><th></th><th style='text-align:left'>check</th><th>points</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></div>"
        )


def _points(value: float) -> str:
    return f"{value:g}"


class Probe:
    """What a check uses to call the answer and to draw its data.

    Args:
        exercise: the exercise being graded.
        seed: the grading seed.
    """

    def __init__(self, exercise: "Exercise", seed: int):
        self.exercise = exercise
        self.seed = seed

    def generator(self, stream: int = 0) -> torch.Generator:
        """A CPU generator for data stream ``stream`` of this seed (streams are independent)."""
        return torch.Generator().manual_seed((self.seed * 1_000_003 + stream) % 2**63)

    def call(self, answer: Callable, *args, **kwargs):
        """Call the learner's ``answer``; its exceptions become a :class:`LearnerError`."""
        try:
            return answer(*args, **kwargs)
        except (Exception, SystemExit) as error:  # noqa: BLE001 - any learner exception becomes feedback
            raise LearnerError(_describe_call(self.exercise.answer_name, args, kwargs), error) from error

    def tensor(self, value, what: str, *, shape=None, dtype=None) -> torch.Tensor:
        """Check that ``value`` is a tensor (of ``shape`` and ``dtype`` if given) and return it."""
        if not isinstance(value, torch.Tensor):
            raise Mistake("wrong_type", f"{what} should be a torch.Tensor, got {type(value).__name__}")
        if shape is not None and tuple(value.shape) != tuple(shape):
            raise Mistake("wrong_shape", f"{what} should have shape {tuple(shape)}, got {tuple(value.shape)}")
        if dtype is not None and value.dtype != dtype:
            raise Mistake("wrong_dtype", f"{what} should have dtype {dtype}, got {value.dtype}")
        return value

    def number(self, value, what: str) -> float:
        """Check that ``value`` is a real number or a one-element tensor, and return it as a float."""
        if isinstance(value, torch.Tensor):
            if value.numel() != 1:
                raise Mistake("wrong_shape", f"{what} should be one number, got a tensor of shape {tuple(value.shape)}")
            return float(value.detach().reshape(()).item())
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Mistake("wrong_type", f"{what} should be a number, got {type(value).__name__}")
        return float(value)


def _describe_call(name: str, args, kwargs) -> str:
    def short(v):
        if isinstance(v, torch.Tensor):
            return f"<tensor {tuple(v.shape)}>"
        text = repr(v)
        return text if len(text) <= 30 else text[:27] + "..."

    parts = [short(a) for a in args] + [f"{k}={short(v)}" for k, v in kwargs.items()]
    return f"{name}({', '.join(parts)})"


# Mistakes every exercise can name without declaring them.
GENERIC_MISTAKES = {
    "not_implemented": NOT_IMPLEMENTED + ": replace the `raise NotImplementedError` line with your code.",
    "raised": "Your function raised an exception.",
    "wrong_type": "Your function returned the wrong kind of object.",
    "wrong_shape": "Your function returned a result of the wrong shape.",
    "wrong_dtype": "Your function returned a result of the wrong dtype.",
    "not_callable": "The answer must be the function itself (pass its name, without calling it).",
}


@dataclass
class _Check:
    name: str
    func: Callable[[Callable, Probe], None]
    points: float


@dataclass
class Exercise:
    """One graded exercise.

    Args:
        id: the id learners pass to :func:`~dropoutlab.grading.check`.
        title: its human name.
        notebook: stem of the notebook in ``hands_on/`` that holds it.
        answer_name: the name of the function the learner writes.
        mistakes: code -> explanation of each known wrong answer.
    """

    id: str
    title: str
    notebook: str
    answer_name: str
    mistakes: dict[str, str]
    checks: list[_Check] = field(default_factory=list)

    def check(self, name: str, points: float = 1.0):
        """Decorator: register ``func(answer, probe)`` as the next check, named ``name``."""

        def register(func):
            self.checks.append(_Check(name, func, points))
            return func

        return register

    def explain(self, code: str | None) -> str:
        if code is None:
            return ""
        if code in self.mistakes:
            return self.mistakes[code]
        return GENERIC_MISTAKES.get(code, code)

    def grade(self, answer, seed: int) -> Report:
        probe = Probe(self, seed)
        results = []
        # The answer may draw from torch's global RNG (generator=None); put it
        # back afterwards, so a check leaves the learner's notebook reproducible.
        rng_state = torch.random.get_rng_state()
        try:
            for chk in self.checks:
                results.append(self._run_one(chk, answer, probe))
        finally:
            torch.random.set_rng_state(rng_state)
        return Report(self.id, self.title, seed, tuple(results))

    def _run_one(self, chk: _Check, answer, probe: Probe) -> CheckResult:
        def failed(message: str, code: str | None) -> CheckResult:
            return CheckResult(chk.name, 0.0, chk.points, message, code)

        if not callable(answer):
            return failed(
                f"The answer should be your function `{self.answer_name}`, got a {type(answer).__name__}. "
                + GENERIC_MISTAKES["not_callable"],
                "not_callable",
            )
        try:
            with torch.enable_grad():
                chk.func(answer, probe)
        except Mistake as m:
            text = self.explain(m.code)
            message = f"{text} ({m.detail})" if (text and m.detail) else (text or m.detail)
            return failed(message, m.code)
        except LearnerError as e:
            if e.not_implemented:
                return failed(f"{self.answer_name}: {NOT_IMPLEMENTED}.", "not_implemented")
            return failed(f"{e}", "raised")
        except Exception as e:  # noqa: BLE001 - the answer returned something the check could not read
            where = traceback.extract_tb(e.__traceback__)[-1]
            return failed(
                f"The check could not read your answer: {type(e).__name__}: {e} "
                f"(at line {where.lineno} of {where.filename.rsplit('/', 1)[-1]}).",
                "unreadable",
            )
        return CheckResult(chk.name, chk.points, chk.points)


EXERCISES: dict[str, Exercise] = {}


def register(exercise: Exercise) -> Exercise:
    """Add ``exercise`` to the registry; ids must be unique."""
    if exercise.id in EXERCISES:
        raise RuntimeError(f"exercise id {exercise.id!r} is registered twice")
    for code in exercise.mistakes:
        if code in GENERIC_MISTAKES:
            raise RuntimeError(f"exercise {exercise.id!r} redefines the generic mistake {code!r}")
    EXERCISES[exercise.id] = exercise
    return exercise
