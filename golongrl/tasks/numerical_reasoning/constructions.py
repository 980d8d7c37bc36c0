"""Numerical reasoning (math_verify) constructions: a number aggregated over the whole
context, with the counting rule stated, and gold magnitudes spread over a range (no majority
answer).

* ``term_total`` [prose, dialogue]: how many times a word occurs in all sections together
  (targets 6-48 occurrences, cycling over samples; small counts are guessable blind). Closest LongBench-Pro task: T8.2
  Single-Source Targeted Aggregation (here across sources).
* ``table_filtered_sum`` [table]: the sum of one column over the rows of a named table that
  meet a threshold on another column. Closest: T8.2 Single-Source Targeted Aggregation.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import TYPE_CHECKING

from golongrl.construct import (
    WORD_DEFINITION,
    ConstructionError,
    ConstructionSpec,
    Env,
    Sample,
    block_body,
    fmt,
    ground_truth,
    number,
    require_sections,
    row_line,
    section_counts,
    spread_target,
    tables,
)
from golongrl.text import word_counts

if TYPE_CHECKING:
    from golongrl.data.assembly import Context

TASK = "numerical_reasoning"
_LBP = "T8.2 Single-Source Targeted Aggregation"


def term_total(ctx: "Context", env: Env) -> Sample:
    require_sections(ctx, 3)
    per_section = section_counts(ctx)
    counts = sum(per_section, Counter())
    target = spread_target(env, 6, 48)
    spread = [w for w in counts if len(w) >= 3 and w.isalpha() and counts[w] >= 4
              and sum(c[w] > 0 for c in per_section) >= 2]
    if not spread:
        raise ConstructionError("no word occurs in two sections")
    best = min(abs(counts[w] - target) for w in spread)
    word = env.rng.choice(sorted(w for w in spread if abs(counts[w] - target) == best))
    n = counts[word]
    question = (
        f'How many times does the word "{word}" occur in the context, counting all sections together but not '
        f"the section headings? {WORD_DEFINITION}"
    )
    return Sample(
        TASK, "term_total", question, ground_truth(label=str(n), language=env.language),
        f"The word occurs {n} times.\n\\boxed{{{n}}}", TASK, lbp_task=_LBP, evidence=[word],
        checks=[("recount matches", sum(word_counts(block_body(b))[word] for b in ctx.blocks) == n)],
        answer_offset=ctx.text.find(word),
    )


def table_filtered_sum(ctx: "Context", env: Env) -> Sample:
    options = []
    for table in tables(ctx, min_rows=6):
        for filt in table.numeric:
            values = sorted({number(r[filt]) for r in table.rows})
            if len(values) < 4:
                continue
            for col in table.numeric:
                if col != filt:
                    options.append((table, filt, col, values))
    if not options:
        raise ConstructionError("no table with two numeric columns")
    table, filt, col, values = env.rng.choice(options)
    threshold = values[env.rng.randrange(len(values) // 3, len(values) - 1)]
    hits = [r for r in table.rows if number(r[filt]) >= threshold]
    total = sum((number(r[col]) for r in hits), Decimal(0))
    answer = fmt(total)
    question = (
        f'In the table "{table.title}", what is the sum of "{table.header[col]}" over all rows whose '
        f'"{table.header[filt]}" is greater than or equal to {fmt(threshold)}?'
    )
    return Sample(
        TASK, "table_filtered_sum", question, ground_truth(label=answer, language=env.language),
        f"\\boxed{{{answer}}}", TASK, lbp_task=_LBP, evidence=[row_line(r) for r in hits],
        checks=[(f"{len(hits)} rows selected", 1 <= len(hits) < len(table.rows))],
        answer_offset=ctx.text.find(row_line(hits[0])),
    )


CONSTRUCTIONS = (
    ConstructionSpec("term_total", TASK, frozenset({"prose", "dialogue"}), term_total, _LBP, sections=(3, 8)),
    ConstructionSpec("table_filtered_sum", TASK, frozenset({"table"}), table_filtered_sum, _LBP,
                     sections=(1, 4), section_tokens=4096),
)
