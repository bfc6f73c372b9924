"""Tests for dropoutlab.mc: MC-dropout prediction and the uncertainty metrics.

Statistical checks seed torch's default generator (dropout modules draw from it)
and use a tolerance of SIGMAS = 6 standard deviations of the statistic
(false-failure probability 2e-9).
"""

import math

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import SIGMAS
from dropoutlab import mc
from dropoutlab import nn as dnn

matplotlib.use("Agg")  # headless: draw without a display

DROPOUTS = {"torch": lambda p: torch.nn.Dropout(p), "dropoutlab": lambda p: dnn.Dropout(p)}


@pytest.fixture(autouse=True)
def seeded():
    torch.manual_seed(0)


def mlp(dropout="torch", p=0.3, d_in=4, d_out=2, dtype=torch.float32):
    layers = [torch.nn.Linear(d_in, 16), torch.nn.ReLU(), DROPOUTS[dropout](p), torch.nn.Linear(16, d_out)]
    return torch.nn.Sequential(*layers).to(dtype)


def input_dropout_linear(w, p):
    """y = w . dropout(x): the model of dropoutlab.theory.preactivation_moments (inverted)."""
    linear = torch.nn.Linear(w.numel(), 1, bias=False).to(w.dtype)
    linear.weight.data.copy_(w[None])
    return torch.nn.Sequential(torch.nn.Dropout(p), linear)


def exact_moments(w, x, p):
    """Mean, variance and fourth central moment of y = sum_i a_i m_i / q, a = w * x, m_i ~ Bernoulli(q)."""
    a, q = (w * x).double(), 1 - p
    var = (a**2).sum().item() * p / q
    # z_i = a_i (m_i / q - 1) are independent with zero mean:
    # E z^4 = a^4 (q (p/q)^4 + p), and mu4 = sum_i (E z_i^4 - 3 (E z_i^2)^2) + 3 var^2
    ez2 = a**2 * p / q
    ez4 = a**4 * (q * (p / q) ** 4 + p)
    mu4 = (ez4 - 3 * ez2**2).sum().item() + 3 * var**2
    return (w @ x).item(), var, mu4


# ------------------------------------------------------------------ predict


