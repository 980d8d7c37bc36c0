"""Shared behaviour of the list-answer tasks scored by a LongBench-Pro metric (spec §3.2-§3.3).

Faithful mode reads the whole response, thinking included, through the reference's
normalisation (answer area after the last ``[Answer]``/``[答案]``, lowercased, split on
``\\n``, blank lines kept); hardened mode reads only the text after ``</think>``, drops list
markers, markdown and quotes from each line (:func:`golongrl.rewards.text.answer_items`), and
leaves the metric to the task.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from golongrl.rewards import text as T
from golongrl.tasks.base import (
    REASON_PARSE,
    Gold,
    Result,
    ScoreOptions,
    Task,
    distinct,
    parse_candidates,
)


class ListTask(Task):
    """A task whose gold is ``doc_ids`` and whose answer is one item per line after ``[Answer]``."""

    data_source = "longbench_pro"
    ground_truth_field = "doc_ids"
    #: the reference metric on (normalised gold, faithful prediction lines)
    faithful_metric: Callable[[list[str], list[str]], float]

    def faithful(self, gold: Gold, response: str, options: ScoreOptions) -> Result:
        if not response.strip():
            return 0.0, REASON_PARSE
        if not gold.items:  # the reference returns 0 for an empty gold list
            return 0.0, None
        return self.faithful_metric(T.normalize_gold(list(gold.items)), T.faithful_lines(response)), None

    def universe(self, gold: Gold) -> list[str] | None:
        """The normalised candidates - ``extra_info.candidates``, else those the question lists
        (:func:`golongrl.tasks.base.parse_candidates`) - when they contain every gold item;
        else ``None`` (the metric then falls back to one that needs no candidates)."""
        candidates = list(gold.candidates) or parse_candidates(gold.question)
        if not candidates:
            return None
        universe = distinct([T.normalize_item(c) for c in candidates])
        if not {T.normalize_item(g) for g in gold.items} <= set(universe):
            return None
        return universe

    def baselines(self, row: Mapping[str, Any]) -> dict[str, str]:
        out = super().baselines(row)
        candidates = self.candidates(row)
        if candidates:
            out["all_candidates_in_order"] = "[Answer]\n" + "\n".join(candidates)
            out["all_candidates_reversed"] = "[Answer]\n" + "\n".join(reversed(candidates))
            out["first_candidate"] = "[Answer]\n" + candidates[0]
        return out


def as_answer(lines: Sequence[str]) -> str:
    """A list answer in the requested format."""
    return "[Answer]\n" + "\n".join(lines)


__all__ = ["ListTask", "as_answer"]
