"""Summarization (ROUGE-L) constructions whose reference is derived from the context itself,
so every row has its own reference and a title or the question alone shares little with it.

* ``query_focused_extract`` [prose, dialogue]: a query-focused extractive summary: every
  sentence of the context that contains a given word, in context order (2-6 sentences from at
  least two sections). Closest LongBench-Pro task: T4.2 Query-Focused Summary.
* ``table_column_profile`` [table]: a profile of one column of a named table written from its
  rows: how many rows, the smallest and largest values with their row keys, and the mean.
  Closest: T4.1 Global-Coverage Constrained Summary.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from golongrl.construct import (
    WORD_DEFINITION,
    ConstructionError,
    ConstructionSpec,
    Env,
    Sample,
    block_body,
    complete_sentences,
    fmt,
    list_sample,
    number,
    require_sections,
    tables,
)
from golongrl.text import count_term, words

if TYPE_CHECKING:
    from golongrl.data.assembly import Context

TASK = "summarization"
_QUERY = "T4.2 Query-Focused Summary"
_PROFILE = "T4.1 Global-Coverage Constrained Summary"


def query_focused_extract(ctx: "Context", env: Env) -> Sample:
    require_sections(ctx, 2)
    sentences = [(s, i) for i, b in enumerate(ctx.blocks) for s in complete_sentences(ctx, b, min_words=4, max_words=80)]
    vocab = sorted({w for s, _ in sentences for w in words(s) if w.isalpha() and len(w) >= 4})
    env.rng.shuffle(vocab)
    for word in vocab:
        # Every occurrence must be inside a quotable sentence, or the extract would be partial.
        total = sum(count_term(block_body(b), word) for b in ctx.blocks)
        hits = [(s, i) for s, i in sentences if count_term(s, word)]
        if 2 <= len(hits) <= 8 and len({i for _, i in hits}) >= 2 and sum(count_term(s, word) for s, _ in hits) == total:
            break
    else:
        raise ConstructionError("no word whose sentences span two sections")
    hits.sort(key=lambda h: ctx.text.find(h[0]))
    reference = " ".join(s for s, _ in hits)
    question = (
        f'Summarise what the context says about "{word}": quote, in the order they appear, every sentence of the '
        f"context that contains the word \"{word}\", and nothing else. {WORD_DEFINITION}"
    )
    return list_sample(
        TASK, "query_focused_extract", question, [reference], _QUERY, env, evidence=[s for s, _ in hits],
        checks=[("every occurrence quoted", sum(count_term(s, word) for s, _ in hits) == total)],
        answer_offset=ctx.text.find(hits[0][0]),
    )


def table_column_profile(ctx: "Context", env: Env) -> Sample:
    options = [(t, c) for t in tables(ctx, min_rows=5) for c in t.numeric]
    if not options:
        raise ConstructionError("no numeric column")
    table, col = env.rng.choice(options)
    values = [number(r[col]) for r in table.rows]
    low, high = min(values), max(values)
    if values.count(low) > 1 or values.count(high) > 1:
        raise ConstructionError("smallest or largest value is tied")
    key = table.header[table.key]
    low_key = table.rows[values.index(low)][table.key]
    high_key = table.rows[values.index(high)][table.key]
    mean = (sum(values, Decimal(0)) / len(values)).quantize(Decimal("0.01"))
    name = table.header[col]
    reference = (
        f"{len(values)} rows. {name} is smallest at {fmt(low)} ({key} {low_key}) and largest at {fmt(high)} "
        f"({key} {high_key}); the mean is {fmt(mean)}."
    )
    question = (
        f'Profile the column "{name}" of the table "{table.title}" in one or two sentences: the number of rows, the '
        f'smallest and the largest value with the "{key}" of their rows, and the mean rounded to two decimals.'
    )
    return list_sample(
        TASK, "table_column_profile", question, [reference], _PROFILE, env, evidence=[low_key, high_key],
        checks=[("unique extremes", values.count(low) == 1 and values.count(high) == 1)],
        answer_offset=table.block.start,
    )


CONSTRUCTIONS = (
    ConstructionSpec("query_focused_extract", TASK, frozenset({"prose", "dialogue"}), query_focused_extract, _QUERY,
                     sections=(2, 8)),
    ConstructionSpec("table_column_profile", TASK, frozenset({"table"}), table_column_profile, _PROFILE,
                     sections=(1, 4), section_tokens=4096),
)