@pytest.mark.parametrize("dropout", list(DROPOUTS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_predict_shapes_dtype_and_moments(dropout, dtype):
    model = mlp(dropout, dtype=dtype)
    x = torch.randn(5, 4, dtype=dtype)
    pred = mc.predict(model, x, samples=7)
    assert isinstance(pred, mc.MCPrediction)
    assert pred.samples.shape == (7, 5, 2) and pred.mean.shape == pred.variance.shape == (5, 2)
    assert pred.samples.dtype == dtype
    torch.testing.assert_close(pred.mean, pred.samples.mean(0))
    torch.testing.assert_close(pred.variance, pred.samples.var(0, unbiased=False))
    assert (pred.variance > 0).all()
    assert not pred.samples.requires_grad
    with pytest.raises(AttributeError):
        pred.mean = pred.variance  # frozen


def test_predict_multidimensional_input_and_output():
    model = torch.nn.Sequential(torch.nn.Dropout2d(0.5), torch.nn.Conv2d(3, 4, 3, padding=1))
    pred = mc.predict(model, torch.randn(2, 3, 5, 5), samples=6)
    assert pred.samples.shape == (6, 2, 4, 5, 5)
    assert (pred.variance > 0).any()


def test_one_sample_has_zero_variance():
    pred = mc.predict(mlp(), torch.randn(3, 4), samples=1)
    assert pred.samples.shape == (1, 3, 2) and torch.equal(pred.variance, torch.zeros(3, 2))


def test_model_without_dropout_has_zero_variance():
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).train()
    x = torch.randn(6, 4)
    pred = mc.predict(model, x, samples=20)
    assert torch.equal(pred.variance, torch.zeros(6, 3))
    torch.testing.assert_close(pred.mean, model(x).detach())


@pytest.mark.parametrize("dropout", list(DROPOUTS))
def test_samples_differ_across_the_sample_dimension(dropout):
    pred = mc.predict(mlp(dropout, p=0.5), torch.randn(4, 4), samples=50)
    flat = pred.samples.reshape(50, -1)
    # 50 passes of p = 0.5 over 16 hidden units: two identical masks have probability 2**-16 per pair
    assert len({tuple(row.tolist()) for row in flat}) == 50


def test_batchnorm_stays_in_eval_and_uses_running_stats():
    bn = torch.nn.BatchNorm1d(3)
    model = torch.nn.Sequential(bn, torch.nn.Dropout(0.0)).train()
    bn.running_mean.fill_(5.0)
    bn.running_var.fill_(4.0)
    before = {k: v.clone() for k, v in bn.state_dict().items()}
    x = torch.randn(8, 3)
    pred = mc.predict(model, x, samples=10)
    for k, v in bn.state_dict().items():
        assert torch.equal(v, before[k]), k
    expected = (x - 5.0) / math.sqrt(4.0 + bn.eps)  # weight 1, bias 0
    torch.testing.assert_close(pred.samples, expected.expand(10, 8, 3))
    assert model.training and bn.training


class Recorder(torch.nn.Module):
    """Records the modes of the model's modules at forward time; optionally raises."""

    def __init__(self, model, fail=False):
        super().__init__()
        self.model, self.fail, self.seen = model, fail, None

    def forward(self, x):
        self.seen = {name: m.training for name, m in self.model.named_modules()}
        if self.fail:
            raise RuntimeError("boom")
        return self.model(x)


def mixed_mode_model():
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.Dropout(0.2), dnn.Dropout(0.3),
        torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Dropout(0.1)), torch.nn.Linear(8, 2),
    )
    model.train()
    model[2].eval()  # a dropout module that was off before the call
    model[4].eval()
    model[5].train()
    return model


@pytest.mark.parametrize("fail", [False, True])
def test_modes_during_the_call_and_restored_after(fail):
    model = mixed_mode_model()
    before = {name: m.training for name, m in model.named_modules()}
    wrapper = Recorder(model, fail)
    if fail:
        with pytest.raises(RuntimeError, match="boom"):
            mc.predict(wrapper, torch.randn(3, 4), samples=4)
    else:
        mc.predict(wrapper, torch.randn(3, 4), samples=4)
    dropouts = {"2", "3", "4.1"}
    assert wrapper.seen == {name: name in dropouts for name in before}
    assert {name: m.training for name, m in model.named_modules()} == before
    assert wrapper.training  # the wrapper itself was in train mode (the default)


def test_modes_restored_after_bad_output():
    model = mixed_mode_model()
    before = {name: m.training for name, m in model.named_modules()}
    with pytest.raises(ValueError, match="must keep the batch dimension"):
        mc.predict(torch.nn.Sequential(model, torch.nn.Flatten(0)), torch.randn(3, 4), samples=2)
    assert {name: m.training for name, m in model.named_modules()} == before


def test_input_is_never_modified(monkeypatch):
    monkeypatch.setattr(mc, "MAX_CHUNK_ELEMENTS", 1)  # one pass per forward
    model = torch.nn.Sequential(torch.nn.Dropout(0.5, inplace=True), torch.nn.Linear(4, 1))
    x = torch.ones(3, 4)
    mc.predict(model, x, samples=20)  # the in-place dropout would zero a view of x
    assert torch.equal(x, torch.ones(3, 4))


