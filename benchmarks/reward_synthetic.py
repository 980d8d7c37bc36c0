"""Synthetic GoLongRL-style scoring requests (for the reward benchmark and tests).

A step mixes the nine task types roughly as GoLongRL's data does (spec §2.2: T1-T4 above
90 %, the four rarest types below 4 %), with thinking-model responses: a ``<think>`` block of
Zipf-distributed words in short sentences (up to ``max_tokens`` words), ``</think>``, and an
answer in the task's format that is right, partly right or wrong.  With ``group`` > 1 the
step is GRPO-shaped: each prompt's row (the very same ``ground_truth`` and ``extra_info``
objects, as verl and the trainer pass them) is shared by ``group`` consecutive responses.
"""

from __future__ import annotations

import json
import math
import random
from typing import Any

from golongrl.tasks import LBP_REWARD_MODES

#: (task, route, share of a step).  route "lbp" = data_source longbench_pro.
MIX: tuple[tuple[str, str, float], ...] = (
    ("precise_retrieval", "EM", 0.34),
    ("comprehension", "selection", 0.24),
    ("comprehension", "lbp", 0.05),
    ("exhaustive_retrieval", "lbp", 0.16),
    ("numerical_reasoning", "math_longcot_math_verify", 0.12),
    ("structured_extraction", "multitableqa_pretraining", 0.055),
    ("structured_matching", "lbp", 0.01),
    ("graded_ranking", "lbp", 0.01),
    ("sequence_ordering", "lbp", 0.01),
    ("summarization", "lbp", 0.005),
)

_LBP_MODE_FOR = {}
for _mode, _metric in LBP_REWARD_MODES.items():
    _LBP_MODE_FOR.setdefault(
        {
            "Accuracy": "comprehension",
            "F1_Score": "exhaustive_retrieval",
            "SubEM": "structured_matching",
            "NDCG": "graded_ranking",
            "Pairwise_Accuracy": "sequence_ordering",
            "Summary": "summarization",
        }[_metric],
        _mode,
    )


class _Words:
    def __init__(self, rng: random.Random, size: int = 5000) -> None:
        self.rng = rng
        letters = "abcdefghijklmnopqrstuvwxyz"
        self.vocab = [
            "".join(rng.choice(letters) for _ in range(rng.randint(2, 9))) for _ in range(size)
        ]
        self.weights = [1.0 / (i + 1) for i in range(size)]

    def words(self, n: int) -> list[str]:
        return self.rng.choices(self.vocab, self.weights, k=n)

    def prose(self, n: int) -> str:
        """``n`` words in sentences of 5-30 words ending with '.'."""
        words = self.words(n)
        out, i = [], 0
        while i < len(words):
            k = self.rng.randint(5, 30)
            out.append(" ".join(words[i : i + k]) + ".")
            i += k
        return " ".join(out)


def _thinking(w: _Words, rng: random.Random, max_tokens: int) -> str:
    """Log-uniform length between 128 words and ``max_tokens``."""
    n = int(round(2 ** rng.uniform(7, max(7.0, math.log2(max(2, max_tokens))))))
    return w.prose(n)


def make_requests(n: int, *, seed: int = 0, max_tokens: int = 16_384, group: int = 1) -> list[dict[str, Any]]:
    """``n`` request dicts (``data_source``, ``solution_str``, ``ground_truth``, ``extra_info``);
    ``group`` consecutive ones share one prompt's row (``group=1``: every row its own)."""
    rng = random.Random(seed)
    w = _Words(rng)
    kinds = rng.choices(MIX, [m[2] for m in MIX], k=-(-n // max(1, group)))
    out: list[dict[str, Any]] = []
    for task, route, _ in kinds:
        first = _one(task, route, w, rng, max_tokens)
        out.append(first)
        out.extend(_one(task, route, w, rng, max_tokens, row=first) for _ in range(group - 1))
    return out[:n]


def _one(task: str, route: str, w: _Words, rng: random.Random, max_tokens: int,
         row: dict[str, Any] | None = None) -> dict[str, Any]:
    """One response and its row; ``row``: another response's, shared (its gold is answered)."""
    think = _thinking(w, rng, max_tokens)
    good = rng.random() < 0.5
    gt_of = row["ground_truth"] if row else None
    extra: dict[str, Any] = {"task_type": task}
    if route == "lbp":
        extra = {"reward_mode": _LBP_MODE_FOR[task]}
        if task == "summarization":
            gold_text = gt_of["doc_ids"][0] if gt_of else w.prose(rng.randint(150, 600))
            n_words = rng.randint(300, 2000)
            body = gold_text if good else ""
            answer = (body + " " + w.prose(n_words)).strip()
            gt = {"doc_ids": [gold_text], "golden_label": "", "summary": "English"}
        else:
            k = rng.randint(2, 12) if task != "comprehension" else 1
            if gt_of:
                k = len(gt_of["doc_ids"])
            items = list(gt_of["doc_ids"]) if gt_of else [" ".join(w.words(rng.randint(1, 4))) for _ in range(k)]
            chosen = list(items)
            if not good:
                rng.shuffle(chosen)
                chosen = chosen[: rng.randint(0, k)] + [" ".join(w.words(2))]
            answer = "[Answer]\n" + "\n".join(chosen)
            gt = {"doc_ids": items, "golden_label": "", "summary": "English"}
        return _request("longbench_pro", f"<think>{think}</think>\n{answer}", gt, extra, row)
    if task == "precise_retrieval":
        label = gt_of["golden_label"] if gt_of else " ".join(w.words(rng.randint(1, 3)))
        answer = label if good else " ".join(w.words(2))
        gt = {"golden_label": label, "doc_ids": [], "summary": ""}
    elif task == "comprehension":
        label = gt_of["golden_label"] if gt_of else rng.choice("ABCD")
        answer = f"The correct answer is ({label if good else rng.choice('ABCD')})"
        gt = {"golden_label": label, "doc_ids": [], "summary": ""}
    elif task == "numerical_reasoning":
        value = int(gt_of["golden_label"]) if gt_of else rng.randint(0, 10_000)
        shown = value if good else value + rng.randint(1, 9)
        answer = f"{w.prose(rng.randint(20, 200))} So the answer is \\boxed{{{shown}}}."
        gt = {"golden_label": str(value), "doc_ids": [], "summary": ""}
    else:
        rows = (json.loads(gt_of["golden_label"])["data"] if gt_of
                else [[w.words(1)[0], rng.randint(0, 999)] for _ in range(rng.randint(1, 8))])
        pred = rows if good else rows[: rng.randint(0, len(rows))] + [["x", 1]]
        answer = "<answer>" + json.dumps({"data": pred}) + "</answer>"
        gt = {"golden_label": json.dumps({"data": rows}), "doc_ids": [], "summary": ""}
    return _request(route, f"<think>{think}</think>\n{answer}", gt, extra, row)


def _request(data_source: str, solution: str, gt: Any, extra: dict[str, Any],
             row: dict[str, Any] | None) -> dict[str, Any]:
    if row:  # a sibling in a GRPO group refers to the group's row, as a trainer's batch does
        data_source, gt, extra = row["data_source"], row["ground_truth"], row["extra_info"]
    return {"data_source": data_source, "solution_str": solution, "ground_truth": gt, "extra_info": extra}
