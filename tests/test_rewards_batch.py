"""score_batch (worker processes, time cap, reasons), thread safety and the ``golongrl score`` CLI."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from typer.testing import CliRunner

from golongrl.cli import app
from golongrl.rewards import ScoreRequest, compute_score, score_batch
from rewards_fixtures import CORRECT, ROWS, think

# Passes the pre-screen (every size is modest) yet sympy runs for minutes: it factors the
# 456,574-digit integer to simplify the root.  Only killing the worker bounds it.
SLOW_MATH = "\\boxed{\\sqrt{99999!}}"
# Small numbers, minutes of symbolic expansion in Python code: the main thread's timer stops it.
SLOW_SYMBOLIC = "\\boxed{(x+y+z+1)^{60}}"


def _requests() -> list[ScoreRequest]:
    out = []
    for task, row in sorted(ROWS.items()):
        out.append(ScoreRequest(solution_str=think(CORRECT[task]), **row))
        out.append(ScoreRequest(solution_str=think("nothing useful"), **row))
    return out


def test_pooled_results_match_in_process_results_in_order() -> None:
    requests = _requests()
    pooled = score_batch(requests, workers=2)
    serial = score_batch(requests, workers=0)
    assert pooled == serial
    assert [r.score for r in pooled[::2]] == [1.0] * len(ROWS)
    assert [r.task for r in pooled[::2]] == sorted(ROWS)
    assert score_batch([], workers=2) == []


def _mixed_batch(slow: bool) -> list[dict[str, object]]:
    items: list[dict[str, object]] = [
        {"solution_str": think(answer), **ROWS[task]}
        for task in sorted(ROWS) for answer in (CORRECT[task], "nothing useful")
    ]
    math = ROWS["numerical_reasoning"]
    for answer in ("\\boxed{6 \\cdot 7}", "\\boxed{\\frac{84}{2}}", "\\boxed{9^{9^{9^{9}}}}", SLOW_SYMBOLIC):
        if slow or answer != SLOW_SYMBOLIC:
            items.append({"solution_str": think(answer), **math})
    items.append({"solution_str": "x", "data_source": "EM", "ground_truth": {"golden_label": ["a", "list"]}})
    return items


@pytest.mark.parametrize("thread", ["main", "worker thread"])
def test_a_mixed_batch_scores_as_its_items_do_one_call_each(thread: str) -> None:
    # Off the main thread the slow one would cost a worker kill per pass (seconds): left out.
    items = _mixed_batch(slow=thread == "main")

    def run() -> tuple[list[object], list[object], list[float]]:
        whole = score_batch(items, timeout_s=1.0)
        single = [score_batch([item], timeout_s=1.0)[0] for item in items]
        return whole, single, [compute_score(**item, timeout_s=1.0) for item in items]  # type: ignore[arg-type]

    if thread == "main":
        whole, single, scores = run()
    else:
        with ThreadPoolExecutor(1) as pool:
            whole, single, scores = pool.submit(run).result()
    assert whole == single
    assert [r.score for r in whole] == scores  # type: ignore[attr-defined]
    expected = [(1.0, None), (1.0, None), (0.0, "timeout"), (0.0, "timeout"), (0.0, "gold")]
    if thread != "main":
        del expected[3]
    assert [(r.score, r.reason) for r in whole[-len(expected):]] == expected  # type: ignore[attr-defined]


def test_a_request_may_carry_its_resolved_task() -> None:
    row = {**ROWS["precise_retrieval"], "data_source": "a_source_golongrl_does_not_know"}
    known = score_batch([ScoreRequest(solution_str="Paris", task="precise_retrieval", **row),
                         {"solution_str": "Paris", "task": "precise_retrieval", **row}], workers=0)
    assert [(r.score, r.task, r.reason) for r in known] == [(1.0, "precise_retrieval", None)] * 2
    unresolved = score_batch([ScoreRequest(solution_str="Paris", **row),
                              ScoreRequest(solution_str="Paris", task="no_such_task", **row),
                              ScoreRequest(solution_str="Paris", task=["unhashable"], **row)],  # type: ignore[arg-type]
                             workers=0)
    assert [(r.score, r.task, r.reason) for r in unresolved] == [(0.0, "unknown", "gold")] * 3
    # Positional construction without the new field still works.
    assert ScoreRequest("EM", "Paris", ROWS["precise_retrieval"]["ground_truth"]).task is None


def test_reasons_explain_zeros() -> None:
    row = ROWS["comprehension"]
    results = score_batch(
        [
            {"solution_str": "<think>a<think>b</think>", **row},
            {"solution_str": "no letter given", **row},
            {"solution_str": "The correct answer is (C)", **row},
        ],
        workers=0,
    )
    assert [(r.score, r.reason) for r in results] == [(0.0, "format"), (0.0, "parse"), (0.0, None)]


def test_a_stuck_sample_times_out_without_losing_its_neighbours() -> None:
    row = ROWS["numerical_reasoning"]
    items = [{"solution_str": think(f"\\boxed{{{i}}}"), **row} for i in (40, 41, 42, 43)]
    items.insert(2, {"solution_str": think(SLOW_MATH), **row})
    results = score_batch(items, workers=2, timeout_s=2.0)
    assert [r.reason for r in results] == [None, None, "timeout", None, None]
    assert [r.score for r in results] == [0.0, 0.0, 0.0, 1.0, 0.0]
    # The pool replaced the killed worker and keeps serving.
    assert score_batch(items[:2] + items[3:], workers=2)[2].score == 1.0


def test_malformed_rows_score_zero_with_reason_gold_beside_their_neighbours(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bad = {"solution_str": "x", "data_source": "EM", "ground_truth": {}, "extra_info": {}}
    good = {"solution_str": "Paris", **ROWS["precise_retrieval"]}
    results = score_batch([good, bad, {"solution_str": "x"}, good], workers=0)
    assert [(r.score, r.reason) for r in results] == [(1.0, None), (0.0, "gold"), (0.0, "gold"), (1.0, None)]
    assert [r.task for r in results] == ["precise_retrieval", "precise_retrieval", "unknown", "precise_retrieval"]
    assert "item 1 scores 0 (reason 'gold')" in caplog.text and "golden_label" in caplog.text
    with pytest.raises(TypeError, match="item 0"):
        score_batch(["not a request"], workers=0)


def test_compute_score_works_off_the_main_thread() -> None:
    row = ROWS["numerical_reasoning"]
    with ThreadPoolExecutor(4) as pool:
        scores = list(
            pool.map(lambda s: compute_score(solution_str=think(s), **row), ["\\boxed{42}", "\\boxed{7}"] * 4)
        )
    assert scores == [1.0, 0.0] * 4


def test_score_command_prints_a_table_and_writes_json(tmp_path: Path) -> None:
    data = tmp_path / "data.jsonl"
    responses = tmp_path / "responses.jsonl"
    rows = []
    for task in sorted(ROWS):
        row = ROWS[task]
        rows.append({
            "data_source": row["data_source"],
            "prompt": [{"role": "user", "content": "question"}],
            "ability": task,
            "reward_model": {"style": "rule", "ground_truth": row["ground_truth"]},
            "extra_info": row["extra_info"],
        })
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    lines = [{"index": i, "response": CORRECT[t]} for i, t in enumerate(sorted(ROWS))]
    lines.append({"index": sorted(ROWS).index("precise_retrieval"), "response": "London"})
    responses.write_text("".join(json.dumps(r) + "\n" for r in lines))
    out = tmp_path / "scores.json"
    result = CliRunner().invoke(
        app, ["score", str(data), str(responses), "--out", str(out), "--workers", "0"]
    )
    assert result.exit_code == 0, result.output
    assert "precise_retrieval" in result.output and "summarization" in result.output
    header = next(line for line in result.output.splitlines() if "mean score" in line)
    assert [h for h in ("format", "parse", "timeout", "error", "gold") if h in header] == [
        "format", "parse", "timeout", "error", "gold"
    ]
    report = json.loads(out.read_text())
    assert report["n"] == len(ROWS) + 1
    assert report["per_task"]["precise_retrieval"] == {"n": 2, "mean_score": 0.5, "reasons": {}}
    assert all(item["score"] == 1.0 for item in report["items"][: len(ROWS)])

    responses.write_text(json.dumps({"index": 99, "response": "x"}) + "\n")
    result = CliRunner().invoke(app, ["score", str(data), str(responses), "--workers", "0"])
    assert result.exit_code == 2 and "past the dataset" in result.output


def _counting_prepare(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    from golongrl.rewards import batch

    batch._warm_up_math()  # its own parse would be counted on the first math sample of a process
    seen: list[object] = []
    real = batch.prepare

    def counting(data_source, ground_truth, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(ground_truth)
        return real(data_source, ground_truth, *args, **kwargs)

    monkeypatch.setattr(batch, "prepare", counting)
    return seen


def test_a_group_sharing_one_row_parses_it_once(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _counting_prepare(monkeypatch)
    row = ROWS["exhaustive_retrieval"]
    group = [{"solution_str": think(answer), **row} for answer in (CORRECT["exhaustive_retrieval"], "no", "[Answer]\nalpha")]
    math = ROWS["numerical_reasoning"]
    group += [{"solution_str": think(f"\\boxed{{{n}}}"), **math} for n in (42, 41)]
    results = score_batch(group, workers=0)
    assert seen == [row["ground_truth"], math["ground_truth"]]
    assert results == [score_batch([item], workers=0)[0] for item in group]


def test_the_row_cache_never_serves_a_different_row(monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    seen = _counting_prepare(monkeypatch)
    gt = {"golden_label": "B", "doc_ids": [], "summary": ""}
    items = [
        {"data_source": "selection", "solution_str": "(B)", "ground_truth": gt, "extra_info": {}},
        # The same ground-truth object under other labels: another task, so another parse.
        {"data_source": "EM", "solution_str": "B", "ground_truth": gt, "extra_info": {}},
        {"data_source": "selection", "solution_str": "(B)", "ground_truth": gt,
         "extra_info": {"candidates": np.array(["A", "B"])}},
        {"data_source": "selection", "solution_str": "(B)", "ground_truth": gt,
         "extra_info": {"candidates": np.array(["A", "B"])}},  # undecidable comparison: parsed again
        # An equal but distinct gold: parsed on its own, and a changed one is never the stale one.
        {"data_source": "selection", "solution_str": "(C)", "ground_truth": {**gt, "golden_label": "C"}, "extra_info": {}},
    ]
    results = score_batch(items, workers=0)
    assert len(seen) == 5
    assert [(r.task, r.score) for r in results] == [
        ("comprehension", 1.0), ("precise_retrieval", 1.0), ("comprehension", 1.0), ("comprehension", 1.0),
        ("comprehension", 1.0),
    ]
    # A row changed between calls is parsed afresh: the cache lives for one call.
    gt["golden_label"] = "A"
    assert score_batch(items[:1], workers=0)[0].score == 0.0
    # A gold string is keyed by value: equal strings share one parse.
    seen.clear()
    strings = [{"data_source": "EM", "solution_str": "Paris", "ground_truth": "".join(["Par", "is"])} for _ in range(3)]
    assert [r.score for r in score_batch(strings, workers=0)] == [1.0] * 3
    assert len(seen) == 1


def test_a_shared_bad_row_is_rejected_for_each_response(caplog: pytest.LogCaptureFixture) -> None:
    bad = {"data_source": "EM", "ground_truth": {"doc_ids": []}, "extra_info": {}}
    results = score_batch([{"solution_str": s, **bad} for s in ("a", "b", "c")], workers=0)
    assert [(r.score, r.reason) for r in results] == [(0.0, "gold")] * 3


def test_a_slow_sample_in_a_group_still_hits_its_cap() -> None:
    math = ROWS["numerical_reasoning"]
    items = [{"solution_str": think(answer), **math} for answer in ("\\boxed{42}", SLOW_SYMBOLIC, "\\boxed{6 \\cdot 7}")]
    results = score_batch(items, workers=0, timeout_s=1.0)
    assert [(r.score, r.reason) for r in results] == [(1.0, None), (0.0, "timeout"), (1.0, None)]
