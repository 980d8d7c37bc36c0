"""Benchmark contamination of a golongrl training set, per benchmark (13-gram overlap).

Reuses the data pipeline's implementation of the reference's check
(:mod:`golongrl.data.decontam`): each benchmark's questions (first 4,000 characters) are indexed
as target-tokenizer 13-grams and every training row's ``extra_info.question`` is looked up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from golongrl.data.decontam import NGramIndex, decontaminate
from golongrl.data.io import read_records
from golongrl.data.tokens import get_counter

MAX_CHARS = 4000  # the reference indexes the first 4,000 characters of each benchmark text


def decontamination_report(
    questions: Mapping[str, Sequence[str]],
    dataset: str | Path,
    *,
    tokenizer: str = "smollm2",
    n: int = 13,
) -> dict[str, dict[str, Any]]:
    """For each benchmark: how many training rows share an ``n``-gram with one of its questions
    (``removed``, ``contamination_rate``) and how many of its questions are hit."""
    counter = get_counter(tokenizer)
    rows = [row for _, row in read_records(dataset)]
    report = {}
    for name, texts in questions.items():
        index = NGramIndex(n)
        for ids in counter.encode_many([t[:MAX_CHARS] for t in texts]):
            index.add(ids)
        _, stats = decontaminate(rows, index, counter)
        report[name] = {**stats, "training_rows": len(rows)}
    return report


def decontamination_markdown(report: Mapping[str, Mapping[str, Any]]) -> str:
    """The report as a markdown section (one row per benchmark)."""
    lines = [
        "### Decontamination (13-gram overlap of benchmark questions with the training set)",
        "",
        "| benchmark | questions | questions hit | training rows hit | contamination rate |",
        "|---|---|---|---|---|",
    ]
    for name, s in report.items():
        lines.append(
            f"| {name} | {s['benchmark_items']} | {s['benchmark_items_hit']} | "
            f"{s['removed']} / {s['training_rows']} | {100 * s['contamination_rate']:.2f} % |"
        )
    return "\n".join(lines)
