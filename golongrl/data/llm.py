"""Phase 3 (LLM track): questions and summaries written by a model, verified like the rest.

Any OpenAI-compatible endpoint (vLLM, SGLang, hosted APIs) through
:func:`golongrl.inference.make_backend` (``openai:<base_url>#<model>``, key from
``llm.api_key_env``). The backend brings concurrency (the rate limit), retries with backoff
and a content-addressed cache under ``<cache>/data-llm.sqlite`` (``$GOLONGRL_CACHE``), so a
rerun never pays for the same request twice. The model is asked for a JSON object
(``response_format: json_object``); a reply that is not valid JSON, misses a field, or whose
evidence is not verbatim in the context is recorded as a failure, and so is an endpoint that
still fails after its retries: the build finishes with what verified.

What the model writes, per task:

* precise_retrieval: ``{"question", "answer", "evidence"}``; the answer must be a short span
  of the evidence sentence, which must occur exactly once in the context.
* comprehension: ``{"question", "options": [4], "correct": "A".."D", "evidence"}``.
* summarization: ``{"summary"}`` of the main document window (10-200 words, not copied).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from golongrl.data.assembly import AssemblyError, Context, UnitCache, assemble_context
from golongrl.data.config import DataConfig
from golongrl.construct import Sample, ground_truth
from golongrl.data.corpus import Document
from golongrl.data.verify import verify_row

LLM_TASKS = ("precise_retrieval", "comprehension", "summarization")

_SYSTEM = "You write evaluation questions about documents. Reply with one JSON object and nothing else."
_ASK = {
    "precise_retrieval": (
        "Write one factual question whose answer is a short exact phrase (1-6 words) copied from the passage. "
        'Return {"question": ..., "answer": <the exact phrase>, "evidence": <the full sentence of the passage '
        "containing the answer, copied exactly>}."
    ),
    "comprehension": (
        "Write one multiple-choice question that needs understanding of the passage, with four options of which "
        'exactly one is correct. Return {"question": ..., "options": [four strings], "correct": "A"|"B"|"C"|"D", '
        '"evidence": <a sentence of the passage, copied exactly, that supports the answer>}.'
    ),
    "summarization": 'Summarise the passage in 2-4 sentences. Return {"summary": ...}.',
}


def _request_text(task: str, ctx: Context) -> str:
    passage = "\n\n".join(ctx.main.units)
    return f"Passage from \"{ctx.main.doc.title}\":\n\n{passage}\n\n{_ASK[task]}"


def parse_reply(task: str, text: str, ctx: Context) -> tuple[Sample | None, str | None]:
    """Turn a model reply into a :class:`Sample`, or explain why not."""
    try:
        data = json.loads(text.strip().removeprefix("```json").removesuffix("```").strip())
    except json.JSONDecodeError as exc:
        return None, f"reply is not JSON ({exc.msg})"
    if not isinstance(data, dict):
        return None, "reply is not a JSON object"
    if task == "summarization":
        summary = data.get("summary")
        if not isinstance(summary, str) or not 10 <= len(summary.split()) <= 200:
            return None, "summary missing or not 10-200 words"
        if summary in ctx.text:
            return None, "summary is copied from the context"
        question = f'Summarise the passage from "{ctx.main.doc.title}" in the text above in 2-4 sentences.'
        return Sample("summarization", "llm_summary", question, ground_truth(doc_ids=[summary]), "[Answer]\n" + summary,
                      "T4.1 Global-Coverage Constrained Summary", checks=[("summary not copied", summary not in ctx.text)],
                      answer_offset=ctx.main.start), None
    question, evidence = data.get("question"), data.get("evidence")
    if not isinstance(question, str) or not question.strip() or not isinstance(evidence, str) or not evidence.strip():
        return None, "question or evidence missing"
    evidence = evidence.strip()
    if ctx.text.count(evidence) != 1:
        return None, "evidence does not occur exactly once in the context"
    if task == "precise_retrieval":
        answer = data.get("answer")
        if not isinstance(answer, str) or not answer.strip() or answer.strip() not in evidence:
            return None, "answer missing or not a span of the evidence"
        answer = answer.strip()
        return Sample("precise_retrieval", "llm_span_question", question.strip(), ground_truth(label=answer), answer,
                      "precise_retrieval", evidence=[evidence], checks=[("answer inside evidence", answer in evidence)],
                      answer_offset=ctx.text.find(evidence)), None
    options, correct = data.get("options"), data.get("correct")
    if (not isinstance(options, list) or len(options) != 4 or not all(isinstance(o, str) and o.strip() for o in options)
            or len({o.strip() for o in options}) != 4):
        return None, "options must be four distinct strings"
    if correct not in ("A", "B", "C", "D"):
        return None, "correct must be one of A-D"
    body = question.strip() + "\n" + "\n".join(f"({'ABCD'[i]}) {o.strip()}" for i, o in enumerate(options))
    return Sample("comprehension", "llm_multiple_choice", body, ground_truth(label=correct),
                  f"The correct answer is ({correct})", "comprehension", evidence=[evidence],
                  answer_offset=ctx.text.find(evidence)), None


def build_llm_samples(
    config: DataConfig, splits: dict[str, list[Document]], cache: UnitCache, work: Path
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Construct, ask, parse and verify the configured LLM-backed samples (train split)."""
    from golongrl.data.rows import make_row
    from golongrl.inference import GenerationRequest, SamplingParams, chat, make_backend
    from golongrl.inference.models import cache_dir

    cfg = config.llm
    docs = [d for d in splits["train"] if d.kind in ("prose", "dialogue")]
    plans: list[tuple[str, int, Context, int]] = []
    failures: list[dict[str, Any]] = []
    for task in cfg.tasks:
        for i in range(cfg.samples_per_task):
            key = f"train/llm/{task}/{i}"
            rng = random.Random(f"{config.seed}/llm/{task}/{i}")
            target = config.context.train_lengths[i % len(config.context.train_lengths)]
            main = rng.choice(docs)
            others = [d for d in splits["train"] if d.id != main.id]
            rng.shuffle(others)
            try:
                ctx = assemble_context(main, others, target, cache, rng, position=rng.random(),
                                       tolerance=config.context.tolerance)
            except AssemblyError as exc:
                failures.append({"key": key, "reason": f"llm_{task} on {main.id}: {exc}", "built": False})
                continue
            plans.append((task, i, ctx, target))
    if not plans:
        return [], failures
    backend = make_backend(
        cfg.backend, concurrency=cfg.concurrency, max_retries=cfg.max_retries, timeout_s=cfg.timeout_s,
        api_key_env=cfg.api_key_env, on_error="empty", cache=cache_dir() / "data-llm.sqlite",
        extra_body={"response_format": {"type": "json_object"}},
    )
    sampling = SamplingParams(max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, seed=config.seed)
    requests = [GenerationRequest(chat(_request_text(task, ctx), system=_SYSTEM), sampling) for task, _, ctx, _ in plans]
    rows: list[dict[str, Any]] = []
    for (task, i, ctx, target), generation in zip(plans, backend.generate(requests)):
        key = f"train/llm/{task}/{i}"
        name = f"llm_{task} on {ctx.main.doc.id}"
        if "error" in generation.finish_reasons or not generation.texts:
            failures.append({"key": key, "reason": f"{name}: endpoint failed after retries", "built": False})
            continue
        sample, problem = parse_reply(task, generation.texts[0], ctx)
        if sample is None:
            failures.append({"key": key, "reason": f"{name}: {problem}", "built": False})
            continue
        row = make_row(sample, ctx, split="train", uid=f"train-{task}-llm-{i:05d}", target=target,
                       language=ctx.main.doc.language)
        problems = verify_row(row, ctx.text, sample.answer, sample.evidence, sample.checks)
        if problems:
            failures.append({"key": key, "reason": f"{name}: " + "; ".join(problems), "built": False})
            continue
        rows.append(row)
    return rows, failures


__all__ = ["LLM_TASKS", "build_llm_samples", "parse_reply"]
