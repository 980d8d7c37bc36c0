"""Sequence ordering: every item once; pairwise accuracy rescaled above 1/2 (Kendall's tau)."""

from __future__ import annotations

import itertools

import re

import pytest

from built_rows import (
    context_of, gold_items, hardened, listed_items, question_of, quoted_lines, sections_of, table_of, warmup_rows,
)
from tasks_fixtures import row, score

MODE = "T2.1 Global Timeline Reconstruction"
GOLD_ITEMS = ["3", "1", "5", "2", "4"]
QUESTION = "List the excerpt numbers in order.\n" + "\n".join(f'{i}. "excerpt {i}"' for i in range(1, 6))
GOLD = row("longbench_pro", items=GOLD_ITEMS, reward_mode=MODE, question=QUESTION)


def answer(lines: list[str]) -> str:
    return "[Answer]\n" + "\n".join(lines)


@pytest.mark.parametrize("response", [
    answer(GOLD_ITEMS), answer([f"Excerpt {g}" for g in GOLD_ITEMS]), answer([f"({g})" for g in GOLD_ITEMS]),
    answer([f"- {g}" for g in GOLD_ITEMS]), answer([f"{i}. {g}" for i, g in enumerate(GOLD_ITEMS, 1)]),
    answer([f"{g}." for g in GOLD_ITEMS]), answer([f"**{g}**" for g in GOLD_ITEMS]), answer([f"#{g}" for g in GOLD_ITEMS]),
    answer([f"[{g}]" for g in GOLD_ITEMS]), "**[Answer]**\n" + "\n".join(GOLD_ITEMS), answer([f"Excerpt {g}." for g in GOLD_ITEMS]),
    "<think>1 2 3</think>" + answer(GOLD_ITEMS),
    # One line naming the candidates in order reads as the same list.
    answer(["3 1 5 2 4"]), answer(["3, 1, 5, 2, 4"]), "The order is 3, 1, 5, 2, 4.", "Excerpts 3, 1, 5, 2 and 4.",
])
def test_the_gold_order_in_natural_formats_pays(response: str) -> None:
    assert score(GOLD, response) == 1.0


@pytest.mark.parametrize("response", [
    answer(list(reversed(GOLD_ITEMS))), answer(GOLD_ITEMS[:2]), answer(GOLD_ITEMS + ["6"]),
    answer(GOLD_ITEMS + GOLD_ITEMS[:1]), answer(["3 1 5 2"]), "", "1, 2, 3, 4, 5 reversed: 5, 4", answer(["Excerpt 3 and 1"] + GOLD_ITEMS[1:]),
])
def test_reverse_partial_superset_and_unreadable_orders_earn_nothing(response: str) -> None:
    assert score(GOLD, response) == 0.0


def test_identity_and_reverse_of_the_presentation_average_zero_over_golds() -> None:
    totals = []
    for gold in itertools.permutations("12345"):
        fields = row("longbench_pro", items=list(gold), reward_mode=MODE, question=QUESTION)
        totals.append(score(fields, answer(list("12345"))) + score(fields, answer(list("54321"))))
    assert sum(totals) / len(totals) / 2 < 0.2


def test_one_adjacent_swap_keeps_most_of_the_credit() -> None:
    swapped = [GOLD_ITEMS[1], GOLD_ITEMS[0]] + GOLD_ITEMS[2:]
    assert score(GOLD, answer(swapped)) == pytest.approx(0.8)


def test_faithful_pays_two_ordered_items_like_the_reference() -> None:
    assert score(GOLD, "</think>" + answer(["3", "5"]), mode="faithful") == 1.0


# --- warm-up constructions, built from the bundled corpus ---------------------------------------


def _listed_order_is_uninformative(listed: list[str], gold: list[str]) -> bool:
    """The listed order, its reverse and its half rotation each earn at most 1/3."""
    fields = row("longbench_pro", items=gold, reward_mode=MODE, candidates=listed)
    half = len(listed) // 2
    readings = (listed, listed[::-1], listed[half:] + listed[:half])
    return all(score(fields, answer(r)) <= 1 / 3 + 1e-9 for r in readings)


def test_headings_in_order_gold_is_the_order_of_the_sections() -> None:
    rows = warmup_rows("headings_in_order")
    assert len(rows) >= 4
    for built in rows:
        listed = listed_items(question_of(built))
        assert built["extra_info"]["candidates"] == listed
        assert gold_items(built) == [h for h, _, _ in sections_of(built)]
        assert sorted(listed) == sorted(gold_items(built)) and len(listed) >= 4
        assert _listed_order_is_uninformative(listed, gold_items(built))
        assert hardened(built, answer([f"{i}. {h}" for i, h in enumerate(gold_items(built), 1)])) == 1.0


def test_sentences_in_order_gold_numbers_follow_the_text() -> None:
    rows = warmup_rows("sentences_in_order")
    assert len(rows) >= 4
    for built in rows:
        context = context_of(built)
        sentences = quoted_lines(question_of(built))
        assert len(sentences) == 4 and all(context.count(s) == 1 for s in sentences.values())
        assert gold_items(built) == sorted(sentences, key=lambda n: context.find(sentences[n]))
        assert _listed_order_is_uninformative(list(sentences), gold_items(built))
        assert hardened(built, answer([f"Sentence {n}" for n in gold_items(built)])) == 1.0


def test_rows_in_order_gold_follows_the_rows_of_the_table() -> None:
    rows = warmup_rows("rows_in_order")
    assert len(rows) >= 4
    for built in rows:
        question = question_of(built)
        column, title = re.search(r'column "(.+?)" of the table "(.+?)"', question).groups()
        header, table_rows = table_of(next(b for h, b, _ in sections_of(built) if h == title))
        values = [r[header.index(column)] for r in table_rows]
        listed = listed_items(question)
        assert len(listed) == 4 and all(values.count(v) == 1 for v in listed)
        assert gold_items(built) == sorted(listed, key=values.index)
        assert _listed_order_is_uninformative(listed, gold_items(built))
        assert gold_items(built) not in (sorted(listed), sorted(listed, reverse=True))
        assert hardened(built, answer(gold_items(built))) == 1.0
