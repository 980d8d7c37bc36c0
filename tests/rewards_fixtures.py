"""Row builders shared by the reward tests: one GoLongRL-shaped row per task type."""

from __future__ import annotations

import json
from typing import Any

from golongrl.tasks import LBP_REWARD_MODES

#: One LongBench-Pro reward_mode per LBP-routed task.
LBP_MODE = {
    "comprehension": "T3.1 Multi-Doc Integration QA",
    "exhaustive_retrieval": "T5.1 Full-Sentence Citation Alignment",
    "structured_matching": "T6.1 Large-Scale Document Clustering",
    "graded_ranking": "T1.1 Global Cohesive Retrieval",
    "sequence_ordering": "T2.1 Global Timeline Reconstruction",
    "summarization": "T4.1 Global-Coverage Constrained Summary",
}
assert all(mode in LBP_REWARD_MODES for mode in LBP_MODE.values())


def lbp(task: str, items: list[str], language: str = "English") -> dict[str, Any]:
    """Fields of a longbench_pro row for ``task`` with gold ``items``."""
    return {
        "data_source": "longbench_pro",
        "ground_truth": {"doc_ids": items, "golden_label": "", "summary": language},
        "extra_info": {"reward_mode": LBP_MODE[task]},
    }


def labelled(data_source: str, label: str) -> dict[str, Any]:
    return {
        "data_source": data_source,
        "ground_truth": {"golden_label": label, "doc_ids": [], "summary": ""},
        "extra_info": {},
    }


def table(rows: list[list[Any]]) -> dict[str, Any]:
    return labelled("multitableqa_pretraining", json.dumps({"data": rows}))


GOLD_ITEMS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]
GOLD_SUMMARY = (
    "The committee approved the new budget after a long debate. Funding for schools rises by "
    "ten percent. Road repairs are postponed until next spring."
)

#: One representative row per task type (fields for compute_score minus solution_str).
ROWS: dict[str, dict[str, Any]] = {
    "precise_retrieval": labelled("EM", "Paris"),
    "comprehension": labelled("selection", "B"),
    "exhaustive_retrieval": lbp("exhaustive_retrieval", GOLD_ITEMS[:4]),
    "numerical_reasoning": labelled("math_longcot_math_verify", "42"),
    "structured_extraction": table([["a", 1], ["b", 2]]),
    "structured_matching": lbp("structured_matching", GOLD_ITEMS[:3]),
    "graded_ranking": lbp("graded_ranking", GOLD_ITEMS[:4]),
    "sequence_ordering": lbp("sequence_ordering", GOLD_ITEMS),
    "summarization": lbp("summarization", [GOLD_SUMMARY]),
}

#: A correct answer (the text after </think>) for each row above.
CORRECT: dict[str, str] = {
    "precise_retrieval": "Paris",
    "comprehension": "The correct answer is (B)",
    "exhaustive_retrieval": "[Answer]\n" + "\n".join(GOLD_ITEMS[:4]),
    "numerical_reasoning": "The total is \\boxed{42}.",
    "structured_extraction": '<answer>{"data": [["a", 1], ["b", 2]]}</answer>',
    "structured_matching": "[Answer]\n" + "\n".join(GOLD_ITEMS[:3]),
    "graded_ranking": "[Answer]\n" + "\n".join(GOLD_ITEMS[:4]),
    "sequence_ordering": "[Answer]\n" + "\n".join(GOLD_ITEMS),
    "summarization": "[Answer] " + GOLD_SUMMARY,
}


def think(answer: str, reasoning: str = "Let me work through the document.") -> str:
    return f"<think>{reasoning}</think>\n{answer}"
