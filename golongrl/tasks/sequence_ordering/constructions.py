"""Sequence ordering (pairwise accuracy) constructions. The items are not listed in the
question: they have to be found in the context and then ordered, so echoing or sorting a
given list is impossible (with listed items, echoing them in order or reversed always earns
half the pairs on average).

* ``section_words_in_order`` [prose, dialogue]: every word of at least L letters in a named
  section, in order of first appearance (L chosen so 4-8 words qualify). Closest LongBench-Pro
  task: T2.2 Local Causal Chain Sorting (order within one passage).
* ``table_rows_by_value`` [table]: the keys of the rows of a named table meeting a condition,
  in increasing order of a column the table is not sorted by. Closest: T2.1 Global Timeline
  Reconstruction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from golongrl.construct import (
    ITEMS_IN_ORDER,
    WORD_DEFINITION,
    ConstructionError,
    ConstructionSpec,
    Env,
    Sample,
    block_body,
    fmt,
    list_sample,
    number,
    require_sections,
    row_line,
    section_words_of_length,
    tables,
)
from golongrl.text import words

if TYPE_CHECKING:
    from golongrl.data.assembly import Context

TASK = "sequence_ordering"
_WORDS = "T2.2 Local Causal Chain Sorting"
_ROWS = "T2.1 Global Timeline Reconstruction"


def section_words_in_order(ctx: "Context", env: Env) -> Sample:
    require_sections(ctx, 2)
    by_first_use = [list(dict.fromkeys(w for w in words(block_body(b)) if w.isalpha())) for b in ctx.blocks]
    i, length, hits = section_words_of_length(ctx, env, by_first_use, range(9, 18), (4, 8))
    title = ctx.blocks[i].doc.title
    question = (
        f'List every distinct word of at least {length} letters, made of letters only (no digit, apostrophe or '
        f'hyphen), in the section "{title}" (not its heading), in the order of each word\'s first appearance in '
        f"that section. {WORD_DEFINITION}"
    )
    body = block_body(ctx.blocks[i])
    firsts = [next(k for k, w in enumerate(words(body)) if w == h) for h in hits]
    return list_sample(
        TASK, "section_words_in_order", question, hits, _WORDS, env, evidence=hits,
        checks=[("first appearances increase", all(a < b for a, b in zip(firsts, firsts[1:])))],
        answer_offset=ctx.blocks[i].start, instruction=ITEMS_IN_ORDER,
    )


def table_rows_by_value(ctx: "Context", env: Env) -> Sample:
    options = []
    for table in tables(ctx, min_rows=8):
        for filt in table.numeric:
            values = sorted({number(r[filt]) for r in table.rows})
            for col in table.numeric:
                if col == filt or len(values) < 6:
                    continue
                for k in (4, 5, 6, 7):
                    hits = [r for r in table.rows if number(r[filt]) >= values[-k]]
                    keyed = [number(r[col]) for r in hits]
                    if 4 <= len(hits) <= 8 and len(set(keyed)) == len(keyed) and keyed != sorted(keyed):
                        options.append((table, filt, values[-k], col, hits))
                        break
    if not options:
        raise ConstructionError("no condition selecting 4-8 rows out of order")
    table, filt, threshold, col, hits = env.rng.choice(options)
    ordered = [r[table.key] for r in sorted(hits, key=lambda r: number(r[col]))]
    question = (
        f'In the table "{table.title}", take every row whose "{table.header[filt]}" is at least {fmt(threshold)} and '
        f'list their "{table.header[table.key]}" in increasing order of "{table.header[col]}".'
    )
    return list_sample(
        TASK, "table_rows_by_value", question, ordered, _ROWS, env, evidence=[row_line(r) for r in hits],
        checks=[("order keys distinct", len({number(r[col]) for r in hits}) == len(hits)),
                ("exactly these rows", len(hits) == sum(number(r[filt]) >= threshold for r in table.rows))],
        answer_offset=ctx.text.find(row_line(hits[0])), instruction=ITEMS_IN_ORDER,
    )


CONSTRUCTIONS = (
    ConstructionSpec("section_words_in_order", TASK, frozenset({"prose", "dialogue"}), section_words_in_order, _WORDS,
                     sections=(2, 8)),
    ConstructionSpec("table_rows_by_value", TASK, frozenset({"table"}), table_rows_by_value, _ROWS,
                     sections=(1, 4), section_tokens=4096),
)
