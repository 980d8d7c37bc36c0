"""Summarization: ROUGE-L rescaled above the best copy of the question."""

from __future__ import annotations

import re

import pytest

from built_rows import (
    context_of, gold_items, hardened, question_of, sections_of, table_of, warmup_rows, words_of,
)
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


# --- warm-up constructions, built from the bundled corpus ---------------------------------------


def test_sentence_with_word_gold_is_the_one_sentence_holding_the_word() -> None:
    rows = warmup_rows("sentence_with_word")
    assert len(rows) >= 6
    for built in rows:
        word = re.search(r'contains the word "(.+?)"', question_of(built)).group(1)
        (sentence,) = gold_items(built)
        context = context_of(built)
        assert [w.lower() for w in words_of(context)].count(word.lower()) == 1
        assert word in words_of(sentence) and context.count(sentence) == 1
        assert hardened(built, f'[Answer]\n"{sentence}"') == 1.0
        assert hardened(built, "[Answer]\n" + question_of(built)) == 0.0


def test_first_sentence_quote_gold_opens_the_named_section_and_the_heading_earns_nothing() -> None:
    rows = warmup_rows("first_sentence_quote", 12)
    assert len(rows) >= 4
    for built in rows:
        heading = re.search(r'of the section "(.+?)"\.$', question_of(built)).group(1)
        sections = sections_of(built)
        index = [h for h, _, _ in sections].index(heading)
        (sentence,) = gold_items(built)
        assert index >= 1 and sections[index][1].startswith(sentence)
        assert hardened(built, sentence) == 1.0  # without the answer marker too
        assert hardened(built, "[Answer]\n" + heading) == 0.0
        # Half the sentence keeps part of the credit.
        cut = " ".join(sentence.split()[: len(sentence.split()) // 2])
        assert 0.2 < hardened(built, "[Answer]\n" + cut) < 1.0


def test_row_description_reference_is_the_named_cells_of_the_keyed_row() -> None:
    rows = warmup_rows("row_description")
    assert len(rows) >= 4
    for built in rows:
        question = question_of(built)
        title, key, wanted, columns = re.search(
            r'the table "(.+?)" whose "(.+?)" is "(.+?)": give its (.+)\.$', question).groups()
        names = re.findall(r'"(.+?)"', columns)
        header, table_rows = table_of(next(b for h, b, _ in sections_of(built) if h == title))
        (target,) = [r for r in table_rows if r[header.index(key)] == wanted]
        assert table_rows.index(target) >= 2  # not in the lead of the context
        (reference,) = gold_items(built)
        assert reference == "; ".join(f"{n}: {target[header.index(n)]}" for n in names) + "."
        cells = [target[header.index(n)] for n in names]
        sentence = " and ".join(f"its {n} is {c}" for n, c in zip(names, cells))
        assert hardened(built, f"[Answer]\nThe row {wanted} has {sentence}.") >= 0.6
        # Copying the whole row earns part of it, and the first row's cells less.
        assert 0.2 < hardened(built, "[Answer]\n" + ",".join(target)) < 1.0
        first = [table_rows[0][header.index(n)] for n in names]
        assert hardened(built, "[Answer]\n" + ", ".join(first)) < hardened(built, "[Answer]\n" + ", ".join(cells))
