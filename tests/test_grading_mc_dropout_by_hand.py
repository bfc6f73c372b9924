"""The ``mc_dropout_by_hand`` checks (``mc_predict``, ``predictive_entropy``, ``bald``, ``flag_ood``):
right answers pass however they are written, and each known wrong answer is rejected with its own hint."""

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from dropoutlab import mc
from dropoutlab.grading import EXERCISES, check

SEEDS = [0, 1, 12345]
IDS = ("mc_predict", "predictive_entropy", "bald", "flag_ood")


def _is_dropout(m):
    return isinstance(m, nn.modules.dropout._DropoutNd)


# ---- mc_predict -----------------------------------------------------------------------

def mc_flags_loop(model, x, samples):
    flags = {m: m.training for m in model.modules()}
    try:
        for m in model.modules():
            m.training = _is_dropout(m)
        with torch.no_grad():
            return torch.stack([model(x).softmax(-1) for _ in range(samples)])
    finally:
        for m, flag in flags.items():
            m.training = flag


def mc_eval_then_dropout_batched(model, x, samples):
    was_training = model.training
    model.eval()
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.train()
    with torch.no_grad():
        logits = model(x.repeat(samples, 1))
    model.train(was_training)
    return torch.softmax(logits.reshape(samples, len(x), -1), dim=2)


def mc_deepcopy(model, x, samples):
    clone = copy.deepcopy(model).eval()
    for m in clone.modules():
        if "Dropout" in type(m).__name__:
            m.train()
    out = []
    with torch.inference_mode():
        for _ in range(samples):
            out.append(torch.nn.functional.softmax(clone(x), dim=-1))
    return torch.stack(out, 0)


def mc_library(model, x, samples):
    return mc.predict(model, x, samples=samples).samples.softmax(-1)


def mc_whole_model_train(model, x, samples):
    was = model.training
    model.train()
    with torch.no_grad():
        out = torch.stack([model(x).softmax(-1) for _ in range(samples)])
    model.train(was)
    return out


def mc_whole_model_train_copy(model, x, samples):
    clone = copy.deepcopy(model).train()
    with torch.no_grad():
        return clone(x.repeat(samples, 1)).softmax(-1).reshape(samples, len(x), -1)


def mc_dropout_off(model, x, samples):
    model.eval()
    with torch.no_grad():
        return torch.stack([model(x).softmax(-1) for _ in range(samples)])


def mc_repeated_pass(model, x, samples):
    with torch.no_grad():
        return mc_flags_loop(model, x, 1).expand(samples, -1, -1).clone()


def mc_not_restored(model, x, samples):
    model.eval()
    for m in model.modules():
        if _is_dropout(m):
            m.train()
    with torch.no_grad():
        return torch.stack([model(x).softmax(-1) for _ in range(samples)])


def mc_eval_at_end(model, x, samples):
    out = mc_flags_loop(model, x, samples)
    model.eval()
    return out


def mc_others_not_eval(model, x, samples):
    flags = {m: m.training for m in model.modules()}
    for m in model.modules():
        if _is_dropout(m):
            m.train()
    with torch.no_grad():
        out = torch.stack([model(x).softmax(-1) for _ in range(samples)])
    for m, flag in flags.items():
        m.train(flag)
    return out


def mc_logits(model, x, samples):
    flags = {m: m.training for m in model.modules()}
    for m in model.modules():
        m.training = _is_dropout(m)
    with torch.no_grad():
        out = torch.stack([model(x) for _ in range(samples)])
    for m, flag in flags.items():
        m.training = flag
    return out


def mc_log_softmax(model, x, samples):
    return mc_logits(model, x, samples).log_softmax(-1)


def mc_softmax_over_samples(model, x, samples):
    return mc_logits(model, x, samples).softmax(0)


def mc_softmax_over_rows(model, x, samples):
    return mc_logits(model, x, samples).softmax(1)


def mc_averaged(model, x, samples):
    return mc_flags_loop(model, x, samples).mean(0)


def mc_tracks_grad(model, x, samples):
    flags = {m: m.training for m in model.modules()}
    for m in model.modules():
        m.training = _is_dropout(m)
    out = torch.stack([model(x).softmax(-1) for _ in range(samples)])
    for m, flag in flags.items():
        m.training = flag
    return out


def mc_dropout_on_output(model, x, samples):
    was = model.training
    model.eval()
    with torch.no_grad():
        logits = model(x)
        out = torch.stack([torch.nn.functional.dropout(logits, 0.5).softmax(-1) for _ in range(samples)])
    model.train(was)
    return out


