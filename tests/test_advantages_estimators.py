"""Advantage estimators: the spec's worked example, reference conventions, properties, bad input."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from golongrl.advantages import ESTIMATORS, compute_advantages, register_estimator

REFERENCE_EXACT = {"std_floor": 0.0, "zero_tol": 0.0}
ALL = ("grpo", "dr_grpo", "qwenlong_task_norm", "qwenlong_l15", "tmn", "tmn_reweight")
GROUP_CENTRED = ("grpo", "dr_grpo", "qwenlong_l15", "tmn", "tmn_reweight")

_spec = importlib.util.spec_from_file_location(
    "bench_advantages", Path(__file__).resolve().parents[1] / "benchmarks" / "advantages.py"
)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

# The worked example of golongrl-reference.md §5: one task, G = 4, binary rewards.
EXAMPLE_SCORES = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0], dtype=torch.float64)
EXAMPLE_GROUPS = ["a"] * 4 + ["b"] * 4
EXAMPLE_TASKS = ["k"] * 8


def adv(name, scores, groups, tasks, **params):
    return compute_advantages(name, scores, groups, tasks, **params)[0]


def test_worked_example_grpo_matches_hand_computation():
    a = adv("grpo", EXAMPLE_SCORES, EXAMPLE_GROUPS, EXAMPLE_TASKS)
    # a: mean 0.25, unbiased std 0.5; b: mean 0.5, std sqrt(1/3).
    assert a[0].item() == pytest.approx(0.75 / (0.5 + 1e-6))
    assert a[1].item() == pytest.approx(-0.25 / (0.5 + 1e-6))
    assert a[4].item() == pytest.approx(0.5 / (math.sqrt(1 / 3) + 1e-6))
    assert round(a[0].item(), 2) == 1.50 and round(a[4].item(), 2) == 0.87


def test_worked_example_tmn_uses_task_rms_of_prompt_stds():
    a = adv("tmn", EXAMPLE_SCORES, EXAMPLE_GROUPS, EXAMPLE_TASKS)
    scale = math.sqrt((0.25 + 1 / 3) / 2)
    assert scale == pytest.approx(0.540, abs=1e-3)
    assert a[0].item() == pytest.approx(0.75 / (scale + 1e-6))
    assert a[4].item() == pytest.approx(0.5 / (scale + 1e-6))
    assert round(a[0].item(), 2) == 1.39 and round(a[4].item(), 2) == 0.93


def test_worked_example_tmn_reweight_weights_hard_prompt_minority():
    a, metrics = compute_advantages("tmn_reweight", EXAMPLE_SCORES, EXAMPLE_GROUPS, EXAMPLE_TASKS, alpha=0.8, gamma=1.0)
    scale = math.sqrt((0.25 + 1 / 3) / 2) + 1e-6
    # m_k = 0.375; baseline_a = 0.8 * 0.25 + 0.2 * 0.375 = 0.275 -> p_a = 1/4.
    w_pos, w_neg = math.exp(0.25), math.exp(-0.25)
    assert a[0].item() == pytest.approx(0.75 / scale * w_pos)
    assert a[1].item() == pytest.approx(-0.25 / scale * w_neg)
    assert round(a[0].item(), 2) == 1.78 and round(a[1].item(), 2) == -0.36
    # baseline_b = 0.475 -> p_b = 1/2 -> weights 1.
    assert a[4].item() == pytest.approx(0.5 / scale)
    assert metrics["difficulty/mean_pass_rate"] == pytest.approx((0.25 + 0.5) / 2)


def test_qwenlong_variants_differ_in_centre_only():
    task_norm = adv("qwenlong_task_norm", EXAMPLE_SCORES, EXAMPLE_GROUPS, EXAMPLE_TASKS)
    l15 = adv("qwenlong_l15", EXAMPLE_SCORES, EXAMPLE_GROUPS, EXAMPLE_TASKS)
    task_std = EXAMPLE_SCORES.std().item()
    # task mean 0.375: every success gets the same advantage whatever its prompt.
    assert task_norm[0].item() == pytest.approx(0.625 / (task_std + 1e-6))
    assert task_norm[4].item() == pytest.approx(task_norm[0].item())
    assert l15[0].item() == pytest.approx(0.75 / (task_std + 1e-6))
    assert l15[4].item() == pytest.approx(0.5 / (task_std + 1e-6))


def test_single_rollout_groups_follow_reference_conventions():
    scores = torch.tensor([0.7, 1.0, 0.0, 0.4], dtype=torch.float64)
    groups, tasks = ["solo", "g", "g", "solo2"], ["t", "t", "t", "u"]
    assert adv("grpo", scores, groups, tasks)[0].item() == pytest.approx(0.7 / (1 + 1e-6))
    assert adv("dr_grpo", scores, groups, tasks)[0].item() == pytest.approx(0.7)
    # TMN: task t has prompts {solo: var 1, g: var 0.5} -> S = sqrt(0.75); solo centre 0.
    s_t = math.sqrt(0.75) + 1e-6
    assert adv("tmn", scores, groups, tasks)[0].item() == pytest.approx(0.7 / s_t)
    assert adv("tmn", scores, groups, tasks)[1].item() == pytest.approx(0.5 / s_t)
    # Task u has one prompt with one rollout: S = 1.
    assert adv("tmn", scores, groups, tasks)[3].item() == pytest.approx(0.4 / (1 + 1e-6))
    # qwenlong_task_norm: single-rollout task -> scale 1, centred on itself -> 0.
    assert adv("qwenlong_task_norm", scores, groups, tasks)[3].item() == 0.0
    # qwenlong_l15 (published code): single-rollout task has std 0 -> r / eps, bounded by the floor.
    assert adv("qwenlong_l15", scores, groups, tasks, **REFERENCE_EXACT)[3].item() == pytest.approx(0.4 / 1e-6)
    assert adv("qwenlong_l15", scores, groups, tasks)[3].item() == pytest.approx(0.4 / (1e-3 + 1e-6))


def test_tmn_reweight_single_rollout_prompt_uses_task_mean_baseline():
    scores = torch.tensor([0.9, 1.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    groups, tasks = ["solo", "g", "g", "g", "g"], ["t"] * 5
    a = adv("tmn_reweight", scores, groups, tasks, alpha=0.8, gamma=1.0)
    tmn = adv("tmn", scores, groups, tasks)
    # prompt means (solo counts 0): m = (0 + 0.25) / 2 = 0.125; 0.9 > 0.125 -> p = 1, and
    # 0.9 > raw centre 0 -> positive weight exp(0.5 - 1).
    assert a[0].item() == pytest.approx(tmn[0].item() * math.exp(-0.5))


@pytest.mark.parametrize("name", ALL)
def test_vectorized_matches_python_loop_reference(name):
    rng = np.random.default_rng(7)
    sizes = rng.integers(1, 6, size=40)
    groups = np.repeat(np.arange(40), sizes)
    tasks = np.repeat(rng.integers(0, 4, size=40), sizes)
    scores = np.where(tasks % 2 == 0, rng.integers(0, 2, size=len(groups)), rng.uniform(size=len(groups)))
    expected = bench.loop_advantages(name, scores.tolist(), groups.tolist(), tasks.tolist())
    got = adv(name, torch.tensor(scores), groups, [f"task{t}" for t in tasks], **REFERENCE_EXACT)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-9, atol=1e-9)


# ---------------------------------------------------------------- properties (hypothesis)

PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def batches(draw, min_group=1):
    """Random batches: up to 8 groups of 1-6 rollouts over up to 3 tasks, rewards in [0, 1]."""
    num_groups = draw(st.integers(1, 8))
    sizes = draw(st.lists(st.integers(min_group, 6), min_size=num_groups, max_size=num_groups))
    task_of = draw(st.lists(st.sampled_from(["em", "f1", "rouge"]), min_size=num_groups, max_size=num_groups))
    reward = st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0, 1, allow_nan=False))
    scores, groups, tasks = [], [], []
    for g, (size, task) in enumerate(zip(sizes, task_of)):
        scores += draw(st.lists(reward, min_size=size, max_size=size))
        groups += [f"g{g}"] * size
        tasks += [task] * size
    return torch.tensor(scores, dtype=torch.float64), groups, tasks


TINY = {"std_floor": 0.0, "zero_tol": 1e-9, "eps": 1e-15}


def _clear_spread(scores, groups):
    """Bool [N]: rollouts whose group is exactly constant or spans more than 1e-6."""
    spread = {g: max(s for s, h in zip(scores.tolist(), groups) if h == g)
              - min(s for s, h in zip(scores.tolist(), groups) if h == g) for g in set(groups)}
    return torch.tensor([spread[g] == 0 or spread[g] > 1e-6 for g in groups])


@PROPERTY
@given(batches(min_group=2), st.floats(0.05, 20.0), st.sampled_from(["tmn", "tmn_reweight"]))
def test_tmn_invariant_to_scaling_one_task(batch, factor, name):
    scores, groups, tasks = batch
    scaled = torch.where(torch.tensor([t == "f1" for t in tasks]), scores * factor, scores)
    base = adv(name, scores, groups, tasks, **TINY)
    other = adv(name, scaled, groups, tasks, **TINY)
    keep = _clear_spread(scores, groups)
    torch.testing.assert_close(other[keep], base[keep], rtol=1e-6, atol=1e-6)


@PROPERTY
@given(batches(), st.data())
def test_grpo_invariant_to_per_group_affine_map(batch, data):
    scores, groups, tasks = batch
    names = sorted(set(groups))
    a = {g: data.draw(st.floats(0.1, 10.0)) for g in names}
    b = {g: data.draw(st.floats(-5.0, 5.0)) for g in names}
    sizes = {g: groups.count(g) for g in names}
    mapped = torch.tensor([s * a[g] + b[g] for s, g in zip(scores.tolist(), groups)], dtype=torch.float64)
    base = adv("grpo", scores, groups, tasks, **TINY)
    other = adv("grpo", mapped, groups, tasks, **TINY)
    keep = torch.tensor([sizes[g] > 1 for g in groups]) & _clear_spread(scores, groups)
    torch.testing.assert_close(other[keep], base[keep], rtol=1e-6, atol=1e-6)


@PROPERTY
@given(batches(min_group=2), st.sampled_from(GROUP_CENTRED), st.floats(0, 1))
def test_zero_spread_groups_get_zero_advantage(batch, name, level):
    scores, groups, tasks = batch
    flat = scores.clone()
    first = groups[0]
    members = torch.tensor([g == first for g in groups])
    # Near-constant (continuous-reward residue below zero_tol) counts as constant.
    flat[members] = level + torch.linspace(0, 1e-7, int(members.sum()), dtype=torch.float64)
    a = adv(name, flat, groups, tasks)
    assert torch.all(a[members] == 0)


@PROPERTY
@given(batches(), st.sampled_from(ALL), st.randoms(use_true_random=False))
def test_permuting_the_batch_permutes_the_advantages(batch, name, rnd):
    scores, groups, tasks = batch
    order = list(range(len(groups)))
    rnd.shuffle(order)
    base = adv(name, scores, groups, tasks)
    permuted = adv(name, scores[order], [groups[i] for i in order], [tasks[i] for i in order])
    torch.testing.assert_close(permuted, base[order], rtol=1e-12, atol=1e-12)


@PROPERTY
@given(batches(), st.sampled_from(ALL))
def test_outputs_are_finite_and_bounded(batch, name):
    scores, groups, tasks = batch
    advantages, metrics = compute_advantages(name, scores, groups, tasks)
    assert torch.isfinite(advantages).all()
    # Rewards in [0, 1] and a 1e-3 floor: no advantage can exceed 1 / 1e-3 (times e^0.5 weights).
    assert advantages.abs().max() <= 1e3 * math.exp(0.5)
    assert all(math.isfinite(v) for v in metrics.values())


def test_empty_batch_gives_empty_advantages():
    for name in ALL:
        advantages, metrics = compute_advantages(name, torch.zeros(0), [], [])
        assert advantages.shape == (0,)
        assert all(math.isfinite(v) for v in metrics.values())


def test_near_constant_continuous_group_gets_no_huge_advantage():
    # ROUGE scores differing in the 7th decimal, fp32 as a trainer holds them.
    scores = torch.tensor([0.3141592, 0.3141593, 0.3141592, 0.3141594], dtype=torch.float32)
    groups, tasks = ["u"] * 4, ["summarization"] * 4
    for name in GROUP_CENTRED:
        assert torch.all(adv(name, scores, groups, tasks) == 0)
    # Above the tolerance but tiny: the floor keeps it proportionally small, unlike the reference.
    wobble = torch.tensor([0.30, 0.30001, 0.30, 0.30002], dtype=torch.float64)
    assert adv("grpo", wobble, groups, tasks).abs().max() < 0.02
    assert adv("grpo", wobble, groups, tasks, **REFERENCE_EXACT).abs().max() > 0.9


def test_output_follows_input_dtype_and_params_of_other_estimators_are_ignored():
    scores32 = EXAMPLE_SCORES.float()
    a = adv("grpo", scores32, EXAMPLE_GROUPS, EXAMPLE_TASKS, alpha=0.5, gamma=2.0, clamp=None)
    assert a.dtype == torch.float32
    assert adv("grpo", [1.0, 0.0], [1, 1], [0, 0]).dtype == torch.float32


def test_tmn_reweight_clamp_bounds_weights():
    a = adv("tmn_reweight", EXAMPLE_SCORES, EXAMPLE_GROUPS, EXAMPLE_TASKS, clamp=(1.0, 1.1))
    tmn = adv("tmn", EXAMPLE_SCORES, EXAMPLE_GROUPS, EXAMPLE_TASKS)
    assert a[0].item() == pytest.approx(tmn[0].item() * 1.1)
    assert a[1].item() == pytest.approx(tmn[1].item() * 1.0)


def test_integer_and_string_labels_agree():
    by_str = adv("tmn_reweight", EXAMPLE_SCORES, EXAMPLE_GROUPS, EXAMPLE_TASKS)
    by_int = adv("tmn_reweight", EXAMPLE_SCORES, torch.tensor([5] * 4 + [2] * 4), np.zeros(8, dtype=int))
    torch.testing.assert_close(by_str, by_int)


# ---------------------------------------------------------------- bad input and registry


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"scores": [1.0, float("nan")]}, "scores"),
        ({"scores": [1.0, float("inf")]}, "scores"),
        ({"scores": [[1.0, 0.0]]}, "scores"),
        ({"group_ids": ["a"]}, "group_ids"),
        ({"task_ids": ["t", "t", "t"]}, "task_ids"),
        ({"task_ids": ["t", "u"]}, "task_ids"),
        ({"estimator": "gpro"}, "estimator"),
        ({"estimator": "tmn_reweight", "alpha": 1.5}, "alpha"),
        ({"estimator": "tmn_reweight", "clamp": (2.0, 1.0)}, "clamp"),
        ({"estimator": "grpo", "std_flor": 0.1}, "std_flor"),
        ({"estimator": "grpo", "eps": -1.0}, "eps"),
    ],
)
def test_bad_input_names_the_argument(kwargs, needle):
    call = {"estimator": "grpo", "scores": [1.0, 0.0], "group_ids": ["a", "a"], "task_ids": ["t", "t"]}
    call.update(kwargs)
    with pytest.raises(ValueError, match=needle):
        compute_advantages(call.pop("estimator"), call.pop("scores"), call.pop("group_ids"), call.pop("task_ids"), **call)


def test_registry_accepts_user_estimators_and_refuses_name_clashes():
    @register_estimator("test_sign_only")
    def sign_only(batch, *, eps: float = 1e-6):
        return torch.sign(batch.scores - batch.group_of(batch.group_mean)), {}

    try:
        a = adv("test_sign_only", EXAMPLE_SCORES, EXAMPLE_GROUPS, EXAMPLE_TASKS)
        assert a.tolist() == [1, -1, -1, -1, 1, 1, -1, -1]
        with pytest.raises(ValueError, match="already registered"):
            register_estimator("grpo")(sign_only)
    finally:
        ESTIMATORS.pop("test_sign_only")
