"""Closed forms in dropoutlab.theory against exact enumeration of every mask."""

import itertools
import re

import pytest
import torch

from dropoutlab.theory import (
    ambiguity_decomposition,
    dropout_ridge_penalty,
    dropout_ridge_solution,
    enumerate_masks,
    jensen_gap_quadratic,
    nwgm,
    preactivation_moments,
    unscaled_bias_variance,
)

F64 = torch.float64


def exact_moments(w, x, b, p, inverted):
    """Mean and variance of z_drop by summing over all 2**n masks."""
    q = 1 - p
    values, probs = [], []
    for mask in itertools.product([0.0, 1.0], repeat=len(w)):
        m = torch.tensor(mask, dtype=torch.float64)
        scale = 1 / q if inverted else 1.0
        values.append((m * w * x).sum() * scale + b)
        probs.append(q ** m.sum() * p ** (len(w) - m.sum()))
    values, probs = torch.stack(values), torch.stack(probs)
    mean = (probs * values).sum()
    return mean, (probs * (values - mean) ** 2).sum()


@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 0.8])
@pytest.mark.parametrize("inverted", [False, True])
def test_moments_match_enumeration(p, inverted):
    g = torch.Generator().manual_seed(0)
    w = torch.randn(8, generator=g, dtype=torch.float64)
    x = torch.randn(8, generator=g, dtype=torch.float64)
    mean, var = preactivation_moments(w, x, b=0.7, p=p, inverted=inverted)
    exact_mean, exact_var = exact_moments(w, x, 0.7, p, inverted)
    torch.testing.assert_close(mean, exact_mean, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(var, exact_var, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_bias_variance_match_enumeration(p):
    g = torch.Generator().manual_seed(1)
    w = torch.randn(6, generator=g, dtype=torch.float64)
    x = torch.randn(6, generator=g, dtype=torch.float64)
    bias_sq, var = unscaled_bias_variance(w, x, p)
    exact_mean, exact_var = exact_moments(w, x, 0.0, p, inverted=False)
    torch.testing.assert_close(bias_sq, (exact_mean - w @ x) ** 2, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(var, exact_var, rtol=1e-12, atol=1e-12)


def test_inverted_moments_reject_p_one():
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\), got 1.0"):
        preactivation_moments(torch.ones(2), torch.ones(2), p=1.0, inverted=True)


def test_shape_mismatch_is_named():
    with pytest.raises(ValueError, match=r"w and x must be 1-D tensors of the same length, got shapes \(2,\) and \(3,\)"):
        preactivation_moments(torch.ones(2), torch.ones(3))



def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


# enumerate_masks ----------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 5])
@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_enumerate_masks_matches_itertools(n, p):
    masks, probs = enumerate_masks(n, p)
    expected = torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=F64)
    assert masks.dtype == probs.dtype == F64
    torch.testing.assert_close(masks, expected, rtol=0, atol=0)
    kept = expected.sum(1)
    torch.testing.assert_close(probs, (1 - p) ** kept * p ** (n - kept), rtol=1e-15, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_enumerate_masks_probabilities_sum_to_one(dtype):
    masks, probs = enumerate_masks(16, 0.3, dtype=dtype)
    assert masks.shape == (2**16, 16) and probs.shape == (2**16,) and probs.dtype == dtype
    torch.testing.assert_close(probs.sum(), torch.tensor(1.0, dtype=dtype))


@pytest.mark.parametrize("bad_n", [0, -1, 25])
def test_enumerate_masks_rejects_n_out_of_range(bad_n):
    with pytest.raises(ValueError, match=rf"n must be in \[1, 24\], got {bad_n}"):
        enumerate_masks(bad_n, 0.5)


@pytest.mark.parametrize("bad_n", [2.0, True, "3", None])
def test_enumerate_masks_rejects_non_int_n(bad_n):
    with pytest.raises(TypeError, match="n must be an int"):
        enumerate_masks(bad_n, 0.5)


def test_enumerate_masks_rejects_bad_p_and_dtype():
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\], got 1.5"):
        enumerate_masks(3, 1.5)
    with pytest.raises(TypeError, match="dtype must be a floating-point torch.dtype"):
        enumerate_masks(3, 0.5, dtype=torch.int64)


# jensen_gap_quadratic -----------------------------------------------------------------


@pytest.mark.parametrize("p", [0.0, 0.2, 0.5, 1.0])
def test_jensen_gap_matches_enumeration(p):
    w, x = randn(7, seed=2), randn(7, seed=3)
    masks, probs = enumerate_masks(7, p)
    z = masks @ (w * x)  # non-inverted: kept inputs are not rescaled
    exact = probs @ z.square() - (probs @ z) ** 2
    torch.testing.assert_close(jensen_gap_quadratic(w, x, p), exact, rtol=1e-12, atol=1e-12)


def test_jensen_gap_worked_example():
    w, x = torch.tensor([2.0, 1.0, 2.0], dtype=F64), torch.tensor([2.0, 4.0, 1.0], dtype=F64)
    assert (w * x).square().sum().item() == 36.0
    torch.testing.assert_close(jensen_gap_quadratic(w, x, 0.3), torch.tensor(7.56, dtype=F64))


def test_jensen_gap_bad_inputs():
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\], got -0.1"):
        jensen_gap_quadratic(torch.ones(2), torch.ones(2), -0.1)
    with pytest.raises(ValueError, match=r"w and x must be 1-D .* got shapes \(2,\) and \(3,\)"):
        jensen_gap_quadratic(torch.ones(2), torch.ones(3), 0.5)
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        jensen_gap_quadratic(torch.ones(2), torch.ones(2, dtype=torch.int64), 0.5)


