"""Graded ranking: order the candidates by a graded quantity (NDCG in the reference)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from golongrl.rewards import text as T
from golongrl.rewards.metrics import expected_random_ndcg, ndcg_linear, rescale_above
from golongrl.tasks.base import REASON_PARSE, Gold, Result, ScoreOptions, distinct
from golongrl.tasks.listing import ListTask, as_answer


def ranking_items(answer: str, universe: list[str]) -> list[str]:
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


class GradedRanking(ListTask):
    """Hardened: the answer must rank exactly the items to rank - the candidates when the row
    lists them (the top |gold| of them when it asks for fewer), else the gold's items - each
    once; NDCG (linear gains, as the reference) is then rescaled above the NDCG a random
    ranking earns in expectation: ``max(0, (ndcg - E) / (1 - E))``.  The given order, its
    reverse and any blind order earn 0 in expectation; a superset or a partial list earns 0."""

    name = "graded_ranking"
    title = "Graded ranking"
    metric = "ndcg"
    ability = "dimension-quantified retrieval and graded ranking"
    lbp_metric = "NDCG"
    answer_format = "[Answer] then ranked items, most relevant first, one per line"
    instruction = "Write [Answer] on its own line, then the items ranked, most first, one per line."
    chance = 0.0
    faithful_metric = staticmethod(ndcg_linear)

    def hardened(self, gold: Gold, answer: str, options: ScoreOptions) -> Result:
        gold_items = distinct([T.normalize_item(g) for g in gold.items])
        universe = self.universe(gold) or gold_items
        items = ranking_items(answer, universe)
        if not items:
            return 0.0, REASON_PARSE
        length = len(gold_items) if len(universe) > len(gold_items) else len(universe)
        if not permutation_of(items, universe, length):
            return 0.0, None
        ndcg = ndcg_linear(gold_items, items)
        return rescale_above(ndcg, expected_random_ndcg(gold_items, len(universe))), None

    def baselines(self, row: Mapping[str, Any]) -> dict[str, str]:
        out = super().baselines(row)
        candidates = self.candidates(row)
        if candidates:
            out["candidates_sorted"] = as_answer(sorted(candidates))
        return out


TASK = GradedRanking()
