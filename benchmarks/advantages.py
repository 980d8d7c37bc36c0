"""Time golongrl.advantages on 1,000,000 rollouts (16 per prompt, 9 tasks) per estimator,
side by side with a straightforward per-group Python loop (the shape of the reference code).

    .venv/bin/python benchmarks/advantages.py [--rollouts 1000000] [--loop-rollouts 100000] [--threads N]

The loop baseline runs on ``--loop-rollouts`` rollouts and its time is scaled linearly to the
full size (it is linear in N: one pass to group, one per group, one per rollout); the table
marks such rows "extrapolated". Both sides get the same inputs: float32 scores, uid strings
and task-name strings, as a trainer holds them. The loop also serves as an independent
re-statement of the equations; tests/test_advantages_estimators.py checks that both agree.
"""

from __future__ import annotations

import argparse
import math
import time
from collections import defaultdict
from typing import Callable, Hashable, Sequence

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from golongrl.advantages import compute_advantages

ESTIMATOR_NAMES = ("grpo", "dr_grpo", "qwenlong_task_norm", "qwenlong_l15", "tmn", "tmn_reweight")
EPS = 1e-6


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs)


def _var(xs: Sequence[float]) -> float:
    m = _mean(xs)
    return sum((x - m) ** 2 for x in xs) / (len(xs) - 1)


def loop_advantages(
    estimator: str,
    scores: Sequence[float],
    group_ids: Sequence[Hashable],
    task_ids: Sequence[Hashable],
    alpha: float = 0.8,
    gamma: float = 1.0,
) -> list[float]:
    """Reference-exact advantages (eps 1e-6, no floor, no tolerance) with plain Python loops."""
    groups: dict[Hashable, list[int]] = defaultdict(list)
    tasks: dict[Hashable, list[int]] = defaultdict(list)
    group_task: dict[Hashable, Hashable] = {}
    for i, (g, t) in enumerate(zip(group_ids, task_ids)):
        groups[g].append(i)
        tasks[t].append(i)
        group_task[g] = t
    out = [0.0] * len(scores)
    if estimator == "qwenlong_task_norm":
        for members in tasks.values():
            xs = [scores[i] for i in members]
            mean = _mean(xs)
            std = 1.0 if len(xs) == 1 else math.sqrt(_var(xs))
            for i in members:
                out[i] = (scores[i] - mean) / (std + EPS)
        return out
    centre: dict[Hashable, float] = {}
    var: dict[Hashable, float] = {}
    for g, members in groups.items():
        xs = [scores[i] for i in members]
        centre[g] = 0.0 if len(xs) == 1 else _mean(xs)
        var[g] = 1.0 if len(xs) == 1 else _var(xs)
    if estimator in ("grpo", "dr_grpo"):
        for g, members in groups.items():
            for i in members:
                dev = scores[i] - centre[g]
                out[i] = dev if estimator == "dr_grpo" else dev / (math.sqrt(var[g]) + EPS)
        return out
    if estimator == "qwenlong_l15":
        task_std = {}
        for t, members in tasks.items():
            xs = [scores[i] for i in members]
            task_std[t] = 0.0 if len(xs) == 1 else math.sqrt(_var(xs))
        for g, members in groups.items():
            for i in members:
                out[i] = (scores[i] - centre[g]) / (task_std[group_task[g]] + EPS)
        return out
    task_groups: dict[Hashable, list[Hashable]] = defaultdict(list)
    for g, t in group_task.items():
        task_groups[t].append(g)
    scale = {t: math.sqrt(_mean([var[g] for g in gs])) for t, gs in task_groups.items()}
    for g, members in groups.items():
        for i in members:
            out[i] = (scores[i] - centre[g]) / (scale[group_task[g]] + EPS)
    if estimator == "tmn":
        return out
    if estimator != "tmn_reweight":
        raise ValueError(f"unknown estimator {estimator!r}")
    task_mean = {t: _mean([centre[g] for g in gs]) for t, gs in task_groups.items()}
    for g, members in groups.items():
        m_k = task_mean[group_task[g]]
        baseline = m_k if len(members) == 1 else alpha * centre[g] + (1 - alpha) * m_k
        p = sum(1 for i in members if scores[i] > baseline) / len(members)
        for i in members:
            out[i] *= math.exp(gamma * (0.5 - p)) if scores[i] > centre[g] else math.exp(gamma * (p - 0.5))
    return out


