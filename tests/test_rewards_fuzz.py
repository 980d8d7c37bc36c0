"""Fuzz: thousands of adversarial responses per task and mode score in [0, 1] without raising,
each hypothesis example (a batch of responses) inside a generous deadline; the public entry
points (compute_score, score_batch at any batch size) take hostile text (binary junk, inputs
at the length cap, LaTeX bombs, deep JSON, odd unicode) and hostile rows, always returning a
score in [0, 1] with a known reason within the cap."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from golongrl.rewards import compute_score, score_batch
from golongrl.rewards.batch import ScoreResult
from golongrl.rewards.scoring import REASON_ERROR, ScoreOptions, prepare, score_prepared
from rewards_fixtures import CORRECT, GOLD_ITEMS, GOLD_SUMMARY, ROWS

LATEX_BOMBS = [
    "\\boxed{9^{9^{9^{9}}}}", "\\boxed{1000000!}", "(10^{100})!", "(" * 60, ")" * 60,
    "\\frac{" * 20, "{" * 20, "^{9^{9}}", "\\binom{10^{9}}{10^{5}}", "\\sqrt{10^{10^{10}}}",
]
# In-process fuzzing (below) uses these; the bombs go through the capped entry points only.
FRAGMENTS = [
    '{"data": ' + "[" * 3000, "[" * 3000, "\x00\xff\ufffd", "\udfff",
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


REASONS = {None, "format", "parse", "timeout", "error", "gold"}
binary_junk = st.binary(max_size=2000).map(lambda b: b.decode("latin-1"))
hostile_text = st.one_of(
    responses,
    st.lists(st.sampled_from(LATEX_BOMBS + FRAGMENTS), max_size=8).map("".join),
    binary_junk,
    st.sampled_from(LATEX_BOMBS).map(lambda b: "</think>" + b),
    st.integers(1, 4).map(lambda k: "</think>" + "a\n" * (65_536 * k // 2)),  # around the length cap
    st.text(alphabet=st.characters(categories=["Cs", "Co", "Mn", "Zl", "Zp", "So"]), max_size=200),
)
hostile_rows = st.one_of(
    st.sampled_from(sorted(ROWS)).map(lambda t: ROWS[t]),
    st.fixed_dictionaries({
        "data_source": st.one_of(st.none(), st.just(float("nan")), st.text(max_size=10),
                                 st.sampled_from(["longbench_pro", "EM", "math_longcot_math_verify"])),
        "ground_truth": st.one_of(st.none(), st.integers(), st.text(max_size=10), st.just({"doc_ids": []}),
                                  st.just({"golden_label": "[" * 2000}), st.dictionaries(st.text(max_size=5), st.integers())),
        "extra_info": st.one_of(st.none(), st.just({}), st.just({"reward_mode": 1}),
                                st.just({"reward_mode": "T1.1 Global Cohesive Retrieval"})),
    }),
)


def _valid(result: ScoreResult) -> bool:
    return 0.0 <= result.score <= 1.0 and not math.isnan(result.score) and result.reason in REASONS


@settings(max_examples=30, **FUZZ_SETTINGS)
@given(st.lists(st.tuples(hostile_rows, hostile_text), min_size=1, max_size=6),
       st.sampled_from(["faithful", "hardened"]))
def test_hostile_batches_of_any_size_score_within_the_cap(pairs: list, mode: str) -> None:
    items = [{**row, "solution_str": text} for row, text in pairs]
    results = score_batch(items, mode=mode, timeout_s=3.0)
    assert len(results) == len(items) and all(_valid(r) for r in results)
    row, text = pairs[0]
    assert compute_score(row["data_source"], text, row["ground_truth"], row["extra_info"],
                         mode=mode, timeout_s=3.0) == results[0].score or results[0].reason == "timeout"
