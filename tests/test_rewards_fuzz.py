"""Fuzz: thousands of adversarial responses per task and mode score in [0, 1] without raising,
each hypothesis example (a batch of responses) inside a generous deadline; the pooled path
bounds every sample by its time cap."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from golongrl.rewards import compute_score, score_batch
from golongrl.rewards.scoring import REASON_ERROR, ScoreOptions, prepare, score_prepared
from rewards_fixtures import CORRECT, GOLD_ITEMS, GOLD_SUMMARY, ROWS

FRAGMENTS = [
    "<think>", "</think>", "[Answer]", "[答案]", "<answer>", "</answer>", "\n", "\n\n", " ", ".",
    "\\boxed{", "}", "{", "$", "\\frac{1}{2}", "^{9^{9}}", "\\sqrt{", "The correct answer is (",
    "A)", "B", '{"data": [[', '"a", 1', "]]}", "[[[[", "null", "1e309", "NaN", "*", "\x00",
    "\ud7ff", "我们今天去公园", "。", "\u2028", "\r\n", *GOLD_ITEMS, GOLD_SUMMARY[:40],
    *CORRECT.values(),
]

responses = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=40)), max_size=40
).map("".join)

FUZZ_SETTINGS = dict(
    database=None,
    deadline=30_000,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _check(task: str, mode: str, batch: list[str]) -> None:
    row = ROWS[task]
    prepared = prepare(row["data_source"], row["ground_truth"], row["extra_info"], mode)
    opts = ScoreOptions()
    for response in batch:
        score, reason = score_prepared(prepared, response, mode, opts)
        assert 0.0 <= score <= 1.0 and not math.isnan(score)
        assert reason != REASON_ERROR or mode == "faithful", (task, response)


CHEAP_TASKS = sorted(t for t in ROWS if t != "numerical_reasoning")


@pytest.mark.parametrize("mode", ["faithful", "hardened"])
@pytest.mark.parametrize("task", CHEAP_TASKS)
def test_random_responses_score_in_range(task: str, mode: str) -> None:
    # 20 examples x 50 responses = 1,000 responses per (task, mode), 2,000 per task.
    @settings(max_examples=20, **FUZZ_SETTINGS)
    @given(st.lists(responses, min_size=50, max_size=50))
    def run(batch: list[str]) -> None:
        _check(task, mode, batch)

    run()


@pytest.mark.parametrize("mode", ["faithful", "hardened"])
def test_random_math_responses_score_in_range(mode: str) -> None:
    # math_verify runs sympy on every response, so fewer: 25 x 20 = 500 per mode.
    @settings(max_examples=25, **FUZZ_SETTINGS)
    @given(st.lists(responses, min_size=20, max_size=20))
    def run(batch: list[str]) -> None:
        _check("numerical_reasoning", mode, batch)

    run()


def test_pathological_inputs_through_the_pool_respect_the_cap() -> None:
    nasty = [
        "", "\x00" * 1000, "</think>" + "[" * 100_000, "</think>" + "\\boxed{" * 20_000,
        "</think>" + "\\boxed{9^{9^{9^{9^{9}}}}}", "<think>" * 3, "a\n" * 300_000,
        "</think>" + '{"data": ' + "[" * 50_000, "</think>" + "\ud800\udfff" * 1000,
        "</think><answer>" + '{"data": [[' + "9" * 5000 + "]]}</answer>",
    ]
    items = [
        {"solution_str": s, **row} for row in ROWS.values() for s in nasty
    ]
    for mode in ("faithful", "hardened"):
        results = score_batch(items, mode=mode, workers=2, timeout_s=1.5)
        assert all(0.0 <= r.score <= 1.0 for r in results)
        assert {r.reason for r in results} <= {None, "format", "parse", "timeout", "error"}
        if mode == "hardened":
            assert all(r.reason != "error" for r in results)


def test_binary_junk_never_raises() -> None:
    junk = bytes(range(256)).decode("latin-1") * 50
    for row in ROWS.values():
        for mode in ("faithful", "hardened"):
            assert 0.0 <= compute_score(solution_str="</think>" + junk, **row, mode=mode) <= 1.0