def torch_scalar_loop_grpo(scores: torch.Tensor, group_ids: Sequence[Hashable]) -> torch.Tensor:
    """GRPO the way verl's (and GoLongRL's) reference loop does it: per-rollout tensor scalars."""
    members: dict[Hashable, list[torch.Tensor]] = defaultdict(list)
    for i in range(scores.shape[0]):
        members[group_ids[i]].append(scores[i])
    stats = {}
    for g, xs in members.items():
        stacked = torch.stack(xs)
        stats[g] = (torch.tensor(0.0), torch.tensor(1.0)) if len(xs) == 1 else (stacked.mean(), stacked.std())
    out = scores.clone()
    for i in range(scores.shape[0]):
        mean, std = stats[group_ids[i]]
        out[i] = (scores[i] - mean) / (std + EPS)
    return out


def make_batch(rollouts: int, per_prompt: int = 16, num_tasks: int = 9, seed: int = 0):
    """Float32 scores (binary tasks and graded tasks), uid strings, task strings."""
    rng = np.random.default_rng(seed)
    prompts = rollouts // per_prompt
    task_of_prompt = rng.integers(0, num_tasks, size=prompts)
    binary = task_of_prompt < num_tasks // 2
    p = rng.uniform(0, 1, size=prompts)
    graded = rng.beta(2, 5, size=(prompts, per_prompt))
    hits = rng.uniform(size=(prompts, per_prompt)) < p[:, None]
    scores = np.where(binary[:, None], hits.astype(np.float64), graded).astype(np.float32).ravel()
    uids = np.repeat(np.array([f"uid-{i:08d}" for i in range(prompts)], dtype=object), per_prompt)
    tasks = np.repeat(np.array([f"task_{t}" for t in task_of_prompt], dtype=object), per_prompt)
    return torch.from_numpy(scores), uids, tasks


def _best_of(fn: Callable[[], object], repeats: int) -> float:
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rollouts", type=int, default=1_000_000)
    parser.add_argument("--loop-rollouts", type=int, default=100_000,
                        help="rollouts the Python loop runs on (scaled to --rollouts)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(max(1, args.threads))
    scores, uids, tasks = make_batch(args.rollouts)
    loop_n = min(args.loop_rollouts, args.rollouts)
    loop_scores = scores[:loop_n].tolist()
    loop_uids, loop_tasks = list(uids[:loop_n]), list(tasks[:loop_n])
    console = Console(width=120)
    table = Table(title=f"Advantages for {args.rollouts:,} rollouts (16/prompt, 9 tasks), best of {args.repeats}")
    for column in ("estimator", "golongrl (s)", "python loop (s)", "loop basis", "speed-up"):
        table.add_column(column, justify="right" if column != "estimator" else "left")
    for name in ESTIMATOR_NAMES:
        vectorized = _best_of(lambda: compute_advantages(name, scores, uids, tasks), args.repeats)
        loop = _best_of(lambda: loop_advantages(name, loop_scores, loop_uids, loop_tasks), 1)
        loop_full = loop * args.rollouts / loop_n
        basis = "measured" if loop_n == args.rollouts else f"extrapolated from {loop_n:,}"
        table.add_row(name, f"{vectorized:.3f}", f"{loop_full:.2f}", basis, f"{loop_full / vectorized:.0f}x")
    scalar_n = min(args.loop_rollouts // 5, args.rollouts)
    scalar = _best_of(lambda: torch_scalar_loop_grpo(scores[:scalar_n], uids[:scalar_n]), 1)
    scalar_full = scalar * args.rollouts / scalar_n
    grpo_time = _best_of(lambda: compute_advantages("grpo", scores, uids, tasks), args.repeats)
    table.add_row("grpo vs reference-style loop over torch scalars", f"{grpo_time:.3f}", f"{scalar_full:.2f}",
                  f"extrapolated from {scalar_n:,}", f"{scalar_full / grpo_time:.0f}x")
    console.print(table)
    console.print(f"torch threads: {torch.get_num_threads()}; target: under 1 s per estimator")


if __name__ == "__main__":
    main()
