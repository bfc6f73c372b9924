"""The ``dropout_ridge_solution`` and ``dropout_sgd`` checks: right answers pass however
they are written, each known wrong answer is rejected with its own hint, and the
exact moment computation behind the SGD tolerance agrees with a simulation."""

import math

import numpy as np
import pytest
import torch

from dropoutlab.functional import dropout
from dropoutlab.grading import EXERCISES, check

SEEDS = [0, 1, 12345]


# ==== dropout_ridge_solution ==========================================================

def _gram(X):
    return X.T @ X


def ridge_solve(X, y, p):
    G = _gram(X)
    return torch.linalg.solve(G + p / (1 - p) * torch.diag(torch.diag(G)), X.T @ y)


def ridge_inverse(X, y, p):
    q = 1 - p
    G = X.T @ X
    A = G.clone()
    A.diagonal().mul_(1 + p / q)  # the diagonal gets the extra p/q
    return torch.linalg.inv(A) @ (X.T @ y)


def ridge_augmented_lstsq(X, y, p):
    # least squares on X stacked over sqrt(p/q) diag(column norms): the penalty as extra rows
    extra = torch.diag(X.norm(dim=0)) * math.sqrt(p / (1 - p))
    Xa = torch.cat([X, extra])
    ya = torch.cat([y, torch.zeros(X.shape[1], dtype=y.dtype)])
    return torch.linalg.lstsq(Xa, ya[:, None]).solution.ravel()


def ridge_numpy_cholesky(X, y, p):
    Xn, yn = X.numpy(), y.numpy()
    A = Xn.T @ Xn + p / (1 - p) * np.diag((Xn**2).sum(0))
    L = np.linalg.cholesky(A)
    z = np.linalg.solve(L, Xn.T @ yn)
    return torch.from_numpy(np.linalg.solve(L.T, z))


RIDGE_CORRECT = [ridge_solve, ridge_inverse, ridge_augmented_lstsq, ridge_numpy_cholesky]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("answer", RIDGE_CORRECT, ids=lambda f: f.__name__)
def test_ridge_correct_variants_pass(answer, seed):
    report = check("dropout_ridge_solution", answer, seed=seed)
    assert report.passed, report.feedback
    assert report.score == report.max_score and report.mistakes == ()


def _with(lam_of_p, penalty):
    def solve(X, y, p):
        G = X.T @ X
        extra = {"diag": torch.diag(G.diagonal()), "eye": torch.eye(X.shape[1], dtype=X.dtype), "gram": G}[penalty]
        return torch.linalg.solve(G + lam_of_p(p, X) * extra, X.T @ y)
    return solve


ridge_ols = _with(lambda p, X: 0.0, "diag")
ridge_inverted_ratio = _with(lambda p, X: (1 - p) / p, "diag")
ridge_lambda_p = _with(lambda p, X: p, "diag")
ridge_lambda_pq = _with(lambda p, X: p * (1 - p), "diag")
ridge_isotropic = _with(lambda p, X: p / (1 - p), "eye")
ridge_scaled_gram = _with(lambda p, X: p / (1 - p), "gram")
ridge_mean_energy = _with(lambda p, X: p / (1 - p) / X.shape[0], "diag")


def ridge_non_inverted(X, y, p):
    # minimises E||y - (M * X) w||^2 = ||y - q X w||^2 + p q sum_j w_j^2 ||X_j||^2
    q = 1 - p
    G = X.T @ X
    return torch.linalg.solve(q * q * G + p * q * torch.diag(G.diagonal()), q * X.T @ y)


def ridge_float32(X, y, p):
    return ridge_solve(X.float(), y.float(), p).double()


def ridge_returns_float32(X, y, p):
    return ridge_solve(X.float(), y.float(), p)


def ridge_returns_numpy(X, y, p):
    return ridge_solve(X, y, p).numpy()


def ridge_column(X, y, p):
    return ridge_solve(X, y, p)[:, None]


