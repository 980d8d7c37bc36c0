"""Shared behaviour of the list-answer tasks scored by a LongBench-Pro metric (spec §3.2-§3.3).

Faithful mode reads the whole response, thinking included, through the reference's
normalisation (answer area after the last ``[Answer]``/``[答案]``, lowercased, split on
``\\n``, blank lines kept); hardened mode reads only the text after ``</think>``, drops list
markers, markdown and quotes from each line (:func:`golongrl.rewards.text.answer_items`), and
leaves the metric to the task.
"""

from __future__ import annotations

import re
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
    ``Excerpt 3`` or ``#3`` is read as the one number it holds. A line that is no candidate
    itself but names several (``3, 1, 2``; ``The first two are "forth" and "fingers".``) is
    read as the candidates it names, in the order it names them (:func:`named_candidates`)."""
    items = candidate_items(T.answer_items(answer), universe)
    if universe and all(u.isdigit() for u in universe):
        out = []
        for item in items:
            numbers = [w for w in item.replace("#", " ").split() if w.strip("()[].,:").isdigit()]
            out.append(numbers[0].strip("()[].,:").lstrip("0") or "0" if len(numbers) == 1 else item)
        return out
    return items


def named_candidates(line: str, universe: Sequence[str]) -> list[str]:
    """The members of ``universe`` (normalised items) that ``line`` names as whole words, in
    the order they occur; where two overlap the longer wins. Reading a one-line answer this way
    opens no hole: it yields what the same names one per line would, and every hardened list
    metric already scores that (all candidates, the given order, a reversal) at or below
    chance."""
    found: list[tuple[int, int, str]] = []
    for candidate in sorted(set(universe), key=len, reverse=True):
        if not candidate:
            continue
        for match in re.finditer(r"(?<!\w)" + re.escape(candidate) + r"(?!\w)", line):
            span = (match.start(), match.end())
            if all(span[1] <= a or span[0] >= b for a, b, _ in found):
                found.append((span[0], span[1], candidate))
    return [c for _, _, c in sorted(found)]


#: Words a one-line answer may put around the candidates it names ("The order is", "and").
MAX_GLUE_WORDS = 8


def candidate_items(items: list[str], universe: Sequence[str] | None) -> list[str]:
    """``items`` with every line that is not a candidate but names two or more, with at most
    :data:`MAX_GLUE_WORDS` other words, replaced by the candidates it names
    (:func:`named_candidates`); unchanged without a universe. The glue limit keeps an echoed
    question (a sentence that happens to list the candidates) from reading as an answer."""
    if not universe:
        return items
    members = set(universe)
    out: list[str] = []
    for item in items:
        named = [] if item in members else named_candidates(item, universe)
        if len(named) >= 2:
            glue = item
            for candidate in sorted(set(named), key=len, reverse=True):
                glue = re.sub(r"(?<!\w)" + re.escape(candidate) + r"(?!\w)", " ", glue)
            if len(re.findall(r"\w+", glue)) <= MAX_GLUE_WORDS:
                out.extend(named)
                continue
        out.append(item)
    return out


def permutation_of(items: list[str], universe: list[str], length: int) -> bool:
    """Whether ``items`` are ``length`` distinct members of ``universe``."""
    return len(items) == length and len(set(items)) == length and set(items) <= set(universe)


def as_answer(lines: Sequence[str]) -> str:
    """A list answer in the requested format."""
    return "[Answer]\n" + "\n".join(lines)


__all__ = ["ListTask", "OrderingTask", "as_answer", "candidate_items", "named_candidates", "ordering_items",
           "permutation_of"]