def mc_dropout_on_input(model, x, samples):
    was = model.training
    model.eval()
    with torch.no_grad():
        out = torch.stack([model(torch.nn.functional.dropout(x, 0.5)).softmax(-1) for _ in range(samples)])
    model.train(was)
    return out


MC_CORRECT = [mc_flags_loop, mc_eval_then_dropout_batched, mc_deepcopy, mc_library]
MC_WRONG = [
    (mc_whole_model_train, "whole_model_train"),
    (mc_whole_model_train_copy, "whole_model_train"),
    (mc_dropout_off, "dropout_off"),
    (mc_repeated_pass, "repeated_pass"),
    (mc_not_restored, "mode_not_restored"),
    (mc_eval_at_end, "mode_not_restored"),
    (mc_others_not_eval, "others_not_eval"),
    (mc_logits, "logits"),
    (mc_log_softmax, "logits"),
    (mc_softmax_over_samples, "softmax_wrong_dim"),
    (mc_softmax_over_rows, "softmax_wrong_dim"),
    (mc_averaged, "averaged"),
    (mc_tracks_grad, "tracks_grad"),
    (mc_dropout_on_output, "own_dropout"),
    (mc_dropout_on_input, "own_dropout"),
    (lambda model, x, samples: mc_flags_loop(model, x, samples).numpy(), "wrong_type"),
    (lambda model, x, samples: model(x, samples), "raised"),
]


# ---- predictive_entropy ---------------------------------------------------------------

def entropy_entr(probs):
    return torch.special.entr(probs).sum(-1)


def entropy_xlogy(probs):
    return -torch.xlogy(probs, probs).sum(dim=1)


def entropy_masked(probs):
    logs = torch.where(probs > 0, probs.log(), torch.zeros_like(probs))
    return -(probs * logs).sum(-1)


def entropy_nansum(probs):
    return -(probs * probs.log()).nansum(-1)


def entropy_categorical(probs):
    return torch.distributions.Categorical(probs=probs).entropy()


def entropy_eps(probs):
    return -(probs * torch.log(probs + 1e-12)).sum(-1)


ENTROPY_CORRECT = [entropy_entr, entropy_xlogy, entropy_masked, entropy_nansum, entropy_categorical, entropy_eps]
ENTROPY_WRONG = [
    (lambda p: -torch.xlogy(p, p).sum(-1) / math.log(2), "log2"),
    (lambda p: -(p * torch.log2(p.clamp_min(1e-30))).sum(-1), "log2"),
    (lambda p: torch.xlogy(p, p).sum(-1), "sign_flipped"),
    (lambda p: -(p * p.log()).sum(-1), "nan_at_zero"),
    (lambda p: (p * p.log()).sum(-1), "nan_at_zero"),
    (lambda p: -torch.xlogy(p, p).sum(0), "wrong_dim"),
    (lambda p: -torch.xlogy(p, p).mean(-1), "mean_not_sum"),
    (lambda p: -torch.xlogy(p, p).sum(-1, keepdim=True), "wrong_shape"),
    (lambda p: (-torch.xlogy(p, p).sum(-1)).tolist(), "wrong_type"),
]


# ---- bald -----------------------------------------------------------------------------

def _h(p):
    return torch.special.entr(p).sum(-1)


def bald_entr(sample_probs):
    return _h(sample_probs.mean(0)) - _h(sample_probs).mean(0)


def bald_xlogy_loop(sample_probs):
    mean = sample_probs.mean(dim=0)
    total = -torch.xlogy(mean, mean).sum(-1)
    per_pass = torch.stack([-torch.xlogy(p, p).sum(-1) for p in sample_probs])
    return total - per_pass.mean(0)


def bald_library(sample_probs):
    return mc.mutual_information(sample_probs)


def bald_expected_kl(sample_probs):
    # I = mean_t KL(p_t || mean): the same quantity, written as an average divergence
    mean = sample_probs.mean(0, keepdim=True)
    ratio = torch.where(sample_probs > 0, sample_probs / mean, torch.ones_like(sample_probs))
    return (sample_probs * ratio.log()).sum(-1).mean(0)


BALD_CORRECT = [bald_entr, bald_xlogy_loop, bald_library, bald_expected_kl]
BALD_WRONG = [
    (lambda sp: _h(sp.mean(0)), "entropy_of_mean_only"),
    (lambda sp: _h(sp).mean(0), "expected_entropy_only"),
    (lambda sp: _h(sp).mean(0) - _h(sp.mean(0)), "terms_swapped"),
    (lambda sp: _h(sp.mean(1)) - _h(sp).mean(1), "wrong_axis"),
    (lambda sp: _h(sp.mean(0)) - _h(sp).sum(0), "summed_passes"),
    (lambda sp: bald_entr(sp) / math.log(2), "log2"),
    (lambda sp: -(sp.mean(0) * sp.mean(0).log()).sum(-1) + (sp * sp.log()).sum(-1).mean(0), "nan_at_zero"),
    (lambda sp: bald_entr(sp).unsqueeze(0), "wrong_shape"),
]