# dropout_ridge_penalty / dropout_ridge_solution -----------------------------------------


@pytest.mark.parametrize("p", [0.0, 0.2, 0.5, 0.9])
def test_ridge_penalty_matches_enumeration(p):
    n, d, q = 3, 2, 1 - p
    X, w, y = randn(n, d, seed=4), randn(d, seed=5), randn(n, seed=6)
    masks, probs = enumerate_masks(n * d, p)  # every mask of the (n, d) mask matrix: 2**6
    preds = (masks.view(-1, n, d) * X / q) @ w  # (64, n)
    expected_loss = probs @ (y - preds).square().sum(1)
    closed_form = (y - X @ w).square().sum() + dropout_ridge_penalty(X, w, p)
    torch.testing.assert_close(closed_form, expected_loss, rtol=1e-10, atol=1e-10)


def test_ridge_penalty_worked_example():
    X = torch.tensor([[1.0, 2.0], [3.0, 0.0], [0.0, 1.0]], dtype=F64)
    w = torch.tensor([1.0, -1.0], dtype=F64)
    torch.testing.assert_close(dropout_ridge_penalty(X, w, 0.2), torch.tensor(0.25 * 15, dtype=F64))
    assert dropout_ridge_penalty(X, w, 0.0).item() == 0.0


def expected_loss(X, y, w, p):
    return (y - X @ w).square().sum() + dropout_ridge_penalty(X, w, p)


@pytest.mark.parametrize("p", [0.0, 0.2, 0.5, 0.9])
def test_ridge_solution_is_a_stationary_point(p):
    X, y = randn(20, 5, seed=7), randn(20, seed=8)
    w = dropout_ridge_solution(X, y, p).requires_grad_()
    (grad,) = torch.autograd.grad(expected_loss(X, y, w, p), w)
    assert grad.abs().max().item() < 1e-10


@pytest.mark.parametrize("p", [0.0, 0.2, 0.5, 0.9])
def test_ridge_solution_matches_augmented_lstsq(p):
    # ||y - Xw||^2 + lam * sum_j ||X_j||^2 w_j^2 is least squares on [X; sqrt(lam) diag(||X_j||)].
    X, y = randn(20, 5, seed=9), randn(20, seed=10)
    lam = p / (1 - p)
    A = torch.cat([X, torch.diag((lam * X.square().sum(0)).sqrt())])
    b = torch.cat([y, torch.zeros(5, dtype=F64)])
    expected = torch.linalg.lstsq(A, b.unsqueeze(1)).solution.squeeze(1)
    torch.testing.assert_close(dropout_ridge_solution(X, y, p), expected, rtol=1e-10, atol=1e-10)


def test_ridge_solution_at_p_zero_is_least_squares():
    X, y = randn(30, 4, seed=11), randn(30, seed=12)
    ols = torch.linalg.lstsq(X, y.unsqueeze(1)).solution.squeeze(1)
    torch.testing.assert_close(dropout_ridge_solution(X, y, 0.0), ols, rtol=1e-10, atol=1e-10)


