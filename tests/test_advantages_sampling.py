"""Per-task metrics, dynamic sampling and the backfill controller."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from golongrl.advantages import (
    TASK_METRIC_NAMES,
    BackfillController,
    compute_advantages,
    dynamic_sampling_mask,
    task_metrics,
)

# Two tasks: em (binary, 2 prompts x 4) and rouge (bunched 0.2-0.4, 1 prompt x 4).
SCORES = [1, 0, 0, 0, 1, 1, 0, 0, 0.2, 0.3, 0.4, 0.3]
GROUPS = ["a"] * 4 + ["b"] * 4 + ["c"] * 4
TASKS = ["em"] * 8 + ["rouge"] * 4


def test_task_metrics_match_hand_computation():
    m = task_metrics(SCORES, GROUPS, TASKS)
    std_a, std_b = math.sqrt(0.1875), 0.5  # population stds of [1,0,0,0] and [1,1,0,0]
    std_c = math.sqrt(np.var([0.2, 0.3, 0.4, 0.3]))
    assert m["task_metrics/em/mean_reward"] == pytest.approx(3 / 8)
    assert m["task_metrics/em/std_reward"] == pytest.approx(np.std(SCORES[:8]))
    assert m["task_metrics/em/mean_std_reward"] == pytest.approx((std_a + std_b) / 2)
    assert m["task_metrics/em/rate_adv"] == pytest.approx((std_a + std_b) / (std_a + std_b + std_c))
    assert m["task_metrics/rouge/rate_adv"] == pytest.approx(std_c / (std_a + std_b + std_c))
    assert m["task_metrics/em/rate_num"] == pytest.approx(2 / 3)
    assert m["task_metrics/em/num_queries"] == 2 and m["task_metrics/em/num_rollouts"] == 8
    assert m["task_metrics/em/sqrt_mean_var"] == pytest.approx(math.sqrt((0.25 + 1 / 3) / 2))
    assert m["task_metrics/rouge/sqrt_mean_var"] == pytest.approx(np.std([0.2, 0.3, 0.4, 0.3], ddof=1))


def test_task_metrics_keys_are_stable_and_absent_tasks_are_zero():
    m = task_metrics(SCORES, GROUPS, TASKS, all_tasks=["em", "rouge", "summarization"])
    for task in ("em", "rouge", "summarization"):
        assert {f"task_metrics/{task}/{name}" for name in TASK_METRIC_NAMES} <= set(m)
    assert m["task_metrics/summarization/num_queries"] == 0.0
    assert all(math.isfinite(v) for v in m.values())


def test_task_metrics_sqrt_mean_var_is_the_tmn_scale():
    rng = np.random.default_rng(3)
    scores = rng.uniform(size=64)
    groups = np.repeat(np.arange(16), 4)
    tasks = np.repeat(np.arange(16) % 3, 4)
    m = task_metrics(scores, groups, tasks)
    tmn = compute_advantages("tmn", scores, groups, tasks, eps=1e-12, std_floor=0.0, zero_tol=0.0)[0]
    # Any non-constant rollout of task 0: (r - mean_u) / S_0.
    i = 0
    dev = scores[i] - scores[:4].mean()
    assert tmn[i].item() == pytest.approx(dev / m["task_metrics/0/sqrt_mean_var"])


def test_task_metrics_without_spread_has_zero_rate_adv_not_nan():
    m = task_metrics([1.0, 1.0, 0.0, 0.0], ["a", "a", "b", "b"], ["x", "x", "y", "y"])
    assert m["task_metrics/x/rate_adv"] == 0.0 and m["task_metrics/y/rate_adv"] == 0.0


def test_dynamic_sampling_drops_constant_and_near_constant_groups():
    scores = [1, 1, 1, 1, 0.3, 0.3000001, 0.3, 0.3, 0.2, 0.4, 0.7]
    groups = ["all"] * 4 + ["near"] * 4 + ["mixed"] * 2 + ["solo"]
    mask, metrics = dynamic_sampling_mask(scores, groups, tol=1e-6)
    assert mask.tolist() == [False] * 8 + [True, True, True]
    assert metrics["dynamic_sampling/kept_groups"] == 2 and metrics["dynamic_sampling/dropped_groups"] == 2
    # The reference's exact-equality filter (tol 0) lets the near-constant group through.
    assert dynamic_sampling_mask(scores, groups, tol=0.0)[0][4:8].all()


def test_dynamic_sampling_on_accuracy_drops_all_fail_groups_with_shaped_scores():
    scores = [0.1, 0.3, 0.2, 0.9, 0.5, 0.6]
    accuracy = [0, 0, 0, float("nan"), float("nan"), float("nan")]
    groups = ["fail"] * 3 + ["graded"] * 3
    by_score, _ = dynamic_sampling_mask(scores, groups)
    by_acc, _ = dynamic_sampling_mask(scores, groups, metric="acc", accuracy=accuracy)
    assert by_score.all()
    assert by_acc.tolist() == [False] * 3 + [True] * 3


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [({"metric": "reward"}, "metric"), ({"metric": "acc"}, "accuracy"), ({"tol": -1.0}, "tol"),
     ({"metric": "acc", "accuracy": [0.0]}, "accuracy")],
)
def test_dynamic_sampling_bad_input_names_the_argument(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        dynamic_sampling_mask([0.0, 1.0], ["a", "a"], **kwargs)


def test_backfill_reaches_target_and_truncates_surplus_in_order():
    controller = BackfillController(target_groups=3, max_gen_batches=4)
    first = controller.add([1, 0, 1, 1, 0, 1], ["p1", "p1", "p2", "p2", "p3", "p3"])
    assert first.tolist() == [True, True, False, False, True, True]
    assert controller.need_more and controller.reason == "in_progress"
    second = controller.add([0, 1, 1, 0, 1, 0], ["q1", "q1", "q2", "q2", "q3", "q3"])
    # Only one more group fits: the first informative one of the batch.
    assert second.tolist() == [True, True, False, False, False, False]
    assert controller.reason == "target_reached" and not controller.need_more
    metrics = controller.metrics()
    assert metrics["dynamic_sampling/kept_groups"] == 3 and metrics["dynamic_sampling/cap_hit"] == 0
    with pytest.raises(RuntimeError, match="finished"):
        controller.add([0, 1], ["r", "r"])


def test_backfill_cap_returns_what_is_there_and_flags_it():
    controller = BackfillController(target_groups=5, max_gen_batches=2)
    for _ in range(2):
        controller.add(torch.tensor([1.0, 1.0, 0.0, 1.0]), torch.tensor([0, 0, 1, 1]))
    assert not controller.need_more
    assert controller.reason == "cap_hit"
    assert controller.metrics()["dynamic_sampling/cap_hit"] == 1.0
    assert controller.kept_groups == 2


def test_backfill_rejects_bad_configuration():
    with pytest.raises(ValueError, match="target_groups"):
        BackfillController(target_groups=0)
    with pytest.raises(ValueError, match="max_gen_batches"):
        BackfillController(target_groups=1, max_gen_batches=0)
