"""Never raise, never hang: every row shape real GoLongRL data holds scores in [0, 1] with a
reason; exploding math is rejected up front or killed at the cap on any thread; the killable
worker pool itself."""

from __future__ import annotations

import json
import logging
import math
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from golongrl.rewards import batch, compute_score, score_batch
from golongrl.rewards.guard import (
    IN_PROCESS_MAX_DIGITS,
    DeadlineExceeded,
    WorkerFailed,
    WorkerPool,
    WorkerUnavailable,
    call_with_alarm,
    explosive_math,
    screen_math,
)
from rewards_fixtures import CORRECT, GOLD_SUMMARY, ROWS, think

MATH = ROWS["numerical_reasoning"]  # gold "42"
REASONS = {None, "format", "parse", "timeout", "error", "gold"}

#: The inputs users measured at ~5 s on the main thread and 50+ s (hung) on a worker thread.
REPORTED_BOMBS = [
    "\\boxed{9^{9^{9^{9}}}}",
    "\\boxed{1000000!}",
    "\\boxed{(10^{100})!}",
    "\\boxed{" + "(" * 60 + "1" + ")" * 60 + "}",
]
#: Passes the pre-screen (every size is modest), yet sympy runs for minutes factoring the
#: 456,574-digit integer under the root: only the worker's kill bounds it.
SLOW_MATH = "\\boxed{\\sqrt{99999!}}"
#: Small numbers only, yet sympy expands it for over a minute, in Python code: on the main
#: thread the SIGALRM timer stops it in-process, elsewhere a worker's kill.
SLOW_SYMBOLIC = "\\boxed{(x+y+z+1)^{60}}"
#: Equal to the gold 42 only through sympy (no plain-number shortcut).
SYMPY_42 = "\\boxed{6 \\cdot 7}"


# --------------------------------------------------------------------------------------------
# Rows: any shape scores, malformed ones with reason "gold"
# --------------------------------------------------------------------------------------------

LBP_GOLD = {"doc_ids": ["alpha"], "golden_label": "", "summary": "English"}
DEEP = "[" * 100_000
BAD_ROWS = {
    "longbench_pro, extra_info None": ("longbench_pro", LBP_GOLD, None),
    "longbench_pro, extra_info {}": ("longbench_pro", LBP_GOLD, {}),
    "longbench_pro, unknown reward_mode": ("longbench_pro", LBP_GOLD, {"reward_mode": "T99"}),
    "reward_mode not a string": ("longbench_pro", LBP_GOLD, {"reward_mode": 3}),
    "NaN data_source": (float("nan"), {"golden_label": "a"}, {}),
    "None data_source": (None, {"golden_label": "a"}, {}),
    "unknown data_source": ("no_such_source", {"golden_label": "a"}, {}),
    "ground_truth None": ("EM", None, {}),
    "ground_truth empty list": ("EM", [], {}),
    "golden_label a dict": ("EM", {"golden_label": {"x": 1}}, {}),
    "golden_label True": ("EM", {"golden_label": True}, {}),
    "golden_label NaN": ("math_longcot_math_verify", {"golden_label": float("nan")}, {}),
    "table gold not JSON": ("multitableqa_pretraining", {"golden_label": "{not json"}, {}),
    "table gold deep JSON": ("multitableqa_pretraining", {"golden_label": DEEP}, {}),
    "table gold without data": ("multitableqa_pretraining", {"golden_label": '{"rows": []}'}, {}),
    "doc_ids a string": ("longbench_pro", {"doc_ids": "alpha"}, {"reward_mode": "T1.1 Global Cohesive Retrieval"}),
    "doc_ids deeply nested": (
        "longbench_pro", {"doc_ids": json.loads("[" * 500 + "]" * 500)},
        {"reward_mode": "T5.1 Full-Sentence Citation Alignment"},
    ),
    "extra_info not a mapping": ("longbench_pro", LBP_GOLD, ["T1.1 Global Cohesive Retrieval"]),
}


@pytest.mark.parametrize("mode", ["hardened", "faithful"])
@pytest.mark.parametrize("name", sorted(BAD_ROWS))
def test_malformed_rows_score_zero_with_reason_gold(name: str, mode: str) -> None:
    data_source, gt, extra_info = BAD_ROWS[name]
    response = think("[Answer]\nalpha \\boxed{42}")
    assert compute_score(data_source, response, gt, extra_info, mode=mode) == 0.0
    [result] = score_batch(
        [{"data_source": data_source, "solution_str": response, "ground_truth": gt, "extra_info": extra_info}],
        mode=mode,
    )
    assert result.score == 0.0
    # Faithful mode may follow the reference instead (it scores some malformed golds as 0).
    assert result.reason == "gold" if mode == "hardened" else result.reason in REASONS