def test_ridge_solution_shrinks_orthogonal_columns_by_q():
    X = torch.linalg.qr(randn(10, 3, seed=13)).Q * torch.tensor([1.0, 2.0, 3.0], dtype=F64)
    y = randn(10, seed=14)
    ols = dropout_ridge_solution(X, y, 0.0)
    torch.testing.assert_close(dropout_ridge_solution(X, y, 0.4), 0.6 * ols, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_ridge_solution_keeps_the_dtype(dtype):
    X, y = randn(8, 2, seed=15), randn(8, seed=16)
    w = dropout_ridge_solution(X.to(dtype), y.to(dtype), 0.3)
    assert w.dtype == dtype
    torch.testing.assert_close(w.double(), dropout_ridge_solution(X, y, 0.3), rtol=0.05, atol=0.05)


def test_ridge_solution_singular_system_raises():
    X = torch.tensor([[1.0, 0.0], [2.0, 0.0]], dtype=F64)
    with pytest.raises(torch.linalg.LinAlgError):
        dropout_ridge_solution(X, torch.ones(2, dtype=F64), 0.5)


@pytest.mark.parametrize("fn", [dropout_ridge_penalty, dropout_ridge_solution])
def test_ridge_rejects_p_one(fn):
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\), got 1.0"):
        fn(torch.ones(3, 2), torch.ones(2 if fn is dropout_ridge_penalty else 3), 1.0)


@pytest.mark.parametrize("fn", [dropout_ridge_penalty, dropout_ridge_solution])
def test_ridge_rejects_p_out_of_range(fn):
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\), got -0.5"):
        fn(torch.ones(3, 2), torch.ones(2 if fn is dropout_ridge_penalty else 3), -0.5)


@pytest.mark.parametrize(
    ("fn", "name", "X_shape", "v_shape", "layout"),
    [
        (dropout_ridge_penalty, "w", (3, 2), (3,), r"\(d,\)"),
        (dropout_ridge_penalty, "w", (6,), (6,), r"\(d,\)"),
        (dropout_ridge_solution, "y", (3, 2), (2,), r"\(n,\)"),
        (dropout_ridge_solution, "y", (3, 2), (3, 1), r"\(n,\)"),
    ],
)
def test_ridge_shape_mismatch_is_named(fn, name, X_shape, v_shape, layout):
    pattern = rf"X and {name} must have shapes \(n, d\) and {layout}, got {re_shape(X_shape)} and {re_shape(v_shape)}"
    with pytest.raises(ValueError, match=pattern):
        fn(torch.ones(X_shape), torch.ones(v_shape), 0.5)


def re_shape(shape):
    return re.escape(str(tuple(shape)))


@pytest.mark.parametrize("fn", [dropout_ridge_penalty, dropout_ridge_solution])
def test_ridge_type_errors_are_named(fn):
    v = torch.ones(2 if fn is dropout_ridge_penalty else 3)
    with pytest.raises(TypeError, match="X must be a floating-point tensor"):
        fn(torch.ones(3, 2, dtype=torch.int64), v, 0.5)
    with pytest.raises(TypeError, match=r"X and (w|y) must have the same dtype, got torch.float32 and torch.float64"):
        fn(torch.ones(3, 2), v.double(), 0.5)


# ambiguity_decomposition --------------------------------------------------------------


def dirichlet(m, seed):
    return torch.softmax(randn(m, seed=seed), 0)


@pytest.mark.parametrize("shape", [(5, 40), (5, 40, 3), (1, 10)])
@pytest.mark.parametrize("weighted", [False, True])
def test_ambiguity_identity_holds(shape, weighted):
    preds, y = randn(*shape, seed=20), randn(*shape[1:], seed=21)
    weights = dirichlet(shape[0], seed=22) if weighted else None
    ens, member, diversity = ambiguity_decomposition(preds, y, weights)
    torch.testing.assert_close(ens, member - diversity, rtol=1e-12, atol=1e-12)
    assert diversity.item() >= 0.0
    if shape[0] == 1:
        assert diversity.item() == 0.0


