"""dropoutlab.grading.check and its reports, independent of any one exercise."""

import pytest
import torch

from dropoutlab.grading import EXERCISES, FALSE_FAILURE, check, exercise_ids
from dropoutlab.grading.notebooks import student_version


def correct(x, p, training=True, generator=None):
    if not training:
        return x
    if p == 1:
        return x * 0
    return x * (torch.rand(x.shape, generator=generator) >= p) / (1 - p)


def test_report_fields_and_display():
    report = check("inverted_dropout", correct)
    assert report.passed and report.score == report.max_score == len(report.results)
    assert report.exercise_id == "inverted_dropout" and report.seed == 0
    assert report.feedback.splitlines()[0].endswith(f"{report.max_score:g}/{report.max_score:g} points")
    html = report._repr_html_()
    assert html.count("<tr>") == len(report.results) + 1 and "&#10004;" in html and "&#10008;" not in html
    assert report.summary() == "all checks pass"


def test_failed_report_shows_the_hint_escaped_in_html():
    report = check("inverted_dropout", lambda x, p, training=True, generator=None: x * 0 + x)
    assert not report.passed and 0 < report.score < report.max_score
    assert "&#10008;" in report._repr_html_() and "<script" not in report._repr_html_()
    assert "FAIL" in report.feedback and report.summary() != "all checks pass"


def test_learner_exceptions_become_feedback():
    def broken(x, p, training=True, generator=None):
        raise KeyError("oops")

    def exits(x, p, training=True, generator=None):
        raise SystemExit(1)

    for answer, name in ((broken, "KeyError"), (exits, "SystemExit")):
        report = check("inverted_dropout", answer)
        assert report.score == 0 and report.mistakes == ("raised",)
        assert name in report.feedback


@pytest.mark.parametrize("exercise_id", exercise_ids())
def test_not_implemented_and_not_callable_on_every_exercise(exercise_id):
    def stub(*args, **kwargs):
        raise NotImplementedError("stub: not implemented yet")

    report = check(exercise_id, stub)
    assert report.score == 0 and report.mistakes == ("not_implemented",)
    assert report.summary().startswith("not implemented yet")
    report = check(exercise_id, 42)
    assert report.score == 0 and report.mistakes == ("not_callable",)


@pytest.mark.parametrize("exercise_id", exercise_ids())
def test_every_exercise_names_at_least_four_mistakes(exercise_id):
    exercise = EXERCISES[exercise_id]
    assert len(exercise.mistakes) >= 4
    assert all(len(hint) > 20 for hint in exercise.mistakes.values())
    assert len(exercise.checks) >= 3


def test_check_leaves_the_global_rng_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    check("inverted_dropout", correct)
    # the answer drew from the global RNG (generator=None) inside the checks
    assert torch.equal(torch.rand(3), expected)


def test_the_seed_defeats_a_memorised_answer():
    # Record what a correct answer returns on the default seed's data, then replay it.
    recorded = []

    def recorder(x, p, training=True, generator=None):
        out = correct(x, p, training, generator)
        recorded.append((x.detach().clone(), out.detach().clone()))
        return out

    assert check("inverted_dropout", recorder).passed
    calls = iter(range(10**6))

    def replay(x, p, training=True, generator=None):
        x_seen, out = recorded[next(calls) % len(recorded)]
        ratio = torch.where(x_seen != 0, out / x_seen, torch.zeros_like(out))
        return out + (x - x.detach()) * ratio  # the recorded values, with the right gradient

    assert check("inverted_dropout", replay, seed=0).passed
    calls = iter(range(10**6))
    report = check("inverted_dropout", replay, seed=987654321)
    assert not report.passed, report.feedback


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="exercise_id must be one of .*inverted_dropout.*got 'nope'"):
        check("nope", correct)
    with pytest.raises(TypeError, match="exercise_id"):
        check(3, correct)
    with pytest.raises(TypeError, match="seed"):
        check("inverted_dropout", correct, seed=1.5)
    with pytest.raises(ValueError, match=r"seed must be in \[0, 2\*\*63\), got -1"):
        check("inverted_dropout", correct, seed=-1)


def test_false_failure_bound():
    # 6 sigma two-sided, and fewer than 50 statistical checks per exercise
    assert FALSE_FAILURE < 2.1e-9 and 50 * FALSE_FAILURE < 1e-6


def test_student_version_rejects_unbalanced_markers():
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("def f():\n    # BEGIN SOLUTION\n    return 1\n")]
    with pytest.raises(ValueError, match="has no '# END SOLUTION'"):
        student_version(nb, "broken.ipynb")
    nb.cells = [nbformat.v4.new_code_cell("x = 1")]
    with pytest.raises(ValueError, match="no '# BEGIN SOLUTION' block"):
        student_version(nb, "plain.ipynb")
    nb.cells = [nbformat.v4.new_code_cell("def f(a):\n    y = 2\n    # BEGIN SOLUTION\n    return a\n    # END SOLUTION\n")]
    stub = student_version(nb, "ok.ipynb").cells[0].source
    assert stub == 'def f(a):\n    y = 2\n    raise NotImplementedError("f: not implemented yet")\n'
