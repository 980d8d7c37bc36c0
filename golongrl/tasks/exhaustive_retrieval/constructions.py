"""Exhaustive retrieval (set F1) constructions. The question names a condition, never the
items, so listing candidates or guessing a genre scores nothing: every item has to be found,
and checked against the whole context.

* ``exclusive_words`` [prose, dialogue]: every word of at least L letters that occurs in one
  named section and in no other section (L chosen so 2-8 words qualify). Closest LongBench-Pro
  task: T6.2 Targeted Subset Cluster Identification (the subset of one section's vocabulary
  that no other document shares).
* ``table_rows_matching`` [table]: the key of every row of a named table that meets a numeric
  threshold (2-10 rows, at most an eighth of the table's rows, so listing every key scores
  at most 0.22 F1). Closest: T7.2 Targeted Rule or Condition Violation Detection.

Warm-up tier (short contexts, a few items copied):

* ``section_headings`` [prose, dialogue]: the heading of every section (2-5).
* ``column_values`` [table]: every different value of a non-key column with 2-6 of them,
  never one that the table's first all-distinct column (what a blind strategy lists) holds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from golongrl.construct import (
    WORD_DEFINITION,
    ConstructionError,
    ConstructionSpec,
    Env,
    Sample,
    fmt,
    headings,
    list_sample,
    number,
    require_sections,
    row_line,
    section_counts,
    section_words_of_length,
    tables,
)
from golongrl.tasks.base import key_column

if TYPE_CHECKING:
    from golongrl.data.assembly import Context

TASK = "exhaustive_retrieval"
_EXCLUSIVE = "T6.2 Targeted Subset Cluster Identification"
_ROWS = "T7.2 Targeted Rule or Condition Violation Detection"


def exclusive_words(ctx: "Context", env: Env) -> Sample:
    require_sections(ctx, 3)
    counts = section_counts(ctx)
    exclusive = []
    for i in range(len(ctx.blocks)):
        elsewhere = set().union(*(set(c) for j, c in enumerate(counts) if j != i))
        exclusive.append(sorted(w for w in counts[i] if w.isalpha() and w not in elsewhere))
    i, length, hits = section_words_of_length(ctx, env, exclusive, range(7, 16), (2, 8))
    title = ctx.blocks[i].doc.title
    question = (
        f'List every word of at least {length} letters, made of letters only (no digit, apostrophe or hyphen), that '
        f'occurs in the section "{title}" and in no other section of the context (section headings do not count). '
        f"Give each word once, as written. {WORD_DEFINITION}"
    )
    others = [c for j, c in enumerate(counts) if j != i]
    return list_sample(
        TASK, "exclusive_words", question, hits, _EXCLUSIVE, env, evidence=hits,
        checks=[(f"{w!r} only in its section", counts[i][w] > 0 and not any(c[w] for c in others)) for w in hits],
        answer_offset=ctx.blocks[i].start,
    )


def table_rows_matching(ctx: "Context", env: Env) -> Sample:
    options = []
    for table in tables(ctx, min_rows=16):
        for col in table.numeric:
            values = sorted({number(r[col]) for r in table.rows})
            for k in (2, 3, 4, 5, 6, 8, 10):
                if k < len(values):
                    threshold = values[-k]
                    hits = [r for r in table.rows if number(r[col]) >= threshold]
                    if 2 <= len(hits) <= 10 and len(hits) <= len(table.rows) // 8:
                        options.append((table, col, threshold, hits))
    if not options:
        raise ConstructionError("no threshold selects 2-10 rows (at most an eighth of a table)")
    table, col, threshold, hits = env.rng.choice(options)
    keys = [r[table.key] for r in hits]
    question = (
        f'In the table "{table.title}", list the "{table.header[table.key]}" of every row whose '
        f'"{table.header[col]}" is greater than or equal to {fmt(threshold)}.'
    )
    return list_sample(
        TASK, "table_rows_matching", question, keys, _ROWS, env, evidence=[row_line(r) for r in hits],
        checks=[("exactly these rows", sorted(keys) == sorted(r[table.key] for r in table.rows if number(r[col]) >= threshold))],
        answer_offset=ctx.text.find(row_line(hits[0])),
    )


def section_headings(ctx: "Context", env: Env) -> Sample:
    require_sections(ctx, 2)
    titles = headings(ctx)
    question = 'List the heading of every section of the context (the text after "# "), in order.'
    return list_sample(
        TASK, "section_headings", question, titles, _EXCLUSIVE, env, evidence=[f"# {t}" for t in titles],
        checks=[(f"{t!r} heads a section", f"# {t}" in ctx.text) for t in titles],
        answer_offset=ctx.blocks[0].start,
    )


def column_values(ctx: "Context", env: Env) -> Sample:
    options = []
    for table in tables(ctx, min_rows=3):
        # The first all-distinct column is what a blind strategy lists (the audit's table key).
        keys = {r[key_column(table.rows)] for r in table.rows}
        for col in range(len(table.header)):
            values = list(dict.fromkeys(r[col] for r in table.rows))
            if col != table.key and 2 <= len(values) <= 6 and all(v.strip() for v in values) \
                    and not keys & set(values):
                options.append((table, col, values))
    if not options:
        raise ConstructionError("no column with 2-6 different values")
    table, col, values = env.rng.choice(options)
    question = (
        f'List every different value of the column "{table.header[col]}" in the table "{table.title}", '
        "each value once."
    )
    return list_sample(
        TASK, "column_values", question, values, _EXCLUSIVE, env, evidence=[row_line(next(r for r in table.rows if r[col] == v)) for v in values],
        checks=[("exactly these values", set(values) == {r[col] for r in table.rows})],
        answer_offset=table.block.start,
    )


CONSTRUCTIONS = (
    ConstructionSpec("exclusive_words", TASK, frozenset({"prose", "dialogue"}), exclusive_words, _EXCLUSIVE,
                     sections=(3, 8)),
    ConstructionSpec("table_rows_matching", TASK, frozenset({"table"}), table_rows_matching, _ROWS,
                     sections=(1, 4), section_tokens=4096),
    ConstructionSpec("section_headings", TASK, frozenset({"prose", "dialogue"}), section_headings, _EXCLUSIVE,
                     sections=(2, 5), section_tokens=192, level="warmup"),
    ConstructionSpec("column_values", TASK, frozenset({"table"}), column_values, _EXCLUSIVE,
                     sections=(1, 2), section_tokens=512, level="warmup"),
)
