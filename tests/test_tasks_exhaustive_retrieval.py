"""Exhaustive retrieval: informedness over the candidates - listing them all earns nothing."""

from __future__ import annotations

import pytest

from tasks_fixtures import row, score

MODE = "T6.2 Targeted Subset Cluster Identification"
CANDIDATES = ["looked", "Computer", "abandon", "value", "explanation", "actually"]
GOLD_ITEMS = ["looked", "Computer", "value", "explanation"]
QUESTION = ("Which of the following words occur in the text above? List every one that does.\n"
            "Candidates: " + ", ".join(CANDIDATES))
WITH_LIST = row("longbench_pro", items=GOLD_ITEMS, reward_mode=MODE, candidates=CANDIDATES)
FROM_QUESTION = row("longbench_pro", items=GOLD_ITEMS, reward_mode=MODE, question=QUESTION)
NO_CANDIDATES = row("longbench_pro", items=GOLD_ITEMS, reward_mode=MODE)


def answer(lines: list[str]) -> str:
    return "[Answer]\n" + "\n".join(lines)


@pytest.mark.parametrize("fields", [WITH_LIST, FROM_QUESTION], ids=["extra_info", "question"])
@pytest.mark.parametrize("response", [
    answer(GOLD_ITEMS), answer(reversed(GOLD_ITEMS)), answer([f"{i}. {g}" for i, g in enumerate(GOLD_ITEMS, 1)]),
    answer([f"- {g}" for g in GOLD_ITEMS]), answer([f'"{g}"' for g in GOLD_ITEMS]),
    answer([f"**{g}**" for g in GOLD_ITEMS]), answer([f"{g}." for g in GOLD_ITEMS]),
    answer([g.upper() for g in GOLD_ITEMS]), answer(GOLD_ITEMS + GOLD_ITEMS),
    "**[Answer]**\n" + "\n".join(GOLD_ITEMS), "[答案]\n" + "\n".join(GOLD_ITEMS),
    "<think>abandon?</think>" + answer(GOLD_ITEMS),
    answer([f"# {g}" for g in GOLD_ITEMS]),
    # One line naming candidates reads as those candidates.
    "looked, Computer, value and explanation", 'The words are "looked", "Computer", "value", "explanation".',
])
def test_the_exact_set_in_any_natural_list_format_pays(fields: dict, response: str) -> None:
    assert score(fields, response) == 1.0


@pytest.mark.parametrize("fields", [WITH_LIST, FROM_QUESTION], ids=["extra_info", "question"])
@pytest.mark.parametrize("response", [
    answer(CANDIDATES), answer(reversed(CANDIDATES)), answer(["abandon", "actually"]), answer([QUESTION]),
    answer(CANDIDATES + ["extra"]), "", "[Answer]\n",
])
def test_blind_lists_earn_nothing(fields: dict, response: str) -> None:
    assert score(fields, response) == 0.0


def test_partial_and_noisy_answers_earn_partial_credit() -> None:
    assert score(WITH_LIST, answer(GOLD_ITEMS[:3])) == pytest.approx(0.75)
    assert score(WITH_LIST, answer(GOLD_ITEMS + ["abandon"])) == pytest.approx(0.5)
    assert score(WITH_LIST, answer(GOLD_ITEMS + ["not a candidate"])) == pytest.approx(0.5)


def test_without_candidates_the_metric_is_set_f1() -> None:
    assert score(NO_CANDIDATES, answer(GOLD_ITEMS)) == 1.0
    assert score(NO_CANDIDATES, answer(GOLD_ITEMS[:2])) == pytest.approx(2 / 3)


def test_faithful_counts_blank_lines_like_the_reference() -> None:
    assert score(NO_CANDIDATES, "</think>[Answer]\n" + "\n\n".join(GOLD_ITEMS), mode="faithful") < 1.0
    assert score(WITH_LIST, "</think>" + answer(CANDIDATES), mode="faithful") == pytest.approx(0.8)


def test_empty_gold_list_scores_zero_in_faithful_mode() -> None:
    assert score(row("longbench_pro", items=[], reward_mode=MODE), "</think>[Answer]\nx", mode="faithful") == 0.0


@pytest.mark.parametrize("fields", [WITH_LIST, FROM_QUESTION], ids=["extra_info", "question"])
def test_one_line_naming_every_candidate_or_echoing_the_question_earns_nothing(fields: dict) -> None:
    assert score(fields, ", ".join(CANDIDATES)) == 0.0
    assert score(fields, QUESTION.splitlines()[0] + " " + ", ".join(CANDIDATES)) == 0.0


# --- warm-up tier constructions, re-checked against their contexts ---------------------------


def test_section_headings_gold_is_every_heading_of_the_context() -> None:
    from construction_fixtures import construction_rows, context_of, gold_score, section_headings

    rows = construction_rows("exhaustive_retrieval", "section_headings")
    assert len(rows) >= 4
    for r in rows:
        gold = r["reward_model"]["ground_truth"]["doc_ids"]
        assert gold == section_headings(context_of(r)) and 2 <= len(gold) <= 5
        assert gold_score(r, "[Answer]\n" + "\n".join(f"- **{g}**" for g in gold)) == 1.0
        assert gold_score(r, "[Answer]\n" + gold[0]) < 1.0


def test_column_values_gold_is_the_set_of_values_of_the_named_column() -> None:
    from construction_fixtures import construction_rows, context_of, gold_score, quoted, table_in

    rows = construction_rows("exhaustive_retrieval", "column_values")
    assert len(rows) >= 4
    for r in rows:
        column, title = quoted(r["extra_info"]["question"])[:2]
        header, body = table_in(context_of(r), title)
        gold = r["reward_model"]["ground_truth"]["doc_ids"]
        assert sorted(gold) == sorted({b[header.index(column)] for b in body}) and 2 <= len(gold) <= 6
        assert gold_score(r, "[Answer]\n" + "\n".join(f"{i + 1}. {g}" for i, g in enumerate(reversed(gold)))) == 1.0