RIDGE_WRONG = [
    (ridge_ols, "ols"),
    (ridge_inverted_ratio, "inverted_ratio"),
    (ridge_lambda_p, "lambda_p"),
    (ridge_lambda_pq, "lambda_pq"),
    (ridge_isotropic, "isotropic_ridge"),
    (ridge_scaled_gram, "scaled_gram"),
    (ridge_non_inverted, "non_inverted"),
    (ridge_mean_energy, "mean_energy"),
    (ridge_float32, "float32"),
    (ridge_returns_float32, "wrong_dtype"),
    (ridge_returns_numpy, "wrong_type"),
    (ridge_column, "wrong_shape"),
]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("answer", "mistake"), RIDGE_WRONG, ids=[m for _, m in RIDGE_WRONG])
def test_ridge_wrong_answer_is_named(answer, mistake, seed):
    report = check("dropout_ridge_solution", answer, seed=seed)
    assert not report.passed
    assert mistake in report.mistakes, report.feedback


def test_ridge_ols_fails_on_a_wide_design():
    report = check("dropout_ridge_solution", ridge_ols, seed=0)
    assert [r.passed for r in report.results] == [True, False, True, False], report.feedback


def test_ridge_every_declared_mistake_is_exercised():
    assert set(EXERCISES["dropout_ridge_solution"].mistakes) <= {m for _, m in RIDGE_WRONG}


# ==== dropout_sgd =====================================================================