def test_runs_without_gradient():
    model = mlp()
    seen = []
    model.register_forward_hook(lambda m, i, o: seen.append(torch.is_grad_enabled()))
    mc.predict(model, torch.randn(2, 4, requires_grad=True), samples=3)
    assert seen == [False]
    assert torch.is_grad_enabled()


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_vectorised_matches_exact_moments_and_the_python_loop(p):
    """y = w . dropout(x): exact mean w.x and variance p / q * sum (w x)^2."""
    d, t = 10, 40_000
    w = torch.linspace(-1, 2, d, dtype=torch.float64)
    x = torch.linspace(0.5, 1.5, d, dtype=torch.float64)
    model = input_dropout_linear(w, p)
    mean, var, mu4 = exact_moments(w, x, p)
    vectorised = mc.predict(model, x[None], samples=t).samples.reshape(t)
    model.train()
    with torch.no_grad():
        loop = torch.stack([model(x[None]) for _ in range(t)]).reshape(t)
    for y in (vectorised, loop):
        # sample mean of t i.i.d. draws: sd sqrt(var / t)
        assert abs(y.mean().item() - mean) <= SIGMAS * math.sqrt(var / t)
        # population variance of t draws: mean var (t - 1) / t, sd sqrt((mu4 - var^2) / t) to leading order
        assert abs(y.var(unbiased=False).item() - var * (t - 1) / t) <= SIGMAS * math.sqrt((mu4 - var**2) / t)
    # two independent sample means: sd of their difference sqrt(2 var / t)
    assert abs(vectorised.mean().item() - loop.mean().item()) <= SIGMAS * math.sqrt(2 * var / t)


@pytest.mark.parametrize("budget, chunk", [(24, 3), (10, 1), (1, 1)])
def test_chunking(monkeypatch, budget, chunk):
    """x has 2 rows of 4 elements: a budget of 24 elements folds 3 samples per forward."""
    monkeypatch.setattr(mc, "MAX_CHUNK_ELEMENTS", budget)
    d, t, p = 4, 10, 0.5
    w = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)
    x = torch.stack([torch.ones(d, dtype=torch.float64), torch.full((d,), 2.0, dtype=torch.float64)])
    model = input_dropout_linear(w, p)
    rows = []
    model.register_forward_hook(lambda m, i, o: rows.append(i[0].shape[0]))
    pred = mc.predict(model, x, samples=t)
    full, last = divmod(t, chunk)
    assert rows == [2 * chunk] * full + ([2 * last] if last else [])
    assert pred.samples.shape == (t, 2, 1)
    torch.testing.assert_close(pred.mean, pred.samples.mean(0))


def test_chunking_statistics(monkeypatch):
    monkeypatch.setattr(mc, "MAX_CHUNK_ELEMENTS", 7 * 10)  # 7 samples of a (1, 10) input per forward
    d, t, p = 10, 20_000, 0.3
    w = torch.linspace(-1, 1, d, dtype=torch.float64)
    x = torch.linspace(1, 2, d, dtype=torch.float64)
    mean, var, mu4 = exact_moments(w, x, p)
    y = mc.predict(input_dropout_linear(w, p), x[None], samples=t).samples.reshape(t)
    # as above: sd sqrt(var / t) for the mean, sqrt((mu4 - var^2) / t) for the variance
    assert abs(y.mean().item() - mean) <= SIGMAS * math.sqrt(var / t)
    assert abs(y.var(unbiased=False).item() - var * (t - 1) / t) <= SIGMAS * math.sqrt((mu4 - var**2) / t)
    # masks of different chunks and of different rows within a chunk are independent: lag-1 correlation
    # of i.i.d. draws has sd 1 / sqrt(t)
    z = (y - y.mean()) / y.std()
    assert abs((z[1:] * z[:-1]).mean().item()) <= SIGMAS / math.sqrt(t)


@pytest.mark.parametrize(
    "layer",
    [
        lambda: dnn.DropConnectLinear(4, 4, p=0.5),
        lambda: torch.nn.Sequential(torch.nn.Linear(4, 4), dnn.DropPath(0.5, mode="batch")),
    ],
)
def test_layers_that_share_a_mask_across_the_batch_get_one_pass_per_forward(layer):
    model = torch.nn.Sequential(layer(), torch.nn.Linear(4, 1))
    rows = []
    model.register_forward_hook(lambda m, i, o: rows.append(i[0].shape[0]))
    pred = mc.predict(model, torch.randn(3, 4), samples=40)
    assert rows == [3] * 40
    # folded into one forward, all 40 passes would share one mask. Passed one by one, two passes agree with
    # probability 2**-16 (DropConnect) or 1/2 (drop path), so all 40 agree with probability at most 2**-39
    assert len({tuple(row.tolist()) for row in pred.samples.reshape(40, -1)}) >= 2


