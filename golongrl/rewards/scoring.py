"""Per-task scorers in the two modes (``compute_score``, verl's signature, wraps them with a
time cap in :mod:`golongrl.rewards.batch`).

``faithful`` reproduces the GoLongRL reference scorer (spec §3) exactly, quirks included.
``hardened`` (the default) closes every quirk of spec §3.4 that lets a policy gain reward
without doing the task; docs/rewards.md has the table.  Both modes never raise on model text:
any failure becomes ``(0.0, reason)``.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from golongrl.rewards import text as T
from golongrl.rewards.ground_truth import Gold, gold_items, gold_label, gold_table
from golongrl.rewards.metrics import (
    RougeRecursionError,
    first_line_accuracy,
    multiset_iou,
    ndcg_linear,
    pairwise_faithful,
    pairwise_hardened,
    rouge_l_summary_level,
    rouge_l_tokens,
    set_f1,
    subem_precise,
    subem_recall,
)
from golongrl.tasks import get_task, resolve_task

MODES = ("faithful", "hardened")

#: Reasons attached to a zero that was not a plain wrong answer.
REASON_FORMAT = "format"  # failed the think/length gate
REASON_PARSE = "parse"  # no answer could be extracted (no letter, no parse, invalid JSON...)
REASON_TIMEOUT = "timeout"
REASON_ERROR = "error"  # the scorer itself failed (in faithful mode: where the reference raises)
REASON_GOLD = "gold"  # the row's gold or labels cannot be scored against

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoreOptions:
    """Knobs of the scorers; defaults are the reference's values.

    Attributes:
        require_think: demand a ``</think>``; ``None`` means the mode's default (True in
            faithful, False in hardened so non-thinking policies are scorable; set it for
            thinking models, whose truncated responses then fail the gate).
        max_response_chars: hardened only; longer responses score 0 with reason ``format``.
        math_tail_chars: how much of the (answer) text math_verify sees (reference: 500).
        math_timeout_s: math_verify's own parse/verify timeouts (reference: 5); they rely on
            SIGALRM and are disabled off the main thread (see :func:`_math_timeouts`).
        rouge_recursion_budget: faithful only; the deepest recursive LCS reconstruction the
            reference survives: ``sys.getrecursionlimit()`` (1000) minus the stack depth at
            which the reference calls ``Rouge.get_scores`` minus 6.  960 assumes a verl
            reward loop ~34 frames deep; it only matters for sentence pairs of ~480+ words.
    """

    require_think: bool | None = None
    max_response_chars: int = 262_144
    math_tail_chars: int = 500
    math_timeout_s: int = 5
    rouge_recursion_budget: int = 960


_OPTION_NAMES = frozenset(ScoreOptions.__dataclass_fields__)
# verl's reward manager passes these to every custom reward function; they mean nothing here.
_VERL_PASSTHROUGH = frozenset(
    {
        "sandbox_fusion_url",
        "concurrent_semaphore",
        "memory_limit_mb",
        "enable_repetition_penalty",
        "reward_router_address",
        "reward_model_tokenizer",
    }
)
_warned: set[str] = set()


def make_options(options: ScoreOptions | None = None, **kwargs: Any) -> ScoreOptions:
    """Build :class:`ScoreOptions` from keyword overrides; unknown names are ignored with one
    warning each (verl forwards its own reward kwargs, and a new verl must not break training)."""
    opts = options or ScoreOptions()
    known = {k: v for k, v in kwargs.items() if k in _OPTION_NAMES}
    for name in kwargs.keys() - _OPTION_NAMES - _VERL_PASSTHROUGH - _warned:
        _warned.add(name)
        _log.warning("golongrl.rewards: ignoring unknown scoring option %r", name)
    return replace(opts, **known) if known else opts


# ---------------------------------------------------------------------------------------------
# Dispatch: (task, route) -> how to read the gold and how to score in each mode.
# The only task with two routes is comprehension: ``selection`` rows are multiple choice on
# golden_label, ``longbench_pro`` rows are first-line accuracy on doc_ids.
# ---------------------------------------------------------------------------------------------

_LBP_ROUTED = {
    "comprehension",
    "exhaustive_retrieval",
    "structured_matching",
    "graded_ranking",
    "sequence_ordering",
    "summarization",
}


@dataclass(frozen=True)
class Prepared:
    """A validated request, ready to score (picklable; sent to batch workers)."""

    task: str
    lbp: bool
    gold: Gold


def prepare(
    data_source: str, ground_truth: Any, extra_info: Mapping[str, Any] | None, mode: str
) -> Prepared:
    """Resolve the task and validate the gold.

    Raises:
        golongrl.tasks.UnknownTaskError: labels that map to no task type.
        GroundTruthError: missing or malformed ground-truth field.
        ValueError: unknown ``mode``.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    task = resolve_task(data_source, extra_info)
    lbp = data_source == "longbench_pro" or (
        task in _LBP_ROUTED and get_task(task).ground_truth_field == "doc_ids"
    )
    if lbp:
        need_language = task == "summarization" and mode == "faithful"
        gold = gold_items(ground_truth, task, need_language=need_language)
    elif task == "structured_extraction":
        gold = gold_table(ground_truth, task)
    else:
        gold = gold_label(ground_truth, task)
    return Prepared(task=task, lbp=lbp, gold=gold)


