"""Summarization: ROUGE-L rescaled above the best copy of the question."""

from __future__ import annotations

import pytest

from tasks_fixtures import row, score, scored

MODE = "T4.1 Global-Coverage Constrained Summary"
REFERENCE = "Dataset for Nightingale's famous polar area diagram of army deaths in the Crimean War."
QUESTION = 'Write a short description of the dataset "Nightingale\'s Rose" above: what it contains and what it is about.'
GOLD = row("longbench_pro", items=[REFERENCE], reward_mode=MODE, question=QUESTION)


def answer(text: str) -> str:
    return "[Answer]\n" + text


@pytest.mark.parametrize("response", [
    answer(REFERENCE), answer(REFERENCE.upper()), answer("  " + REFERENCE.replace(" ", "\n")), "**[Answer]**\n" + REFERENCE,
    "[Answer]: " + REFERENCE, "<think>draft</think>" + answer(REFERENCE), REFERENCE,
])
def test_the_reference_pays(response: str) -> None:
    assert score(GOLD, response) == pytest.approx(1.0)


@pytest.mark.parametrize("response", [
    answer(QUESTION), answer("Nightingale's Rose"), answer("The dataset Nightingale's Rose."),
    answer("dataset nightingale's"), answer("a description of the dataset Nightingale's Rose: what it contains"), "",
    answer(""),
])
def test_copies_of_the_question_and_title_earn_nothing(response: str) -> None:
    assert score(GOLD, response) == 0.0


def test_a_good_paraphrase_beats_a_poor_one() -> None:
    good = answer("Monthly army deaths in the Crimean War behind Nightingale's famous polar area diagram.")
    poor = answer("Some numbers about a war.")
    assert score(GOLD, good) > score(GOLD, poor)
    assert score(GOLD, good) > 0.4


def test_repeating_the_reference_lowers_precision() -> None:
    assert score(GOLD, answer(" ".join([REFERENCE] * 4))) < 0.6


def test_chinese_gold_is_segmented_with_jieba() -> None:
    zh = row("longbench_pro", items=["委员会在长时间辩论后批准了新预算。"], reward_mode=MODE)
    assert score(zh, answer("委员会在长时间辩论后批准了新预算。")) == pytest.approx(1.0)
    assert score(zh, answer("委员会批准了预算。")) > 0.3


def test_faithful_scores_the_whole_response_thinking_included() -> None:
    assert score(GOLD, "</think>" + REFERENCE, mode="faithful") > 0.9
    reasoning = " ".join(f"step{i}" for i in range(200))
    assert score(GOLD, f"<think>{reasoning}</think>{REFERENCE}", mode="faithful") < 0.5
    assert scored(GOLD, "</think>...", mode="faithful")[0] == 0.0


@pytest.mark.parametrize(("response", "limit"), [
    (answer(" ".join(f"token{i}" for i in range(3000)) + " " + REFERENCE), 0.1),  # dump around the answer
    (answer((QUESTION + " ") * 5), 0.0),
    (answer("Nightingale's Rose. " * 20), 0.0),
    (answer("<think>" + REFERENCE), 0.0),  # unclosed think: format gate
])
def test_dumps_and_repeats_stay_low(response: str, limit: float) -> None:
    assert score(GOLD, response) <= limit


def test_question_words_cost_nothing_and_add_nothing() -> None:
    assert score(GOLD, answer(QUESTION + " " + REFERENCE)) == pytest.approx(score(GOLD, answer(REFERENCE)))


def test_a_reference_made_only_of_question_words_falls_back_to_plain_rouge() -> None:
    fields = row("longbench_pro", items=["the dataset nightingale's rose"], reward_mode=MODE, question=QUESTION)
    assert score(fields, answer("the dataset Nightingale's Rose")) == pytest.approx(1.0)
    assert score(fields, answer("something else entirely")) == 0.0
