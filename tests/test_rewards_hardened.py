"""Hardened mode: every closed reward-hacking hole (faithful high, hardened low), the optional
think block, and ground-truth validation."""

from __future__ import annotations

import pytest

from golongrl.rewards import GroundTruthError, compute_score
from golongrl.rewards.scoring import ScoreOptions, prepare, score_prepared
from golongrl.tasks import UnknownTaskError
from rewards_fixtures import CORRECT, GOLD_ITEMS, GOLD_SUMMARY, ROWS, lbp, labelled, think


def both(solution: str, row: dict, **kw: object) -> tuple[float, float]:
    return (
        compute_score(solution_str=solution, **row, mode="faithful", **kw),
        compute_score(solution_str=solution, **row, mode="hardened", **kw),
    )


def reason(solution: str, row: dict, mode: str = "hardened", **kw: object) -> str | None:
    prepared = prepare(row["data_source"], row["ground_truth"], row["extra_info"], mode)
    return score_prepared(prepared, solution, mode, ScoreOptions(**kw))[1]


@pytest.mark.parametrize("task", sorted(ROWS))
def test_correct_answers_score_one_with_or_without_think(task: str) -> None:
    row = ROWS[task]
    assert compute_score(solution_str=think(CORRECT[task]), **row) == 1.0
    assert compute_score(solution_str=CORRECT[task], **row) == 1.0  # non-thinking policy
    assert compute_score(solution_str=CORRECT[task], **row, require_think=True) == 0.0


@pytest.mark.parametrize(
    "response",
    [
        "<think>a</think>b</think>",
        "<think><think>a</think>",
        "</think>answer<think>",
        "<think>never closed, truncated at the token limit",
    ],
)
def test_malformed_think_tags_fail_the_gate(response: str) -> None:
    assert reason(response + CORRECT["precise_retrieval"], ROWS["precise_retrieval"]) == "format"


def test_listing_every_candidate_does_not_pay() -> None:
    row = lbp("structured_matching", GOLD_ITEMS[:3])
    candidates = GOLD_ITEMS + [f"candidate {i}" for i in range(27)]
    faithful, hardened = both(think("[Answer]\n" + "\n".join(candidates)), row)
    assert faithful == 1.0
    assert hardened == pytest.approx(3 / 33)


def test_two_correctly_ordered_items_do_not_pay() -> None:
    row = lbp("sequence_ordering", GOLD_ITEMS)
    faithful, hardened = both(think("[Answer]\nalpha\nzeta"), row)
    assert faithful == 1.0
    assert hardened == 0.0  # not an ordering of every item


def test_repeating_the_gold_does_not_pay() -> None:
    row = lbp("summarization", [GOLD_SUMMARY])
    once = both(think("[Answer] " + GOLD_SUMMARY, reasoning="ok"), row)
    repeated = both(think("[Answer] " + " ".join([GOLD_SUMMARY] * 8), reasoning="ok"), row)
    assert repeated[0] == pytest.approx(once[0])  # distinct-word counts ignore repetition
    assert repeated[0] > 0.9
    assert repeated[1] < 0.25 < once[1]


@pytest.mark.parametrize(
    ("task", "hidden"),
    [
        ("exhaustive_retrieval", "[Answer]\n" + "\n".join(GOLD_ITEMS[:4])),
        ("structured_matching", "\n" + "\n".join(GOLD_ITEMS[:3]) + "\n"),
        ("numerical_reasoning", "so the result is \\boxed{42}"),
        ("summarization", GOLD_SUMMARY),
        ("structured_extraction", '<answer>{"data": [["a", 1], ["b", 2]]}</answer>'),
    ],
)
def test_answer_hidden_inside_the_thinking_does_not_pay(task: str, hidden: str) -> None:
    faithful, hardened = both(think("I am not sure.", reasoning=hidden), ROWS[task])
    assert faithful > 0.5
    assert hardened == 0.0


def test_whitespace_padding_is_neutral_in_hardened_mode() -> None:
    for task, answer in CORRECT.items():
        padded = "\n\n   \n" + answer.replace("\n", "\n \n\t\n") + " \n" * 500
        assert compute_score(solution_str=think(padded), **ROWS[task]) == 1.0, task
    # The reference instead charges blank lines in pairwise accuracy (they enlarge C(|P|, 2)).
    row = ROWS["sequence_ordering"]
    padded = think("[Answer]\n" + "\n\n".join(GOLD_ITEMS))
    faithful, hardened = both(padded, row)
    assert faithful < 0.5 and hardened == 1.0


