"""Sequence ordering: every item once; pairwise accuracy rescaled above 1/2 (Kendall's tau)."""

from __future__ import annotations

import itertools

import pytest

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
