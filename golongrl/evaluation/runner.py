"""Run benchmarks and sweeps through a backend, score them and write results atomically.

Per benchmark the output folder gets ``<name>.json`` (summary: overall, breakdowns, component
scores, settings) and ``<name>.predictions.jsonl`` (one row per item: id, groups, score, raw and
stripped response, scorer evidence). Generation and judge calls go through the backends'
content-hash cache, so rerunning an interrupted evaluation only computes what is missing.
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from golongrl.data.io import atomic_output, write_records
from golongrl.inference.base import GenerationRequest, InferenceBackend, SamplingParams
from golongrl.inference.judge import Judge

from .benchmarks import Benchmark, EvalItem, ItemResult
from .text import strip_thinking

#: Numeric evidence fields averaged (x100) into a summary's "components".
COMPONENT_KEYS = ("rule_acc", "judge_acc", "cem", "f1")


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def summarize(results: Sequence[ItemResult], *, macro_group: str | None = None) -> dict[str, Any]:
    """Overall score x100 (mean over items, or over per-``macro_group`` means), per-group
    breakdowns x100 with counts, and component means (rule vs judge, CEM, F1)."""
    groups: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in results:
        for key, value in r.groups.items():
            groups[key][value].append(r.score)
    by_group = {
        key: {value: {"score": 100 * _mean(scores), "n": len(scores)} for value, scores in sorted(values.items())}
        for key, values in groups.items()
    }
    if macro_group and macro_group in by_group:
        overall = _mean([v["score"] for v in by_group[macro_group].values()])
    else:
        overall = 100 * _mean([r.score for r in results])
    components = {}
    for key in COMPONENT_KEYS:
        values = [float(r.details[key]) for r in results if r.details.get(key) is not None]
        if values:
            components[key] = 100 * _mean(values)
    return {"overall": overall, "n": len(results), "by_group": by_group, "components": components}


@dataclass
class RunSettings:
    """What the results file records about how they were produced."""

    model: str
    sampling: SamplingParams
    judge: str | None
    max_input_tokens: int | None
    limit: int | None


def evaluate_items(
    items: Sequence[EvalItem],
    scorer: Any,
    backend: InferenceBackend,
    *,
    judge: Judge | None,
    sampling: SamplingParams,
    strip: bool = True,
    progress: bool = False,
) -> tuple[list[ItemResult], list[str]]:
    """Generate one response per item (first of ``n``), strip thinking, score. Returns the
    results and the raw responses."""
    requests = [GenerationRequest(item.messages, sampling) for item in items]
    generations = backend.generate(requests, progress=progress)
    raw = [g.texts[0] if g.texts else "" for g in generations]
    responses = [strip_thinking(r) for r in raw] if strip else raw
    return scorer(items, responses, judge), raw


def write_results(
    out_dir: Path,
    name: str,
    summary: dict[str, Any],
    items: Sequence[EvalItem],
    results: Sequence[ItemResult],
    raw: Sequence[str],
    settings: RunSettings,
    elapsed_s: float,
) -> Path:
    """Write ``<name>.json`` and ``<name>.predictions.jsonl`` atomically; return the JSON path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [
        {
            "id": r.id,
            "groups": r.groups,
            "score": r.score,
            "response": text,
            "details": r.details,
            "n_tokens": item.extra.get("n_tokens"),
        }
        for item, r, text in zip(items, results, raw)
    ]
    write_records(out_dir / f"{name}.predictions.jsonl", rows)
    document = {
        "benchmark": name,
        **summary,
        "settings": {**asdict(settings), "sampling": asdict(settings.sampling)},
        "elapsed_s": round(elapsed_s, 2),
    }
    path = out_dir / f"{name}.json"
    with atomic_output(path, "w") as handle:
        json.dump(document, handle, indent=2, ensure_ascii=False, allow_nan=True)
    return path


def run_benchmark(
    benchmark: Benchmark,
    items: Sequence[EvalItem],
    backend: InferenceBackend,
    out_dir: Path,
    *,
    judge: Judge | None,
    settings: RunSettings,
    progress: bool = False,
) -> dict[str, Any]:
    """Evaluate a loaded benchmark and write its files; returns the summary."""
    start = time.perf_counter()
    results, raw = evaluate_items(
        items,
        benchmark.scorer,
        backend,
        judge=judge,
        sampling=settings.sampling,
        strip=benchmark.strip,
        progress=progress,
    )
    summary = summarize(results, macro_group=benchmark.macro_group)
    write_results(out_dir, benchmark.name, summary, items, results, raw, settings, time.perf_counter() - start)
    return summary
