"""Graded ranking: order the candidates by a graded quantity (NDCG in the reference)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from golongrl.rewards.metrics import expected_random_ndcg, ndcg_linear, rescale_above
from golongrl.tasks.base import REASON_PARSE, Gold, Result, ScoreOptions
from golongrl.tasks.listing import OrderingTask, as_answer, permutation_of


class GradedRanking(OrderingTask):
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
        read = self.ordering_answer(gold, answer)
        if read is None:
            return 0.0, REASON_PARSE
        gold_items, universe, items = read
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
