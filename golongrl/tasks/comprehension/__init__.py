"""Comprehension: multiple choice on ``selection`` rows, first-line accuracy on LongBench-Pro
rows (T3.x, T11.x)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from golongrl.rewards import text as T
from golongrl.tasks.base import REASON_PARSE, Gold, Result, ScoreOptions, Task, row_question

LETTERS = "ABCD"

_MC_PAREN = re.compile(r"The correct answer is \(([A-D])\)")
_MC_BARE = re.compile(r"The correct answer is ([A-D])")
# Hardened: every way of stating the letter an instruction-tuned model uses; the phrase is
# case-insensitive, the letter is not (so "the correct answer is a ..." is no "A").
_STATEMENT = re.compile(
    r"(?:(?i:the\s+(?:correct\s+|final\s+)?answer\s+is)|\[(?i:answer)\]|\[答案\]|答案(?:是|为)?"
    r"|(?<![\w\]])(?i:(?:final\s+)?answer)(?=\s*[:：]))"
    r"\s*[:：]?\s*(?:(?i:option)\s+)?[(（\[]?([A-D])(?![A-Za-z0-9])"
)
#: A reply that is nothing but one option: ``C``, ``(C)``, ``C.``, ``[C]``.
_BARE_LETTER = re.compile(r"^\s*[(（\[]?([A-D])[)）\]]?[.。]?\s*$")
_OPTION_LINE = re.compile(r"^\s*\(([A-D])\)\s*(.+)$", re.M)


def _mc_first(text: str) -> str | None:
    text = text.replace("*", "")
    match = _MC_PAREN.search(text) or _MC_BARE.search(text)
    return match.group(1) if match else None


class Comprehension(Task):
    """Multiple choice (A-D) in hardened mode: every answer statement in the text after
    ``</think>`` must name the same letter (so listing several letters scores 0); accepted
    statements: ``The correct answer is (A)`` / ``is: (A)`` / ``is A.``, ``[Answer]: A``,
    ``**[Answer]** (A)``, ``Answer: (A)``, ``[答案] A``, ``答案是 A``.  A blind letter earns 1/4."""

    name = "comprehension"
    title = "Comprehension"
    metric = "accuracy"
    binary = True
    data_source = "selection"
    ground_truth_field = "golden_label"
    ability = "evidence-grounded comprehension and reasoning"
    lbp_metric = "Accuracy"
    answer_format = "'The correct answer is (X)' with X in A-D"
    instruction = "End your reply with the line: The correct answer is (X), where X is A, B, C or D."
    chance = 0.25

    def _is_lbp(self, data_source: str | None, extra: Mapping[str, Any]) -> bool:
        """LongBench-Pro route: the row's ``data_source`` says so; without one, its
        ``reward_mode`` naming one of the 25 LongBench-Pro tasks does."""
        if data_source is not None:
            return data_source == "longbench_pro"
        from golongrl.tasks import LBP_REWARD_MODES

        return extra.get("reward_mode") in LBP_REWARD_MODES

    def parse_gold(self, ground_truth: Any, extra_info: Mapping[str, Any] | None = None, *,
                   data_source: str | None = None, strict: bool = True) -> Gold:
        extra = extra_info if isinstance(extra_info, Mapping) else {}
        if self._is_lbp(data_source, extra):
            gold = self._items_gold(ground_truth, strict)
        else:
            gold = self._label_gold(ground_truth, strict)
        return self._with_row(gold, extra_info, data_source)

    def faithful(self, gold: Gold, response: str, options: ScoreOptions) -> Result:
        if gold.lbp:
            if not response.strip():
                return 0.0, REASON_PARSE
            if not gold.items:
                return 0.0, None
            gold_lines, pred = T.normalize_gold(list(gold.items)), T.faithful_lines(response)
            return (1.0 if pred and gold_lines[0] == pred[0] else 0.0), None
        extracted = _mc_first(T.after_think(response))
        if extracted is None:
            return 0.0, REASON_PARSE
        return (1.0 if extracted in (gold.label, _mc_first(gold.label)) else 0.0), None

    def hardened(self, gold: Gold, answer: str, options: ScoreOptions) -> Result:
        if gold.lbp:
            items = T.answer_items(answer)
            if not items:
                return 0.0, REASON_PARSE
            return (1.0 if items[0] == T.normalize_item(gold.items[0]) else 0.0), None
        letters = {m.group(1) for m in _STATEMENT.finditer(answer.replace("*", ""))}
        bare = _BARE_LETTER.match(answer.replace("*", ""))
        if not letters and bare:
            letters = {bare.group(1)}
        if len(letters) != 1:
            return 0.0, REASON_PARSE
        return (1.0 if letters.pop() in (gold.label.strip(), _mc_first(gold.label)) else 0.0), None

    def reference_response(self, gold: Gold) -> str:
        if gold.lbp:
            return "[Answer]\n" + gold.items[0]
        letter = _mc_first(gold.label) or gold.label.strip()
        return f"The correct answer is ({letter})"

    def baselines(self, row: Mapping[str, Any]) -> dict[str, str]:
        question = row_question(row)
        out = {"echo_question": question}
        for letter in LETTERS:
            out[f"constant_{letter}"] = f"The correct answer is ({letter})"
        out["every_letter"] = "\n".join(f"The correct answer is ({x})" for x in LETTERS)
        options = _OPTION_LINE.findall(question)
        if options:
            longest = max(options, key=lambda o: len(o[1]))[0]
            out["longest_option"] = f"The correct answer is ({longest})"
        return out


TASK = Comprehension()
