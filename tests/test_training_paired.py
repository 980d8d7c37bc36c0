"""Paired before/after statistics (golongrl.training.paired) on hand-computed examples, and the
report tables built from them."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from golongrl.training.paired import (LENGTH_EDGES, analyse, balanced_stats, length_bucket, paired_stats,
                                      prompt_key, read_eval_rows)


def _row(task: str, index: int, score: float, tokens: int | None = None, pid: str | None = None) -> dict:
    row = {"index": index, "task": task, "score": score, "prompt_tokens": tokens}
    if pid is not None:
        row["prompt_id"] = pid
    return row


def test_paired_stats_match_a_hand_computation() -> None:
    # Differences 1, 0, 1, 0: mean 0.5; sample variance ((.5^2) * 4) / 3 = 1/3;
    # SE = sqrt(1/3 / 4) = 0.288675; z = 0.5 / 0.288675 = 1.7321 (flat: within 2 SE).
    st = paired_stats([0, 0, 0, 1], [1, 0, 1, 1])
    assert st.n == 4 and st.mean_before == 0.25 and st.mean_after == 0.75 and st.mean_diff == 0.5
    assert st.se == pytest.approx(math.sqrt(1 / 12), rel=1e-12)
    assert st.z == pytest.approx(math.sqrt(3), rel=1e-12)
    assert st.verdict == "flat" and st.note is None

    # Differences 1, 1, 1, 1, 0, 1, 1, 1, 1: mean 8/9; variance (8 (1/9)^2 + (8/9)^2) / 8 = 1/9;
    # SE = sqrt(1/9 / 9) = 1/9; z = 8 (up).
    up = paired_stats([0] * 9, [1, 1, 1, 1, 0, 1, 1, 1, 1])
    assert up.se == pytest.approx(1 / 9, rel=1e-12) and up.z == pytest.approx(8, rel=1e-12)
    assert up.verdict == "up"
    down = paired_stats([1, 1, 1, 1, 0, 1, 1, 1, 1], [0] * 9)
    assert down.z == pytest.approx(-8, rel=1e-12) and down.verdict == "down"


def test_verdict_threshold_is_strictly_beyond_two_se() -> None:
    # Two differences a, b: mean (a+b)/2, SE = |a-b|/2, so z = (a+b)/|a-b| (binary fractions: exact).
    at_two = paired_stats([0, 0], [0.75, 0.25])
    assert at_two.z == 2.0 and at_two.verdict == "flat"
    beyond = paired_stats([0, 0], [0.625, 0.25])  # z = 0.875 / 0.375 = 2.333
    assert beyond.z == pytest.approx(7 / 3, rel=1e-12) and beyond.verdict == "up"
    assert paired_stats([0.75, 0.25], [0, 0]).verdict == "flat"  # z = -2 exactly
    assert paired_stats([0.625, 0.25], [0, 0]).verdict == "down"


def test_degenerate_spreads_are_named() -> None:
    same = paired_stats([0.2, 0.5, 1.0], [0.2, 0.5, 1.0])
    assert same.se == 0 and same.z == 0 and same.verdict == "flat" and same.note == "all equal"
    shifted = paired_stats([0.1, 0.2, 0.3], [0.2, 0.3, 0.4])  # every prompt +0.1 (float noise in the SE)
    assert shifted.se == 0 and shifted.z == math.inf and shifted.verdict == "up"
    assert shifted.note == "all moved by the same amount"
    assert shifted.to_dict()["z"] is None and shifted.to_dict()["verdict"] == "up"
    one = paired_stats([0.0], [1.0])
    assert math.isnan(one.se) and math.isnan(one.z) and one.verdict == "n/a"
    assert one.note == "fewer than 2 paired prompts"
    with pytest.raises(ValueError, match="equal lengths"):
        paired_stats([0.0, 1.0], [1.0])


def test_task_balanced_overall_weighs_tasks_equally() -> None:
    a = paired_stats([0, 0, 0, 1], [1, 0, 1, 1])  # mean diff 0.5, SE^2 = 1/12
    b = paired_stats([0] * 9, [1, 1, 1, 1, 0, 1, 1, 1, 1])  # mean diff 8/9, SE^2 = 1/81
    bal = balanced_stats({"a": a, "b": b})
    assert bal.n == 13
    assert bal.mean_diff == pytest.approx((0.5 + 8 / 9) / 2, rel=1e-12)
    assert bal.mean_before == pytest.approx((0.25 + 0) / 2, rel=1e-12)
    assert bal.se == pytest.approx(math.sqrt(1 / 12 + 1 / 81) / 2, rel=1e-12)
    assert bal.z == pytest.approx(((0.5 + 8 / 9) / 2) / (math.sqrt(1 / 12 + 1 / 81) / 2), rel=1e-12)
    with_single = balanced_stats({"a": a, "single": paired_stats([0.0], [1.0])})
    assert math.isnan(with_single.se) and with_single.verdict == "n/a"


def test_length_buckets() -> None:
    assert length_bucket(1) == "≤1K" and length_bucket(1024) == "≤1K"
    assert length_bucket(1025) == "1K-2K" and length_bucket(2048) == "1K-2K"
    assert length_bucket(3000) == "2K-4K" and length_bucket(4096) == "2K-4K"
    assert length_bucket(LENGTH_EDGES[-1] + 1) == ">128K"
    assert length_bucket(None) == "unknown"


def test_analyse_pairs_by_prompt_identity_not_order() -> None:
    before = [_row("a", 0, 0.0, 500, "u0"), _row("a", 1, 0.0, 700, "u1"), _row("b", 2, 1.0, 3000, "u2"),
              _row("b", 3, 0.0, 3500, "u3"), _row("a", 4, 0.5, 600, "only-before")]
    # After: reordered, one prompt missing, one extra prompt.
    after = [_row("b", 3, 1.0, 3500, "u3"), _row("a", 1, 1.0, 700, "u1"), _row("b", 2, 1.0, 3000, "u2"),
             _row("a", 0, 0.0, 500, "u0"), _row("b", 9, 1.0, 900, "only-after")]
    res = analyse(before, after)
    assert res.unpaired_before == 1 and res.unpaired_after == 1
    assert res.per_task["a"].n == 2 and res.per_task["a"].mean_diff == 0.5  # diffs 0, 1
    assert res.per_task["b"].n == 2 and res.per_task["b"].mean_diff == 0.5  # diffs 0, 1
    assert res.pooled.n == 4 and res.pooled.mean_diff == 0.5
    # diffs 0, 1, 0, 1: variance 1/3, SE = sqrt(1/12)
    assert res.pooled.se == pytest.approx(math.sqrt(1 / 12), rel=1e-12)
    assert res.length_basis == "prompt" and list(res.by_length) == ["≤1K", "2K-4K"]
    assert res.by_length["≤1K"].n == 2 and res.by_length["2K-4K"].n == 2
    assert res.length_tokens == {"≤1K": (500, 700), "2K-4K": (3000, 3500)}
    assert res.to_dict()["unpaired"] == {"before": 1, "after": 1}


def test_lengths_use_the_datasets_nominal_context_length_when_every_row_has_one() -> None:
    # Real rows: context_tokens lands a few tokens either side of the nominal target (1028 for
    # 1K), and the prompt adds the template; grouping by the target keeps 1K prompts together.
    def row(pid: str, target: int, tokens: int, score: float) -> dict:
        return {**_row("a", 0, score, tokens, pid), "target_tokens": target}

    before = [row("x", 4096, 4230, 0.0), row("y", 512, 610, 0.0), row("z", 1024, 1130, 0.0), row("w", 1024, 1101, 1.0)]
    after = [row("x", 4096, 4230, 1.0), row("y", 512, 610, 1.0), row("z", 1024, 1130, 1.0), row("w", 1024, 1101, 1.0)]
    res = analyse(before, after)
    assert res.length_basis == "target" and list(res.by_length) == ["512", "1K", "4K"]
    assert res.by_length["1K"].n == 2 and res.by_length["1K"].mean_diff == 0.5
    assert res.length_tokens["1K"] == (1101, 1130)
    assert res.to_dict()["by_length"]["4K"]["prompt_tokens"] == [4230, 4230]
    # One row without a target: every row falls back to prompt-token buckets.
    res = analyse(before + [_row("a", 5, 0.0, 900, "v")], after + [_row("a", 5, 0.0, 900, "v")])
    assert res.length_basis == "prompt" and list(res.by_length) == ["≤1K", "1K-2K", "4K-8K"]


def test_analyse_falls_back_to_task_and_index_and_refuses_duplicates() -> None:
    assert prompt_key({"task": "a", "index": 3}) == "a#3"
    assert prompt_key({"task": "a", "index": 3, "prompt_id": "x"}) == "x"
    # An evaluation written before prompt_id existed still pairs with a newer one.
    old, new = [_row("a", 0, 0.0), _row("a", 1, 0.0)], [_row("a", 0, 1.0, pid="h0"), _row("a", 1, 0.0, pid="h1")]
    assert analyse(old, new).pooled.n == 2 and analyse(old, new).pooled.mean_diff == 0.5
    with pytest.raises(ValueError, match="before evaluation row 2: prompt 'a#0' appears twice"):
        analyse([_row("a", 0, 0.0), _row("a", 0, 1.0)], [])


def test_target_outcome_line() -> None:
    up = ([0.0] * 9, [1, 1, 1, 1, 0, 1, 1, 1, 1])  # z = 8 per task
    before, after = [], []
    for t in ("a", "b", "c"):
        before += [_row(t, i, up[0][i], pid=f"{t}{i}") for i in range(9)]
        after += [_row(t, i, float(up[1][i]), pid=f"{t}{i}") for i in range(9)]
    met = analyse(before, after)
    assert met.tasks_up == ["a", "b", "c"] and met.target_met
    assert met.outcome().startswith("**Target met**")
    # A fourth task that went down fails the target however strong the others are.
    before += [_row("d", i, float(up[1][i]), pid=f"d{i}") for i in range(9)]
    after += [_row("d", i, 0.0, pid=f"d{i}") for i in range(9)]
    failed = analyse(before, after)
    assert failed.tasks_down == ["d"] and not failed.target_met
    assert failed.outcome().startswith("**Target not met**") and "1 down (d)" in failed.outcome()


def test_read_eval_rows_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "before.jsonl"
    path.write_text('{"task": "a", "index": 0, "score": 1.0}\n{oops\n')
    with pytest.raises(ValueError, match=r"before.jsonl, line 2: not JSON"):
        read_eval_rows(path)


def test_report_sections_show_the_paired_and_length_tables(tmp_path: Path) -> None:
    from golongrl.training.evaluate import EvalResult
    from golongrl.training.report import curve_section, length_section, paired_section, plot_eval

    before = [_row("a", i, 0.0, 500 + i, f"a{i}") for i in range(4)] + [_row("b", i, 0.5, 3000, f"b{i}") for i in range(3)]
    after = [_row("a", i, [1.0, 0.0, 1.0, 1.0][i], 500 + i, f"a{i}") for i in range(4)] + \
        [_row("b", i, 0.5, 3000, f"b{i}") for i in range(3)]
    paired = analyse(before, after)
    text = "\n".join(paired_section(paired) + length_section(paired, train_max_tokens=1000))
    # a: diffs 1, 0, 1, 1: mean .75, variance (3 * .0625 + .5625) / 3 = .25, SE = sqrt(.25 / 4) = .25, z = 3
    assert "| a | 4 | 0.000 | 0.750 | +0.750 | 0.250 | +3.00 | up |" in text
    assert "| b | 3 | 0.500 | 0.500 | +0.000 | 0.000 | +0.00 | flat (all equal) |" in text
    assert "| **all (pooled)** | 7 |" in text and "| **all (task-balanced)** | 7 |" in text
    assert "**Target not met**" in text and "1 of 2 task types up (a)" in text
    assert "| ≤1K | 500-503 | 4 |" in text and "| 2K-4K | 3000 | 3 |" in text
    assert "the longest training prompt had 1000 tokens" in text
    curve = "\n".join(curve_section({0: {"overall": 0.1, "a": 0.0}, 2: {"overall": 0.3, "a": 0.5}}, prompts=4, every=2))
    assert "| step | overall | a |" in curve and "| 2 | 0.300 | 0.500 |" in curve
    res = EvalResult(per_task={"a": 0.0, "b": 0.5}, stderr={"a": 0.0, "b": 0.0}, counts={"a": 4, "b": 3}, overall=0.2)
    assert plot_eval(res, res, paired, tmp_path / "eval.png").stat().st_size > 1000