def sgd_loop(X, y, p, steps, lr, generator):
    n, d = X.shape
    q = 1 - p
    w = torch.zeros(d, dtype=X.dtype)
    total = torch.zeros_like(w)
    for t in range(1, steps + 1):
        keep = torch.rand(X.shape, generator=generator, dtype=X.dtype) >= p
        Xt = keep * X / q
        w = w - lr * (2 / n) * Xt.T @ (Xt @ w - y)
        if t > steps // 2:
            total += w
    return total / (steps - steps // 2)


def sgd_predrawn_bernoulli(X, y, p, steps, lr, generator):
    # all masks drawn at once, iterates kept in a list
    q = 1 - p
    masks = torch.bernoulli(torch.full((steps, *X.shape), q, dtype=X.dtype), generator=generator)
    w, iterates = torch.zeros(X.shape[1], dtype=X.dtype), []
    for mask in masks:
        Xt = mask * X / q
        residual = y - Xt @ w
        w = w + lr * 2 * Xt.T @ residual / X.shape[0]
        iterates.append(w)
    return torch.stack(iterates[steps // 2:]).mean(dim=0)


def sgd_library_dropout(X, y, p, steps, lr, generator):
    # the library's inverted dropout, with a float32 `rand > p` elsewhere in spirit
    w = torch.zeros(X.shape[1], dtype=X.dtype)
    average, count = torch.zeros_like(w), 0
    for t in range(steps):
        Xt = dropout(X, p, generator=generator)
        w = w - lr * 2 * (Xt.T @ (Xt @ w - y)) / len(y)
        if t >= steps // 2:
            average, count = average + w, count + 1
    return average / count


def sgd_autograd_float32_rand(X, y, p, steps, lr, generator):
    q = 1 - p
    w = torch.zeros(X.shape[1], dtype=X.dtype, requires_grad=True)
    total = torch.zeros(X.shape[1], dtype=X.dtype)
    for t in range(1, steps + 1):
        keep = (torch.rand(X.shape, generator=generator) > p).to(X.dtype)  # float32 uniforms
        loss = ((y - (keep * X / q) @ w) ** 2).mean()
        (grad,) = torch.autograd.grad(loss, w)
        with torch.no_grad():
            w -= lr * grad
        if t > steps // 2:
            total += w.detach()
    return total / (steps - steps // 2)


SGD_CORRECT = [sgd_loop, sgd_predrawn_bernoulli, sgd_library_dropout, sgd_autograd_float32_rand]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("answer", SGD_CORRECT, ids=lambda f: f.__name__)
def test_sgd_correct_variants_pass(answer, seed):
    report = check("dropout_sgd", answer, seed=seed)
    assert report.passed, report.feedback
    assert report.score == report.max_score and report.mistakes == ()


def _sgd(*, mask_fn=None, rescale=True, apply=True, step_scale=None, window="right", fresh=True,
         generator_fn=None):
    """A dropout-SGD loop with one thing changed."""
    def answer(X, y, p, steps, lr, generator):
        n, d = X.shape
        q = 1 - p
        gen = generator_fn(generator) if generator_fn else generator
        draw = mask_fn or (lambda: torch.rand(X.shape, generator=gen, dtype=X.dtype) >= p)
        if mask_fn:
            draw = lambda: mask_fn(X, p, gen)  # noqa: E731
        w = torch.zeros(d, dtype=X.dtype)
        iterates = [w]
        keep = draw()
        for _ in range(steps):
            if fresh:
                keep = draw()
            Xt = X * keep if apply else X
            if rescale:
                Xt = Xt / q
            grad = Xt.T @ (Xt @ w - y) * (step_scale(n) if step_scale else 2 / n)
            w = w - lr * grad
            iterates.append(w)
        it = torch.stack(iterates)
        return {"right": it[steps // 2 + 1:], "last": it[-1:], "all": it[1:], "with_w0": it}[window].mean(0)
    return answer


sgd_sum_loss = _sgd(step_scale=lambda n: 2.0)
sgd_no_factor_two = _sgd(step_scale=lambda n: 1.0 / n)
sgd_last_iterate = _sgd(window="last")
sgd_average_all = _sgd(window="all")
sgd_average_with_w0 = _sgd(window="with_w0")
sgd_mask_not_applied = _sgd(apply=False, rescale=False)
sgd_rescaled_not_masked = _sgd(apply=False)
sgd_no_rescale = _sgd(rescale=False)
sgd_keep_drop_mixup = _sgd(mask_fn=lambda X, p, g: torch.rand(X.shape, generator=g, dtype=X.dtype) < p)
sgd_shared_across_rows = _sgd(mask_fn=lambda X, p, g: torch.rand(X.shape[1], generator=g, dtype=X.dtype) >= p)
sgd_whole_rows = _sgd(mask_fn=lambda X, p, g: torch.rand(X.shape[0], 1, generator=g, dtype=X.dtype) >= p)
sgd_one_mask_reused = _sgd(fresh=False)
sgd_ignore_generator = _sgd(generator_fn=lambda g: None)
sgd_own_generator = _sgd(generator_fn=lambda g: torch.Generator().manual_seed(0))


def sgd_returns_float32(X, y, p, steps, lr, generator):
    return sgd_loop(X, y, p, steps, lr, generator).float()


def sgd_returns_list(X, y, p, steps, lr, generator):
    return sgd_loop(X, y, p, steps, lr, generator).tolist()


def sgd_raises(X, y, p, steps, lr, generator):
    return X @ torch.ones(X.shape[1] + 1, dtype=X.dtype)


SGD_WRONG = [
    (sgd_sum_loss, "gradient_scale"),
    (sgd_no_factor_two, "gradient_scale"),
    (sgd_last_iterate, "last_iterate"),
    (sgd_average_all, "average_window"),
    (sgd_average_with_w0, "average_window"),
    (sgd_mask_not_applied, "mask_not_applied"),
    (sgd_rescaled_not_masked, "mask_not_applied"),
    (sgd_no_rescale, "no_rescale"),
    (sgd_keep_drop_mixup, "keep_drop_mixup"),
    (sgd_shared_across_rows, "shared_across_rows"),
    (sgd_whole_rows, "whole_rows"),
    (sgd_one_mask_reused, "one_mask_reused"),
    (sgd_ignore_generator, "ignore_generator"),
    (sgd_own_generator, "own_generator"),
    (sgd_returns_float32, "wrong_dtype"),
    (sgd_returns_list, "wrong_type"),
    (sgd_raises, "raised"),
]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("answer", "mistake"), SGD_WRONG, ids=[m for _, m in SGD_WRONG])
def test_sgd_wrong_answer_is_named(answer, mistake, seed):
    report = check("dropout_sgd", answer, seed=seed)
    assert not report.passed
    assert mistake in report.mistakes, report.feedback


def test_sgd_every_declared_mistake_is_exercised():
    assert set(EXERCISES["dropout_sgd"].mistakes) <= {m for _, m in SGD_WRONG}


# ==== stubs ===========================================================================

@pytest.mark.parametrize("exercise_id", ["dropout_ridge_solution", "dropout_sgd"])
def test_stub_is_not_implemented(exercise_id):
    def stub(*args):
        raise NotImplementedError("not implemented yet")

    report = check(exercise_id, stub)
    assert report.mistakes == ("not_implemented",)
    assert report.score == 0


# ==== the tolerances behind the checks =================================================

def test_exact_mean_squared_distance_matches_simulation():
    from dropoutlab.grading.exercises import dropout_ridge as ex
    from dropoutlab.grading._core import Probe

    X, y = ex._sgd_design(Probe(EXERCISES["dropout_sgd"], 3), 30)
    p, steps, lr, chains = ex.SGD_P, 40, ex.SGD_LR, 2000
    exact = ex._mean_sq_distance(X, y, p, steps, lr)
    g = torch.Generator().manual_seed(0)
    w, total = torch.zeros(chains, X.shape[1], dtype=X.dtype), torch.zeros(chains, X.shape[1], dtype=X.dtype)
    for t in range(1, steps + 1):
        Xt = X * (torch.rand(chains, *X.shape, generator=g, dtype=X.dtype) >= p) / (1 - p)
        residual = torch.bmm(Xt, w[:, :, None]).squeeze(2) - y
        w = w - lr * 2 / X.shape[0] * torch.bmm(Xt.transpose(1, 2), residual[:, :, None]).squeeze(2)
        if t > steps // 2:
            total += w
    sq = ((total / (steps - steps // 2)) - ex._reference(X, y, p)).square().sum(1)
    sigma = sq.std().item() / math.sqrt(chains)  # standard error of the Monte Carlo mean
    assert abs(sq.mean().item() - exact) <= 6 * sigma, (sq.mean().item(), exact, sigma)


def test_sgd_tolerance_separates_the_mistakes():
    from dropoutlab.grading.exercises import dropout_ridge as ex
    from dropoutlab.grading._core import Probe

    for seed in SEEDS + [7, 99]:
        X, y = ex._sgd_design(Probe(EXERCISES["dropout_sgd"], seed), 30)
        w_star, ols = ex._reference(X, y, ex.SGD_P), ex._reference(X, y, 0.0)
        tau = ex.TAU_FACTOR * math.sqrt(ex._mean_sq_distance(X, y, ex.SGD_P, ex.SGD_STEPS, ex.SGD_LR))
        assert tau < 0.15 * w_star.norm()
        assert tau < 0.5 * (ols - w_star).norm()
    # C(15, 8) r^8 = 2e-9 with r = 1/TAU_FACTOR^2
    assert math.comb(15, 8) * ex.TAU_FACTOR ** -16 == pytest.approx(ex.FALSE_FAILURE)


def test_ridge_candidates_are_far_apart():
    from dropoutlab.grading.exercises import dropout_ridge as ex
    from dropoutlab.grading._core import Probe

    for seed in SEEDS:
        X, y = ex._ridge_design(Probe(EXERCISES["dropout_ridge_solution"], seed), 0)
        for p in ex.RIDGE_PS:
            values = [ex._reference(X, y, p), *ex._ridge_candidates(X, y, p).values()]
            tol = ex._float_tolerance(X, p)
            assert tol < 1e-8
            for i, a in enumerate(values):
                for b in values[i + 1:]:
                    assert (a - b).norm() / values[0].norm() > 1e-3
