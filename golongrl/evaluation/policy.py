"""Per-task reward of a policy on a golongrl dataset split, scored with the reward library.

This is the one implementation behind both the trainer's held-out evaluation
(:mod:`golongrl.training.evaluate`, which re-exports it) and the ``golongrl`` benchmark of
``golongrl eval`` (:mod:`golongrl.evaluation.benchmarks`, which scores through
:func:`score_responses`).

Generation goes through any :class:`golongrl.inference.base.InferenceBackend` (the local
transformers backend for a model folder or the trainer's in-memory policy, or an
OpenAI-compatible server). Generations are cached by content hash in an SQLite file next to
the results, so an interrupted evaluation resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from golongrl.data.io import atomic_output
from golongrl.data.schema import record_task
from golongrl.inference.base import GenerationRequest, InferenceBackend, SamplingParams
from golongrl.rewards import ScoreRequest, ScoreResult, score_batch
from golongrl.tasks import TASK_TYPES


@dataclass
class EvalResult:
    """Per-task mean reward over prompts (each prompt's score is the mean of its ``n`` samples)."""

    per_task: dict[str, float]
    stderr: dict[str, float]
    counts: dict[str, int]
    overall: float
    dropped_overlong: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    """Wall time of the generation and scoring (0 when not measured)."""

    def to_dict(self) -> dict[str, Any]:
        return {"overall": self.overall, "per_task": self.per_task, "stderr": self.stderr, "counts": self.counts,
                "dropped_overlong": self.dropped_overlong, "reasons": self.reasons, "seconds": self.seconds}


def select_rows(rows: Sequence[dict[str, Any]], limit: int | None) -> list[dict[str, Any]]:
    """At most ``limit`` rows taken round-robin over task types (file order within a task), so a
    small evaluation still covers every task."""
    if limit is None or limit >= len(rows):
        return list(rows)
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_task[record_task(row)].append(row)
    order = [t for t in TASK_TYPES if t in by_task] + sorted(set(by_task) - set(TASK_TYPES))
    out: list[dict[str, Any]] = []
    depth = 0
    while len(out) < limit:
        added = False
        for task in order:
            if depth < len(by_task[task]) and len(out) < limit:
                out.append(by_task[task][depth])
                added = True
        if not added:
            break
        depth += 1
    return out


def prompt_id(row: Mapping[str, Any]) -> str:
    """A stable identity of a dataset row across evaluations: a hash of its prompt and ground
    truth, so subsets, reorderings and rows of several files still pair (dataset uids and
    indexes can repeat across files)."""
    content = json.dumps([row["prompt"], row["reward_model"]["ground_truth"]], sort_keys=True, ensure_ascii=False)
    return "sha256:" + hashlib.sha256(content.encode("utf-8")).hexdigest()[:16]


def row_messages(row: Mapping[str, Any]) -> tuple[dict[str, Any], ...]:
    """The chat prompt of a normalised row as a request's messages (copies, as the row has them)."""
    return tuple(dict(m) for m in row["prompt"])


def score_responses(rows: Sequence[Mapping[str, Any]], responses: Sequence[Sequence[str]], *,
                    reward_mode: str = "hardened", timeout_s: float = 10.0, workers: int | None = None,
                    progress: bool = False) -> list[list[ScoreResult]]:
    """Score ``responses[i]`` (any number of samples) against ``rows[i]`` with the reward library,
    exactly as a training rollout is scored: the raw text goes in (the reward's format gate and
    answer extraction handle the reasoning). Returns one list of results per row, in order."""
    items, owner = [], []
    for i, (row, texts) in enumerate(zip(rows, responses, strict=True)):
        for text in texts:
            items.append(ScoreRequest(row["data_source"], text, row["reward_model"]["ground_truth"],
                                      row.get("extra_info")))
            owner.append(i)
    results = score_batch(items, mode=reward_mode, timeout_s=timeout_s, workers=workers, progress=progress)
    per_row: list[list[ScoreResult]] = [[] for _ in rows]
    for i, res in zip(owner, results):
        per_row[i].append(res)
    return per_row


def evaluate_policy(backend: InferenceBackend, rows: Sequence[dict[str, Any]], *, sampling: SamplingParams,
                    reward_mode: str = "hardened", timeout_s: float = 10.0, workers: int | None = None,
                    max_prompt_tokens: int | None = None, tokenizer: Any = None, progress: bool = False,
                    output: str | Path | None = None) -> EvalResult:
    """Generate for every (validated, normalised) row, score, and aggregate per task.

    Rows whose chat prompt exceeds ``max_prompt_tokens`` (needs ``tokenizer``) are dropped and
    counted, never truncated. ``output``: a JSONL file (written atomically) with one line per
    prompt: index, prompt_id (:func:`prompt_id`, what pairs two evaluations), task,
    prompt_tokens (null without ``tokenizer``), context_tokens and target_tokens (the dataset's
    actual and nominal context length, if it has them), score,
    per-sample scores, reasons and responses.
    """
    from golongrl.inference.transformers_backend import encode_prompt

    kept, lengths, dropped = [], [], defaultdict(int)
    for row in rows:
        tokens = None if tokenizer is None else len(encode_prompt(tokenizer, row["prompt"], sampling.enable_thinking))
        if max_prompt_tokens is not None and tokens is not None and tokens > max_prompt_tokens:
            dropped[record_task(row)] += 1
            continue
        kept.append(row)
        lengths.append(tokens)
    requests = [GenerationRequest(messages=row_messages(row), sampling=sampling) for row in kept]
    generations = backend.generate(requests, progress=progress)
    per_row = score_responses(kept, [gen.texts for gen in generations], reward_mode=reward_mode,
                              timeout_s=timeout_s, workers=workers, progress=progress)
    reasons: dict[str, int] = defaultdict(int)
    by_task: dict[str, list[float]] = defaultdict(list)
    out_rows = []
    for i, (row, tokens, gen, res) in enumerate(zip(kept, lengths, generations, per_row)):
        task = record_task(row)
        info = row.get("extra_info") or {}
        score = sum(r.score for r in res) / max(1, len(res))
        by_task[task].append(score)
        for r in res:
            if r.reason is not None:
                reasons[r.reason] += 1
        out_rows.append({"index": info.get("index", i), "prompt_id": prompt_id(row), "task": task,
                         "prompt_tokens": tokens, "context_tokens": info.get("context_tokens"),
                         "target_tokens": info.get("target_tokens"),
                         "score": score, "scores": [r.score for r in res], "reasons": [r.reason for r in res],
                         "responses": gen.texts})
    per_task = {t: sum(v) / len(v) for t, v in sorted(by_task.items())}
    stderr = {t: _stderr(v) for t, v in sorted(by_task.items())}
    all_scores = [s for v in by_task.values() for s in v]
    result = EvalResult(per_task=per_task, stderr=stderr, counts={t: len(v) for t, v in sorted(by_task.items())},
                        overall=sum(all_scores) / len(all_scores) if all_scores else float("nan"),
                        dropped_overlong=dict(dropped), reasons=dict(reasons), rows=out_rows)
    if output is not None:
        with atomic_output(output, "w") as handle:
            for line in out_rows:
                handle.write(json.dumps(line, ensure_ascii=False) + "\n")
    return result


def _stderr(values: Sequence[float]) -> float:
    if len(values) < 2:
        return float("nan")
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return math.sqrt(var / len(values))


__all__ = ["EvalResult", "evaluate_policy", "prompt_id", "row_messages", "score_responses", "select_rows"]
