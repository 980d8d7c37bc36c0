"""Comprehension: every natural way of stating one letter pays; several letters never do."""

from __future__ import annotations

import pytest

from tasks_fixtures import row, score, scored

GOLD = row("selection", label="A")
LBP = row("longbench_pro", items=["Paris"], reward_mode="T3.2 Single-Hop Fact QA")


@pytest.mark.parametrize("response", [
    "The correct answer is (A)", "The correct answer is: (A)", "Therefore, the correct answer is (A).",
    "[Answer]: A", "**[Answer]** (A)", "**[Answer]**: A", "[Answer]\nA", "The correct answer is A.",
    "the correct answer is (A)", "**The correct answer is (A)**", "[答案] A", "答案是 A",
    "Reasoning first.\nThe correct answer is (A)\nThe correct answer is (A)", "The answer is (A)",
    "The final answer is: A", "<think>B? no.</think>The correct answer is (A)", "Answer: (A)", "**Answer: A**",
    # A reply that is nothing but the option.
    "A", "(A)", "A.", "**(A)**", "[A]",
])
def test_natural_statements_of_the_right_letter_pay(response: str) -> None:
    assert score(GOLD, response) == 1.0


@pytest.mark.parametrize("response", [
    "The correct answer is (B)", "The correct answer is (A) or (B)? The correct answer is (B)",
    "\n".join(f"The correct answer is ({x})" for x in "ABCD"), "B", "(A) or (B)", "A B", "(A)\n(B)",
    "The correct answer is a bit unclear",
    "", "<think>The correct answer is (A)</think>", "The correct answer is (E)", "Answer: (A)\nAnswer: (B)",
    "Answer: a guess",
])
def test_wrong_missing_or_several_letters_do_not_pay(response: str) -> None:
    assert score(GOLD, response) == 0.0


def test_listing_letters_is_a_parse_failure() -> None:
    assert scored(GOLD, "The correct answer is (A)\nThe correct answer is (C)")[1] == "parse"


@pytest.mark.parametrize(("response", "expected"), [
    ("[Answer]\nParis", 1.0), ("[Answer]\n**Paris**.", 1.0), ("[Answer]\n- Paris", 1.0),
    ("[Answer]\nLondon\nParis", 0.0), ("Paris", 1.0), ("[Answer]\nparis is the answer", 0.0),
])
def test_longbench_pro_route_reads_the_first_answer_line(response: str, expected: float) -> None:
    assert score(LBP, response) == expected


def test_faithful_keeps_the_first_statement_rule() -> None:
    both = "</think>The correct answer is (A). The correct answer is (B)."
    assert score(GOLD, both, mode="faithful") == 1.0
    assert score(GOLD, both) == 0.0


def test_longbench_pro_comprehension_rows_validate_and_score() -> None:
    from golongrl.data.schema import validate_record

    rec = validate_record({
        "data_source": "longbench_pro", "prompt": [{"role": "user", "content": "ctx\n\nQ?"}],
        "reward_model": {"ground_truth": {"doc_ids": ["Paris"], "golden_label": "", "summary": "English"}},
        "extra_info": {"reward_mode": "T3.2 Single-Hop Fact QA"},
    })
    assert score({"data_source": rec["data_source"], "ground_truth": rec["reward_model"]["ground_truth"],
                  "extra_info": rec["extra_info"]}, "[Answer]\nParis") == 1.0


def test_a_selection_row_with_a_longbench_pro_mode_name_stays_multiple_choice() -> None:
    fields = row("selection", label="C", reward_mode="T3.2 Single-Hop Fact QA")
    assert score(fields, "The correct answer is (C)") == 1.0


# --- warm-up tier constructions, re-checked against their contexts ---------------------------


def _option(row: dict, letter: str) -> str:
    return row["extra_info"]["candidates"]["ABCD".index(letter)]


def test_sentence_seen_choice_gold_option_alone_occurs_in_the_context() -> None:
    from collections import Counter

    from construction_fixtures import construction_rows, context_of, gold_score

    rows = construction_rows("comprehension", "sentence_seen_choice", 8)
    assert len(rows) >= 6
    letters = Counter()
    for r in rows:
        context, letter = context_of(r), r["reward_model"]["ground_truth"]["golden_label"]
        options = r["extra_info"]["candidates"]
        assert len(options) == 4 and len(set(options)) == 4
        assert [o in context for o in options] == [o == _option(r, letter) for o in options]
        assert gold_score(r, f"The correct answer is ({letter})") == 1.0
        assert gold_score(r, f"({letter}) {_option(r, letter)}\nThe correct answer is ({letter})") == 1.0
        letters[letter] += 1
    assert len(letters) >= 3 and max(letters.values()) <= len(rows) // 2


def test_row_value_choice_gold_option_is_the_cell_and_the_others_are_from_its_column() -> None:
    from construction_fixtures import construction_rows, context_of, quoted, table_in

    rows = construction_rows("comprehension", "row_value_choice")
    assert len(rows) >= 4
    for r in rows:
        title, column, key_column, key = quoted(r["extra_info"]["question"])[:4]
        header, body = table_in(context_of(r), title)
        [match] = [b for b in body if b[header.index(key_column)] == key]
        values = {b[header.index(column)] for b in body}
        letter = r["reward_model"]["ground_truth"]["golden_label"]
        assert _option(r, letter) == match[header.index(column)]
        assert all(o in values and o != _option(r, letter) for o in r["extra_info"]["candidates"] if o != _option(r, letter))


def test_sentence_seen_choice_options_share_one_shape() -> None:
    from construction_fixtures import construction_rows

    for r in construction_rows("comprehension", "sentence_seen_choice", 8):
        options = r["extra_info"]["candidates"]
        assert all(o[0].isupper() and o[-1] in ".!?" for o in options)
        letter = r["reward_model"]["ground_truth"]["golden_label"]
        assert len(options["ABCD".index(letter)]) < max(len(o) for o in options) or len({len(o) for o in options}) == 1
