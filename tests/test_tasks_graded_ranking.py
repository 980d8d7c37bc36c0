"""Graded ranking: a permutation of the candidates, NDCG rescaled above a random ranking's."""

from __future__ import annotations

import itertools

import re

import pytest

from golongrl.rewards.metrics import expected_random_ndcg, ndcg_linear, rescale_above
from built_rows import (
    context_of, gold_items, hardened, question_of, sections_of, table_of, warmup_rows, words_of,
)
from tasks_fixtures import row, score

MODE = "T1.2 Key-Snippet Retrieval"
CANDIDATES = ["language", "flood", "LORD", "earth", "city"]
GOLD_ITEMS = ["LORD", "earth", "language", "city", "flood"]
GOLD = row("longbench_pro", items=GOLD_ITEMS, reward_mode=MODE, candidates=CANDIDATES)
QUESTION = "Rank these words by how many times each occurs, most frequent first: " + ", ".join(CANDIDATES)
FROM_QUESTION = row("longbench_pro", items=GOLD_ITEMS, reward_mode=MODE, question=QUESTION)


def answer(lines: list[str]) -> str:
    return "[Answer]\n" + "\n".join(lines)


@pytest.mark.parametrize("fields", [GOLD, FROM_QUESTION], ids=["extra_info", "question"])
@pytest.mark.parametrize("response", [
    answer(GOLD_ITEMS), answer([f"{i}. {g}" for i, g in enumerate(GOLD_ITEMS, 1)]), answer([f"- {g}" for g in GOLD_ITEMS]),
    answer([f"**{g}**" for g in GOLD_ITEMS]), answer([f'"{g}"' for g in GOLD_ITEMS]), answer([f"{g}." for g in GOLD_ITEMS]),
    answer([g.lower() for g in GOLD_ITEMS]), "**[Answer]**\n" + "\n".join(GOLD_ITEMS), "<think>x</think>" + answer(GOLD_ITEMS),
    "[Answer]\n\n" + "\n\n".join(GOLD_ITEMS),
    # One line naming the candidates in order reads as the same list.
    "LORD, earth, language, city, flood", 'The ranking is "LORD", "earth", "language", "city" and "flood".',
])
def test_the_gold_ranking_in_natural_formats_pays(fields: dict, response: str) -> None:
    assert score(fields, response) == 1.0


@pytest.mark.parametrize("fields", [GOLD, FROM_QUESTION], ids=["extra_info", "question"])
@pytest.mark.parametrize("response", [
    answer(list(reversed(GOLD_ITEMS))), answer(GOLD_ITEMS + ["extra"]), answer(GOLD_ITEMS[:3]),
    answer(GOLD_ITEMS + GOLD_ITEMS[:1]), answer([QUESTION]), "",
])
def test_reverse_superset_partial_and_echo_earn_nothing(fields: dict, response: str) -> None:
    assert score(fields, response) == 0.0


def test_a_blind_order_earns_its_rescaled_ndcg_which_averages_low() -> None:
    scores = [score(GOLD, answer(list(p))) for p in itertools.permutations(CANDIDATES)]
    assert max(scores) == 1.0
    assert sum(scores) / len(scores) < 0.25


def test_rescaling_matches_the_random_expectation() -> None:
    gold = [g.lower() for g in GOLD_ITEMS]
    swapped = gold[:3] + [gold[4], gold[3]]
    expected = rescale_above(ndcg_linear(gold, swapped), expected_random_ndcg(gold, 5))
    assert score(GOLD, answer(swapped)) == pytest.approx(expected)
    assert 0.5 < expected < 1.0


def test_faithful_keeps_the_linear_ndcg_floor() -> None:
    assert score(GOLD, "</think>" + answer(list(reversed(GOLD_ITEMS))), mode="faithful") > 0.7


# --- warm-up constructions, built from the bundled corpus ---------------------------------------


def test_top_rows_small_gold_is_the_two_largest_of_the_four_named_rows() -> None:
    rows = warmup_rows("top_rows_small")
    assert len(rows) >= 4
    first_places = set()
    for built in rows:
        question = question_of(built)
        title, key, column = re.search(r'the table "(.+?)", take the rows whose "(.+?)" is .*the largest "(.+?)"\?',
                                       question).groups()
        header, table_rows = table_of(next(b for h, b, _ in sections_of(built) if h == title))
        candidates = built["extra_info"]["candidates"]
        assert len(candidates) == 4 and all(f'"{c}"' in question for c in candidates)
        value = {r[header.index(key)]: float(r[header.index(column)]) for r in table_rows}
        ranked = sorted(candidates, key=lambda c: -value[c])
        assert len({value[c] for c in candidates}) == 4 and gold_items(built) == ranked[:2]
        first_places.add(candidates.index(ranked[0]))
        assert hardened(built, "[Answer]\n1. " + ranked[0] + "\n2. " + ranked[1]) == 1.0
        assert hardened(built, "[Answer]\n" + ranked[1] + "\n" + ranked[0]) < 1.0
        assert hardened(built, "[Answer]\n" + "\n".join(ranked)) == 0.0  # all four is not an answer
    assert len(first_places) >= 3  # the top row's place in the list cycles


def test_earliest_words_gold_is_the_two_candidates_that_occur_first() -> None:
    rows = warmup_rows("earliest_words")
    assert len(rows) >= 6
    for built in rows:
        context = context_of(built)
        tokens = [w.lower() for w in words_of(context)]
        candidates = built["extra_info"]["candidates"]
        assert len(candidates) == 4 and all(tokens.count(c.lower()) == 1 for c in candidates)
        ranked = sorted(candidates, key=lambda c: tokens.index(c.lower()))
        assert gold_items(built) == ranked[:2]
        assert hardened(built, "[Answer]\n- " + ranked[0] + "\n- " + ranked[1]) == 1.0
