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
