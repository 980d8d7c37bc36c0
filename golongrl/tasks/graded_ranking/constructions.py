"""Graded ranking (NDCG) constructions: the top items by a quantity that has to be counted or
read, without the candidates being listed in the question (so echoing or sorting a given
list is impossible). Gold values are strictly decreasing, and the next item is strictly
below the last one asked for, so the ranking is unique.

* ``sections_by_term_count`` [prose, dialogue]: the three sections in which a word occurs most
  often, most first. Closest LongBench-Pro task: T1.1 Global Cohesive Retrieval.
* ``table_top_rows`` [table]: the keys of the four rows of a named table with the largest
  value of a column that the table is not sorted by. Closest: T1.2 Key-Snippet Retrieval.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from golongrl.construct import (
    WORD_DEFINITION,
    ConstructionError,
    ConstructionSpec,
    Env,
    Sample,
    list_sample,
    number,
    require_sections,
    row_line,
    section_counts,
    tables,
)

if TYPE_CHECKING:
    from golongrl.data.assembly import Context

TASK = "graded_ranking"
_SECTIONS = "T1.1 Global Cohesive Retrieval"
_ROWS = "T1.2 Key-Snippet Retrieval"


def _strict_top(values: list, k: int) -> bool:
    ranked = sorted(values, reverse=True)
    return len(ranked) > k and all(a > b for a, b in zip(ranked[: k + 1], ranked[1 : k + 1]))


def sections_by_term_count(ctx: "Context", env: Env) -> Sample:
    require_sections(ctx, 8)
    counts = section_counts(ctx)
    words = sorted({w for c in counts for w in c if len(w) >= 3 and w.isalpha()})
    env.rng.shuffle(words)
    word = next((w for w in words if _strict_top([c[w] for c in counts], 3)), None)
    if word is None:
        raise ConstructionError("no word with a strict top three of sections")
    order = sorted(range(len(ctx.blocks)), key=lambda i: -counts[i][word])[:3]
    ranked = [ctx.blocks[i].doc.title for i in order]
    question = (
        f'Which three sections of the context contain the word "{word}" most often? List their headings '
        f'(without the "#"), most occurrences first. Headings do not count. {WORD_DEFINITION}'
    )
    return list_sample(
        TASK, "sections_by_term_count", question, ranked, _SECTIONS, env, evidence=[f"# {t}" for t in ranked],
        checks=[("strict top three", _strict_top([c[word] for c in counts], 3))],
        answer_offset=ctx.blocks[order[0]].start,
    )


def table_top_rows(ctx: "Context", env: Env) -> Sample:
    options = []
    for table in tables(ctx, min_rows=8):
        for col in table.numeric:
            values = [number(r[col]) for r in table.rows]
            monotonic = values == sorted(values) or values == sorted(values, reverse=True)
            if not monotonic and _strict_top(values, 4):
                options.append((table, col))
    if not options:
        raise ConstructionError("no unsorted numeric column with a strict top four")
    table, col = env.rng.choice(options)
    top = sorted(table.rows, key=lambda r: -number(r[col]))[:4]
    ranked = [r[table.key] for r in top]
    question = (
        f'In the table "{table.title}", which four rows have the largest "{table.header[col]}"? List their '
        f'"{table.header[table.key]}", largest first.'
    )
    return list_sample(
        TASK, "table_top_rows", question, ranked, _ROWS, env, evidence=[row_line(r) for r in top],
        checks=[("strict top four", _strict_top([number(r[col]) for r in table.rows], 4))],
        answer_offset=ctx.text.find(row_line(top[0])),
    )


CONSTRUCTIONS = (
    ConstructionSpec("sections_by_term_count", TASK, frozenset({"prose", "dialogue"}), sections_by_term_count,
                     _SECTIONS, sections=(8, 12), section_tokens=256),
    ConstructionSpec("table_top_rows", TASK, frozenset({"table"}), table_top_rows, _ROWS,
                     sections=(1, 4), section_tokens=4096),
)
