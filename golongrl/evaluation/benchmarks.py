"""Registered long-context benchmarks: read the official files, build prompts, score responses.

Each benchmark reproduces the reference harness (golongrl-reference §7): prompt template,
truncation, answer extraction, rule score, judge protocol and how the two combine. Files are
read from paths the user downloaded (docs/evaluation.md lists each file, field and source);
nothing is downloaded here.
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from golongrl.inference.judge import Judge, JudgeCase

from .scoring import (
    cover_exact_match,
    docmath_extract_answer,
    extract_choice_letter,
    mrcr_bin,
    score_docmath_rule,
    score_mrcr,
    token_f1,
)
from .text import (
    chat_token_count,
    extract_after_answer_is,
    extract_final_answer,
    truncate_middle_chars,
    truncate_middle_tokens,
    truncate_mrcr_messages,
)

Messages = tuple[dict[str, str], ...]


class BenchmarkDataError(ValueError):
    """A benchmark file is missing or malformed; the message names file, row and field."""


@dataclass
class EvalItem:
    """One prompt to answer. ``groups`` are the breakdown keys reported beside the overall mean
    (e.g. ``{"subset": "complong_testmini"}``); ``gold``/``question`` feed the scorer."""

    id: str
    messages: Messages
    gold: Any
    question: str = ""
    groups: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ItemResult:
    """The score in [0, 1] of one item, its breakdown keys and the scorer's evidence."""

    id: str
    score: float
    groups: dict[str, str]
    details: dict[str, Any]


@dataclass
class LoadOptions:
    """What loaders need besides the files: the target tokenizer (for token truncation and
    length bins), a token budget override and ``limit`` items per subset (None = all)."""

    tokenizer: Any = None
    max_input_tokens: int | None = None
    limit: int | None = None


# ---------------------------------------------------------------------------------- file reading
def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a ``.jsonl``/``.parquet`` file (via :func:`golongrl.data.io.read_records`) or a
    ``.json`` file holding a list of rows or an object whose values are rows."""
    if path.suffix != ".json":
        from golongrl.data.io import read_records

        return [row for _, row in read_records(path)]
    if not path.is_file():
        raise BenchmarkDataError(f"{path}: file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BenchmarkDataError(f"{path}: invalid JSON ({exc})") from None
    if isinstance(data, dict):
        data = list(data.values())
    if not isinstance(data, list):
        raise BenchmarkDataError(f"{path}: expected a JSON list of rows")
    return data


def need(row: dict[str, Any], key: str, path: Path, number: int, kinds: type | tuple[type, ...] = object) -> Any:
    """``row[key]``, or a :class:`BenchmarkDataError` naming file, row and field."""
    if key not in row:
        raise BenchmarkDataError(f"{path}, row {number}: missing field {key!r}")
    value = row[key]
    if not isinstance(value, kinds):
        raise BenchmarkDataError(
            f"{path}, row {number}: field {key!r} has type {type(value).__name__}"
        )
    return value


def find_file(root: Path, *names: str) -> Path:
    """``root`` itself if it is a file, else the first of ``names`` found under it."""
    if root.is_file():
        return root
    for name in names:
        if (root / name).is_file():
            return root / name
    raise BenchmarkDataError(f"{root}: none of {', '.join(names)} found")


def _truncate_user(messages: Messages, budget: int | None, tokenizer: Any, name: str) -> Messages:
    if budget is None:
        return messages
    if tokenizer is None:
        raise BenchmarkDataError(
            f"{name}: token-level truncation needs the target tokenizer (pass --tokenizer)"
        )
    return tuple(
        {**m, "content": truncate_middle_tokens(m["content"], budget, tokenizer)} for m in messages
    )


# ------------------------------------------------------------------------------------ benchmarks
ANSWER_FORMAT = 'Format your response as follows: "Therefore, the answer is (insert answer here)".'

DOCMATH_TEMPLATE = (
    "Please read the following text and answer the question below.\n\n<text>\n{context}\n</text>\n\n"
    "{question}\n\n" + ANSWER_FORMAT
)
LBV1_TEMPLATE = (
    "Please read the following text and answer the question below.\n<text>\n{context}\n</text>\n"
    "{question}\n" + ANSWER_FORMAT
)
LBV2_TEMPLATE = (
    "Please read the following text and answer the questions below.\n\n<text>\n{document}\n</text>\n\n"
    "Answer the following multiple choice question. The last line of your response should be of "
    "the following format: 'ANSWER: [LETTER]' (without quotes) where [LETTER] is one of {letters}. "
    "Think step by step before answering.\n\n{question}\n\n{choices}"
)
LONGMEMEVAL_SYSTEM = """You are a helpful assistant with access to the user's past conversation history. Based on the conversation history provided below, answer the user's question.