@pytest.mark.parametrize(
    ("data_source", "label", "response"),
    [
        ("math_longcot_math_verify", 42, "\\boxed{42}"),
        ("math_longcot_math_verify", np.int64(42), "\\boxed{42}"),
        ("math_longcot_math_verify", 0.5, "\\boxed{\\frac{1}{2}}"),
        ("math_longcot_math_verify", 3.0, "\\boxed{3}"),
        ("EM", 1987, "1987"),
    ],
)
def test_a_numeric_golden_label_is_scored_as_its_decimal_text(data_source: str, label: object, response: str) -> None:
    for gt in ({"golden_label": label, "doc_ids": [], "summary": ""}, label):
        assert compute_score(data_source, think(response), gt, {}) == 1.0
        assert compute_score(data_source, think("\\boxed{7}"), gt, {}) == 0.0


def test_a_defect_is_logged_once_per_kind_not_per_row(caplog: pytest.LogCaptureFixture) -> None:
    batch._warned_kinds.clear()
    rows = [
        {"data_source": "EM", "solution_str": "x", "ground_truth": {"golden_label": {"a": i}}}
        for i in range(5)
    ] + [{"data_source": None, "solution_str": "x", "ground_truth": {}}] * 3
    with caplog.at_level(logging.WARNING, logger="golongrl.rewards"):
        results = score_batch(rows, workers=0)
        score_batch(rows, workers=0)
    assert {r.reason for r in results} == {"gold"}
    warnings = [r.getMessage() for r in caplog.records if "reason 'gold'" in r.getMessage()]
    assert len(warnings) == 2
    assert "item 0" in warnings[0] and "golden_label must be a string" in warnings[0]
    assert "item 5" in warnings[1] and "data_source must be a string, got NoneType" in warnings[1]


@pytest.mark.parametrize("mode", ["hardened", "faithful"])
def test_deep_json_in_model_text_scores_zero(mode: str) -> None:
    row = ROWS["structured_extraction"]
    for text in (DEEP, '{"data": ' + DEEP, "<answer>" + '{"data": [' + "[" * 5000 + "]" * 5000 + "]}</answer>"):
        [result] = score_batch([{"solution_str": think(text), **row}], mode=mode)
        assert result.score == 0.0 and result.reason in REASONS


# --------------------------------------------------------------------------------------------
# Math that explodes: pre-screened, or killed at the cap, on any thread
# --------------------------------------------------------------------------------------------

EXPLOSIVE = [
    *REPORTED_BOMBS,
    "\\boxed{9^{9^{9}}}", "\\boxed{e^{9^{9^{9}}}}", "\\boxed{x^{10^{8}}}", "9**9**9**9",
    "\\boxed{\\sqrt{10^{10^{10}}}}", "\\boxed{\\frac{1}{10^{-10^{10}}}}", "\\boxed{1,000,000!}",
    "\\boxed{\\binom{10^{9}}{10^{5}}}", "\\boxed{\\left(" * 11 + "2" + "\\right)}" * 11,
    "\\boxed{" + "\\frac{" * 20 + "2" + "}{3}" * 20 + "}", "\\boxed{" + "{" * 20 + "2" + "}" * 20 + "}",
]
HARMLESS = [
    "\\boxed{42}", "The answer is \\boxed{\\frac{\\sqrt{3}}{2}}.", "\\boxed{2^{100}}", "\\boxed{10^{18}}",
    "\\boxed{100!}", "\\boxed{2^{2^{20}}}", "\\boxed{e^{x^2}}", "\\boxed{x^{-2}}", "\\boxed{\\binom{100}{50}}",
    "\\boxed{\\left(\\frac{1}{2}\\right)^{\\frac{1}{3}}}", "So 2023! ends in 503 zeros: \\boxed{503}",
    "\\boxed{(2n-1)!!}", "\\boxed{1.5 \\times 10^{6}}", "\\boxed{50\\%}", "\\boxed{0.000001}",
    "\\boxed{\\{1, 2, 3\\}}", "$\\frac{a^{2}+b^{2}}{(a+b)^{2}}$", "\\boxed{10^{1000000}}", "^" * 500,
]