# ---- flag_ood -------------------------------------------------------------------------

def flag_quantile(scores_in, scores_test, fpr):
    return scores_test > torch.quantile(scores_in, 1 - fpr)


def flag_sorted_index(scores_in, scores_test, fpr):
    ordered = scores_in.sort().values
    threshold = ordered[int((1 - fpr) * len(ordered))]
    return scores_test > threshold


def flag_numpy_percentile(scores_in, scores_test, fpr):
    threshold = np.percentile(scores_in.numpy(), 100 * (1 - fpr))
    return torch.as_tensor(scores_test.numpy() > threshold)


def flag_kthvalue(scores_in, scores_test, fpr):
    k = math.ceil((1 - fpr) * len(scores_in))
    return scores_test.gt(scores_in.kthvalue(k).values)


FLAG_CORRECT = [flag_quantile, flag_sorted_index, flag_numpy_percentile, flag_kthvalue]
FLAG_WRONG = [
    (lambda si, st, fpr: (st > torch.quantile(si, 1 - fpr)).nonzero().squeeze(1), "indices"),
    (lambda si, st, fpr: torch.where(st > torch.quantile(si, 1 - fpr))[0], "indices"),
    (lambda si, st, fpr: st < torch.quantile(si, 1 - fpr), "direction_reversed"),
    (lambda si, st, fpr: st < torch.quantile(si, fpr), "direction_reversed"),
    (lambda si, st, fpr: st > torch.quantile(si, fpr), "fpr_quantile"),
    (lambda si, st, fpr: torch.as_tensor(st.numpy() > np.percentile(si.numpy(), 1 - fpr)), "percent_scale"),
    (lambda si, st, fpr: st > torch.quantile(st, 1 - fpr), "threshold_from_test"),
    (lambda si, st, fpr: st > torch.quantile(torch.cat([si, st]), 1 - fpr), "threshold_from_test"),
    (lambda si, st, fpr: (st > torch.quantile(si, 1 - fpr)).float(), "wrong_dtype"),
    (lambda si, st, fpr: torch.quantile(si, 1 - fpr), "wrong_shape"),
]


# ---- the tables -----------------------------------------------------------------------

CORRECT = ([("mc_predict", f) for f in MC_CORRECT] + [("predictive_entropy", f) for f in ENTROPY_CORRECT]
           + [("bald", f) for f in BALD_CORRECT] + [("flag_ood", f) for f in FLAG_CORRECT])
WRONG = ([("mc_predict", f, m) for f, m in MC_WRONG] + [("predictive_entropy", f, m) for f, m in ENTROPY_WRONG]
         + [("bald", f, m) for f, m in BALD_WRONG] + [("flag_ood", f, m) for f, m in FLAG_WRONG])


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("exercise_id", "answer"), CORRECT, ids=[f"{e}-{f.__name__}" for e, f in CORRECT])
def test_correct_variants_pass(exercise_id, answer, seed):
    report = check(exercise_id, answer, seed=seed)
    assert report.passed, report.feedback
    assert report.score == report.max_score and report.mistakes == ()


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("exercise_id", "answer", "mistake"), WRONG, ids=[f"{e}-{m}" for e, _, m in WRONG])
def test_wrong_answer_is_named(exercise_id, answer, mistake, seed):
    report = check(exercise_id, answer, seed=seed)
    assert not report.passed
    assert report.score < report.max_score
    assert mistake in report.mistakes, report.feedback


@pytest.mark.parametrize("exercise_id", IDS)
def test_every_declared_mistake_is_exercised(exercise_id):
    declared = set(EXERCISES[exercise_id].mistakes)
    covered = {m for e, _, m in WRONG if e == exercise_id}
    assert len(declared) >= 4
    assert declared <= covered, declared - covered


@pytest.mark.parametrize("exercise_id", IDS)
def test_stub_is_not_implemented(exercise_id):
    def stub(*args, **kwargs):
        raise NotImplementedError

    report = check(exercise_id, stub)
    assert report.mistakes == ("not_implemented",)
    assert report.score == 0


@pytest.mark.parametrize("exercise_id", IDS)
def test_check_restores_the_global_rng(exercise_id):
    answer = dict(CORRECT)[exercise_id]
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    check(exercise_id, answer)
    assert torch.equal(torch.rand(3), expected)