Instructions:
1. First, carefully review the conversation history to identify all relevant information.
2. Extract and list the key pieces of evidence from the history that are relevant to the question.
3. Based on the extracted evidence, reason step by step to produce your final answer.
4. If the question asks about information that was never mentioned in the conversation history, clearly state that the information is not available.
5. Be concise and precise in your final answer."""
LONGMEMEVAL_USER = """Below is the user's conversation history with a chat assistant, presented in chronological order. Each session is timestamped.

{history_text}

Based on the above conversation history, answer the following question:
{question}"""


@dataclass
class Benchmark:
    """A registered benchmark.

    ``column``: its column in the paper's table (None if not in it); ``macro_group``: when set,
    the overall score is the mean of the per-group means (LongBench v1: mean of five subsets),
    else the mean over items. ``loader(path, options) -> items``;
    ``scorer(items, responses, judge) -> results`` gets think-stripped responses unless
    ``strip`` is False.
    """

    name: str
    title: str
    column: str | None
    loader: Callable[[Path, LoadOptions], list[EvalItem]]
    scorer: Callable[[Sequence[EvalItem], Sequence[str], Judge | None], list[ItemResult]]
    uses_judge: bool
    default_max_input_tokens: int | None = None
    macro_group: str | None = None
    strip: bool = True  # scorer gets think-stripped responses (False: the raw text)


BENCHMARKS: dict[str, Benchmark] = {}


def register(benchmark: Benchmark) -> Benchmark:
    BENCHMARKS[benchmark.name] = benchmark
    return benchmark


def _judge_scores(
    judge: Judge | None, protocol: str, cases: Sequence[JudgeCase]
) -> list[tuple[float | None, str | None]]:
    if judge is None:
        return [(None, None)] * len(cases)
    return [(float(v.correct), v.reply) for v in judge.judge(protocol, cases)]


# DocMath ---------------------------------------------------------------------------------------
DOCMATH_SUBSETS = ("complong_testmini", "compshort_testmini", "simplong_testmini", "simpshort_testmini")


def _load_docmath(path: Path, options: LoadOptions) -> list[EvalItem]:
    files = [path] if path.is_file() else [find_file(path, f"{s}.json", f"{s}.jsonl") for s in DOCMATH_SUBSETS]
    budget = options.max_input_tokens
    items = []
    for file in files:
        subset = file.stem
        for number, row in enumerate(read_rows(file)[: options.limit], 1):
            question = need(row, "question", file, number, str)
            paragraphs = need(row, "paragraphs", file, number, list)
            gold = need(row, "ground_truth", file, number, (int, float, bool, str))
            prompt = DOCMATH_TEMPLATE.format(context="\n".join(paragraphs), question=question)
            messages = _truncate_user(({"role": "user", "content": prompt},), budget, options.tokenizer, "docmath")
            items.append(
                EvalItem(
                    id=str(row.get("question_id", f"{subset}-{number}")),
                    messages=messages,
                    gold=gold,
                    question=question,
                    groups={"subset": subset},
                )
            )
    return items


def _score_docmath(items: Sequence[EvalItem], responses: Sequence[str], judge: Judge | None) -> list[ItemResult]:
    extracted = [docmath_extract_answer(r) for r in responses]
    cases = [JudgeCase(it.question, ex, str(it.gold)) for it, ex in zip(items, extracted)]
    judged = _judge_scores(judge, "docmath", cases)
    results = []
    for it, response, ex, (judge_acc, reply) in zip(items, responses, extracted, judged):
        rule = score_docmath_rule(response, it.gold)
        score = rule if judge_acc is None else max(rule, judge_acc)
        details = {"extracted": ex, "rule_acc": rule, "judge_acc": judge_acc, "judge_reply": reply}
        results.append(ItemResult(it.id, score, it.groups, details))
    return results


register(Benchmark("docmath", "DocMath", "DocMath", _load_docmath, _score_docmath, True, 131_000))


# LongBench v2 ----------------------------------------------------------------------------------
def _load_lbv2(path: Path, options: LoadOptions) -> list[EvalItem]:
    file = find_file(path, "data.json", "data.jsonl")
    items = []
    for number, row in enumerate(read_rows(file)[: options.limit], 1):
        choices = [need(row, f"choice_{c}", file, number, str) for c in "ABCD"]
        question = need(row, "question", file, number, str)
        answer = need(row, "answer", file, number, str).strip().upper()
        if answer not in ("A", "B", "C", "D"):
            raise BenchmarkDataError(f"{file}, row {number}: field 'answer' must be one of A-D")
        prompt = (
            LBV2_TEMPLATE.replace("{document}", need(row, "context", file, number, str))
            .replace("{question}", question)
            .replace("{choices}", "\n".join(f"{string.ascii_uppercase[i]}) {c}" for i, c in enumerate(choices)))
            .replace("{letters}", "A,B,C,D")
        )
        messages = _truncate_user(({"role": "user", "content": prompt},), options.max_input_tokens, options.tokenizer, "lbv2")
        groups = {k: str(row[k]) for k in ("length", "difficulty", "domain") if k in row}
        items.append(EvalItem(str(row.get("_id", number)), messages, answer, question, groups))
    return items


def _score_lbv2(items: Sequence[EvalItem], responses: Sequence[str], judge: Judge | None) -> list[ItemResult]:
    results = []
    for it, response in zip(items, responses):
        letter = extract_choice_letter(response)
        results.append(ItemResult(it.id, float(letter == it.gold), it.groups, {"extracted": letter}))
    return results


register(Benchmark("lbv2", "LongBench v2", "LBV2", _load_lbv2, _score_lbv2, False, 131_000))


# Frames ----------------------------------------------------------------------------------------
def _frames_extract(response: str) -> str:
    response = response.replace("*", "")
    if "the answer is" not in response:
        return ""
    return response.rsplit("the answer is", 1)[-1].strip().strip(".").strip()


def _load_frames(path: Path, options: LoadOptions) -> list[EvalItem]:
    file = find_file(path, "test.jsonl", "test.json")
    items = []
    for number, row in enumerate(read_rows(file)[: options.limit], 1):
        wiki = need(row, "wiki_items", file, number, list)
        context = "\n".join(f"{w.get('title', '')}\n{w.get('text', '')}" for w in wiki)
        question = need(row, "Prompt", file, number, str)
        prompt = DOCMATH_TEMPLATE.format(context=context, question=question)
        messages = _truncate_user(({"role": "user", "content": prompt},), options.max_input_tokens, options.tokenizer, "frames")
        groups = {"reasoning_types": str(row["reasoning_types"])} if "reasoning_types" in row else {}
        items.append(EvalItem(str(row.get("id", number)), messages, str(need(row, "Answer", file, number)), question, groups))
    return items


def _score_frames(items: Sequence[EvalItem], responses: Sequence[str], judge: Judge | None) -> list[ItemResult]:
    extracted = [_frames_extract(r) for r in responses]
    judged = _judge_scores(judge, "frames", [JudgeCase(it.question, ex, it.gold) for it, ex in zip(items, extracted)])
    results = []
    for it, response, ex, (judge_acc, reply) in zip(items, responses, extracted, judged):
        cem = cover_exact_match(response, it.gold)
        score = float(cem or (judge_acc or 0.0) >= 0.5)
        details = {"extracted": ex, "cem": cem, "judge_acc": judge_acc, "judge_reply": reply}
        results.append(ItemResult(it.id, score, it.groups, details))
    return results


# The reference's max_length/middle dataset-args for Frames are a no-op, so no default budget.
register(Benchmark("frames", "Frames", "Frames", _load_frames, _score_frames, True, None))


# MRCR ------------------------------------------------------------------------------------------
def _load_mrcr(path: Path, options: LoadOptions) -> list[EvalItem]:
    file = find_file(path, "mrcr_0_128K.jsonl", "mrcr.jsonl")
    items = []
    for number, row in enumerate(read_rows(file)[: options.limit], 1):
        prompt = need(row, "prompt", file, number, (str, list))
        messages = json.loads(prompt) if isinstance(prompt, str) else prompt
        if not isinstance(messages, list) or not all(isinstance(m, dict) and "content" in m for m in messages):
            raise BenchmarkDataError(f"{file}, row {number}: field 'prompt' must be a list of messages")
        prefix = need(row, "random_string_to_prepend", file, number, str)
        needles = row.get("needle_count", row.get("n_needles"))
        n_tokens = row.get("n_tokens_qwen", row.get("n_tokens"))
        if n_tokens is None and options.tokenizer is not None:
            n_tokens = chat_token_count(messages, options.tokenizer)
        bin_label = row.get("bin") or (mrcr_bin(int(n_tokens)) if n_tokens is not None else "unknown")
        if options.max_input_tokens:
            if options.tokenizer is None:
                raise BenchmarkDataError("mrcr: truncation needs the target tokenizer (pass --tokenizer)")
            messages = truncate_mrcr_messages(messages, options.max_input_tokens, options.tokenizer)
        items.append(
            EvalItem(
                id=str(row.get("id", number)),
                messages=tuple({"role": m["role"], "content": m["content"]} for m in messages),
                gold=need(row, "answer", file, number, str),
                groups={"needles": str(needles), "bin": str(bin_label)},
                extra={"random_string_to_prepend": prefix},
            )
        )
    return items


def _score_mrcr(items: Sequence[EvalItem], responses: Sequence[str], judge: Judge | None) -> list[ItemResult]:
    return [
        ItemResult(it.id, score_mrcr(r, it.gold, it.extra["random_string_to_prepend"]), it.groups, {})
        for it, r in zip(items, responses)
    ]


register(Benchmark("mrcr", "MRCR", "MRCR", _load_mrcr, _score_mrcr, False, 131_072))


# CorpusQA --------------------------------------------------------------------------------------
CORPUSQA_DOMAINS = ("financial_zh", "financial_en", "education_en", "real_estate_en")


def _load_corpusqa(path: Path, options: LoadOptions) -> list[EvalItem]:
    file = find_file(path, "128k_4domains.jsonl", "1m_4domains.jsonl")
    items = []
    for number, row in enumerate(read_rows(file)[: options.limit], 1):
        qid = str(need(row, "id", file, number))
        prompt = need(row, "prompt", file, number, list)
        domain = next((d for d in CORPUSQA_DOMAINS if qid.startswith(d)), "other")
        items.append(
            EvalItem(
                id=qid,
                messages=tuple({"role": m["role"], "content": m["content"]} for m in prompt),
                gold=str(need(row, "answer", file, number)),
                question=str(need(row, "question", file, number)),
                groups={"domain": domain},
            )
        )
    return items


def _score_corpusqa(items: Sequence[EvalItem], responses: Sequence[str], judge: Judge | None) -> list[ItemResult]:
    if judge is None:
        raise ValueError("corpusqa is scored only by the LLM judge: pass --judge")
    extracted = [extract_after_answer_is(r) for r in responses]
    judged = _judge_scores(judge, "corpusqa", [JudgeCase(it.question, ex, it.gold) for it, ex in zip(items, extracted)])
    return [
        ItemResult(it.id, float(acc or 0.0), it.groups, {"extracted": ex, "judge_reply": reply})
        for it, ex, (acc, reply) in zip(items, extracted, judged)
    ]


register(Benchmark("corpusqa", "CorpusQA", "CorpusQA", _load_corpusqa, _score_corpusqa, True, None))


# LongBench v1 QA -------------------------------------------------------------------------------
LBV1_SUBSETS = ("narrativeqa", "qasper", "hotpotqa", "2wikimqa", "musique")
LBV1_MAX_CHARS = 500_000


def _load_lbv1(path: Path, options: LoadOptions) -> list[EvalItem]:
    files = [path] if path.is_file() else [find_file(path, f"{s}.jsonl") for s in LBV1_SUBSETS]
    items = []
    for file in files:
        for number, row in enumerate(read_rows(file)[: options.limit], 1):
            subset = str(row.get("dataset", file.stem))
            context = truncate_middle_chars(need(row, "context", file, number, str), LBV1_MAX_CHARS)
            question = need(row, "input", file, number, str)
            answers = need(row, "answers", file, number, (list, str))
            prompt = LBV1_TEMPLATE.format(context=context, question=question)
            messages = _truncate_user(({"role": "user", "content": prompt},), options.max_input_tokens, options.tokenizer, "lbv1qa")
            items.append(
                EvalItem(
                    id=str(row.get("_id", row.get("id", f"{subset}_{number}"))),
                    messages=messages,
                    gold=[answers] if isinstance(answers, str) else list(answers),
                    question=question,
                    groups={"subset": subset},
                )
            )
    return items


def _score_lbv1(items: Sequence[EvalItem], responses: Sequence[str], judge: Judge | None) -> list[ItemResult]:
    preds = [extract_final_answer(r) for r in responses]
    # The reference scores max over references of the binary judge; one judge call per reference.
    flat = [(i, JudgeCase(it.question, p, str(ref))) for i, (it, p) in enumerate(zip(items, preds)) for ref in it.gold]
    judged = _judge_scores(judge, "lbv1", [case for _, case in flat])
    best: dict[int, float] = {}
    for (i, _), (acc, _) in zip(flat, judged):
        if acc is not None:
            best[i] = max(best.get(i, 0.0), acc)
    results = []
    for i, (it, p) in enumerate(zip(items, preds)):
        f1 = max((token_f1(p, str(ref)) for ref in it.gold), default=0.0)
        judge_acc = best.get(i) if judge is not None else None
        score = f1 if judge_acc is None else judge_acc
        results.append(ItemResult(it.id, score, it.groups, {"extracted": p, "f1": f1, "judge_acc": judge_acc}))
    return results


register(Benchmark("lbv1qa", "LongBench v1 QA", "LBV1-QA", _load_lbv1, _score_lbv1, True, None, macro_group="subset"))


# LongMemEval -----------------------------------------------------------------------------------
LONGMEMEVAL_ABILITIES = {
    "single-session-user": "information_extraction",
    "single-session-assistant": "information_extraction",
    "single-session-preference": "information_extraction",
    "multi-session": "multi_session_reasoning",
    "knowledge-update": "knowledge_update",
    "temporal-reasoning": "temporal_reasoning",
}


def longmemeval_history(sessions: Iterable[Sequence[dict[str, str]]], dates: Iterable[str]) -> str:
    """Sessions rendered as ``=== Session i (Date: d) ===`` followed by ``Role: content`` lines."""
    parts = []
    for i, (session, date) in enumerate(zip(sessions, dates), 1):
        lines = [f"=== Session {i} (Date: {date}) ==="]
        lines += [f"{turn['role'].capitalize()}: {turn['content']}" for turn in session]
        parts.append("\n".join(lines).strip())
    return "\n\n".join(parts)


def _load_longmemeval(path: Path, options: LoadOptions) -> list[EvalItem]:
    file = find_file(path, "longmemeval_s_cleaned.json", "longmemeval_s.json")
    items = []
    for number, row in enumerate(read_rows(file)[: options.limit], 1):
        qid = str(need(row, "question_id", file, number))
        history = longmemeval_history(
            need(row, "haystack_sessions", file, number, list), need(row, "haystack_dates", file, number, list)
        )
        question = need(row, "question", file, number, str)
        user = LONGMEMEVAL_USER.format(history_text=history, question=question)
        ability = "abstention" if qid.endswith("_abs") else LONGMEMEVAL_ABILITIES.get(str(row.get("question_type")), "other")
        items.append(
            EvalItem(
                id=qid,
                messages=({"role": "system", "content": LONGMEMEVAL_SYSTEM}, {"role": "user", "content": user}),
                gold=str(need(row, "answer", file, number)),
                question=question,
                groups={"ability": ability, "question_type": str(row.get("question_type"))},
            )
        )
    return items


def _score_longmemeval(items: Sequence[EvalItem], responses: Sequence[str], judge: Judge | None) -> list[ItemResult]:
    if judge is None:
        raise ValueError("longmemeval is scored only by the LLM judge: pass --judge")
    judged = _judge_scores(judge, "longmemeval", [JudgeCase(it.question, r, it.gold) for it, r in zip(items, responses)])
    return [ItemResult(it.id, float(acc or 0.0), it.groups, {"judge_reply": reply}) for it, (acc, reply) in zip(items, judged)]


register(Benchmark("longmemeval", "LongMemEval", None, _load_longmemeval, _score_longmemeval, True, None))


# golongrl dataset split ------------------------------------------------------------------------
# Scored by the same code as the trainer's held-out evaluation (golongrl.evaluation.policy).
def _load_golongrl(path: Path, options: LoadOptions) -> list[EvalItem]:
    from golongrl.data.io import read_valid_records
    from golongrl.data.schema import record_task

    from .policy import row_messages

    items = []
    for number, row in read_valid_records(path):
        if options.limit is not None and len(items) >= options.limit:
            break
        extra = row.get("extra_info") or {}
        items.append(
            EvalItem(
                id=str(extra.get("index", number)),
                messages=row_messages(row),
                gold=row["reward_model"]["ground_truth"],
                question=str(extra.get("question", "")),
                groups={"task": record_task(row)},
                extra={"row": row},
            )
        )
    return items


def _score_golongrl(items: Sequence[EvalItem], responses: Sequence[str], judge: Judge | None) -> list[ItemResult]:
    from .policy import score_responses

    # Scored exactly like a training rollout: the raw response goes to the reward library, whose
    # format gate and answer extraction handle the reasoning (this benchmark has strip=False).
    scored = score_responses([it.extra["row"] for it in items], [[r] for r in responses])
    return [ItemResult(it.id, float(s.score), dict(it.groups), {"reason": s.reason}) for it, [s] in zip(items, scored)]


register(
    Benchmark("golongrl", "golongrl tasks", None, _load_golongrl, _score_golongrl, False, None, macro_group="task", strip=False)
)


def get_benchmark(name: str) -> Benchmark:
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise KeyError(f"unknown benchmark {name!r}; known: {', '.join(sorted(BENCHMARKS))}") from None
