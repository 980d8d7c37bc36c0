"""Rows of the rule-based constructions built from the bundled corpus, for the task tests that
re-check a construction's gold against its context independently (by reading the prompt, never
by calling the construction again). The corpus is loaded once per test process."""

from __future__ import annotations

import csv
import functools
import io
import re
from typing import Any

from golongrl.data.assembly import UnitCache
from golongrl.data.config import DataConfig
from golongrl.data.corpus import annotate_tokens, load_default_corpus
from golongrl.data.pipeline import Builder, task_pools
from golongrl.data.rows import PROMPT_PREAMBLE
from golongrl.data.tokens import get_counter
from golongrl.rewards import compute_score

#: The warm-up tier's training lengths (short contexts).
WARMUP_LENGTHS = [256, 512, 768]


@functools.lru_cache(maxsize=None)
def _builder() -> Builder:
    counter = get_counter("smollm2")
    docs = load_default_corpus(max_dialogues=30)
    annotate_tokens(docs, counter)
    config = DataConfig.model_validate({
        "levels": ["core", "warmup"], "context": {"train_lengths": WARMUP_LENGTHS}, "max_attempts": 8,
    })
    return Builder(config, UnitCache(counter), {"train": task_pools(docs)})


@functools.lru_cache(maxsize=None)
def construction_rows(task: str, name: str, count: int = 6) -> tuple[dict[str, Any], ...]:
    """Up to ``count`` verified train rows of construction ``name`` (of ``task``)."""
    builder = _builder()
    rows = [builder.attempt("train", task, i, count, construction=name)[0] for i in range(count)]
    return tuple(r for r in rows if r is not None)


def context_of(row: dict[str, Any]) -> str:
    """The context text of a built row's prompt (between the preamble and the question)."""
    content = row["prompt"][0]["content"]
    assert content.startswith(PROMPT_PREAMBLE + "\n\n")
    return content[len(PROMPT_PREAMBLE) + 2:content.rindex("\n\nQuestion: ")]


def section_headings(context: str) -> list[str]:
    return re.findall(r"^# (.+)$", context, flags=re.M)


def table_in(context: str, title: str) -> tuple[list[str], list[list[str]]]:
    """Header and complete rows of the table section headed ``title`` in ``context``."""
    head = f"# {title}\n\n"
    start = context.index(head) + len(head)
    end = context.find("\n\n", start)
    parsed = list(csv.reader(io.StringIO(context[start:] if end < 0 else context[start:end])))
    return parsed[0], [r for r in parsed[1:] if len(r) == len(parsed[0])]


def quoted(question: str) -> list[str]:
    return re.findall(r'"([^"\n]+)"', question)


def gold_score(row: dict[str, Any], response: str) -> float:
    """Hardened reward of ``response`` (an answer after a closed think block) on ``row``."""
    return compute_score(row["data_source"], "<think>\nok\n</think>\n" + response,
                         row["reward_model"]["ground_truth"], row["extra_info"])
