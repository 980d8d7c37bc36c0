"""The reference scorer (spec §3) expressed directly on the reference's libraries.

This is the *baseline*, not the product: it calls pltrdy ``rouge`` (summary-level ROUGE-L, with
its recursive LCS), builds one ``pytrec_eval.RelevanceEvaluator`` per NDCG call and evaluates
pairwise accuracy over ``itertools.combinations``, as GoLongRL does.  The parity tests and
``benchmarks/rewards.py`` compare :mod:`golongrl.rewards` (faithful mode) against it on the same
inputs.  It needs the ``test`` extra (``rouge``, ``pytrec-eval-terrier``).

Errors the reference would swallow become 0.0; errors it would let escape (a ``RecursionError``
in ``json.loads``, an unknown data source) propagate, as they would in the reference.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from itertools import combinations
from typing import Any


def _answer_area(text: str) -> str:
    for marker in ("[Answer]", "[答案]"):
        if marker in text:
            return text[text.rfind(marker) + len(marker) :].strip()
    return text.strip()


def _norm(items: list[str]) -> list[str]:
    return [" ".join(a.lower().strip().split()) for a in items]


def _pred(text: str) -> list[str]:
    return [" ".join(p.strip().split()) for p in _answer_area(text).lower().split("\n")]


def _accuracy(g: list[str], p: list[str]) -> float:
    return 1.0 if g and p and g[0] == p[0] else 0.0


def _f1(g: list[str], p: list[str]) -> float:
    common = set(g) & set(p)
    if not common:
        return 0.0
    prec, rec = len(common) / len(set(p)), len(common) / len(set(g))
    return (2 * prec * rec) / (prec + rec)


def _subem(g: list[str], p: list[str]) -> float:
    if not g or not p:
        return 0.0
    score = 0.0
    for a in g:
        if a in p:
            score += 1.0
    return score / len(g)


def _ndcg(g: list[str], p: list[str]) -> float:
    import pytrec_eval

    if not g or not p:
        return 0.0
    k = len(g)
    qrels = {"query": {a: len(g) - i for i, a in enumerate(g)}}
    run = {"query": {x: len(p) - i for i, x in enumerate(p)}}
    scores = pytrec_eval.RelevanceEvaluator(qrels, {f"ndcg_cut.{k}"}).evaluate(run)
    return sum(s[f"ndcg_cut_{k}"] for s in scores.values()) / len(scores)


def _pairwise(g: list[str], p: list[str]) -> float:
    if len(g) <= 1 or len(p) <= 1:
        return 0.0
    where = {x: i for i, x in enumerate(p)}
    correct = sum(
        1 for a, b in combinations(g, 2) if a in where and b in where and where[a] < where[b]
    )
    return correct / (len(p) * (len(p) - 1) // 2)


def _summary(g: list[str], text: str, is_zh: bool) -> float:
    from rouge import Rouge

    prediction = " ".join(text.lower().strip().split())
    if not g or not prediction:
        return 0.0
    if is_zh:
        import jieba

        g = [" ".join(jieba.cut(a, cut_all=False)) for a in g]
        prediction = " ".join(jieba.cut(prediction, cut_all=False))
    try:
        scores = Rouge().get_scores([prediction] * len(g), g, avg=False)
    except Exception:  # the reference: any failure (empty side, RecursionError) -> 0
        return 0.0
    return max(s["rouge-l"]["f"] for s in scores)


_LBP = {
    "Accuracy": _accuracy,
    "F1_Score": _f1,
    "SubEM": _subem,
    "NDCG": _ndcg,
    "Pairwise_Accuracy": _pairwise,
}


def _longbench_pro(text: str, gold: list[str], reward_mode: str, language: str) -> float:
    from golongrl.tasks import LBP_REWARD_MODES

    if not text or not text.strip() or not gold:
        return 0.0
    metric = LBP_REWARD_MODES[reward_mode]
    try:
        g = _norm(gold)
        if metric == "Summary":
            return _summary(g, text, language == "Chinese")
        return _LBP[metric](g, _pred(text))
    except Exception:  # the reference wraps every metric in a catch-all
        return 0.0


def _mc_letter(text: str) -> str | None:
    text = text.replace("*", "")
    m = re.search(r"The correct answer is \(([A-D])\)", text) or re.search(
        r"The correct answer is ([A-D])", text
    )
    return m.group(1) if m else None


def _math(text: str, gold: str) -> float:
    from math_verify import parse, verify

    text = text[-500:]
    try:
        parsed = parse(text, parsing_timeout=5)
    except Exception:
        return 0.0
    if len(parsed) < 2:
        return 0.0
    if parsed[1] in [gold]:
        return 1.0
    try:
        if verify(parse(f"\\boxed{{{gold}}}", parsing_timeout=5), parsed, timeout_seconds=5):
            return 1.0
    except Exception:
        pass
    return 0.0


def _iou(text: str, gt: Any) -> float:
    answer = gt
    if isinstance(gt, dict) and "golden_label" in gt:
        try:
            answer = json.loads(gt["golden_label"])
        except (json.JSONDecodeError, TypeError):
            return 0.0
    region = (
        text.partition("<answer>")[2].partition("</answer>")[0].strip()
        if "<answer>" in text
        else text.strip()
    )
    try:
        pred = json.loads(region).get("data", [])
    except (json.JSONDecodeError, AttributeError, TypeError):
        pred = []

    def key(r: Any) -> Any:
        return tuple(str(v) for v in r) if isinstance(r, list) else str(r)

    if not isinstance(pred, list):
        return 0.0
    gold_rows = answer.get("data", []) if isinstance(answer, dict) else []
    matches = sum((Counter(key(r) for r in pred) & Counter(key(r) for r in gold_rows)).values())
    total = len(pred) + len(gold_rows) - matches
    return matches / total if total > 0 else 0.0


def reference_score(
    data_source: str, solution_str: str, ground_truth: Any, extra_info: dict[str, Any] | None
) -> float:
    """The GoLongRL reference reward for one response (spec §3.1 gate and dispatch)."""
    if "</think>" not in solution_str:
        return 0.0
    if solution_str.count("<think>") > 1 or solution_str.count("</think>") > 1:
        return 0.0
    if data_source == "multitableqa_pretraining":  # the one route that does not unwrap a list
        return _iou(solution_str, ground_truth)
    if isinstance(ground_truth, list):
        ground_truth = ground_truth[-1]
    if data_source == "longbench_pro":
        return _longbench_pro(
            solution_str, list(ground_truth["doc_ids"]), extra_info["reward_mode"],
            ground_truth["summary"],
        )
    after = solution_str.split("</think>")[-1]
    if data_source == "EM":
        return 1.0 if ground_truth["golden_label"].strip() == after.strip() else 0.0
    if data_source == "selection":
        letter = _mc_letter(after)
        label = ground_truth["golden_label"]
        return 1.0 if letter is not None and letter in (label, _mc_letter(label)) else 0.0
    if "math_longcot_math_verify" in data_source:
        gold = ground_truth if isinstance(ground_truth, str) else ground_truth["golden_label"]
        return _math(solution_str, gold)
    raise NotImplementedError(f"Reward function is not implemented for {data_source=}")
