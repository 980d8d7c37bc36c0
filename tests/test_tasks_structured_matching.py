"""Structured matching: one label per item, chance-corrected (Cohen's kappa)."""

from __future__ import annotations

import re

import pytest

from built_rows import (
    context_of, gold_items, hardened, question_of, quoted_lines, sections_of, table_of, warmup_rows,
)
from tasks_fixtures import row, score, scored

MODE = "T8.3 Long-Context Procedural State Tracking"
GOLD_ITEMS = ["1: B", "2: A", "3: A", "4: A", "5: B"]
GOLD = row("longbench_pro", items=GOLD_ITEMS, reward_mode=MODE, candidates=["A", "B"])
LABELS = ["B", "A", "A", "A", "B"]


def answer(lines: list[str]) -> str:
    return "[Answer]\n" + "\n".join(lines)


@pytest.mark.parametrize("response", [
    answer(GOLD_ITEMS), answer([f"{i}. {x}" for i, x in enumerate(LABELS, 1)]),
    answer([f"{i}: Speaker {x}" for i, x in enumerate(LABELS, 1)]), answer([f"({i}) {x}" for i, x in enumerate(LABELS, 1)]),
    answer([f"**{i}**: {x}" for i, x in enumerate(LABELS, 1)]), answer([f"{i}) {x}." for i, x in enumerate(LABELS, 1)]),
    answer([f"{i} - {x}" for i, x in enumerate(LABELS, 1)]), answer(list(reversed(GOLD_ITEMS))),
    answer([f"{i}: speaker {x.lower()}" for i, x in enumerate(LABELS, 1)]), "**[Answer]**\n" + "\n".join(GOLD_ITEMS),
    "<think>1: A</think>" + answer(GOLD_ITEMS), answer([f"{i}: **{x}**" for i, x in enumerate(LABELS, 1)]),
])
def test_every_natural_keyed_format_pays(response: str) -> None:
    assert score(GOLD, response) == 1.0


@pytest.mark.parametrize("response", [
    answer([f"{i}: A" for i in range(1, 6)]), answer([f"{i}: B" for i in range(1, 6)]),
    answer([f"{i}: {x}" for i in range(1, 6) for x in "AB"]), answer(["A", "B"]),
    answer([f"{i}: A B" for i in range(1, 6)]), answer([f"{i}: {'BA'[i % 2]}" for i in range(1, 6)]), "",
])
def test_constant_every_and_blind_labellings_earn_nothing(response: str) -> None:
    assert score(GOLD, response) == 0.0


def test_an_item_answered_twice_counts_as_unanswered() -> None:
    twice = answer(GOLD_ITEMS + ["1: A"])
    assert 0.0 < score(GOLD, twice) < 1.0


def test_one_mistake_costs_more_than_a_fifth() -> None:
    one_wrong = answer(["1: A"] + GOLD_ITEMS[1:])
    assert 0.0 < score(GOLD, one_wrong) < 0.8


def test_unkeyed_gold_uses_precise_subem() -> None:
    fields = row("longbench_pro", items=["red", "blue"], reward_mode="T6.1 Large-Scale Document Clustering")
    assert score(fields, answer(["red", "blue"])) == 1.0
    assert score(fields, answer(["red", "blue", "green", "pink"])) == pytest.approx(0.5)
    assert score(fields, "</think>" + answer(["red", "blue", "green", "pink"]), mode="faithful") == 1.0


def test_answer_without_keys_is_a_parse_failure() -> None:
    assert scored(GOLD, answer(["B", "A", "A", "A", "B"]))[1] == "parse"


# --- warm-up constructions, built from the bundled corpus ---------------------------------------


def test_sentence_section_match_gold_is_the_one_section_holding_each_sentence() -> None:
    rows = warmup_rows("sentence_section_match")
    assert len(rows) >= 6
    for built in rows:
        quotes = quoted_lines(question_of(built))
        labels = []
        for item in gold_items(built):
            number, heading = item.split(": ", 1)
            assert [h for h, body, _ in sections_of(built) if quotes[number] in body] == [heading]
            labels.append(heading)
        assert 2 <= len(quotes) <= 3 and len(set(labels)) >= 2  # kappa needs two labels
        assert not any(label in question_of(built) for label in labels)
        pairs = [item.split(": ", 1) for item in gold_items(built)]
        assert hardened(built, "[Answer]\n" + "\n".join(f"{n}. {h}" for n, h in pairs)) == 1.0
        assert hardened(built, "[Answer]\n" + "\n".join(f"**{n}**: {h}" for n, h in pairs)) == 1.0


def test_cell_row_match_gold_is_the_key_of_the_row_holding_each_value() -> None:
    rows = warmup_rows("cell_row_match")
    assert len(rows) >= 4
    for built in rows:
        question = question_of(built)
        found = re.search(r'column "(.+?)" of the table "(.+?)"\. For each, give the "(.+?)"', question)
        column, title, key = found.groups()
        body = next(b for h, b, _ in sections_of(built) if h == title)
        header, table_rows = table_of(body)
        values = quoted_lines(question)
        assert 2 <= len(values) <= 3
        for item in gold_items(built):
            number, gold_key = item.split(": ", 1)
            holders = [r for r in table_rows if r[header.index(column)] == values[number]]
            assert len(holders) == 1 and holders[0][header.index(key)] == gold_key
        # A row's key is in the context, never in the question.
        assert all(item.split(": ", 1)[1] in context_of(built) for item in gold_items(built))
