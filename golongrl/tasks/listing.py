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


class OrderingTask(ListTask):
    """A list task whose answer must order a known set of items (ranking, sequencing)."""

    def ordering_answer(self, gold: Gold, answer: str) -> tuple[list[str], list[str], list[str]] | None:
        """``(gold items, universe, answer items)``, all normalised: the universe is the
        candidates (:meth:`ListTask.universe`), else the gold's items; the answer items are read
        by :func:`ordering_items`. ``None`` when the answer lists no item (a parse failure)."""
        gold_items = distinct([T.normalize_item(g) for g in gold.items])
        universe = self.universe(gold) or gold_items
        items = ordering_items(answer, universe)
        if not items:
            return None
        return gold_items, universe, items


def ordering_items(answer: str, universe: list[str]) -> list[str]:
    """The answer's cleaned lines; with a numeric universe (excerpt numbers) a line such as
    ``Excerpt 3`` or ``#3`` is read as the one number it holds."""
    items = T.answer_items(answer)
    if universe and all(u.isdigit() for u in universe):
        out = []
        for item in items:
            numbers = [w for w in item.replace("#", " ").split() if w.strip("()[].,:").isdigit()]
            out.append(numbers[0].strip("()[].,:").lstrip("0") or "0" if len(numbers) == 1 else item)
        return out
    return items


def permutation_of(items: list[str], universe: list[str], length: int) -> bool:
    """Whether ``items`` are ``length`` distinct members of ``universe``."""
    return len(items) == length and len(set(items)) == length and set(items) <= set(universe)


def as_answer(lines: Sequence[str]) -> str:
    """A list answer in the requested format."""
    return "[Answer]\n" + "\n".join(lines)


__all__ = ["ListTask", "OrderingTask", "as_answer", "ordering_items", "permutation_of"]