Result = tuple[float, str | None]


def score_prepared(prepared: Prepared, solution: Any, mode: str, opts: ScoreOptions) -> Result:
    """Score one response; never raises on model output (returns ``(0.0, reason)``)."""
    if not isinstance(solution, str):
        return 0.0, REASON_FORMAT
    try:
        if mode == "faithful":
            return _faithful(prepared, solution, opts)
        return _hardened(prepared, solution, opts)
    except Exception:  # noqa: BLE001 - untrusted text must never crash training; reason says so
        _log.debug("scorer failed on a %s response", prepared.task, exc_info=True)
        return 0.0, REASON_ERROR


# ---------------------------------------------------------------------------------------------
# faithful
# ---------------------------------------------------------------------------------------------

_LBP_FAITHFUL: dict[str, Callable[[list[str], list[str]], float]] = {
    "comprehension": first_line_accuracy,
    "exhaustive_retrieval": set_f1,
    "structured_matching": subem_recall,
    "graded_ranking": ndcg_linear,
    "sequence_ordering": pairwise_faithful,
}


def _faithful(p: Prepared, s: str, opts: ScoreOptions) -> Result:
    require_think = True if opts.require_think is None else opts.require_think
    if require_think and T.THINK_CLOSE not in s:
        return 0.0, REASON_FORMAT
    if s.count(T.THINK_OPEN) > 1 or s.count(T.THINK_CLOSE) > 1:
        return 0.0, REASON_FORMAT
    if p.lbp:
        # LongBench-Pro rows see the whole response, thinking included (quirks 3 and 6).
        if not s.strip():
            return 0.0, REASON_PARSE
        gold = T.normalize_gold(list(p.gold.items))
        if p.task == "summarization":
            return _faithful_summary(gold, s, p.gold.language == "Chinese", opts)
        return _LBP_FAITHFUL[p.task](gold, T.faithful_lines(s)), None
    if p.task == "precise_retrieval":
        return (1.0 if p.gold.label.strip() == T.after_think(s).strip() else 0.0), None
    if p.task == "comprehension":
        return _multiple_choice(T.after_think(s), p.gold.label, strict=False)
    if p.task == "numerical_reasoning":
        return _math(s[-opts.math_tail_chars :], p.gold.label, opts)
    if p.task == "structured_extraction":
        return _faithful_iou(s, p.gold)
    raise AssertionError(f"no faithful scorer for {p.task}")


def _faithful_summary(gold: list[str], s: str, is_zh: bool, opts: ScoreOptions) -> Result:
    prediction = T.fix_space(s.lower())
    if is_zh:
        cut = _jieba_cut()
        gold = [" ".join(cut(g)) for g in gold]
        prediction = " ".join(cut(prediction))
    try:
        scores = [
            rouge_l_summary_level(g, prediction, recursion_budget=opts.rouge_recursion_budget)
            for g in gold
        ]
    except ValueError:
        return 0.0, REASON_PARSE
    except RougeRecursionError:
        return 0.0, REASON_ERROR
    return max(scores), None