def test_ambiguity_terms_match_their_definitions():
    preds, y, w = randn(4, 30, 2, seed=23), randn(30, 2, seed=24), dirichlet(4, seed=25)
    result = ambiguity_decomposition(preds, y, w)
    fbar = sum(w[m] * preds[m] for m in range(4))
    torch.testing.assert_close(result.ensemble_error, ((fbar - y) ** 2).sum(1).mean())
    member = sum(w[m] * ((preds[m] - y) ** 2).sum(1).mean() for m in range(4))
    torch.testing.assert_close(result.mean_member_error, member)
    diversity = sum(w[m] * ((preds[m] - fbar) ** 2).sum(1).mean() for m in range(4))
    torch.testing.assert_close(result.diversity, diversity)


def test_ambiguity_scalar_outputs_equal_one_dimensional_vectors():
    preds, y = randn(3, 12, seed=26), randn(12, seed=27)
    assert ambiguity_decomposition(preds, y) == ambiguity_decomposition(preds.unsqueeze(-1), y.unsqueeze(-1))


@pytest.mark.parametrize(
    ("weights", "match"),
    [
        (torch.tensor([0.5, 0.6, -0.1], dtype=F64), "weights must be non-negative and sum to 1"),
        (torch.tensor([0.2, 0.2, 0.2], dtype=F64), r"weights must be non-negative and sum to 1 .* sum 0.6"),
        (torch.tensor([float("nan"), 0.5, 0.5], dtype=F64), "weights must be non-negative and sum to 1"),
        (torch.tensor([0.5, 0.5], dtype=F64), r"weights must have shape \(M,\) = \(3,\)"),
    ],
)
def test_ambiguity_rejects_bad_weights(weights, match):
    with pytest.raises(ValueError, match=match):
        ambiguity_decomposition(randn(3, 4), randn(4), weights)


def test_ambiguity_weight_type_errors():
    with pytest.raises(TypeError, match="weights must be a floating-point tensor"):
        ambiguity_decomposition(randn(2, 4), randn(4), torch.tensor([1, 0]))
    with pytest.raises(TypeError, match="member_preds and weights must have the same dtype"):
        ambiguity_decomposition(randn(2, 4), randn(4), torch.tensor([0.5, 0.5]))


@pytest.mark.parametrize(("preds_shape", "y_shape"), [((3, 4), (5,)), ((3, 4, 2), (4,)), ((4,), (4,)), ((0, 4), (4,))])
def test_ambiguity_shape_mismatch_is_named(preds_shape, y_shape):
    pattern = rf"member_preds and y must have shapes .* got {re_shape(preds_shape)} and {re_shape(y_shape)}"
    with pytest.raises(ValueError, match=pattern):
        ambiguity_decomposition(torch.ones(preds_shape), torch.ones(y_shape))