@pytest.mark.parametrize("text", EXPLOSIVE)
def test_the_pre_screen_rejects_exploding_math(text: str) -> None:
    assert explosive_math(text)


@pytest.mark.parametrize("text", HARMLESS)
def test_the_pre_screen_passes_ordinary_answers(text: str) -> None:
    assert explosive_math(text) is None


@pytest.mark.parametrize("mode", ["hardened", "faithful"])
def test_reported_bombs_score_timeout_at_once_on_the_main_thread_and_off_it(mode: str) -> None:
    items = [{"solution_str": think(b), **MATH} for b in REPORTED_BOMBS]
    on_main = score_batch(items, mode=mode, workers=0)  # no worker: the pre-screen alone
    with ThreadPoolExecutor(2) as pool:
        off_main = list(pool.map(lambda it: score_batch([it], mode=mode)[0], items))
    for results in (on_main, off_main):
        assert [(r.score, r.reason) for r in results] == [(0.0, "timeout")] * len(REPORTED_BOMBS)


def test_slow_math_is_killed_at_the_cap_off_the_main_thread_without_starving_it() -> None:
    ticks: list[float] = []
    out: dict[str, object] = {}

    def score() -> None:
        out["slow"] = score_batch([{"solution_str": think(SLOW_MATH), **MATH}], timeout_s=1.0)[0]
        out["next"] = compute_score(solution_str=think("\\boxed{42}"), **MATH)

    worker = threading.Thread(target=score)
    worker.start()
    while worker.is_alive():  # the main thread keeps running while the worker thread waits
        ticks.append(time.monotonic())
        time.sleep(0.01)
    assert (out["slow"].score, out["slow"].reason) == (0.0, "timeout")  # type: ignore[union-attr]
    assert out["next"] == 1.0  # the killed worker was replaced
    assert len(ticks) > 10


def test_the_cap_holds_in_micro_batches_and_spares_the_neighbours() -> None:
    answers = ["\\boxed{42}", SLOW_MATH, "\\boxed{7}", "\\boxed{(1+\\sqrt{2})^{1000000}}"]
    items = [{"solution_str": think(a), **MATH} for a in answers]
    results = score_batch(items, timeout_s=0.5)
    assert [(r.score, r.reason) for r in results] == [(1.0, None), (0.0, "timeout"), (0.0, None), (0.0, "timeout")]


def test_a_long_response_beyond_the_in_process_budget_scores_the_same_in_a_worker() -> None:
    row = ROWS["summarization"]
    long_answer = think("[Answer] " + GOLD_SUMMARY + " Further details follow." * 200)
    in_process = score_batch([{"solution_str": long_answer, **row}], workers=0)
    # A tiny cap puts the ~5,000-character response over a quarter of it: a worker scores it.
    assert batch._predicted_cost_s(batch.prepare(row["data_source"], row["ground_truth"], row["extra_info"], "hardened"),
                                   long_answer) > batch.IN_PROCESS_FRACTION * 0.01
    capped = score_batch([{"solution_str": long_answer, **row}], timeout_s=0.01)
    assert capped[0].reason in (None, "timeout")
    relaxed = score_batch([{"solution_str": long_answer, **row}], timeout_s=5.0)
    assert relaxed == in_process and 0.0 < in_process[0].score < 1.0


def _no_worker() -> WorkerPool:
    raise AssertionError("this batch should not need a worker process")


