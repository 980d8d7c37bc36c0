"""Sequence ordering: put shuffled items back in their order (pairwise accuracy)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from golongrl.rewards.metrics import pairwise_faithful, pairwise_hardened, rescale_above
from golongrl.tasks.base import REASON_PARSE, Gold, Result, ScoreOptions, distinct, row_question
from golongrl.tasks.listing import OrderingTask, as_answer, permutation_of

_NUMBERED = re.compile(r"^\s*(\d{1,3})[.):]\s+\S", re.M)


class SequenceOrdering(OrderingTask):
    """Hardened: the answer must list every item (the candidates, else the gold's items)
    exactly once - ``3``, ``Excerpt 3``, ``(3)``, ``- 3`` all read as item 3; the fraction of
    gold pairs in order is rescaled above the 1/2 a random order earns,
    ``max(0, 2 * pairwise - 1)`` (Kendall's tau, clipped), so ``1..n``, ``n..1`` and any blind
    order earn 0 in expectation."""

    name = "sequence_ordering"
    title = "Sequence ordering"
    metric = "pairwise"
    ability = "sequence reconstruction and ordering"
    lbp_metric = "Pairwise_Accuracy"
    answer_format = "[Answer] then items in order, one per line"
    instruction = "Write [Answer] on its own line, then the excerpt numbers in order, one per line."
    chance = 0.0
    faithful_metric = staticmethod(pairwise_faithful)

    def hardened(self, gold: Gold, answer: str, options: ScoreOptions) -> Result:
        read = self.ordering_answer(gold, answer)
        if read is None:
            return 0.0, REASON_PARSE
        gold_items, universe, items = read
        if len(gold_items) < 2 or not permutation_of(items, universe, len(universe)):
            return 0.0, None
        return rescale_above(pairwise_hardened(gold_items, items), 0.5), None

    def baselines(self, row: Mapping[str, Any]) -> dict[str, str]:
        question = row_question(row)
        out = {"echo_question": as_answer([question])}
        # Items are answered by their numbers when the question numbers them, whatever
        # extra_info.candidates holds (the excerpts' texts or their numbers).
        order = distinct(_NUMBERED.findall(question)) or self.candidates(row)
        if order:
            out["identity_order"] = as_answer(order)
            out["reversed_order"] = as_answer(list(reversed(order)))
            out["first_item_only"] = as_answer(order[:1])
            out["middle_out"] = as_answer(order[len(order) // 2 :] + order[: len(order) // 2])
        return out


TASK = SequenceOrdering()
