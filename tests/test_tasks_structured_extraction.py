"""Structured extraction: JSON rows from the last <answer> block, cells compared by value."""

from __future__ import annotations

import json

import pytest

from tasks_fixtures import row, score, scored

TABLE = "multitableqa_pretraining"
GOLD_ROWS = [["1980", "22.2"], ["1981", "20.8"]]
GOLD = row(TABLE, label=json.dumps({"data": GOLD_ROWS}))
ALL_ROWS = GOLD_ROWS + [["1982", "18.5"], ["1983", "17.9"]]
LISTED = row(TABLE, label=json.dumps({"data": GOLD_ROWS}), candidates=[json.dumps(r) for r in ALL_ROWS])


def answer(rows: list, wrap: str = "<answer>{}</answer>") -> str:
    return wrap.format(json.dumps({"data": rows}))


@pytest.mark.parametrize("response", [
    answer(GOLD_ROWS), answer(GOLD_ROWS, "<answer>\n```json\n{}\n```\n</answer>"), answer(GOLD_ROWS, "```json\n{}\n```"),
    answer(GOLD_ROWS, "{}"), answer([[1980, 22.2], [1981, 20.8]]), answer([["1980", "22.20"], ["1981", "20.8"]]),
    answer(list(reversed(GOLD_ROWS))), "<think><answer>{}</answer></think>" + answer(GOLD_ROWS),
    "Here you go:\n" + answer(GOLD_ROWS) + "\nDone.", answer([["1980", " 22.2 "], ["1981", "20.8"]]),
    answer([["1980", "22.2"], ["1981", "20.8"]], "<answer>{}"),
])
def test_the_right_rows_in_natural_forms_pay(response: str) -> None:
    assert score(GOLD, response) == 1.0


@pytest.mark.parametrize("response", [
    answer([]), "<answer>not json</answer>", "", answer([["1990", "1.0"]]), '<answer>{"rows": []}</answer>',
    '<answer>{"data": "x"}</answer>', "<answer>[1, 2]</answer>",
])
def test_wrong_or_malformed_answers_do_not_pay(response: str) -> None:
    assert score(GOLD, response) == 0.0


def test_partial_answers_earn_iou() -> None:
    assert score(GOLD, answer(GOLD_ROWS[:1])) == pytest.approx(0.5)
    assert score(GOLD, answer(ALL_ROWS)) == pytest.approx(0.5)


def test_listed_candidate_rows_make_dumping_the_table_worthless() -> None:
    assert score(LISTED, answer(GOLD_ROWS)) == 1.0
    assert score(LISTED, answer(ALL_ROWS)) == 0.0
    assert score(LISTED, answer(GOLD_ROWS + GOLD_ROWS)) == 0.0  # repeats beyond the gold's
    assert score(LISTED, answer(GOLD_ROWS[:1])) == pytest.approx(0.5)


def test_invalid_json_gold_scores_zero_in_faithful_mode_like_the_reference() -> None:
    bad = row(TABLE, label="{not json")
    assert score(bad, "</think>" + answer(GOLD_ROWS), mode="faithful") == 0.0
    assert scored(bad, "</think>x", mode="faithful")[0] == 0.0


def test_faithful_stringifies_cells_like_the_reference() -> None:
    assert score(GOLD, "</think>" + answer([[1980.0, 22.2], [1981.0, 20.8]]), mode="faithful") == 0.0
    assert score(GOLD, answer([[1980.0, 22.2], [1981.0, 20.8]])) == 1.0
    assert score(GOLD, "</think>" + answer(GOLD_ROWS), mode="faithful") == 1.0


# --- warm-up tier constructions, re-checked against their contexts ---------------------------


def _warm(name: str) -> tuple:
    from construction_fixtures import construction_rows

    rows = construction_rows("structured_extraction", name)
    assert len(rows) >= 4, name
    return rows


def _data(row: dict) -> list:
    return json.loads(row["reward_model"]["ground_truth"]["golden_label"])["data"]


def test_row_to_json_gold_is_the_whole_named_row() -> None:
    from construction_fixtures import context_of, gold_score, quoted, table_in

    for r in _warm("row_to_json"):
        title, key_column, key = quoted(r["extra_info"]["question"])
        header, body = table_in(context_of(r), title)
        assert _data(r) == [b for b in body if b[header.index(key_column)] == key]
        fenced = "```json\n" + json.dumps({"data": _data(r)}) + "\n```"
        assert gold_score(r, f"<answer>{fenced}</answer>") == 1.0
        assert gold_score(r, f'<answer>{{"data": [["{key}"]]}}</answer>') == 0.0


def test_two_columns_json_gold_pairs_each_named_key_with_its_value() -> None:
    from construction_fixtures import context_of, quoted, table_in

    for r in _warm("two_columns_json"):
        # Quoted: the title, the two column names, the key column again, then the keys asked.
        title, key_column, column, _, *keys = quoted(r["extra_info"]["question"])
        header, body = table_in(context_of(r), title)
        by_key = {b[header.index(key_column)]: b[header.index(column)] for b in body}
        assert _data(r) == [[k, by_key[k]] for k in keys] and len(body) >= 4 * len(keys)


def test_section_first_words_gold_pairs_each_heading_with_its_first_word() -> None:
    from construction_fixtures import context_of, gold_score, section_headings

    for r in _warm("section_first_words"):
        context = context_of(r)
        titles = section_headings(context)
        assert [t for t, _ in _data(r)] == titles
        for title, word in _data(r):
            body = context[context.index(f"# {title}\n\n") + len(title) + 4:]
            assert body.startswith(word)
        assert gold_score(r, json.dumps({"data": _data(r)})) == 1.0