@pytest.mark.parametrize("workers", [0, 2])
def test_slow_math_is_stopped_in_process_by_the_timer_on_the_main_thread(
    workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert screen_math(SLOW_SYMBOLIC)[0] is None and screen_math(SLOW_SYMBOLIC)[1] < IN_PROCESS_MAX_DIGITS
    monkeypatch.setattr(batch, "_pool", _no_worker)
    # The slow one last: a batch busy for over SHARE_AFTER_S would share what is left with workers.
    answers = ["\\boxed{42}", "\\boxed{7}", SYMPY_42, *REPORTED_BOMBS, SLOW_SYMBOLIC]
    items = [{"solution_str": think(a), **MATH} for a in answers]
    for mode in ("hardened", "faithful"):
        results = score_batch(items, mode=mode, timeout_s=0.5, workers=workers)
        assert [(r.score, r.reason) for r in results] == [
            (1.0, None), (0.0, None), (1.0, None), *[(0.0, "timeout")] * (len(REPORTED_BOMBS) + 1)
        ]
    assert compute_score(solution_str=think(SLOW_SYMBOLIC), timeout_s=0.3, **MATH) == 0.0
    assert signal.getsignal(signal.SIGALRM) is signal.SIG_DFL and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_slow_math_off_the_main_thread_moves_to_a_worker_and_is_killed() -> None:
    answers = ["\\boxed{42}", SLOW_SYMBOLIC, SYMPY_42, REPORTED_BOMBS[0]]
    items = [{"solution_str": think(a), **MATH} for a in answers]
    with ThreadPoolExecutor(2) as pool:
        whole = pool.submit(score_batch, items, timeout_s=1.0).result()
        single = list(pool.map(lambda it: score_batch([it], timeout_s=1.0)[0], items))
    for results in (whole, single):
        assert [(r.score, r.reason) for r in results] == [(1.0, None), (0.0, "timeout"), (1.0, None), (0.0, "timeout")]


def test_off_the_main_thread_math_for_sympy_travels_in_chunks() -> None:
    sent: list[int] = []
    real_submit = batch.guard.Worker.submit

    def counting_submit(self, func, args, timeout_s):  # type: ignore[no-untyped-def]
        sent.append(len(args[0]))
        return real_submit(self, func, args, timeout_s)

    answers = [f"\\boxed{{{a} \\cdot {42 // a}}}" for a in (1, 2, 3, 6, 7, 14)] + ["\\boxed{42}", "\\boxed{41}"]
    items = [{"solution_str": think(a), **MATH} for a in answers]
    with pytest.MonkeyPatch.context() as mp, ThreadPoolExecutor(1) as pool:
        mp.setattr(batch.guard.Worker, "submit", counting_submit)
        results = pool.submit(score_batch, items, workers=2).result()
    assert [r.score for r in results] == [1.0] * 7 + [0.0]
    assert sum(sent) == 6 and max(sent) > 1  # the plain numbers stayed in this process


def test_math_with_big_numbers_goes_to_a_worker_even_on_the_main_thread() -> None:
    # sympy would spend one long C call on the 456,574-digit factorial: no timer can cut it.
    assert screen_math(SLOW_MATH)[0] is None and screen_math(SLOW_MATH)[1] > IN_PROCESS_MAX_DIGITS
    assert screen_math("\\boxed{2^{10} \\cdot 3!}")[1] < IN_PROCESS_MAX_DIGITS
    sent: list[int] = []
    real_submit = batch.guard.Worker.submit

    def counting_submit(self, func, args, timeout_s):  # type: ignore[no-untyped-def]
        sent.append(len(args[0]))
        return real_submit(self, func, args, timeout_s)

    items = [{"solution_str": think(a), **MATH} for a in (SYMPY_42, SLOW_MATH)]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(batch.guard.Worker, "submit", counting_submit)
        results = score_batch(items, timeout_s=1.0)
    assert [(r.score, r.reason) for r in results] == [(1.0, None), (0.0, "timeout")]
    assert sent == [1]  # only the big one left this process


def test_a_callers_sigalrm_handler_and_timer_are_left_as_they_were() -> None:
    fired: list[int] = []
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: fired.append(signum))
    handler = signal.getsignal(signal.SIGALRM)
    items = [{"solution_str": think(a), **MATH} for a in (SYMPY_42, SLOW_SYMBOLIC)]
    expected = [(1.0, None), (0.0, "timeout")]
    try:
        # A handler but no timer: the scorer borrows SIGALRM and hands the handler back.
        assert [(r.score, r.reason) for r in score_batch(items, timeout_s=0.3, workers=0)] == expected
        assert signal.getsignal(signal.SIGALRM) is handler and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
        # An armed timer is not touched: math is capped in a worker instead, and the caller's
        # alarm still comes, to the caller's handler.
        signal.setitimer(signal.ITIMER_REAL, 60.0, 30.0)
        assert [(r.score, r.reason) for r in score_batch(items, timeout_s=1.0)] == expected
        delay, interval = signal.getitimer(signal.ITIMER_REAL)
        assert 0.0 < delay < 60.0 and interval == 30.0
        assert signal.getsignal(signal.SIGALRM) is handler and fired == []
        signal.setitimer(signal.ITIMER_REAL, 0.01)
        for _ in range(500):
            if fired:
                break
            time.sleep(0.01)
        assert fired == [signal.SIGALRM]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_with_sigalrm_blocked_math_is_capped_in_a_worker() -> None:
    items = [{"solution_str": think(a), **MATH} for a in (SYMPY_42, SLOW_SYMBOLIC)]
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM])  # a timer would never arrive
    try:
        results = score_batch(items, timeout_s=1.0)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGALRM])
    assert [(r.score, r.reason) for r in results] == [(1.0, None), (0.0, "timeout")]


