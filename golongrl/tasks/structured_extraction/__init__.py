"""Structured extraction: the rows of a table that satisfy a condition, as JSON (IoU)."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

from golongrl.rewards import text as T
from golongrl.rewards.ground_truth import Gold, gold_table
from golongrl.rewards.metrics import informedness, multiset_iou
from golongrl.tasks.base import REASON_PARSE, Result, ScoreOptions, Task, prompt_tables, row_prompt, row_question

_ANSWER_BLOCK = re.compile(r"<answer>(.*?)(?:</answer>|\Z)", re.S)
_FENCE = re.compile(r"^```[A-Za-z]*\s*\n?(.*?)\n?```$", re.S)
_QUOTED = re.compile(r'"([^"\n]{1,80})"')


def cell_text(value: Any) -> str:
    """Canonical text of a table cell: numbers (or numeric strings) by value, so 1, 1.0 and
    "1" agree; other strings whitespace-collapsed; nested values as compact JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        number: Any = value
    elif isinstance(value, str):
        stripped = T.fix_space(value)
        try:
            number = float(stripped.replace(",", "")) if stripped else None
        except ValueError:
            return stripped
        if number is None:
            return ""
    elif value is None:
        return "null"
    else:
        return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    if isinstance(number, float) and number.is_integer() and abs(number) < 2**63:
        number = int(number)
    return repr(number)


def row_key(row: Any) -> tuple[str, ...]:
    """A table row as a tuple of canonical cells (a non-list row is a one-cell row)."""
    return tuple(cell_text(v) for v in row) if isinstance(row, list) else (cell_text(row),)


def _reference_key(row: Any) -> Any:
    return tuple(str(v) for v in row) if isinstance(row, list) else str(row)


def answer_rows(answer: str) -> list[Any] | None:
    """The ``data`` list of the JSON answer: the last ``<answer>`` block (or the whole text),
    a Markdown code fence around the JSON removed; ``None`` if there is none."""
    blocks = _ANSWER_BLOCK.findall(answer)
    region = (blocks[-1] if blocks else answer).strip()
    fence = _FENCE.match(region)
    if fence:
        region = fence.group(1).strip()
    try:
        parsed = json.loads(region)
    except (ValueError, RecursionError):
        return None
    rows = parsed.get("data") if isinstance(parsed, dict) else None
    return rows if isinstance(rows, list) else None


class StructuredExtraction(Task):
    """Hardened: JSON from the last ``<answer>`` block (a ```json fence inside it is fine),
    cells compared by value (1, 1.0 and "1" agree); multiset IoU of rows, or - when the row
    lists every candidate row (``extra_info.candidates``, each a JSON list) - informedness over
    them, so dumping the whole table earns 0."""

    name = "structured_extraction"
    title = "Structured extraction"
    metric = "iou"
    data_source = "multitableqa_pretraining"
    ground_truth_field = "golden_label"
    ability = "multi-table structured extraction"
    answer_format = '<answer>{"data": [[...], ...]}</answer>'
    instruction = ('Reply with <answer>{"data": [[...], ...]}</answer>: one inner list per row, '
                   "in table order, each value a string exactly as written in the table.")
    chance = 0.0

    def parse_gold(self, ground_truth: Any, extra_info: Mapping[str, Any] | None = None, *,
                   data_source: str | None = None, strict: bool = True) -> Gold:
        if strict:
            return self._with_row(gold_table(ground_truth, self.name), extra_info, data_source)
        # The reference reads golden_label itself and scores 0 against a gold it cannot parse
        # (invalid JSON, not {"data": [...]}, or a list ground truth, which it does not unwrap).
        rows: tuple[Any, ...] = ()
        label = ""
        if isinstance(ground_truth, Mapping) and "golden_label" in ground_truth:
            label = ground_truth["golden_label"]
            try:
                parsed = json.loads(label)
            except (ValueError, TypeError):
                parsed = None
            if isinstance(parsed, dict) and isinstance(parsed.get("data"), list):
                rows = tuple(parsed["data"])
        return self._with_row(Gold(label=label if isinstance(label, str) else "", rows=rows),
                              extra_info, data_source)

    def faithful(self, gold: Gold, response: str, options: ScoreOptions) -> Result:
        region = response.strip()
        if "<answer>" in response:  # the first block, wherever it is (quirk 8)
            region = response.partition("<answer>")[2].partition("</answer>")[0].strip()
        try:
            pred = json.loads(region).get("data", [])
        except (json.JSONDecodeError, AttributeError, TypeError):
            pred = []
        if not isinstance(pred, list):
            return 0.0, REASON_PARSE
        return multiset_iou([_reference_key(r) for r in gold.rows], [_reference_key(r) for r in pred]), None

    def hardened(self, gold: Gold, answer: str, options: ScoreOptions) -> Result:
        pred = answer_rows(answer)
        if pred is None:
            return 0.0, REASON_PARSE
        gold_keys = [row_key(r) for r in gold.rows]
        pred_keys = [row_key(r) for r in pred]
        universe = self._universe(gold)
        if universe is not None and set(gold_keys) <= set(universe):
            if max(Counter(pred_keys).values(), default=1) > max(Counter(gold_keys).values(), default=1):
                return 0.0, None  # a row repeated more often than the gold has it
            return informedness([repr(k) for k in gold_keys], [repr(k) for k in pred_keys],
                                [repr(k) for k in universe]), None
        return multiset_iou(gold_keys, pred_keys), None

    @staticmethod
    def _universe(gold: Gold) -> list[tuple[str, ...]] | None:
        if not gold.candidates:
            return None
        out = []
        for candidate in gold.candidates:
            try:
                row = json.loads(candidate)
            except ValueError:
                return None
            out.append(row_key(row))
        return out

    def reference_response(self, gold: Gold) -> str:
        return f'<answer>{json.dumps({"data": list(gold.rows)}, ensure_ascii=False)}</answer>'

    def baselines(self, row: Mapping[str, Any]) -> dict[str, str]:
        question = row_question(row)
        out = {"echo_question": question, "empty_table": '<answer>{"data": []}</answer>'}
        wanted = _QUOTED.findall(question)
        for header, body in prompt_tables(row_prompt(row)):
            cols = [header.index(w) for w in wanted if w in header]
            if not cols:
                continue
            projected = [[r[c] for c in cols] for r in body if len(r) == len(header)]
            out["all_table_rows"] = self._as_answer(projected)
            out["first_table_row"] = self._as_answer(projected[:1])
            out["first_half_of_rows"] = self._as_answer(projected[: max(1, len(projected) // 2)])
            break
        return out

    @staticmethod
    def _as_answer(rows: list[list[str]]) -> str:
        return f'<answer>{json.dumps({"data": rows}, ensure_ascii=False)}</answer>'


TASK = StructuredExtraction()
