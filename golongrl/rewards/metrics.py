"""Metric primitives on already-normalised inputs; every function returns a float in [0, 1].

The faithful variants reproduce the reference's arithmetic operation for operation so the
floats are bit-identical (checked against ``pytrec_eval`` and pltrdy ``rouge`` in the tests):
NDCG sums ``gain / log2(rank + 1)`` in rank order like trec_eval's ``ndcg_cut``; ROUGE-L uses
``2 * (P * R) / (P + R + 1e-8)`` like ``rouge``.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Hashable, Sequence

from golongrl.rewards.lcs import SentenceDepth, lcs_length, union_lcs_words


def set_f1(gold: Sequence[str], pred: Sequence[str]) -> float:
    """Set-based F1 of prediction lines against gold items (duplicates ignored)."""
    gold_set, pred_set = set(gold), set(pred)
    common = gold_set & pred_set
    if not common:
        return 0.0
    precision = len(common) / len(pred_set)
    recall = len(common) / len(gold_set)
    return (2 * precision * recall) / (precision + recall)


def subem_recall(gold: Sequence[str], pred: Sequence[str]) -> float:
    """Reference SubEM: fraction of gold items (with multiplicity) found among the lines."""
    if not gold or not pred:
        return 0.0
    pred_set = set(pred)
    return sum(1.0 for item in gold if item in pred_set) / len(gold)


def subem_precise(gold: Sequence[str], pred: Sequence[str]) -> float:
    """Hardened SubEM: found distinct gold items / max(#distinct gold, #distinct lines).

    Equal to the reference's SubEM whenever the answer has no more lines than the gold, and
    divided by k when the answer lists k times as many lines (closes quirk 2).
    """
    gold_set, pred_set = set(gold), set(pred)
    if not gold_set or not pred_set:
        return 0.0
    return len(gold_set & pred_set) / max(len(gold_set), len(pred_set))


def first_line_accuracy(gold: Sequence[str], pred: Sequence[str]) -> float:
    """1.0 iff the first prediction line equals the first gold item."""
    if not gold or not pred:
        return 0.0
    return 1.0 if gold[0] == pred[0] else 0.0


def ndcg_linear(gold: Sequence[str], pred: Sequence[str]) -> float:
    """NDCG@|gold| with linear graded gains, as the reference computes it with pytrec_eval.

    Gold item ``i`` has gain ``len(gold) - i`` (a repeated gold item keeps its *last* gain,
    like the dict the reference builds); the ranking is the prediction order with each
    repeated line kept at its *last* position; DCG and IDCG use ``gain / log2(rank + 1)``.
    """
    if not gold or not pred:
        return 0.0
    k = len(gold)
    gains = {item: k - i for i, item in enumerate(gold)}
    last_pos = {line: i for i, line in enumerate(pred)}
    ranking = sorted(last_pos, key=last_pos.__getitem__)
    dcg = 0.0
    for rank, line in enumerate(ranking[:k]):
        gain = gains.get(line, 0)
        if gain:
            dcg += gain / math.log2(rank + 2)
    idcg = 0.0
    for rank, gain in enumerate(sorted(gains.values(), reverse=True)[:k]):
        idcg += gain / math.log2(rank + 2)
    return dcg / idcg if idcg > 0 else 0.0


def _ordered_pairs(positions: Sequence[int]) -> int:
    """Number of index pairs i < j with positions[i] < positions[j] (O(n log n))."""
    seen: list[int] = []
    count = 0
    for p in positions:
        count += bisect.bisect_left(seen, p)
        bisect.insort(seen, p)
    return count


def pairwise_faithful(gold: Sequence[str], pred: Sequence[str]) -> float:
    """Reference pairwise accuracy: gold-ordered pairs found in order (repeated lines at their
    last position) divided by the number of *prediction* pairs C(|pred|, 2) (quirk 1)."""
    if len(gold) <= 1 or len(pred) <= 1:
        return 0.0
    last_pos = {line: i for i, line in enumerate(pred)}
    positions = [last_pos[item] for item in gold if item in last_pos]
    n_total = len(pred) * (len(pred) - 1) // 2
    return _ordered_pairs(positions) / n_total


def pairwise_hardened(gold: Sequence[str], pred: Sequence[str]) -> float:
    """Pairwise accuracy over the gold's pairs: distinct gold items, each line at its *first*
    position, denominator C(|gold|, 2); missing items cost their pairs, extra lines are inert."""
    gold_distinct = list(dict.fromkeys(gold))
    if len(gold_distinct) <= 1 or not pred:
        return 0.0
    first_pos: dict[str, int] = {}
    for i, line in enumerate(pred):
        first_pos.setdefault(line, i)
    positions = [first_pos[item] for item in gold_distinct if item in first_pos]
    n_total = len(gold_distinct) * (len(gold_distinct) - 1) // 2
    return _ordered_pairs(positions) / n_total


def multiset_iou(gold_rows: Sequence[Hashable], pred_rows: Sequence[Hashable]) -> float:
    """|pred ∩ gold| / (|pred| + |gold| - |pred ∩ gold|) over row multisets."""
    matches = sum((Counter(pred_rows) & Counter(gold_rows)).values())
    total = len(pred_rows) + len(gold_rows) - matches
    return matches / total if total > 0 else 0.0


class RougeRecursionError(RuntimeError):
    """The reference's recursive LCS reconstruction would exceed Python's recursion limit."""


def _rouge_sentences(text: str) -> list[list[str]]:
    """pltrdy ``rouge``'s tokenisation: split on ``.``, drop empty pieces, collapse
    whitespace, split on single spaces (a blank piece therefore yields the word ``''``)."""
    return [" ".join(piece.split()).split(" ") for piece in text.split(".") if piece]


def rouge_l_summary_level(reference: str, candidate: str, *, recursion_budget: int) -> float:
    """pltrdy ``rouge`` 1.0.1 ``rouge-l`` F for one (candidate, reference) pair, exactly.

    Summary level: union LCS over sentence pairs, hit count and lengths counted as *distinct*
    words.  ``recursion_budget`` is the deepest ``_recon`` nesting the reference survives; a
    sentence pair needing more raises :class:`RougeRecursionError` (the reference then raises
    ``RecursionError``, which its caller turns into 0).

    Raises:
        ValueError: when either side has no sentence (the reference raises the same).
        RougeRecursionError: as above.
    """
    ref_sentences = _rouge_sentences(reference)
    hyp_sentences = _rouge_sentences(candidate)
    if not ref_sentences or not hyp_sentences:
        raise ValueError("Collections must contain at least 1 sentence.")
    vocab: dict[str, int] = {}
    ref_ids = [[vocab.setdefault(w, len(vocab)) for w in s] for s in ref_sentences]
    hyp_ids = [[vocab.setdefault(w, len(vocab)) for w in s] for s in hyp_sentences]
    # The walk takes between min(n, m) and n + m steps, so only pairs whose lengths straddle
    # the budget need their exact depth.
    for c in hyp_ids:
        depth: SentenceDepth | None = None
        for r in ref_ids:
            if len(r) + len(c) + 1 <= recursion_budget:
                continue
            if min(len(r), len(c)) + 1 > recursion_budget:
                raise RougeRecursionError("LCS reconstruction exceeds the recursion budget")
            depth = depth or SentenceDepth(c)
            if depth.depth(r) > recursion_budget:
                raise RougeRecursionError("LCS reconstruction exceeds the recursion budget")
    m = len({t for s in ref_ids for t in s})
    n = len({t for s in hyp_ids for t in s})
    llcs = len(union_lcs_words(ref_ids, hyp_ids))
    r_lcs = llcs / m
    p_lcs = llcs / n
    return 2.0 * ((p_lcs * r_lcs) / (p_lcs + r_lcs + 1e-8))


def rouge_l_tokens(reference: Sequence[int], candidate: Sequence[int]) -> float:
    """Plain ROUGE-L F1 over whole token sequences with multiplicities (hardened mode):
    ``P = LCS / |candidate|``, ``R = LCS / |reference|``; repetition lowers precision."""
    if not reference or not candidate:
        return 0.0
    lcs = lcs_length(reference, candidate)
    if lcs == 0:
        return 0.0
    precision = lcs / len(candidate)
    recall = lcs / len(reference)
    return 2 * precision * recall / (precision + recall)


# ---------------------------------------------------------------------------------------------
# Chance-corrected metrics (hardened mode): 0 for what a blind answer earns in expectation.
# ---------------------------------------------------------------------------------------------


def rescale_above(value: float, baseline: float) -> float:
    """``max(0, (value - baseline) / (1 - baseline))``: 0 at the baseline, 1 at a perfect 1.

    A baseline of 1 (every answer is as good as a blind one) leaves only a perfect value
    paid."""
    if baseline >= 1.0:
        return 1.0 if value >= 1.0 else 0.0
    if value <= baseline + 1e-12:  # equal up to rounding: no gain over the baseline
        return 0.0
    return min(1.0, (value - baseline) / (1.0 - baseline))


def informedness(gold: Sequence[str], pred: Sequence[str], universe: Sequence[str]) -> float:
    """Youden's J of a selected subset: recall of the gold minus the false-positive rate over
    the universe's non-gold items, clipped at 0.

    Selecting every candidate, none, or any gold-independent subset earns 0 in expectation;
    a prediction outside the universe counts as a false positive.  When the universe has no
    negatives, only the recall is measured (the question cannot tell knowing from listing).
    """
    gold_set, pred_set = set(gold), set(pred)
    if not gold_set:
        return 0.0
    negatives = set(universe) - gold_set
    recall = len(gold_set & pred_set) / len(gold_set)
    false_pos = len(pred_set - gold_set)
    if not negatives:
        return recall if false_pos == 0 else 0.0
    return max(0.0, recall - min(1.0, false_pos / len(negatives)))


def expected_random_ndcg(gold: Sequence[str], n_universe: int) -> float:
    """Expected :func:`ndcg_linear` of a ranking that fills the ``len(gold)`` ranks with
    uniformly random distinct items of a universe of ``n_universe`` items (gold among them)."""
    k = len(gold)
    n = max(n_universe, k)
    if k == 0:
        return 0.0
    gains = sorted({item: k - i for i, item in enumerate(gold)}.values(), reverse=True)
    discounts = [1.0 / math.log2(rank + 2) for rank in range(k)]
    idcg = sum(g * d for g, d in zip(gains, discounts))
    return sum(discounts) * sum(gains) / n / idcg if idcg > 0 else 0.0


def cohen_kappa(gold: Sequence[Hashable], pred: Sequence[Hashable]) -> float:
    """Cohen's kappa of two equally long label sequences, clipped to [0, 1].

    Agreement corrected for the agreement expected from the two label distributions alone, so a
    constant label, the majority label or any label sequence drawn independently of the gold
    earns 0; if both sequences are one constant label and agree, 1."""
    n = len(gold)
    if n == 0 or len(pred) != n:
        return 0.0
    observed = sum(1 for g, p in zip(gold, pred) if g == p) / n
    gold_freq, pred_freq = Counter(gold), Counter(pred)
    expected = sum(gold_freq[label] * pred_freq.get(label, 0) for label in gold_freq) / (n * n)
    if expected >= 1.0:
        return 1.0 if observed >= 1.0 else 0.0
    return max(0.0, (observed - expected) / (1.0 - expected))