# nwgm ---------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [10, 16])
@pytest.mark.parametrize("p", [0.2, 0.5])
def test_nwgm_over_all_masks_is_the_scaled_unit(n, p):
    w, x, b = randn(n, seed=30), randn(n, seed=31), 0.3
    masks, probs = enumerate_masks(n, p)
    z = masks @ (w * x) + b  # every sub-network's logit, (2**n,)
    expected = torch.sigmoid((1 - p) * (w @ x) + b)
    torch.testing.assert_close(nwgm(torch.sigmoid(z), probs), expected, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(nwgm(logits=z, weights=probs), expected, rtol=1e-10, atol=1e-10)


def test_nwgm_matches_its_definition():
    probs, w = torch.sigmoid(randn(6, 3, seed=32)), dirichlet(6, seed=33)
    view = w.view(-1, 1)
    G, G_ = (probs**view).prod(0), ((1 - probs) ** view).prod(0)
    torch.testing.assert_close(nwgm(probs, w), G / (G + G_), rtol=1e-12, atol=1e-12)


def test_nwgm_of_one_member_is_the_member():
    probs = torch.sigmoid(randn(1, 2, 3, seed=34))
    torch.testing.assert_close(nwgm(probs), probs[0], rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(nwgm(logits=torch.logit(probs)), probs[0], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_nwgm_saturated_members_stay_finite(dtype):
    logits = torch.tensor([[40.0, -40.0, 40.0], [-40.0, -40.0, 39.0], [40.0, -39.0, 1000.0]], dtype=dtype)
    probs = torch.sigmoid(logits)  # rounds to exactly 1 in both dtypes at +40
    from_probs = nwgm(probs)
    assert from_probs.dtype == dtype and torch.isfinite(from_probs).all()
    assert ((from_probs >= 0) & (from_probs <= 1)).all()
    from_logits = nwgm(logits=logits)  # exact: sigmoid of the mean logit
    torch.testing.assert_close(from_logits, torch.sigmoid(logits.mean(0)))


def test_nwgm_many_members_do_not_underflow():
    # 2**16 members: (prod_m p_m) ** (1 / M) underflows to 0 for p_m = 0.3; the log-space form does not.
    probs = torch.full((2**16, 2), 0.3, dtype=F64)
    assert probs[:, 0].prod().item() == 0.0
    torch.testing.assert_close(nwgm(probs), probs[0], rtol=1e-12, atol=0)
    # Probabilities down to 1e-300, unequal weights. Below 1/2 the logit is recovered
    # exactly from p (near 1 it is not: 1 - p keeps only a few digits).
    logits = torch.stack([torch.linspace(-690.0, 0.0, 2**16, dtype=F64), torch.linspace(-5.0, 0.0, 2**16, dtype=F64)], 1)
    weights = torch.softmax(torch.linspace(0.0, 5.0, 2**16, dtype=F64), 0)
    result = nwgm(torch.sigmoid(logits), weights)
    assert torch.isfinite(result).all() and (result > 0).all()
    torch.testing.assert_close(result, torch.sigmoid(weights @ logits), rtol=1e-10, atol=0)


def test_nwgm_exact_zero_and_one():
    assert nwgm(torch.tensor([1.0, 0.3])).item() == 1.0
    assert nwgm(torch.tensor([0.0, 0.3])).item() == 0.0
    # A member at 0 with zero weight takes no part.
    assert nwgm(torch.tensor([1.0, 0.0]), torch.tensor([1.0, 0.0])).item() == 1.0
    with pytest.raises(ValueError, match="probs has members at 0 and 1 for one output"):
        nwgm(torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="logits has members at -inf and inf for one output"):
        nwgm(logits=torch.tensor([float("inf"), -float("inf")]))


def test_nwgm_bad_inputs():
    with pytest.raises(ValueError, match="exactly one of probs and logits must be given"):
        nwgm()
    with pytest.raises(ValueError, match="exactly one of probs and logits must be given"):
        nwgm(torch.ones(2) / 2, logits=torch.zeros(2))
    with pytest.raises(ValueError, match=r"probs must be in \[0, 1\], got values in \[-0.5, 0.5\]"):
        nwgm(torch.tensor([-0.5, 0.5]))
    with pytest.raises(ValueError, match="probs must not contain NaN"):
        nwgm(torch.tensor([float("nan"), 0.5]))
    with pytest.raises(ValueError, match=r"probs must have shape \(M, \*\) with M >= 1, got \(\)"):
        nwgm(torch.tensor(0.5))
    with pytest.raises(ValueError, match=r"logits must have shape \(M, \*\) with M >= 1, got \(0, 3\)"):
        nwgm(logits=torch.zeros(0, 3))
    with pytest.raises(TypeError, match="probs must be a floating-point tensor"):
        nwgm(torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="weights must be non-negative and sum to 1"):
        nwgm(torch.full((2,), 0.5), torch.tensor([0.7, 0.7]))
    with pytest.raises(ValueError, match=r"weights must have shape \(M,\) = \(2,\) to match probs"):
        nwgm(torch.full((2, 3), 0.5), torch.full((3,), 1 / 3))


# devices ------------------------------------------------------------------------------


CUDA = pytest.param("cuda", marks=[pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"), pytest.mark.gpu])


@pytest.mark.parametrize("device", ["cpu", CUDA])
def test_results_stay_on_the_device(device):
    masks, probs = enumerate_masks(8, 0.3, device=device)
    assert masks.device.type == probs.device.type == device
    w, x = randn(8).to(device), randn(8, seed=1).to(device)
    out = nwgm(logits=masks @ (w * x), weights=probs)
    torch.testing.assert_close(out.cpu(), torch.sigmoid(0.7 * (w @ x)).cpu(), rtol=1e-10, atol=1e-10)
    X, y = randn(6, 2).to(device), randn(6).to(device)
    results = [
        dropout_ridge_solution(X, y, 0.3),
        dropout_ridge_penalty(X, w[:2], 0.3),
        jensen_gap_quadratic(w, x, 0.3),
        *ambiguity_decomposition(X.T, y),
    ]
    assert all(r.device.type == device and r.dtype == F64 for r in results)