_MC_PAREN = re.compile(r"The correct answer is \(([A-D])\)")
_MC_BARE = re.compile(r"The correct answer is ([A-D])")


def _mc_first(text: str) -> str | None:
    text = text.replace("*", "")
    match = _MC_PAREN.search(text) or _MC_BARE.search(text)
    return match.group(1) if match else None


def _multiple_choice(answer: str, label: str, *, strict: bool) -> Result:
    """The reference's letter extraction; ``strict`` (hardened) demands that every answer
    statement in the text names the same letter, so listing several letters scores 0."""
    if strict:
        cleaned = answer.replace("*", "")
        letters = {m.group(1) for m in _MC_PAREN.finditer(cleaned)}
        letters |= {m.group(1) for m in _MC_BARE.finditer(cleaned)}
        if len(letters) != 1:
            return 0.0, REASON_PARSE
        extracted: str | None = letters.pop()
    else:
        extracted = _mc_first(answer)
        if extracted is None:
            return 0.0, REASON_PARSE
    return (1.0 if extracted in (label, _mc_first(label)) else 0.0), None


def _math_timeouts(opts: ScoreOptions) -> int | None:
    # math_verify's timeouts install a SIGALRM handler, which Python only allows on the main
    # thread; elsewhere (verl may score off the main thread) they would make every parse fail,
    # so they are switched off and the batch scorer's process timeout is the bound.
    if threading.current_thread() is threading.main_thread():
        return opts.math_timeout_s
    return None


def _math(tail: str, gold: str, opts: ScoreOptions) -> Result:
    """The reference's ``math_verify_from_sky``: parse the tail; a string hit on the parsed
    answer or a math_verify equivalence with ``\\boxed{gold}`` scores 1."""
    from math_verify import parse, verify

    timeout = _math_timeouts(opts)
    try:
        parsed = parse(tail, parsing_timeout=timeout)
    except Exception:  # math_verify raises arbitrary sympy/ANTLR errors on junk
        return 0.0, REASON_PARSE
    if len(parsed) < 2:
        return 0.0, REASON_PARSE
    if parsed[1] in [gold]:
        return 1.0, None
    try:
        ok = verify(
            parse(f"\\boxed{{{gold}}}", parsing_timeout=timeout),
            parsed,
            timeout_seconds=timeout,
        )
    except Exception:  # same as above: the reference counts any failure as incorrect
        return 0.0, None
    return (1.0 if ok else 0.0), None


def _faithful_iou(s: str, gold: Gold) -> Result:
    region = s.strip()
    if "<answer>" in s:  # the first block, wherever it is (quirk 8)
        region = s.partition("<answer>")[2].partition("</answer>")[0].strip()
    try:
        pred = json.loads(region).get("data", [])
    except (json.JSONDecodeError, AttributeError, TypeError):
        pred = []
    if not isinstance(pred, list):
        return 0.0, REASON_PARSE

    def key(row: Any) -> Any:
        return tuple(str(v) for v in row) if isinstance(row, list) else str(row)

    return multiset_iou([key(r) for r in gold.rows], [key(r) for r in pred]), None


# ---------------------------------------------------------------------------------------------
# hardened
# ---------------------------------------------------------------------------------------------


def _dedupe(lines: list[str]) -> list[str]:
    return list(dict.fromkeys(lines))


_LBP_HARDENED: dict[str, Callable[[list[str], list[str]], float]] = {
    "comprehension": first_line_accuracy,
    "exhaustive_retrieval": set_f1,
    "structured_matching": subem_precise,
    "graded_ranking": lambda gold, pred: ndcg_linear(gold, _dedupe(pred)),
    "sequence_ordering": pairwise_hardened,
}