def _spin() -> None:
    while True:
        time.sleep(0.002)


def test_alarm_deadlines_nest_and_survive_a_swallowed_interrupt() -> None:
    def inner_times_out() -> str:
        with pytest.raises(DeadlineExceeded):
            call_with_alarm(0.05, _spin)
        return "outer carries on"

    assert call_with_alarm(30, inner_times_out) == "outer carries on"

    caught_inside: list[str] = []

    def inner_outlived_by_nothing() -> None:
        try:
            call_with_alarm(30, _spin)
        except DeadlineExceeded:
            caught_inside.append("inner")  # the outer deadline passed: not the inner's to report

    with pytest.raises(DeadlineExceeded):
        call_with_alarm(0.05, inner_outlived_by_nothing)
    with pytest.raises(DeadlineExceeded):  # a lazy outer deadline fires through an armed inner
        call_with_alarm(0.05, lambda: call_with_alarm(30, _spin), lazy=True)
    assert caught_inside == []

    def swallows_once() -> None:
        try:
            _spin()
        except BaseException:  # noqa: BLE001 - what careless library code does
            pass
        _spin()

    with pytest.raises(DeadlineExceeded):
        call_with_alarm(0.05, swallows_once)
    assert call_with_alarm(30, lambda: 7) == 7
    assert signal.getsignal(signal.SIGALRM) is signal.SIG_DFL and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_shared_chunks_give_the_in_process_results(monkeypatch: pytest.MonkeyPatch) -> None:
    items = []
    for task in sorted(ROWS):
        for answer in (CORRECT[task], "nothing useful", CORRECT[task] + " extra"):
            items.append({"solution_str": think(answer), **ROWS[task]})
    items *= 8
    expected = score_batch(items, workers=0)
    monkeypatch.setattr(batch, "SHARE_AFTER_S", 0.0)  # share cheap work from the first sample
    monkeypatch.setattr(batch, "CHUNK_MAX_ITEMS", 5)
    assert score_batch(items, workers=2) == expected


def test_without_workers_scoring_falls_back_to_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = WorkerPool(preload=("golongrl_no_such_module",))  # every child dies on import
    monkeypatch.setattr(batch, "_pool", lambda: broken)
    answers = ("\\boxed{42}", "\\boxed{7}", SYMPY_42, REPORTED_BOMBS[0])
    items = [{"solution_str": think(a), **MATH} for a in answers]
    with ThreadPoolExecutor(1) as pool:  # off the main thread sympy needs a worker, and none starts
        results = pool.submit(score_batch, items).result()
    assert [(r.score, r.reason) for r in results] == [(1.0, None), (0.0, None), (1.0, None), (0.0, "timeout")]


# --------------------------------------------------------------------------------------------
# The worker pool
# --------------------------------------------------------------------------------------------


def test_worker_pool_returns_results_kills_at_the_deadline_and_recovers() -> None:
    pool = WorkerPool()
    try:
        assert pool.run(math.factorial, (20,), timeout_s=30, max_workers=1) == math.factorial(20)
        with pytest.raises(DeadlineExceeded):
            pool.run(time.sleep, (60,), timeout_s=0.3, max_workers=1)
        assert pool.run(math.gcd, (12, 18), timeout_s=30, max_workers=1) == 6
        with pytest.raises(WorkerFailed, match="ValueError"):
            pool.run(math.sqrt, (-1,), timeout_s=30, max_workers=1)
        with pytest.raises(WorkerFailed, match="cannot send"):
            pool.run(math.gcd, (lambda: 1,), timeout_s=30, max_workers=1)
        with ThreadPoolExecutor(3) as threads:
            assert list(threads.map(lambda n: pool.run(math.factorial, (n,), timeout_s=30, max_workers=2),
                                    range(6))) == [math.factorial(n) for n in range(6)]
    finally:
        pool.close()


def test_a_pool_whose_workers_cannot_start_says_so() -> None:
    pool = WorkerPool(preload=("golongrl_no_such_module",))
    with pytest.raises(WorkerUnavailable):
        pool.run(math.gcd, (1, 2), timeout_s=5, max_workers=1)
    with pytest.raises(WorkerUnavailable, match="recently"):  # no retry storm
        pool.run(math.gcd, (1, 2), timeout_s=5, max_workers=1)