def test_embedding_dropout_gets_one_pass_per_forward():
    model = torch.nn.Sequential(dnn.EmbeddingDropout(10, 4, p=0.5), torch.nn.Flatten(), torch.nn.Linear(12, 1))
    rows = []
    model.register_forward_hook(lambda m, i, o: rows.append(i[0].shape[0]))
    assert mc.predict(model, torch.randint(0, 10, (5, 3)), samples=6).samples.shape == (6, 5, 1)
    assert rows == [5] * 6


def test_integer_input():
    layers = [torch.nn.Embedding(10, 4), torch.nn.Dropout(0.5), torch.nn.Flatten(), torch.nn.Linear(12, 1)]
    model = torch.nn.Sequential(*layers)
    pred = mc.predict(model, torch.randint(0, 10, (5, 3)), samples=8)
    assert pred.samples.shape == (8, 5, 1)


@pytest.mark.parametrize(
    "bad, error", [(0, ValueError), (-1, ValueError), (2.5, TypeError), (True, TypeError), ("3", TypeError)]
)
def test_bad_samples(bad, error):
    with pytest.raises(error, match=f"samples must be .*got {bad!r}"):
        mc.predict(mlp(), torch.randn(2, 4), samples=bad)


def test_bad_model_and_x():
    with pytest.raises(TypeError, match="model must be a torch.nn.Module, got function"):
        mc.predict(lambda t: t, torch.randn(2, 4))
    with pytest.raises(TypeError, match="x must be a torch.Tensor, got list"):
        mc.predict(mlp(), [[1.0, 2.0, 3.0, 4.0]])
    with pytest.raises(ValueError, match="x must have a batch dimension"):
        mc.predict(mlp(), torch.tensor(1.0))


def test_model_must_return_a_tensor():
    class Pair(torch.nn.Module):
        def forward(self, x):
            return x, x

    with pytest.raises(TypeError, match="model must return a tensor, got tuple"):
        mc.predict(Pair(), torch.randn(2, 3))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.gpu
def test_predict_on_cuda(monkeypatch):
    monkeypatch.setattr(mc, "MAX_CHUNK_ELEMENTS", 64 * 4)  # several chunks
    model = mlp("dropoutlab").cuda()
    x = torch.randn(64, 4, device="cuda")
    pred = mc.predict(model, x, samples=10)
    assert pred.samples.device.type == pred.mean.device.type == "cuda"
    assert pred.samples.shape == (10, 64, 2) and (pred.variance > 0).all()
    probs = torch.softmax(pred.samples, -1)
    assert mc.predictive_entropy(probs.mean(0)).device.type == "cuda"
    assert mc.mutual_information(probs).device.type == "cuda"
    labels = torch.randint(0, 2, (64,), device="cuda")
    assert 0 <= mc.expected_calibration_error(probs.mean(0), labels) <= 1
    assert mc.gaussian_nll(pred.samples, pred.mean, tau=2.0).device.type == "cuda"


# ------------------------------------------------------- predictive_entropy


