"""Exhaustive retrieval: list every item that satisfies a condition (set F1 in the reference)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from golongrl.rewards import text as T
from golongrl.rewards.metrics import informedness, set_f1
from golongrl.tasks.base import REASON_PARSE, Gold, Result, ScoreOptions, key_column, prompt_tables, row_prompt
from golongrl.tasks.listing import ListTask, as_answer, candidate_items


class ExhaustiveRetrieval(ListTask):
    """Hardened: when the row lists the candidates (``extra_info.candidates`` or a
    ``Candidates:`` line), informedness (recall minus false-positive rate over the candidates),
    so listing every candidate, none, or any blind subset earns 0; otherwise set F1 over the
    cleaned lines.  Lines may carry list markers, markdown and quotes; with candidates, a line
    naming several of them (``a, b and c``) counts as those candidates."""

    name = "exhaustive_retrieval"
    title = "Exhaustive retrieval"
    metric = "f1"
    ability = "high-recall exhaustive retrieval and verification"
    lbp_metric = "F1_Score"
    answer_format = "[Answer] then one item per line"
    instruction = "Write [Answer] on its own line, then every item, one per line."
    chance = 0.0
    faithful_metric = staticmethod(set_f1)

    def hardened(self, gold: Gold, answer: str, options: ScoreOptions) -> Result:
        items = T.answer_items(answer)
        if not items:
            return 0.0, REASON_PARSE
        gold_items = [T.normalize_item(g) for g in gold.items]
        universe = self.universe(gold)
        if universe is None:
            return set_f1(gold_items, items), None
        return informedness(gold_items, candidate_items(items, universe), universe), None

    def baselines(self, row: Mapping[str, Any]) -> dict[str, str]:
        out = super().baselines(row)
        candidates = self.candidates(row)
        if candidates:
            out["first_half_of_candidates"] = as_answer(candidates[: max(1, len(candidates) // 2)])
        for header, rows in prompt_tables(row_prompt(row))[:1]:
            col = key_column(rows)
            out["table_key_column"] = as_answer([r[col] for r in rows if col < len(r)])
        return out


TASK = ExhaustiveRetrieval()