def _hardened(p: Prepared, s: str, opts: ScoreOptions) -> Result:
    gate = T.hardened_gate(
        s, require_think=bool(opts.require_think), max_chars=opts.max_response_chars
    )
    if gate.answer is None:
        return 0.0, gate.reason
    answer = gate.answer
    if p.lbp:
        gold = T.normalize_gold(list(p.gold.items))
        if p.task == "summarization":
            return _hardened_summary(gold, T.hardened_answer_area(answer))
        lines = T.hardened_lines(answer)
        if not lines:
            return 0.0, REASON_PARSE
        return _LBP_HARDENED[p.task](gold, lines), None
    if p.task == "precise_retrieval":
        return (1.0 if p.gold.label.strip() == answer.strip() else 0.0), None
    if p.task == "comprehension":
        return _multiple_choice(answer, p.gold.label, strict=True)
    if p.task == "numerical_reasoning":
        answer = answer.strip()  # trailing padding must not push the answer out of the tail
        if not answer:
            return 0.0, REASON_PARSE
        return _math(answer[-opts.math_tail_chars :], p.gold.label, opts)
    if p.task == "structured_extraction":
        return _hardened_iou(answer, p.gold)
    raise AssertionError(f"no hardened scorer for {p.task}")


_WORD = re.compile(r"\w+")


def _hardened_tokens(text: str, is_zh: bool, vocab: dict[str, int]) -> list[int]:
    if is_zh:
        words = [w for w in _jieba_cut()(text) if _WORD.search(w)]
    else:
        words = _WORD.findall(text)
    return [vocab.setdefault(w, len(vocab)) for w in words]


def _hardened_summary(gold: list[str], answer: str) -> Result:
    prediction = T.fix_space(answer.lower())
    if not prediction:
        return 0.0, REASON_PARSE
    best = 0.0
    for reference in gold:
        vocab: dict[str, int] = {}
        is_zh = T.is_mostly_chinese(reference)
        ref_tokens = _hardened_tokens(reference, is_zh, vocab)
        hyp_tokens = _hardened_tokens(prediction, is_zh, vocab)
        best = max(best, rouge_l_tokens(ref_tokens, hyp_tokens))
    return best, None


_ANSWER_BLOCK = re.compile(r"<answer>(.*?)(?:</answer>|\Z)", re.S)


def _cell(value: Any) -> str:
    """Canonical text of a table cell: numbers (or numeric strings) by value, so 1, 1.0 and
    "1" agree; other strings whitespace-collapsed; nested values as compact JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        number: Any = value
    elif isinstance(value, str):
        stripped = T.fix_space(value)
        try:
            number = float(stripped.replace(",", "")) if stripped else None
        except ValueError:
            return stripped
        if number is None:
            return ""
    elif value is None:
        return "null"
    else:
        return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    if isinstance(number, float) and number.is_integer() and abs(number) < 2**63:
        number = int(number)
    return repr(number)


def _row_key(row: Any) -> tuple[str, ...]:
    return tuple(_cell(v) for v in row) if isinstance(row, list) else (_cell(row),)


def _hardened_iou(answer: str, gold: Gold) -> Result:
    blocks = _ANSWER_BLOCK.findall(answer)
    region = blocks[-1] if blocks else answer
    try:
        parsed = json.loads(region.strip())
    except (ValueError, RecursionError):
        return 0.0, REASON_PARSE
    pred = parsed.get("data") if isinstance(parsed, dict) else None
    if not isinstance(pred, list):
        return 0.0, REASON_PARSE
    return multiset_iou([_row_key(r) for r in gold.rows], [_row_key(r) for r in pred]), None


# ---------------------------------------------------------------------------------------------

_jieba_lock = threading.Lock()


def _jieba_cut() -> Callable[[str], list[str]]:
    """jieba's precise-mode tokenizer, loaded once (its dictionary takes ~1 s to build)."""
    import jieba

    with _jieba_lock:
        if not jieba.dt.initialized:
            jieba.setLogLevel(logging.WARNING)
            jieba.initialize()
    return lambda text: list(jieba.cut(text, cut_all=False))