@pytest.mark.parametrize("k", [1, 2, 3, 10, 1000])
def test_entropy_of_uniform_is_log_k(k):
    h = mc.predictive_entropy(torch.full((4, k), 1.0 / k, dtype=torch.float64))
    torch.testing.assert_close(h, torch.full((4,), math.log(k), dtype=torch.float64), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_entropy_of_one_hot_is_zero_without_nan(dtype):
    h = mc.predictive_entropy(torch.eye(5, dtype=dtype))
    assert h.dtype == dtype and torch.equal(h, torch.zeros(5, dtype=dtype))
    assert not torch.signbit(h).any()  # 0.0, not -0.0


def test_entropy_matches_numpy():
    p = torch.softmax(torch.randn(20, 6, dtype=torch.float64), -1)
    expected = -(p.numpy() * np.log(p.numpy())).sum(-1)
    np.testing.assert_allclose(mc.predictive_entropy(p).numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize("shape", [(3,), (2, 3, 4)])
def test_entropy_bad_shape(shape):
    with pytest.raises(ValueError, match=r"probs must be a 2-D tensor of shape \(N, K\)"):
        mc.predictive_entropy(torch.full(shape, 0.5))


def test_entropy_bad_type():
    with pytest.raises(TypeError, match="probs must be a floating-point tensor"):
        mc.predictive_entropy(torch.ones(2, 2, dtype=torch.int64))
    with pytest.raises(TypeError, match="probs must be a torch.Tensor"):
        mc.predictive_entropy([[0.5, 0.5]])


# ------------------------------------------------------- mutual_information


def test_mutual_information_of_identical_samples_is_zero():
    p = torch.softmax(torch.randn(1, 8, 5, dtype=torch.float64), -1).expand(30, 8, 5)
    mi = mc.mutual_information(p)
    assert mi.shape == (8,)
    torch.testing.assert_close(mi, torch.zeros(8, dtype=torch.float64), rtol=0, atol=1e-14)


def test_mutual_information_of_disagreeing_one_hots_is_log_two():
    p = torch.tensor([[[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]]], dtype=torch.float64)
    torch.testing.assert_close(mc.mutual_information(p), torch.tensor([math.log(2)], dtype=torch.float64))


@settings(max_examples=50, deadline=None, derandomize=True)  # seeded: the same examples every run
@given(
    t=st.integers(1, 8), n=st.integers(1, 6), k=st.integers(1, 6), scale=st.floats(0.0, 30.0), seed=st.integers(0, 2**31)
)
def test_mutual_information_is_non_negative_and_at_most_the_entropy(t, n, k, scale, seed):
    g = torch.Generator().manual_seed(seed)
    p = torch.softmax(scale * torch.randn(t, n, k, generator=g), -1)
    mi = mc.mutual_information(p)
    assert mi.shape == (n,) and (mi >= 0).all() and not mi.isnan().any()
    assert (mi <= mc.predictive_entropy(p.mean(0)) + 1e-6).all()


def test_mutual_information_bad_input():
    with pytest.raises(ValueError, match=r"sample_probs must be a 3-D tensor of shape \(T, N, K\)"):
        mc.mutual_information(torch.full((4, 2), 0.5))
    with pytest.raises(ValueError, match="sample_probs must hold at least one pass"):
        mc.mutual_information(torch.empty(0, 3, 2))
    with pytest.raises(TypeError, match="sample_probs must be a floating-point tensor"):
        mc.mutual_information(torch.ones(2, 2, 2, dtype=torch.int32))


# ------------------------------------------------ expected_calibration_error


def numpy_ece(probs, labels, n_bins):
    conf, pred = probs.max(1), probs.argmax(1)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    ece = 0.0
    for b in range(n_bins):
        inside = (conf > edges[b]) & (conf <= edges[b + 1])
        if b == 0:
            inside |= conf == 0
        if inside.any():
            ece += inside.mean() * abs((pred[inside] == labels[inside]).mean() - conf[inside].mean())
    return ece


def test_ece_of_a_perfectly_calibrated_model_is_zero():
    # confidence c in {0.55, ..., 0.95}, 20 points each, exactly 20 c of them correct
    probs, labels = [], []
    for c in (0.55, 0.65, 0.75, 0.85, 0.95):
        n_correct = round(20 * c)
        probs += [[c, 1 - c]] * 20
        labels += [0] * n_correct + [1] * (20 - n_correct)
    ece = mc.expected_calibration_error(torch.tensor(probs, dtype=torch.float64), torch.tensor(labels), n_bins=10)
    assert isinstance(ece, float)
    assert ece == pytest.approx(0.0, abs=1e-12)


def test_ece_of_confident_and_always_wrong_is_one():
    probs = torch.tensor([[0.999, 0.001, 0.0]] * 50 + [[0.0, 1.0, 0.0]] * 50)
    labels = torch.tensor([2] * 100)
    assert mc.expected_calibration_error(probs, labels) == pytest.approx(0.9995, abs=1e-6)


@pytest.mark.parametrize("n_bins", [1, 5, 15, 100])
@pytest.mark.parametrize("k", [2, 10])
def test_ece_matches_numpy(n_bins, k):
    probs = torch.softmax(3 * torch.randn(500, k, dtype=torch.float64), -1)
    labels = torch.randint(0, k, (500,))
    expected = numpy_ece(probs.numpy(), labels.numpy(), n_bins)
    assert mc.expected_calibration_error(probs, labels, n_bins) == pytest.approx(expected, abs=1e-12)


def test_ece_low_precision_is_summed_in_float32():
    probs = torch.softmax(torch.randn(20_000, 4, dtype=torch.float64), -1)
    labels = torch.randint(0, 4, (20_000,))
    reference = mc.expected_calibration_error(probs, labels)
    # only the bf16 rounding of the inputs (relative 2**-8) remains, not a bf16 running sum
    assert mc.expected_calibration_error(probs.to(torch.bfloat16), labels) == pytest.approx(reference, abs=0.01)


@pytest.mark.parametrize(
    "probs, labels, n_bins, error, message",
    [
        (torch.full((3, 2), 0.5), torch.tensor([0, 1, 0]), 0, ValueError, "n_bins must be .*got 0"),
        (torch.full((3, 2), 0.5), torch.tensor([0, 1, 0]), 2.0, TypeError, "n_bins must be an int.*got 2.0"),
        (torch.full((3, 2), 0.5), torch.tensor([0.0, 1.0, 0.0]), 15, TypeError, "labels must be an integer tensor"),
        (torch.full((3, 2), 0.5), torch.tensor([True, False, True]), 15, TypeError, "labels must be an integer"),
        (torch.full((3, 2), 0.5), [0, 1, 0], 15, TypeError, "labels must be an integer tensor.*got list"),
        (torch.full((3, 2), 0.5), torch.tensor([0, 1]), 15, ValueError, r"labels must have shape \(N,\) = \(3,\)"),
        (torch.full((3, 2), 0.5), torch.tensor([0, 2, 0]), 15, ValueError, r"labels must be in \[0, 2\).*\[0, 2\]"),
        (torch.full((3, 2), 0.5), torch.tensor([0, -1, 0]), 15, ValueError, r"labels must be in \[0, 2\)"),
        (torch.full((3,), 0.5), torch.tensor([0, 1, 0]), 15, ValueError, "probs must be a 2-D tensor"),
        (torch.empty(0, 2), torch.empty(0, dtype=torch.int64), 15, ValueError, "probs must have at least one row"),
    ],
)
def test_ece_bad_input(probs, labels, n_bins, error, message):
    with pytest.raises(error, match=message):
        mc.expected_calibration_error(probs, labels, n_bins)
    with pytest.raises(error, match=message):
        mc.reliability_diagram(probs, labels, n_bins)


# ------------------------------------------------------------- gaussian_nll


@pytest.mark.parametrize("tau", [0.1, 1.0, 25.0])
def test_gaussian_nll_with_one_pass_is_the_gaussian_nll(tau):
    mu = torch.randn(1, 50, dtype=torch.float64)
    y = torch.randn(50, dtype=torch.float64)
    normal = torch.distributions.Normal(mu[0], 1 / math.sqrt(tau))
    torch.testing.assert_close(mc.gaussian_nll(mu, y, tau), -normal.log_prob(y).mean())


def direct_nll(samples, y, tau):
    """Gal & Ghahramani's formula, one point at a time, in Python floats (double precision)."""
    t, n = len(samples), len(y)
    total = 0.0
    for i in range(n):
        d = len(y[i])
        exponents = [-0.5 * tau * sum((y[i][j] - samples[s][i][j]) ** 2 for j in range(d)) for s in range(t)]
        top = max(exponents)
        log_lik = top + math.log(sum(math.exp(e - top) for e in exponents))
        total += log_lik - math.log(t) - 0.5 * d * math.log(2 * math.pi) + 0.5 * d * math.log(tau)
    return -total / n


@pytest.mark.parametrize("d", [None, 1, 3])
def test_gaussian_nll_matches_a_direct_computation(d):
    shape = (7, 5) if d is None else (7, 5, d)
    samples = torch.randn(shape, dtype=torch.float64)
    y = torch.randn(shape[1:], dtype=torch.float64)
    as_lists = (samples[..., None], y[..., None]) if d is None else (samples, y)
    expected = direct_nll(as_lists[0].tolist(), as_lists[1].tolist(), 3.0)
    assert mc.gaussian_nll(samples, y, 3.0).item() == pytest.approx(expected, rel=1e-12)


def test_gaussian_nll_is_stable_for_far_targets():
    samples = torch.zeros(10, 4)
    y = torch.full((4,), 100.0)
    nll = mc.gaussian_nll(samples, y, tau=1e3)  # exp(-0.5 * 1e3 * 1e4) underflows; logsumexp does not
    expected = 0.5 * 1e3 * 1e4 - 0.5 * math.log(1e3 / (2 * math.pi))
    assert math.isfinite(nll.item()) and nll.item() == pytest.approx(expected, rel=1e-6)


def test_gaussian_nll_has_a_gradient():
    samples = torch.randn(4, 3, requires_grad=True)
    mc.gaussian_nll(samples, torch.zeros(3), 1.0).backward()
    assert samples.grad is not None and samples.grad.isfinite().all()


@pytest.mark.parametrize("tau, error", [(0.0, ValueError), (-1.0, ValueError), (float("nan"), ValueError),
                                        (float("inf"), ValueError), ("1", TypeError), (True, TypeError)])
def test_gaussian_nll_bad_tau(tau, error):
    with pytest.raises(error, match="tau must be"):
        mc.gaussian_nll(torch.zeros(2, 3), torch.zeros(3), tau)


@pytest.mark.parametrize("samples, y", [(torch.zeros(2, 3), torch.zeros(4)), (torch.zeros(2, 3, 2), torch.zeros(3)),
                                        (torch.zeros(3), torch.zeros(3)), (torch.zeros(0, 3), torch.zeros(3))])
def test_gaussian_nll_bad_shapes(samples, y):
    with pytest.raises(ValueError, match="samples"):
        mc.gaussian_nll(samples, y, 1.0)


# ------------------------------------------------------ reliability_diagram


def test_reliability_diagram_returns_axes():
    probs = torch.softmax(2 * torch.randn(300, 4), -1)
    labels = torch.randint(0, 4, (300,))
    ax = mc.reliability_diagram(probs, labels, n_bins=10)
    assert isinstance(ax, matplotlib.axes.Axes)
    assert ax.get_xlabel() and ax.get_ylabel()
    ece = mc.expected_calibration_error(probs, labels, n_bins=10)
    assert f"{ece:.3f}" in ax.get_title()
    plt.close(ax.figure)


def test_reliability_diagram_draws_on_given_axes():
    fig, ax = plt.subplots()
    probs = torch.tensor([[0.9, 0.1], [0.7, 0.3]])  # right at 0.9, wrong at 0.7
    assert mc.reliability_diagram(probs, torch.tensor([0, 1]), n_bins=5, ax=ax) is ax
    heights = sorted(bar.get_height() for bar in ax.patches)  # accuracies 0, 1; gaps 0.7, -0.1
    assert heights == pytest.approx([-0.1, 0.0, 0.7, 1.0])
    plt.close(fig)
