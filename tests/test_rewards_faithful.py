"""Faithful mode: hand-worked cases from spec §3 and parity with the reference libraries."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from golongrl.rewards import compute_score
from golongrl.rewards.scoring import prepare
from golongrl.tasks import UnknownTaskError
from golongrl.rewards.lcs import recon_depth, union_lcs_words
from golongrl.rewards.metrics import RougeRecursionError, ndcg_linear, rouge_l_summary_level

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from reward_reference import reference_score  # noqa: E402
from reward_synthetic import make_requests  # noqa: E402
from rewards_fixtures import CORRECT, GOLD_ITEMS, ROWS, lbp, think

rouge_score = pytest.importorskip("rouge.rouge_score")
pytrec_eval = pytest.importorskip("pytrec_eval")
from rouge import Rouge  # noqa: E402


def faithful(solution: str, row: dict) -> float:
    return compute_score(solution_str=solution, **row, mode="faithful")


@pytest.mark.parametrize("task", sorted(ROWS))
def test_correct_answer_scores_one_and_gate_rejects_missing_think(task: str) -> None:
    row = ROWS[task]
    if task != "summarization":  # ROUGE-L of the reference also counts the thinking words
        assert faithful(think(CORRECT[task]), row) == 1.0
    assert faithful(CORRECT[task], row) == 0.0  # no </think>
    assert faithful("<think>a</think><think>b</think>" + CORRECT[task], row) == 0.0


def test_think_is_optional_when_not_required() -> None:
    row = ROWS["precise_retrieval"]
    assert compute_score(solution_str="Paris", **row, mode="faithful", require_think=False) == 1.0


def test_hand_worked_list_metrics() -> None:
    # F1: P = 2/3 (blank line counts as an item), R = 2/4 -> 2PR/(P+R) = 4/7.
    f1 = lbp("exhaustive_retrieval", ["a", "b", "c", "d"])
    assert faithful(think("[Answer]\nA\n\nb"), f1) == pytest.approx(4 / 7)
    # SubEM: no precision term; listing many lines is free.
    sub = lbp("structured_matching", ["a", "b"])
    assert faithful(think("[Answer]\na\nx\ny\nz"), sub) == 0.5
    # Pairwise: denominator is C(|P|, 2): two correct items in order -> 1.0 regardless of |G|.
    pw = lbp("sequence_ordering", GOLD_ITEMS)
    assert faithful(think("[Answer]\nalpha\nzeta"), pw) == 1.0
    assert faithful(think("[Answer]\nalpha\nbeta\n\nzeta"), pw) == pytest.approx(3 / 6)
    # Accuracy: first line of the answer area only.
    acc = lbp("comprehension", ["Blue Whale"])
    assert faithful(think("[Answer]\nblue   whale\nmore text"), acc) == 1.0
    assert faithful(think("blue whale is my guess"), acc) == 0.0
    # [Answer] wins over a later [答案]; no marker means the whole response is scored.
    assert faithful(think("[Answer]\nblue whale\n[答案]\nred"), acc) == 1.0
    assert faithful("blue whale\n</think>", acc) == 1.0


def test_hand_worked_ndcg() -> None:
    # gold gains 3,2,1; prediction b,a: DCG = 2 + 3/log2(3); IDCG = 3 + 2/log2(3) + 1/2.
    import math

    expected = (2 + 3 / math.log2(3)) / (3 + 2 / math.log2(3) + 0.5)
    assert ndcg_linear(["a", "b", "c"], ["b", "a"]) == pytest.approx(expected)
    # A repeated line keeps its last position.
    assert ndcg_linear(["a", "b"], ["a", "b", "a"]) == ndcg_linear(["a", "b"], ["b", "a"])


def test_hand_worked_single_string_tasks() -> None:
    em = ROWS["precise_retrieval"]
    assert faithful(think("  Paris \n"), em) == 1.0
    assert faithful(think("paris"), em) == 0.0  # strict, case-sensitive
    mc = ROWS["comprehension"]
    assert faithful(think("**The correct answer is (B)**"), mc) == 1.0
    assert faithful(think("The correct answer is B, or maybe A"), mc) == 1.0
    assert faithful(think("I pick B"), mc) == 0.0
    # IoU compares str(cell): 1 == "1" but 1 != 1.0.
    tab = ROWS["structured_extraction"]
    assert faithful(think('<answer>{"data": [["a", "1"], ["b", 2]]}</answer>'), tab) == 1.0
    assert faithful(think('<answer>{"data": [["a", 1.0], ["b", 2]]}</answer>'), tab) == pytest.approx(1 / 3)
    assert faithful(think("no json here"), tab) == 0.0
    # Math: the last 500 characters of the *whole* response.
    math_row = ROWS["numerical_reasoning"]
    assert faithful(think("", reasoning="so \\boxed{42}"), math_row) == 1.0
    assert faithful(think("The answer is \\boxed{41}."), math_row) == 0.0


def test_language_flag_is_the_summary_field() -> None:
    gold = "我们今天去公园散步然后回家吃饭"
    response = think("我们 今天 去 公园 散步 然后 回家 吃饭")
    zh = lbp("summarization", [gold], language="Chinese")
    not_zh = lbp("summarization", [gold], language=gold)
    assert faithful(response, zh) == reference_score(
        zh["data_source"], response, zh["ground_truth"], zh["extra_info"]
    )
    assert faithful(response, not_zh) == 0.0  # whitespace tokens never match the unsegmented gold


# ---------------------------------------------------------------------------------------------
# parity with the reference libraries on random inputs
# ---------------------------------------------------------------------------------------------


def _random_sentences(rng: random.Random, vocab: int, max_sentences: int, max_len: int) -> list[list[int]]:
    return [
        [rng.randrange(vocab) for _ in range(rng.randint(1, max_len))]
        for _ in range(rng.randint(1, max_sentences))
    ]


def test_union_lcs_matches_pltrdy_backtracking() -> None:
    rng = random.Random(7)
    for _ in range(1500):
        vocab = rng.randint(1, 10)
        ref = _random_sentences(rng, vocab, 4, 18)
        hyp = _random_sentences(rng, vocab, 5, 18)
        expected = set()
        for r in ref:
            for c in hyp:
                expected |= set(rouge_score._recon_lcs(r, c)._ngrams)
        assert union_lcs_words(ref, hyp) == expected


def _words_text(rng: random.Random, n_words: int, vocab: list[str]) -> str:
    out = []
    for _ in range(n_words):
        out.append(rng.choice(vocab))
        if rng.random() < 0.12:
            out.append(rng.choice([".", " .", ". .", "\n", "  "]))
    return " ".join(out)


def test_rouge_l_matches_pltrdy_on_random_texts() -> None:
    rng = random.Random(11)
    vocab = [f"w{i}" for i in range(40)] + ["", "a", "the", "x.y"]
    rouge = Rouge(metrics=["rouge-l"])
    for _ in range(400):
        ref = _words_text(rng, rng.randint(1, 60), vocab)
        hyp = _words_text(rng, rng.randint(1, 120), vocab)
        try:
            expected = rouge.get_scores([hyp], [ref])[0]["rouge-l"]["f"]
        except ValueError:
            with pytest.raises(ValueError):
                rouge_l_summary_level(ref, hyp, recursion_budget=10**6)
            continue
        assert rouge_l_summary_level(ref, hyp, recursion_budget=10**6) == expected


def _at_depth(extra_frames: int, fn):  # type: ignore[no-untyped-def]
    """Call ``fn`` with ``extra_frames`` more frames on the stack (shrinks the recursion room)."""
    return fn() if extra_frames == 0 else _at_depth(extra_frames - 1, fn)


def _reference_survives(hyp: str, ref: str, extra_frames: int) -> bool:
    def run() -> bool:
        try:
            Rouge(metrics=["rouge-l"]).get_scores([hyp], [ref])
        except RecursionError:
            return False
        return True

    return _at_depth(extra_frames, run)


def test_recon_depth_predicts_the_reference_recursion_error() -> None:
    # Eat most of the stack so the reference overflows on ~100-word sentences, then measure its
    # budget with identical sentences (L words need L + 1 nested calls).
    extra = sys.getrecursionlimit() - 150
    lo, hi = 1, 200
    while lo < hi:  # largest L that survives
        mid = (lo + hi + 1) // 2
        words = " ".join(f"w{i}" for i in range(mid))
        lo, hi = (mid, hi) if _reference_survives(words, words, extra) else (lo, mid - 1)
    budget = lo + 1
    assert 30 < budget < 150
    rng = random.Random(13)
    outcomes = set()
    for _ in range(150):
        n, m = rng.randint(budget // 3, budget), rng.randint(budget // 3, budget)
        x = [rng.randrange(6) for _ in range(n)]
        y = [rng.randrange(6) for _ in range(m)]
        survives = _reference_survives(
            " ".join(f"w{t}" for t in y), " ".join(f"w{t}" for t in x), extra
        )
        outcomes.add(survives)
        assert (recon_depth(x, y) <= budget) == survives
    assert outcomes == {True, False}
    # Whole texts: one overflowing sentence pair anywhere sinks the score.
    for _ in range(30):
        ref = ". ".join(" ".join(f"w{rng.randrange(6)}" for _ in range(rng.randint(5, budget)))
                        for _ in range(3))
        hyp = ". ".join(" ".join(f"w{rng.randrange(6)}" for _ in range(rng.randint(5, budget)))
                        for _ in range(3))
        if _reference_survives(hyp, ref, extra):
            rouge_l_summary_level(ref, hyp, recursion_budget=budget)
        else:
            with pytest.raises(RougeRecursionError):
                rouge_l_summary_level(ref, hyp, recursion_budget=budget)


def test_ndcg_matches_pytrec_eval() -> None:
    rng = random.Random(3)
    for _ in range(500):
        names = [f"d{i}" for i in range(rng.randint(1, 9))] + [""]
        gold = [rng.choice(names[:-1]) for _ in range(rng.randint(1, 8))]
        pred = [rng.choice(names) for _ in range(rng.randint(1, 12))]
        k = len(gold)
        qrels = {"q": {a: k - i for i, a in enumerate(gold)}}
        run = {"q": {p: len(pred) - i for i, p in enumerate(pred)}}
        expected = pytrec_eval.RelevanceEvaluator(qrels, {f"ndcg_cut.{k}"}).evaluate(run)["q"][
            f"ndcg_cut_{k}"
        ]
        assert ndcg_linear(gold, pred) == expected


def test_all_tasks_match_the_reference_scorer_on_synthetic_steps() -> None:
    requests = make_requests(300, seed=5, max_tokens=400)
    rng = random.Random(5)
    for req in requests:
        # Perturb some responses into edge cases: lost tags, blank lines, duplicated answers.
        roll = rng.random()
        if roll < 0.05:
            req["solution_str"] = req["solution_str"].replace("</think>", "")
        elif roll < 0.10:
            req["solution_str"] += "\n\n" + req["solution_str"].rsplit("\n", 1)[-1]
        elif roll < 0.13:
            req["solution_str"] = req["solution_str"].replace("[Answer]", "")
        expected = reference_score(
            req["data_source"], req["solution_str"], req["ground_truth"], req["extra_info"]
        )
        assert compute_score(**req, mode="faithful") == expected, req["extra_info"]


def test_chinese_summaries_match_the_reference() -> None:
    rng = random.Random(9)
    chars = "我们今天去公园散步然后回家吃饭学校老师学生问题研究结果方法数据"
    for _ in range(12):
        gold = "".join(rng.choice(chars) for _ in range(rng.randint(20, 80)))
        answer = "".join(rng.choice(chars + "。.") for _ in range(rng.randint(20, 160)))
        row = lbp("summarization", [gold], language="Chinese")
        response = think(answer, reasoning="".join(rng.choice(chars) for _ in range(30)))
        assert faithful(response, row) == reference_score(
            row["data_source"], response, row["ground_truth"], row["extra_info"]
        )


EDGE_ROWS = [
    # Empty gold lists: the reference returns 0 instead of raising.
    ("longbench_pro", {"doc_ids": [], "golden_label": "", "summary": "English"},
     {"reward_mode": "T5.1 Full-Sentence Citation Alignment"}, "</think>[Answer]\na"),
    ("longbench_pro", {"doc_ids": [], "golden_label": "", "summary": "English"},
     {"reward_mode": "T4.1 Global-Coverage Constrained Summary"}, "</think>[Answer] a summary."),
    ("longbench_pro", {"doc_ids": [], "golden_label": "", "summary": "English"},
     {"reward_mode": "T2.1 Global Timeline Reconstruction"}, "</think>"),
    # Empty gold with an empty answer: EM compares two empty strings.
    ("EM", {"doc_ids": [], "golden_label": "", "summary": ""}, {}, "</think>"),
    ("EM", {"doc_ids": [], "golden_label": "  ", "summary": ""}, {}, "<think>x</think>  "),
    ("EM", {"doc_ids": [], "golden_label": "", "summary": ""}, {}, "</think>x"),
    # Percent and decimal through math_verify (the installed version decides).
    ("math_longcot_math_verify", {"golden_label": "12\\%"}, {}, "</think>\\boxed{0.12}"),
    ("math_longcot_math_verify", {"golden_label": "50\\%"}, {}, "</think>\\boxed{50\\%}"),
    ("math_longcot_math_verify", {"golden_label": "0.5"}, {}, "</think>\\boxed{\\frac{1}{2}}"),
    ("math_longcot_math_verify", "7", {}, "</think>\\boxed{7}"),
    # Invalid-JSON or non-table gold in IoU scores 0.
    ("multitableqa_pretraining", {"golden_label": "{not json"}, {}, '</think><answer>{"data": [["a"]]}</answer>'),
    ("multitableqa_pretraining", {"golden_label": "[1, 2]"}, {}, '</think><answer>{"data": [1, 2]}</answer>'),
    ("multitableqa_pretraining", {"golden_label": '{"data": [["a"]]}'}, {}, '</think><answer>{"data": [["a"]]}</answer>'),
    # A list ground truth: the last element, except on the table route, which does not unwrap.
    ("EM", [{"golden_label": "x"}, {"golden_label": "Paris"}], {}, "</think>Paris"),
    ("selection", [{"golden_label": "C"}, {"golden_label": "B"}], {}, "</think>The correct answer is (B)"),
    ("longbench_pro", [{"doc_ids": ["z"], "summary": "English"}, {"doc_ids": ["a", "b"], "summary": "English"}],
     {"reward_mode": "T5.1 Full-Sentence Citation Alignment"}, "</think>[Answer]\na\nb"),
    ("multitableqa_pretraining", [{"golden_label": '{"data": [["a"]]}'}], {}, '</think><answer>{"data": [["a"]]}</answer>'),
    ("math_longcot_math_verify", [{"golden_label": "3"}, {"golden_label": "4"}], {}, "</think>\\boxed{4}"),
]


@pytest.mark.parametrize(("data_source", "ground_truth", "extra_info", "response"), EDGE_ROWS)
def test_faithful_matches_the_reference_on_its_edge_cases(data_source, ground_truth, extra_info, response) -> None:
    expected = reference_score(data_source, response, ground_truth, extra_info)
    got = compute_score(data_source, response, ground_truth, extra_info, mode="faithful")
    assert got == pytest.approx(expected, abs=1e-12)


def test_percent_answers_follow_math_verify_in_faithful_mode_and_value_in_hardened() -> None:
    gt = {"golden_label": "12\\%"}
    from math_verify import parse, verify

    library = float(verify(parse("\\boxed{12\\%}"), parse("</think>\\boxed{0.12}")))
    assert compute_score("math_longcot_math_verify", "</think>\\boxed{0.12}", gt, mode="faithful") == library
    assert compute_score("math_longcot_math_verify", "\\boxed{0.12}", gt) == 1.0


def test_unknown_data_source_is_gated_before_dispatch_like_the_reference() -> None:
    assert compute_score("no_such_source", "no think", {"golden_label": "x"}, mode="faithful") == 0.0
    with pytest.raises(NotImplementedError):
        reference_score("no_such_source", "</think>x", {"golden_label": "x"}, {})
    # Where the reference raises (and would stop a verl run), golongrl scores 0 and prepare names why.
    assert compute_score("no_such_source", "</think>x", {"golden_label": "x"}, mode="faithful") == 0.0
    with pytest.raises(UnknownTaskError):
        prepare("no_such_source", {"golden_label": "x"}, None, "faithful")
