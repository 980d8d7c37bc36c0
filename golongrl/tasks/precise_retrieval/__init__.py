"""Precise retrieval: copy one string from the context, scored by exact match (EM)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from golongrl.rewards import text as T
from golongrl.tasks.base import REASON_PARSE, Gold, Result, ScoreOptions, Task, row_question

_QUOTED = re.compile(r'"([^"\n]{1,200})"')
_ANSWER_PREFIX = re.compile(
    r"^\**(?:(?i:(?:final\s+)?answer)\**\s*[:：]\**"
    r"|(?i:the\s+(?:correct\s+|final\s+)?answer(?:\s+to\s+the\s+question)?\s+is)(?:\s*[:：]\**|\**\s*[:：]\**)?)\s*")


class PreciseRetrieval(Task):
    """EM on the text after ``</think>``.

    Hardened accepts the answer with the decoration an instruction-tuned model adds around it
    (surrounding markdown emphasis, backticks, quotes, brackets, trailing punctuation, an
    ``[Answer]`` marker, an ``Answer:`` or ``The answer (to the question) is`` prefix), compared case-sensitively; no substring or partial match, so
    listing several guesses earns nothing.
    """

    name = "precise_retrieval"
    title = "Precise retrieval"
    metric = "em"
    binary = True
    data_source = "EM"
    ground_truth_field = "golden_label"
    ability = "precise long-range information retrieval"
    answer_format = "after </think>, only the answer string"
    instruction = "Reply with only the answer, exactly as it is written in the text, and nothing else."
    chance = 0.0

    def faithful(self, gold: Gold, response: str, options: ScoreOptions) -> Result:
        return (1.0 if gold.label.strip() == T.after_think(response).strip() else 0.0), None

    def hardened(self, gold: Gold, answer: str, options: ScoreOptions) -> Result:
        body = _ANSWER_PREFIX.sub("", T.hardened_answer_area(answer), count=1)
        if not body:
            return 0.0, REASON_PARSE
        label = gold.label.strip()
        if body == label or T.strip_decoration(body) == T.strip_decoration(label):
            return 1.0, None
        return 0.0, None

    def reference_response(self, gold: Gold) -> str:
        return gold.label.strip()

    def baselines(self, row: Mapping[str, Any]) -> dict[str, str]:
        question = row_question(row)
        out = {"echo_question": question}
        quoted = _QUOTED.findall(question)
        if quoted:
            out["quoted_phrase"] = quoted[0]
            out["last_quoted_word"] = quoted[0].split()[-1] if quoted[0].split() else quoted[0]
        words = re.findall(r"\w+", question)
        if words:
            out["last_question_word"] = words[-1]
        return out


TASK = PreciseRetrieval()
