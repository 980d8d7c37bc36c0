"""Precise retrieval (EM): natural decorations of the right answer pay, near misses do not."""

from __future__ import annotations

import pytest

from tasks_fixtures import row, score

GOLD = row("EM", label="make", question='Which word comes immediately after "All of my cousins and I"?')


@pytest.mark.parametrize("response", [
    "make", " make\n", "make.", "**make**", '"make"', "`make`", "*make*", "'make'", "(make)",
    "“make”", "[Answer] make", "**[Answer]** make", "[Answer]: make", "**make**.", "<think>x</think>make",
    "<think>\nreasoning\n</think>\n\n`make`.", "Answer: make", "**Answer:** make", "Final answer: **make**",
    "The answer is make.", 'The answer to the question is: "make"', "The correct answer is **make**", "**The answer is:** make",
])
def test_natural_correct_answers_pay(response: str) -> None:
    assert score(GOLD, response) == 1.0


@pytest.mark.parametrize("response", [
    "Make", "makes", "make it", "I think the answer is make", "make\nbake", "make, bake",
    "All of my cousins and I", "", "   ", "<think>make", "<think>a</think>b</think>make", "m a k e",
    "**make** or **bake**", "The word is make.", "Answer: make or bake", "answers: make",
    "The answer is make or bake", 'The answer to the question is: "All of my cousins and I make"',
])
def test_wrong_or_hedged_answers_do_not_pay(response: str) -> None:
    assert score(GOLD, response) == 0.0


def test_gold_with_its_own_punctuation_matches_with_or_without_it() -> None:
    fields = row("EM", label="U.S.")
    assert score(fields, "U.S.") == score(fields, "U.S") == score(fields, "**U.S.**") == 1.0


def test_faithful_keeps_the_reference_strict_match() -> None:
    assert score(GOLD, "</think> make ", mode="faithful") == 1.0
    assert score(GOLD, "</think>make.", mode="faithful") == 0.0
    assert score(GOLD, "make", mode="faithful") == 0.0  # no </think>


def test_empty_gold_with_empty_answer_scores_like_the_reference() -> None:
    fields = row("EM", label="")
    assert score(fields, "</think>  ", mode="faithful") == 1.0


# --- warm-up tier constructions, re-checked against their contexts ---------------------------


def test_next_word_gold_is_the_word_after_its_once_occurring_phrase() -> None:
    from construction_fixtures import construction_rows, context_of, gold_score, quoted

    rows = construction_rows("precise_retrieval", "next_word")
    assert len(rows) >= 4
    for r in rows:
        context, gold = context_of(r), r["reward_model"]["ground_truth"]["golden_label"]
        phrase = quoted(r["extra_info"]["question"])[0]
        assert context.count(phrase) == 1 and 4 <= len(phrase.split()) <= 6
        after = context[context.index(phrase) + len(phrase):]
        assert after.split()[0] == gold and gold.isalpha() and len(gold) >= 4 and gold not in phrase.split()
        for response in (gold, f"**{gold}**", f"{gold}.", f"Answer: {gold}", f'"{gold}"'):
            assert gold_score(r, response) == 1.0, response
        assert gold_score(r, phrase) == 0.0 and gold_score(r, f"{gold} {gold}") == 0.0


def test_row_cell_copy_gold_is_the_named_cell_of_its_table() -> None:
    from construction_fixtures import construction_rows, context_of, gold_score, quoted, table_in

    rows = construction_rows("precise_retrieval", "row_cell_copy")
    assert len(rows) >= 4
    for r in rows:
        title, column, key_column, key = quoted(r["extra_info"]["question"])
        header, body = table_in(context_of(r), title)
        matches = [b for b in body if b[header.index(key_column)] == key]
        assert len(matches) == 1
        gold = r["reward_model"]["ground_truth"]["golden_label"]
        assert matches[0][header.index(column)] == gold
        assert gold_score(r, gold) == 1.0 and gold_score(r, f"The value is {gold}.") == 0.0
