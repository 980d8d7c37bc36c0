"""Rows built by the real pipeline from the bundled corpus, for tests that check a construction's
gold against the prompt's own text (parsed here independently of the constructions)."""

from __future__ import annotations

import csv
import io
import re
from functools import lru_cache
from typing import Any

from golongrl.data.assembly import UnitCache
from golongrl.data.config import DataConfig
from golongrl.data.constructions import CONSTRUCTIONS
from golongrl.data.corpus import annotate_tokens, load_default_corpus
from golongrl.data.pipeline import Builder, task_pools
from golongrl.data.rows import PROMPT_PREAMBLE
from golongrl.data.tokens import get_counter
from golongrl.rewards import compute_score

_HEADING = re.compile(r"^# (.+)$", re.M)


@lru_cache(maxsize=1)
def _warmup_builder() -> Builder:
    counter = get_counter("smollm2")
    docs = load_default_corpus(max_dialogues=30)
    annotate_tokens(docs, counter)
    config = DataConfig.model_validate(
        {"levels": ["warmup"], "context": {"train_lengths": [256, 512, 768]}, "max_attempts": 6}
    )
    return Builder(config, UnitCache(counter), {"train": task_pools(docs)})


@lru_cache(maxsize=None)
def warmup_rows(name: str, count: int = 8) -> tuple[dict[str, Any], ...]:
    """Up to ``count`` train rows of the warm-up construction ``name`` (256-768-token contexts)."""
    builder = _warmup_builder()
    spec = CONSTRUCTIONS[name]
    rows = [builder.attempt("train", spec.task, i, count, construction=name)[0] for i in range(count)]
    return tuple(r for r in rows if r is not None)


def context_of(row: dict[str, Any]) -> str:
    """The context text of a row's prompt (between the preamble and the question)."""
    content = row["prompt"][0]["content"]
    assert content.startswith(PROMPT_PREAMBLE + "\n\n")
    return content[len(PROMPT_PREAMBLE) + 2 : content.rindex("\n\nQuestion: ")]


def sections_of(row: dict[str, Any]) -> list[tuple[str, str, int]]:
    """``(heading, body, offset of the heading)`` of each ``# heading`` section of the context."""
    text = context_of(row)
    marks = list(_HEADING.finditer(text))
    return [
        (m.group(1), text[m.end() : marks[i + 1].start() if i + 1 < len(marks) else len(text)].strip(), m.start())
        for i, m in enumerate(marks)
    ]


def table_of(body: str) -> tuple[list[str], list[list[str]]]:
    """Header and complete rows of a CSV section body."""
    parsed = list(csv.reader(io.StringIO(body)))
    return parsed[0], [r for r in parsed[1:] if len(r) == len(parsed[0])]


def quoted_lines(question: str) -> dict[str, str]:
    """``{number: text}`` of the question's ``N. "text"`` (or ``N. text``) lines."""
    found = re.findall(r'^(\d+)\. "?(.*?)"?$', question, re.M)
    return dict(found)


def listed_items(question: str) -> list[str]:
    """The question's ``- item`` lines."""
    return re.findall(r"^- (.+)$", question, re.M)


def hardened(row: dict[str, Any], response: str) -> float:
    """The hardened reward of ``response`` to ``row``."""
    return compute_score(row["data_source"], response, row["reward_model"]["ground_truth"], row["extra_info"])


def gold_items(row: dict[str, Any]) -> list[str]:
    return list(row["reward_model"]["ground_truth"]["doc_ids"])


def question_of(row: dict[str, Any]) -> str:
    return row["extra_info"]["question"]


def words_of(text: str) -> list[str]:
    """Word tokens: runs of word characters joined by inner apostrophes or hyphens."""
    return re.findall(r"\w+(?:['’-]\w+)*", text)
