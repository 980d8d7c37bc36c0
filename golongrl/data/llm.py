"""Phase 3 (LLM track): questions written by a model for all nine task types, verified
independently before they become rows.

Any OpenAI-compatible endpoint (vLLM, SGLang, hosted APIs) through
:func:`golongrl.inference.make_backend` (``openai:<base_url>#<model>``, key from
``llm.api_key_env``), for both splits and main documents of any domain (``llm.domains``).

**Generation.** The generator sees the main document's window and is asked for one JSON object
in the task's schema (:data:`SCHEMAS`, checked with ``jsonschema``): a question with its gold
and the evidence the gold rests on. Golds are rebuilt from the context where they can be (an
ordering is the order in which the evidence occurs, not the order the model claims).

**Rule checks.** Every evidence span is located in the assembled context, verbatim or, failing
that, by fuzzy alignment (``rapidfuzz``, score >= :data:`FUZZY_MIN`; the located span then
replaces the model's); answers that must be copied (a retrieved span, listed items, table
cells) occur verbatim; the question names something that occurs in the context (rejects
``What does the passage say?``); options are real, distinct phrases; list items are distinct;
ranked values are distinct numbers; a summary is not copied from the context.

**Verifier calls** (``llm.verify``), to a separate model if ``llm.verifier_backend`` is set:

1. *with context*: the row's own prompt; the reply must score at least the task's
   :data:`WITH_CONTEXT_MIN` under its hardened reward (it must match the gold);
2. *without context*: the question and instruction alone; the reply must score at most
   :data:`WITHOUT_CONTEXT_MAX` (a question answerable from priors is rejected);
3. *uniqueness* (single-answer tasks): the verifier lists every answer the context supports;
   more than one distinct answer rejects the question.

Every rejection is recorded with its stage and reason. Requests go through the backend's
content-addressed cache (``$GOLONGRL_CACHE/data-llm.sqlite``) and every decision is appended to
``<work>/llm-decisions.jsonl``, so a killed build resumes without asking again; requests run
``llm.concurrency`` at a time, at most ``llm.requests_per_second`` (cache hits are free).
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from golongrl.construct import Sample, ground_truth
from golongrl.data.assembly import AssemblyError, Context, UnitCache, assemble_context
from golongrl.data.config import DataConfig
from golongrl.data.corpus import Document
from golongrl.data.io import AppendLog
from golongrl.data.rows import make_row
from golongrl.data.verify import PERFECT, gold_response, verify_row
from golongrl.tasks import TASK_TYPES, get_task

LLM_TASKS: tuple[str, ...] = tuple(TASK_TYPES)
#: Lowest rapidfuzz partial-ratio at which a paraphrased evidence span counts as located.
FUZZY_MIN = 90.0
#: The verifier, given the context, must score at least this (graded rewards: near the gold).
WITH_CONTEXT_MIN: dict[str, float] = {t: (PERFECT if TASK_TYPES[t].binary else 0.8) for t in TASK_TYPES}
WITH_CONTEXT_MIN["summarization"] = 0.2  # two good summaries share far less than a list does
#: The verifier, without the context, must score at most this (binary: it must fail).
WITHOUT_CONTEXT_MAX: dict[str, float] = {t: (0.0 if TASK_TYPES[t].binary else 0.3) for t in TASK_TYPES}
#: Tasks whose gold is one answer, checked for uniqueness by the verifier.
SINGLE_ANSWER = frozenset({"precise_retrieval", "comprehension", "numerical_reasoning"})
#: LongBench-Pro secondary task each LLM construction is closest to (``extra_info.reward_mode``
#: for ``longbench_pro`` rows, ``lbp_task`` for the others).
LBP_TASK: dict[str, str] = {
    "precise_retrieval": "T3.2 Single-Hop Fact QA",
    "comprehension": "T3.1 Multi-Doc Integration QA",
    "exhaustive_retrieval": "T5.2 Key-Statement Citation Alignment",
    "numerical_reasoning": "T8.2 Single-Source Targeted Aggregation",
    "structured_extraction": "T8.2 Single-Source Targeted Aggregation",
    "structured_matching": "T8.1 Structured Multi-Source Consistency Verification",
    "graded_ranking": "T1.1 Global Cohesive Retrieval",
    "sequence_ordering": "T2.1 Global Timeline Reconstruction",
    "summarization": "T4.2 Query-Focused Summary",
}

_STR = {"type": "string", "minLength": 1}
_SPAN = {"type": "object", "required": ["item", "evidence"], "properties": {"item": _STR, "evidence": _STR}}
#: The JSON schema of the generator's reply, per task.
SCHEMAS: dict[str, dict[str, Any]] = {
    "precise_retrieval": {"type": "object", "required": ["question", "answer", "evidence"],
                          "properties": {"question": _STR, "answer": {**_STR, "maxLength": 120}, "evidence": _STR}},
    "comprehension": {"type": "object", "required": ["question", "options", "correct", "evidence"],
                      "properties": {"question": _STR, "options": {"type": "array", "items": _STR, "minItems": 4, "maxItems": 4},
                                     "correct": {"enum": ["A", "B", "C", "D"]}, "evidence": _STR}},
    "exhaustive_retrieval": {"type": "object", "required": ["question", "items"],
                             "properties": {"question": _STR, "items": {"type": "array", "items": _SPAN, "minItems": 2, "maxItems": 20}}},
    "numerical_reasoning": {"type": "object", "required": ["question", "answer", "evidence"],
                            "properties": {"question": _STR, "answer": {"type": ["string", "number"]},
                                           "evidence": {"type": "array", "items": _STR, "minItems": 1}}},
    "structured_extraction": {"type": "object", "required": ["question", "rows", "evidence"],
                              "properties": {"question": _STR, "rows": {"type": "array", "minItems": 1, "maxItems": 30,
                                                                        "items": {"type": "array", "items": _STR, "minItems": 1}},
                                             "evidence": {"type": "array", "items": _STR, "minItems": 1}}},
    "structured_matching": {"type": "object", "required": ["question", "pairs"],
                            "properties": {"question": _STR, "pairs": {"type": "array", "minItems": 2, "maxItems": 12, "items": {
                                "type": "object", "required": ["excerpt", "answer"],
                                "properties": {"excerpt": _STR, "answer": _STR}}}}},
    "graded_ranking": {"type": "object", "required": ["question", "items"],
                       "properties": {"question": _STR, "items": {"type": "array", "minItems": 3, "maxItems": 10, "items": {
                           "type": "object", "required": ["item", "value", "evidence"],
                           "properties": {"item": _STR, "value": {"type": "number"}, "evidence": _STR}}}}},
    "sequence_ordering": {"type": "object", "required": ["question", "events"],
                          "properties": {"question": _STR, "events": {"type": "array", "items": _SPAN, "minItems": 3, "maxItems": 10}}},
    "summarization": {"type": "object", "required": ["question", "summary"],
                      "properties": {"question": _STR, "summary": _STR}},
}

_GENERATOR_SYSTEM = "You write evaluation questions about documents. Reply with one JSON object and nothing else."
_VERIFIER_SYSTEM = "You answer questions about documents precisely, in the format asked."
_ALTERNATIVES_SYSTEM = "You check questions for ambiguity. Reply with one JSON object and nothing else."
_ASK = {
    "precise_retrieval": "one factual question whose answer is a short exact phrase (1-8 words) copied from the passage; "
                         "'answer' is that phrase and 'evidence' the full sentence containing it, copied exactly",
    "comprehension": "one multiple-choice question that needs understanding of the passage, with four options of which "
                     "exactly one is correct; 'correct' is its letter and 'evidence' a sentence, copied exactly, that supports it",
    "exhaustive_retrieval": "one question asking for every item of the passage that meets a condition; 'items' lists every "
                            "such item (a short phrase copied exactly) with the sentence containing it",
    "numerical_reasoning": "one question whose answer is a number computed from figures in the passage (a sum, difference, "
                           "count or ratio); 'answer' is the number and 'evidence' the sentences holding the figures, copied exactly",
    "structured_extraction": "one question asking for the rows of a table in the passage that meet a condition, with the "
                             "columns to give; 'rows' are those rows' values copied exactly, 'evidence' the table lines used",
    "structured_matching": "one question asking which entity each of several short excerpts (copied exactly) concerns or "
                           "belongs to; 'pairs' gives each excerpt and its answer",
    "graded_ranking": "one question asking to rank items of the passage by a quantity the passage states; 'items' gives "
                      "each item (copied exactly), its value as a number, and the sentence stating it",
    "sequence_ordering": "one question asking to order events of the passage as they happen; 'events' gives each event "
                         "(a short paraphrase) with the sentence of the passage describing it, copied exactly",
    "summarization": "one question asking for a focused summary of the passage (2-4 sentences); 'summary' is a good "
                     "answer in your own words",
}
_GENERIC_WORDS = frozenset("""passage text document documents excerpt excerpts author article section sections
    question answer says said state states stated statement statements following above below which what does about
    according mentioned describe described information main point points idea ideas whole write written item items
    order rank ranked list every there their these those this that with from have into more most than when where""".split())


def _content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[^\W\d_]{4,}", text.casefold()) if w not in _GENERIC_WORDS}


def locate(span: str, text: str) -> str | None:
    """``span`` as it occurs in ``text``: itself when verbatim, else the best fuzzy alignment
    scoring at least :data:`FUZZY_MIN` (the text's own characters), else ``None``."""
    span = span.strip()
    if not span:
        return None
    if span in text:
        return span
    from rapidfuzz import fuzz

    hit = fuzz.partial_ratio_alignment(span, text, score_cutoff=FUZZY_MIN)
    if hit is None:
        return None
    start, end = hit.dest_start, hit.dest_end
    # The alignment is as long as the span; widen it to whole words of the context.
    while start > 0 and text[start - 1].isalnum():
        start -= 1
    while end < len(text) and text[end].isalnum():
        end += 1
    return text[start:end].strip() or None


def _schema_problem(task: str, data: Any) -> str | None:
    from jsonschema import Draft202012Validator

    errors = sorted(Draft202012Validator(SCHEMAS[task]).iter_errors(data), key=lambda e: list(e.path))
    if not errors:
        return None
    where = "/".join(str(p) for p in errors[0].path) or "(root)"
    return f"reply does not match the {task} schema at {where}: {errors[0].message[:160]}"


def _decode(text: str) -> tuple[Any, str | None]:
    body = text.strip()
    body = re.sub(r"^```(?:json)?\s*|\s*```$", "", body)
    try:
        return json.loads(body), None
    except json.JSONDecodeError as exc:
        return None, f"reply is not JSON ({exc.msg})"


class Rejected(ValueError):
    """A generation that fails a check; ``stage`` says which (schema, evidence, verifier ...)."""

    def __init__(self, stage: str, reason: str) -> None:
        super().__init__(f"{stage}: {reason}")
        self.stage = stage
        self.reason = reason


def _verbatim(value: str, ctx: Context, what: str) -> str:
    value = value.strip()
    if value not in ctx.text:
        raise Rejected("answer", f"{what} {value[:60]!r} does not occur in the context")
    return value


def _evidence(spans: Sequence[str], ctx: Context) -> list[str]:
    located = []
    for span in spans:
        found = locate(span, ctx.text)
        if found is None:
            raise Rejected("evidence", f"evidence {span[:60]!r} is not in the context (verbatim or fuzzy)")
        located.append(found)
    return located


def _question(data: Mapping[str, Any], ctx: Context) -> str:
    question = " ".join(str(data["question"]).split())
    if not _content_words(question) & _content_words(ctx.text):
        raise Rejected("question", "the question names nothing that occurs in the context")
    return question


def _distinct(items: Sequence[str], what: str) -> None:
    folded = [" ".join(i.casefold().split()) for i in items]
    if len(set(folded)) != len(folded):
        raise Rejected("uniqueness", f"{what} are not distinct")


def _numbered(question: str, items: Sequence[str]) -> str:
    return question + "\n" + "\n".join(f"{n}. {item}" for n, item in enumerate(items, start=1))


def build_sample(task: str, data: Mapping[str, Any], ctx: Context, rng: random.Random, language: str = "English") -> Sample:
    """The :class:`Sample` a schema-valid reply describes, after the rule checks (raises
    :class:`Rejected`). Golds come from the context where they can."""
    question = _question(data, ctx)
    lbp = LBP_TASK[task]
    construction = f"llm_{task}"
    mode = lbp if TASK_TYPES[task].data_source == "longbench_pro" else task

    if task == "precise_retrieval":
        evidence = _evidence([data["evidence"]], ctx)
        answer = _verbatim(data["answer"], ctx, "answer")
        if answer.casefold() not in evidence[0].casefold():
            raise Rejected("answer", "the answer is not part of its evidence")
        if answer.casefold() in question.casefold():
            raise Rejected("question", "the question contains its own answer")
        return Sample(task, construction, question, ground_truth(label=answer, language=language), answer, mode,
                      lbp_task=lbp, evidence=evidence, answer_offset=ctx.text.find(evidence[0]))
    if task == "comprehension":
        evidence = _evidence([data["evidence"]], ctx)
        options = [" ".join(o.split()) for o in data["options"]]
        if any(not re.search(r"[^\W\d_]{2,}", o) for o in options):
            raise Rejected("options", "an option is a placeholder, not a phrase")
        _distinct(options, "options")
        gold_text = options["ABCD".index(data["correct"])]
        order = list(range(4))
        rng.shuffle(order)  # the generator's favourite letter must not become the dataset's
        shuffled = [options[i] for i in order]
        letter = "ABCD"[shuffled.index(gold_text)]
        body = question + "\n" + "\n".join(f"({'ABCD'[i]}) {o}" for i, o in enumerate(shuffled))
        return Sample(task, construction, body, ground_truth(label=letter, language=language),
                      f"The correct answer is ({letter})", mode, lbp_task=lbp, evidence=evidence,
                      answer_offset=ctx.text.find(evidence[0]), candidates=shuffled)
    if task == "exhaustive_retrieval":
        items = [_verbatim(i["item"], ctx, "item") for i in data["items"]]
        evidence = _evidence([i["evidence"] for i in data["items"]], ctx)
        _distinct(items, "items")
        return Sample(task, construction, question, ground_truth(doc_ids=items, language=language),
                      "[Answer]\n" + "\n".join(items), mode, lbp_task=lbp, evidence=evidence,
                      answer_offset=ctx.text.find(evidence[0]))
    if task == "numerical_reasoning":
        evidence = _evidence(data["evidence"], ctx)
        answer = str(data["answer"]).strip().replace(",", "")
        if not re.fullmatch(r"-?\d+(\.\d+)?(/\d+)?", answer):
            raise Rejected("answer", f"answer {answer[:40]!r} is not a plain number")
        if not any(re.search(r"\d", e) for e in evidence):
            raise Rejected("evidence", "no evidence span holds a figure")
        return Sample(task, construction, question, ground_truth(label=answer, language=language),
                      f"\\boxed{{{answer}}}", mode, lbp_task=lbp, evidence=evidence,
                      answer_offset=ctx.text.find(evidence[0]))
    if task == "structured_extraction":
        evidence = _evidence(data["evidence"], ctx)
        rows = [[_verbatim(cell, ctx, "cell") for cell in row] for row in data["rows"]]
        _distinct(["\x1f".join(r) for r in rows], "rows")
        if len({len(r) for r in rows}) != 1:
            raise Rejected("answer", "rows have different numbers of values")
        label = json.dumps({"data": rows}, ensure_ascii=False)
        return Sample(task, construction, question, ground_truth(label=label, language=language),
                      f"<answer>{label}</answer>", mode, lbp_task=lbp, evidence=evidence,
                      answer_offset=ctx.text.find(evidence[0]))
    if task == "structured_matching":
        pairs = list(data["pairs"])
        rng.shuffle(pairs)
        excerpts = [_verbatim(p["excerpt"], ctx, "excerpt") for p in pairs]
        _distinct(excerpts, "excerpts")
        answers = [" ".join(p["answer"].split()) for p in pairs]
        if len({a.casefold() for a in answers}) < 2:
            raise Rejected("uniqueness", "every excerpt has the same answer (nothing to match)")
        gold = [f"{n}: {a}" for n, a in enumerate(answers, start=1)]
        return Sample(task, construction, _numbered(question, [f'"{e}"' for e in excerpts]),
                      ground_truth(doc_ids=gold, language=language), "[Answer]\n" + "\n".join(gold), mode,
                      lbp_task=lbp, evidence=excerpts, answer_offset=ctx.text.find(excerpts[0]), candidates=excerpts)
    if task == "graded_ranking":
        items = [_verbatim(i["item"], ctx, "item") for i in data["items"]]
        evidence = _evidence([i["evidence"] for i in data["items"]], ctx)
        values = [float(i["value"]) for i in data["items"]]
        _distinct(items, "items")
        if len(set(values)) != len(values):
            raise Rejected("uniqueness", "two items share a value (the ranking is not unique)")
        for item, value, ev in zip(items, values, evidence):
            figures = {float(x.replace(",", "")) for x in re.findall(r"\d[\d,]*(?:\.\d+)?", ev)}
            if value not in figures:
                raise Rejected("evidence", f"the value {value:g} of {item[:40]!r} is not stated in its evidence")
        ranked = [i for _, i in sorted(zip(values, items), key=lambda p: -p[0])]
        shown = list(items)
        rng.shuffle(shown)
        return Sample(task, construction, _numbered(question, shown), ground_truth(doc_ids=ranked, language=language),
                      "[Answer]\n" + "\n".join(ranked), mode, lbp_task=lbp, evidence=evidence,
                      answer_offset=ctx.text.find(evidence[0]), candidates=shown)
    if task == "sequence_ordering":
        events = [" ".join(e["item"].split()) for e in data["events"]]
        evidence = _evidence([e["evidence"] for e in data["events"]], ctx)
        _distinct(events, "events")
        positions = [ctx.text.find(ev) for ev in evidence]
        if len(set(positions)) != len(positions):
            raise Rejected("uniqueness", "two events rest on the same evidence (their order is not defined)")
        shown = list(range(len(events)))
        rng.shuffle(shown)
        # The gold order is where each event's evidence occurs, whatever order the model claimed.
        gold = [str(shown.index(i) + 1) for i in sorted(range(len(events)), key=lambda i: positions[i])]
        return Sample(task, construction, _numbered(question, [events[i] for i in shown]),
                      ground_truth(doc_ids=gold, language=language), "[Answer]\n" + "\n".join(gold), mode,
                      lbp_task=lbp, evidence=evidence, answer_offset=min(positions),
                      candidates=[events[i] for i in shown])
    summary = " ".join(str(data["summary"]).split())
    if not 10 <= len(summary.split()) <= 200:
        raise Rejected("answer", "summary is not 10-200 words")
    if locate(summary, ctx.text) is not None:
        raise Rejected("answer", "the summary is copied from the context")
    return Sample(task, construction, question, ground_truth(doc_ids=[summary], language=language),
                  "[Answer]\n" + summary, mode, lbp_task=lbp, answer_offset=ctx.main.start)


def parse_reply(task: str, text: str, ctx: Context, rng: random.Random | None = None,
                language: str = "English") -> tuple[Sample | None, str | None]:
    """A generator reply as a rule-checked :class:`Sample`, or ``(None, "stage: reason")``."""
    data, problem = _decode(text)
    if problem is not None:
        return None, f"json: {problem}"
    problem = _schema_problem(task, data)
    if problem is not None:
        return None, f"schema: {problem}"
    try:
        return build_sample(task, data, ctx, rng or random.Random(0), language), None
    except Rejected as exc:
        return None, str(exc)


def generator_prompt(task: str, ctx: Context) -> str:
    """What the generator is asked: the main window, the task and its JSON schema."""
    passage = "\n\n".join(ctx.main.units)
    return (f"Passage from \"{ctx.main.doc.title}\":\n\n{passage}\n\nTask ({task}): write {_ASK[task]}. "
            f"Reply with one JSON object matching this JSON schema:\n{json.dumps(SCHEMAS[task])}")


def _as_response(text: str) -> str:
    return text if "</think>" in text else gold_response(text)


def _score(row: Mapping[str, Any], text: str) -> float:
    from golongrl.rewards import compute_score

    return float(compute_score(row["data_source"], _as_response(text), row["reward_model"]["ground_truth"],
                               row["extra_info"], mode="hardened"))


class RateLimiter:
    """At most ``rate`` acquisitions per second across threads (``rate <= 0``: no limit)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()
        self._clock, self._sleep = clock, sleep

    def acquire(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            self._sleep(start - now)


def make_llm_backend(spec: str, config: Any, limiter: RateLimiter, cache: Path | None) -> Any:
    """An OpenAI-compatible backend whose uncached requests pass through ``limiter``."""
    from golongrl.inference.openai_backend import OpenAICompatibleBackend
    from golongrl.inference import parse_openai_spec

    parsed = parse_openai_spec(spec)
    if parsed is None:
        raise ValueError(f"llm backends must be 'openai:<base_url>#<model>', got {spec!r}")

    class _Limited(OpenAICompatibleBackend):
        def _one(self, request: Any) -> Any:  # only cache misses reach the endpoint
            limiter.acquire()
            return super()._one(request)

    # One request per generate() call, from up to `concurrency` threads: the HTTP pool must
    # hold that many connections.
    return _Limited(parsed[0], parsed[1], concurrency=config.concurrency, max_retries=config.max_retries, timeout_s=config.timeout_s,
                    api_key_env=config.api_key_env, on_error="empty", cache=cache)


@dataclass
class Verifier:
    """The independent checks of a built row (see the module docstring)."""

    backend: Any
    max_new_tokens: int = 768
    seed: int = 0

    def _ask(self, system: str, content: str) -> str | None:
        from golongrl.inference import GenerationRequest, SamplingParams, chat

        sampling = SamplingParams(max_new_tokens=self.max_new_tokens, temperature=0.0, seed=self.seed)
        generation = self.backend.generate([GenerationRequest(chat(content, system=system), sampling)])[0]
        if "error" in generation.finish_reasons or not generation.texts:
            return None
        return generation.texts[0]

    def check(self, task: str, row: Mapping[str, Any]) -> list[str]:
        """Reasons the row fails the verifier (empty list: it passes). Scores are recorded in
        ``row["extra_info"]["llm_verification"]``."""
        info = row["extra_info"]
        prompt = row["prompt"][-1]["content"]
        with_text = self._ask(_VERIFIER_SYSTEM, prompt)
        if with_text is None:
            return ["verifier: endpoint failed after retries (with context)"]
        with_score = _score(row, with_text)
        blind_prompt = f"Question: {info['question']}\n\n{info.get('instruction') or get_task(task).instruction}"
        blind_text = self._ask(_VERIFIER_SYSTEM, blind_prompt)
        if blind_text is None:
            return ["verifier: endpoint failed after retries (without context)"]
        blind_score = _score(row, blind_text)
        info["llm_verification"] = {"with_context": round(with_score, 4), "without_context": round(blind_score, 4)}
        problems = []
        if with_score < WITH_CONTEXT_MIN[task]:
            problems.append(f"verifier: with the context it scores {with_score:.2f} < {WITH_CONTEXT_MIN[task]:.2f}")
        if blind_score > WITHOUT_CONTEXT_MAX[task] or (not TASK_TYPES[task].binary and blind_score >= with_score):
            problems.append(f"verifier: without the context it scores {blind_score:.2f} (answerable from priors)")
        if task in SINGLE_ANSWER and not problems:
            reply = self._ask(_ALTERNATIVES_SYSTEM, f"{prompt}\n\nDo not answer in that format. Instead list every "
                              'distinct answer the text supports, as {"answers": [...]}.')
            if reply is None:
                return ["verifier: endpoint failed after retries (uniqueness)"]
            data, bad = _decode(reply)
            answers = data.get("answers") if isinstance(data, dict) else None
            if bad or not isinstance(answers, list):
                problems.append("uniqueness: the verifier's answer list is not JSON {\"answers\": [...]}")
            else:
                distinct = {" ".join(str(a).casefold().split()).strip(".()") for a in answers if str(a).strip()}
                if len(distinct) > 1:
                    problems.append(f"uniqueness: the verifier finds {len(distinct)} answers")
            info["llm_verification"]["answers_found"] = answers if isinstance(answers, list) else None
        return problems


@dataclass(frozen=True)
class Plan:
    """One LLM-backed sample to make."""

    key: str
    split: str
    task: str
    index: int
    ctx: Context
    target: int


def _plans(config: DataConfig, splits: dict[str, list[Document]], cache: UnitCache) -> tuple[list[Plan], list[dict[str, Any]]]:
    cfg = config.llm
    plans: list[Plan] = []
    failures: list[dict[str, Any]] = []
    counts = {"train": cfg.samples_per_task, "eval": cfg.eval_samples_per_task}
    for split, n in counts.items():
        pool = [d for d in splits.get(split, []) if not cfg.domains or d.domain in cfg.domains]
        if not pool or not n:
            continue
        lengths = config.context.train_lengths if split == "train" else config.context.eval_lengths
        for task in cfg.tasks:
            for i in range(n):
                key = f"{split}/llm/{task}/{i}"
                rng = random.Random(f"{config.seed}/{key}")
                target = lengths[i % len(lengths)]
                main = rng.choice(sorted({d.domain for d in pool}))
                main_doc = rng.choice([d for d in pool if d.domain == main])
                # Distractors of the same domain first: the question must be told apart from them.
                others = [d for d in splits[split] if d.id != main_doc.id]
                rng.shuffle(others)
                others.sort(key=lambda d: d.domain != main_doc.domain)
                try:
                    ctx = assemble_context(main_doc, others, target, cache, rng, position=rng.random(),
                                           tolerance=config.context.tolerance)
                except AssemblyError as exc:
                    failures.append({"key": key, "reason": f"llm_{task} on {main_doc.id}: assembly: {exc}", "built": False})
                    continue
                plans.append(Plan(key, split, task, i, ctx, target))
    return plans, failures


def make_sample(plan: Plan, generator: Any, verifier: Verifier | None, config: DataConfig) -> dict[str, Any]:
    """Generate, parse, rule-check and verify one plan: ``{"row": ...}`` or ``{"reason": ...}``."""
    from golongrl.inference import GenerationRequest, SamplingParams, chat

    cfg = config.llm
    name = f"llm_{plan.task} on {plan.ctx.main.doc.id}"
    sampling = SamplingParams(max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, seed=config.seed)
    request = GenerationRequest(chat(generator_prompt(plan.task, plan.ctx), system=_GENERATOR_SYSTEM), sampling)
    generation = generator.generate([request])[0]
    if "error" in generation.finish_reasons or not generation.texts:
        return {"reason": f"{name}: generator: endpoint failed after retries"}
    rng = random.Random(f"{config.seed}/{plan.key}/shuffle")
    language = "Chinese" if plan.ctx.main.doc.language == "zh" else "English"
    sample, problem = parse_reply(plan.task, generation.texts[0], plan.ctx, rng, language)
    if sample is None:
        return {"reason": f"{name}: {problem}"}
    row = make_row(sample, plan.ctx, split=plan.split, uid=f"{plan.split}-{plan.task}-llm-{plan.index:05d}",
                   target=plan.target, language=plan.ctx.main.doc.language)
    problems = verify_row(row, plan.ctx.text, sample.answer, sample.evidence, sample.checks)
    if problems:
        return {"reason": f"{name}: gold: " + "; ".join(problems)}
    if verifier is not None:
        problems = verifier.check(plan.task, row)
        if problems:
            return {"reason": f"{name}: " + "; ".join(problems)}
    return {"row": row}


def build_llm_samples(
    config: DataConfig, splits: dict[str, list[Document]], cache: UnitCache, work: Path
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Make every configured LLM-backed sample of both splits; return ``(rows, failures)``.

    Decisions are appended to ``<work>/llm-decisions.jsonl`` as they are made; a rerun reuses
    them (same key and same generator prompt) and asks only for what is missing."""
    from golongrl.inference.models import cache_dir

    cfg = config.llm
    plans, failures = _plans(config, splits, cache)
    if not plans:
        return [], failures
    limiter = RateLimiter(cfg.requests_per_second)
    store = cache_dir() / "data-llm.sqlite"
    generator = make_llm_backend(cfg.backend, cfg, limiter, store)
    generator.extra_body = {"response_format": {"type": "json_object"}}
    verifier = None
    if cfg.verify:
        verifier = Verifier(make_llm_backend(cfg.verifier_backend or cfg.backend, cfg, limiter, store),
                            max_new_tokens=cfg.max_new_tokens, seed=config.seed)
    work.mkdir(parents=True, exist_ok=True)
    log = AppendLog(work / "llm-decisions.jsonl")

    def fingerprint(plan: Plan) -> str:
        import hashlib

        return hashlib.sha256(generator_prompt(plan.task, plan.ctx).encode("utf-8")).hexdigest()[:16]

    def run(plan: Plan) -> dict[str, Any]:
        done = log.items.get(plan.key)
        if done is not None and done.get("prompt_hash") == fingerprint(plan):
            return done
        decision = make_sample(plan, generator, verifier, config)
        if "endpoint failed" in decision.get("reason", ""):
            return decision  # not logged: a rerun must ask again
        with lock:
            log.add(plan.key, prompt_hash=fingerprint(plan), **decision)
        return log.items[plan.key]

    lock = threading.Lock()
    rows: list[dict[str, Any]] = []
    try:
        with ThreadPoolExecutor(max_workers=cfg.concurrency) as pool:
            decisions = list(pool.map(run, plans))
    finally:
        log.close()
    for plan, decision in zip(plans, decisions):
        if decision.get("row") is not None:
            rows.append(decision["row"])
        else:
            failures.append({"key": plan.key, "reason": decision["reason"], "built": False})
    return rows, failures


__all__ = [
    "FUZZY_MIN", "LBP_TASK", "LLM_TASKS", "Plan", "RateLimiter", "Rejected", "SCHEMAS", "SINGLE_ANSWER",
    "Verifier", "WITHOUT_CONTEXT_MAX", "WITH_CONTEXT_MIN", "build_llm_samples", "build_sample", "generator_prompt",
    "locate", "make_llm_backend", "make_sample", "parse_reply",
]