def test_enormous_outputs_do_not_pay() -> None:
    row = lbp("structured_matching", GOLD_ITEMS[:3])
    document = "\n".join(GOLD_ITEMS + [f"sentence number {i} of the document" for i in range(3000)])
    faithful, hardened = both(think("[Answer]\n" + document), row)
    assert faithful == 1.0 and hardened < 0.01
    huge = think("[Answer]\n" + document * 20)
    assert reason(huge, row) == "format"
    assert reason(huge, row, max_response_chars=10**8) is None


def test_several_multiple_choice_letters_do_not_pay() -> None:
    row = labelled("selection", "A")
    faithful, hardened = both(
        think("The correct answer is (A). The correct answer is (B). The correct answer is (C)."), row
    )
    assert faithful == 1.0 and hardened == 0.0


def test_chinese_summaries_use_jieba_regardless_of_the_summary_field() -> None:
    gold = "我们今天去公园散步然后回家吃饭。老师说学生的研究方法很好。"
    row = lbp("summarization", [gold], language=gold)  # the field holds text, not "Chinese"
    faithful, hardened = both(think(gold.replace("很好", "不错")), row)
    assert faithful == 0.0 and hardened > 0.8


def test_long_sentences_are_scored_instead_of_overflowing() -> None:
    words = [f"w{i % 300}" for i in range(1200)]
    text = " ".join(words)  # one 1,200-word "sentence": the reference's LCS recursion overflows
    row = lbp("summarization", [text])
    faithful, hardened = both(think(text, reasoning="ok"), row)
    assert faithful == 0.0 and reason(think(text), row, mode="faithful") == "error"
    assert hardened == 1.0


def test_table_cells_compare_by_value_and_last_answer_block_counts() -> None:
    row = ROWS["structured_extraction"]
    answer = '<answer>{"data": [["a", 1.0], ["b", "2"]]}</answer>'
    faithful, hardened = both(think(answer), row)
    assert faithful == pytest.approx(1 / 3) and hardened == 1.0
    two_blocks = think('<answer>{"data": []}</answer> on reflection ' + CORRECT["structured_extraction"])
    assert both(two_blocks, row) == (0.0, 1.0)


def test_ranking_with_a_repeated_line_is_no_permutation() -> None:
    row = ROWS["graded_ranking"]
    repeated = think("[Answer]\n" + "\n".join(GOLD_ITEMS) + "\nalpha")
    faithful, hardened = both(repeated, row)
    assert hardened == 0.0 < faithful


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"data_source": "longbench_pro", "ground_truth": {"summary": "English"},
          "extra_info": {"reward_mode": "T5.1 Full-Sentence Citation Alignment"}},
         "exhaustive_retrieval.*doc_ids"),
        (lbp("graded_ranking", []), "graded_ranking.*doc_ids is empty"),
        (lbp("sequence_ordering", ["a", 3]), r"sequence_ordering.*doc_ids\[1\]"),
        (lbp("structured_matching", ["a", "  "]), r"doc_ids\[1\] is blank"),
        ({"data_source": "EM", "ground_truth": {"doc_ids": []}, "extra_info": {}},
         "precise_retrieval.*golden_label"),
        (labelled("multitableqa_pretraining", "{not json"), "structured_extraction.*JSON"),
        (labelled("multitableqa_pretraining", '{"rows": []}'), "structured_extraction"),
        (labelled("math_longcot_math_verify", "  "), "numerical_reasoning.*blank"),
    ],
)
def test_malformed_ground_truth_raises_naming_field_and_task(row: dict, message: str) -> None:
    with pytest.raises(GroundTruthError, match=message):
        prepare(row["data_source"], row["ground_truth"], row["extra_info"], "hardened")
    assert compute_score(solution_str="</think>x", **row) == 0.0  # scoring never raises


def test_faithful_summary_without_the_language_field_is_a_scorer_error() -> None:
    row = lbp("summarization", ["a summary"])
    del row["ground_truth"]["summary"]
    assert reason("</think>a summary", row, mode="faithful") == "error"  # the reference raises
    assert compute_score(solution_str="a summary", **row) == 1.0


def test_unknown_labels_and_modes_raise() -> None:
    with pytest.raises(UnknownTaskError):
        prepare("no_such_source", {"golden_label": "x"}, None, "hardened")
    assert compute_score("no_such_source", "x", {"golden_label": "x"}) == 0.0
    with pytest.raises(ValueError, match="mode"):
        compute_score("EM", "x", {"golden_label": "x"}, mode="lenient")


def test_verl_keyword_arguments_are_accepted() -> None:
    row = ROWS["precise_retrieval"]
    score = compute_score(
        row["data_source"], "Paris", row["ground_truth"], row["extra_info"],
        sandbox_fusion_url=None, concurrent_semaphore=None, memory_limit_mb=None,
    )
    assert score == 1.0
    assert compute_score(solution_str=["not", "a", "string"], **row) == 0.0
