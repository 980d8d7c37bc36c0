"""Reward scoring at GoLongRL scale: golongrl vs the reference libraries, side by side.

One synthetic RL step (default 2,048 responses, the nine task types mixed as in GoLongRL, see
``benchmarks/reward_synthetic.py``; responses up to 16K words, summaries of 300-2,000 words;
GRPO-shaped: ``--group`` consecutive responses share one prompt's row, default 8 as in
``configs/verl-qwen3-4b-1gpu.yaml``, ``--group 1`` gives every response its own) is scored by

* the reference scorer on its own libraries (pltrdy ``rouge``, ``pytrec_eval``, ``math_verify``;
  ``benchmarks/reward_reference.py``), serially, as GoLongRL's reward manager does;
* golongrl faithful and hardened in-process (``prepare`` and ``score_prepared`` per response in a
  loop, as a per-sample reward function does: no time cap; faithful on the same single core as
  the reference is the like-for-like ratio);
* golongrl faithful and hardened through ``score_batch`` with its per-sample cap and warm
  workers, as one step and in verl-sized micro-batches of 4 (the times a trainer sees); the
  ratio to in-process must stay >= 1 (the cap must not cost time).  These totals are measured
  ``--repeat`` times, interleaved, and their medians reported.

It prints per-task times, the totals, the ratios and the faithful-vs-reference parity.  When
``--ref-limit`` is below the step size the reference runs on a stratified subset (every task
kept in proportion) and its full-step time is extrapolated per task from measured per-item
means; the output says so.

    .venv/bin/python benchmarks/rewards.py            # full step
    .venv/bin/python benchmarks/rewards.py --n 256    # quick look
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections import defaultdict
from typing import Any


def _clear_math_caches() -> None:
    # math_verify memoises parses; without clearing, whichever side runs second gets free hits.
    from math_verify import parser

    for name in ("parse_latex_cached", "parse_expr_cached"):
        getattr(parser, name).cache_clear()


def _key(req: dict[str, Any]) -> str:
    from golongrl.tasks import resolve_task

    task = resolve_task(req["data_source"], req["extra_info"])
    return f"{task} (lbp)" if req["data_source"] == "longbench_pro" and task == "comprehension" else task


def _stratified(keys: list[str], limit: int, seed: int) -> list[int]:
    by_key: dict[str, list[int]] = defaultdict(list)
    for i, k in enumerate(keys):
        by_key[k].append(i)
    if limit >= len(keys):
        return list(range(len(keys)))
    rng = random.Random(seed)
    chosen: list[int] = []
    for idx in by_key.values():
        take = max(1, round(len(idx) * limit / len(keys)))
        chosen.extend(rng.sample(idx, min(take, len(idx))))
    return sorted(chosen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2048, help="responses in the step")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--group", type=int, default=8, help="responses per prompt (GRPO group)")
    parser.add_argument("--max-tokens", type=int, default=16_384, help="longest response, words")
    parser.add_argument("--workers", type=int, default=2, help="pool size for score_batch")
    parser.add_argument("--repeat", type=int, default=3,
                        help="measure the in-process and score_batch totals this often (median)")
    parser.add_argument(
        "--ref-limit", type=int, default=None,
        help="score at most this many items with the reference (stratified); default: all",
    )
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    from golongrl.rewards import close_pool, score_batch, warm_pool
    from reward_reference import reference_score
    from golongrl.rewards.scoring import ScoreOptions, prepare, score_prepared
    from reward_synthetic import make_requests

    console = Console()
    requests = make_requests(args.n, seed=args.seed, max_tokens=args.max_tokens, group=args.group)
    keys = [_key(r) for r in requests]
    n_words = sorted(len(r["solution_str"].split()) for r in requests)
    console.print(
        f"step: {len(requests)} responses in groups of {args.group}, words per response median "
        f"{n_words[len(n_words) // 2]}, "
        f"max {n_words[-1]}, total {sum(n_words):,}"
    )

    # Warm-up on a different small step: imports, jieba, pools (a trainer's steady state).
    warm = make_requests(32, seed=args.seed + 1, max_tokens=512)
    for r in warm:
        reference_score(r["data_source"], r["solution_str"], r["ground_truth"], r["extra_info"])
    score_batch(warm, mode="faithful", workers=args.workers)

    # Reference, serial.
    ref_idx = _stratified(keys, args.ref_limit or len(requests), args.seed)
    _clear_math_caches()
    ref_scores: dict[int, float] = {}
    ref_time: dict[str, float] = defaultdict(float)
    ref_count: dict[str, int] = defaultdict(int)
    for i in ref_idx:
        r = requests[i]
        t0 = time.perf_counter()
        ref_scores[i] = reference_score(r["data_source"], r["solution_str"], r["ground_truth"], r["extra_info"])
        ref_time[keys[i]] += time.perf_counter() - t0
        ref_count[keys[i]] += 1

    # golongrl in this process, no cap: the baseline score_batch must not fall behind.  The
    # totals are measured --repeat times, interleaved, and the median is reported (a shared
    # machine's load comes and goes); per-task times and scores come from the first pass.
    opts = ScoreOptions()
    in_process: dict[str, list[float]] = defaultdict(list)
    ours_scores: list[float] = []
    ours_time: dict[str, float] = defaultdict(float)
    ours_count: dict[str, int] = defaultdict(int)
    hardened_time: dict[str, float] = defaultdict(float)

    def score_in_process(mode: str, first: bool) -> None:
        _clear_math_caches()
        t_mode = time.perf_counter()
        for r, k in zip(requests, keys):
            t0 = time.perf_counter()
            p = prepare(r["data_source"], r["ground_truth"], r["extra_info"], mode)
            score = score_prepared(p, r["solution_str"], mode, opts)[0]
            if not first:
                continue
            if mode == "faithful":
                ours_scores.append(score)
                ours_time[k] += time.perf_counter() - t0
                ours_count[k] += 1
            else:
                hardened_time[k] += time.perf_counter() - t0
        in_process[mode].append(time.perf_counter() - t_mode)

    def fresh_workers(mode: str) -> None:
        # Workers memoise math parses too: each measurement starts from new, warm ones (a
        # trainer's steady state: its first steps started them).
        close_pool()
        score_batch(warm, mode=mode, workers=args.workers)
        warm_pool(args.workers)
        _clear_math_caches()

    # golongrl through score_batch (capped, warm workers): the step time a trainer sees.
    pooled: dict[str, list[float]] = defaultdict(list)
    micro: dict[str, list[float]] = defaultdict(list)
    for rep in range(args.repeat):
        for mode in ("faithful", "hardened"):
            score_in_process(mode, first=rep == 0)
            fresh_workers(mode)
            t0 = time.perf_counter()
            results = score_batch(requests, mode=mode, workers=args.workers)
            pooled[mode].append(time.perf_counter() - t0)
            if mode == "faithful":
                assert [r.score for r in results] == ours_scores, "score_batch and in-process scores differ"
            fresh_workers(mode)
            t0 = time.perf_counter()
            for start in range(0, len(requests), 4):
                score_batch(requests[start : start + 4], mode=mode, workers=args.workers)
            micro[mode].append(time.perf_counter() - t0)
    close_pool()

    table = Table(title="per task (ms per item, one core)")
    for col in ("task", "n", "reference", "golongrl faithful", "ratio", "golongrl hardened"):
        table.add_column(col, justify="left" if col == "task" else "right")
    ref_full = 0.0
    for k in sorted(ours_count, key=lambda k: -ours_count[k]):
        ref_ms = 1e3 * ref_time[k] / ref_count[k] if ref_count[k] else float("nan")
        ours_ms = 1e3 * ours_time[k] / ours_count[k]
        ref_full += ref_ms / 1e3 * ours_count[k]
        hard_ms = 1e3 * hardened_time[k] / ours_count[k]
        table.add_row(k, str(ours_count[k]), f"{ref_ms:.2f}", f"{ours_ms:.2f}", f"{ref_ms / ours_ms:.1f}x",
                      f"{hard_ms:.2f}")
    console.print(table)

    ours_total = sum(ours_time.values())
    measured_ref = sum(ref_time.values())
    subset = len(ref_idx) < len(requests)
    label = (
        f"reference, extrapolated from a stratified subset of {len(ref_idx)} items "
        f"(measured {measured_ref:.1f} s on it)"
        if subset else "reference, measured on the full step"
    )
    mismatches = [i for i in ref_idx if ref_scores[i] != ours_scores[i]]
    max_dev = max((abs(ref_scores[i] - ours_scores[i]) for i in ref_idx), default=0.0)
    console.print(f"{label}: {ref_full:.1f} s (one core)")
    console.print(f"golongrl faithful, in-process: {ours_total:.2f} s (one core) -> {ref_full / ours_total:.1f}x")
    for mode in pooled:
        base, whole, small = (statistics.median(t[mode]) for t in (in_process, pooled, micro))
        console.print(
            f"golongrl {mode} (median of {args.repeat}): in-process {base:.3f} s; score_batch "
            f"(<= {args.workers} workers) {whole:.3f} s -> {base / whole:.2f}x in-process, "
            f"{ref_full / whole:.1f}x the serial reference; in micro-batches of 4 {small:.3f} s "
            f"-> {base / small:.2f}x in-process"
        )
    console.print(
        f"faithful parity on {len(ref_idx)} items: {len(ref_idx) - len(mismatches)} identical, "
        f"{len(mismatches)} different, max |diff| {max_dev:.3g}"
    )


if __name__ == "__main__":
    main()
