"""Numerical reasoning: one boxed answer, compared by value with percent/decimal equivalence."""

from __future__ import annotations

import pytest

from tasks_fixtures import row, score, scored

MATH = "math_longcot_math_verify"


@pytest.mark.parametrize(("gold", "response"), [
    ("2", "\\boxed{2}"), ("2", "So the count is \\boxed{2}."), ("2", "\\boxed{2.0}"), ("2", "$\\boxed{2}$"),
    ("50\\%", "\\boxed{50\\%}"), ("50\\%", "\\boxed{0.5}"), ("50\\%", "\\boxed{50}"), ("0.5", "\\boxed{50\\%}"),
    ("12\\%", "\\boxed{0.12}"), ("1234", "\\boxed{1,234}"), ("0.25", "\\boxed{\\frac{1}{4}}"),
    ("-3", "\\boxed{-3}"), ("7", "\\boxed{7} and again \\boxed{7.0}"), ("2", "\\boxed{2 \\text{ times}}"),
    ("\\frac{1}{2}", "\\boxed{0.5}"), ("42", "<think>\\boxed{41}</think>\\boxed{42}"),
])
def test_right_values_in_natural_forms_pay(gold: str, response: str) -> None:
    assert score(row(MATH, label=gold), response) == 1.0


@pytest.mark.parametrize(("gold", "response"), [
    ("2", "\\boxed{3}"), ("2", "\\boxed{1} \\boxed{2} \\boxed{3}"), ("2", "\\boxed{2} or \\boxed{20}"),
    ("50\\%", "\\boxed{0.05}"), ("2", "no box, no number"), ("2", ""), ("2", "\\boxed{}"),
    ("2", "<think>\\boxed{2}</think>\\boxed{3}"), ("2", "\\boxed{2"),
])
def test_wrong_or_several_answers_do_not_pay(gold: str, response: str) -> None:
    assert score(row(MATH, label=gold), response) == 0.0


def test_several_different_boxes_are_a_parse_failure() -> None:
    assert scored(row(MATH, label="2"), "\\boxed{2}\\boxed{5}")[1] == "parse"


def test_symbolic_answers_go_to_math_verify() -> None:
    assert score(row(MATH, label="\\sqrt{2}"), "\\boxed{\\sqrt{2}}") == 1.0
    assert score(row(MATH, label="x^2"), "\\boxed{x^{2}}") == 1.0


def test_numeric_gold_label_is_read_as_text() -> None:
    assert score({"data_source": MATH, "ground_truth": {"golden_label": 42}, "extra_info": {}}, "\\boxed{42}") == 1.0
    assert score({"data_source": MATH, "ground_truth": 2.0, "extra_info": {}}, "\\boxed{2}") == 1.0


# --- warm-up tier constructions, re-checked against their contexts ---------------------------


def _warm(name: str) -> tuple:
    from construction_fixtures import construction_rows

    rows = construction_rows("numerical_reasoning", name)
    assert len(rows) >= 4, name
    return rows


def _gold(row: dict) -> float:
    return float(row["reward_model"]["ground_truth"]["golden_label"])


def test_table_number_lookup_gold_is_the_named_numeric_cell() -> None:
    from construction_fixtures import context_of, gold_score, quoted, table_in

    for r in _warm("table_number_lookup"):
        title, column, key_column, key = quoted(r["extra_info"]["question"])
        header, body = table_in(context_of(r), title)
        [match] = [b for b in body if b[header.index(key_column)] == key]
        value = float(match[header.index(column)])
        assert value == _gold(r) and value not in (0, 1, 2)
        label = r["reward_model"]["ground_truth"]["golden_label"]
        assert gold_score(r, f"The {column} is {label}.\n\\boxed{{{label}}}") == 1.0


def test_table_max_value_gold_is_the_largest_value_of_the_column() -> None:
    from construction_fixtures import context_of, gold_score, quoted, table_in

    for r in _warm("table_max_value"):
        title, column = quoted(r["extra_info"]["question"])
        header, body = table_in(context_of(r), title)
        values = [float(b[header.index(column)]) for b in body]
        assert max(values) == _gold(r) and len(set(values)) >= 3
        assert gold_score(r, f"\\boxed{{{min(values)}}}") == 0.0


def test_number_after_phrase_gold_is_the_number_right_after_the_phrase() -> None:
    from construction_fixtures import context_of, gold_score, quoted

    for r in _warm("number_after_phrase"):
        context, phrase = context_of(r), quoted(r["extra_info"]["question"])[0]
        assert context.count(phrase) == 1
        following = context[context.index(phrase) + len(phrase):].split()[0]
        assert following.isdigit() and float(following) == _gold(r)
        assert gold_score(r, f"The number is {following}. \\boxed{{{following}}}") == 1.0
