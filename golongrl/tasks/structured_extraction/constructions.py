"""Structured extraction (row IoU) constructions: a small table assembled from facts spread
over the context. Rows are compared whole, so copying keys or headings without the values
scores nothing.

* ``multi_table_filter`` [table]: from two real tables of the context, the key and one value
  of every row meeting each table's own threshold, as ``[table, key, value]`` rows. Closest LongBench-Pro task: T8.1 Structured Multi-Source
  Consistency Verification (filters across sources).
* ``section_term_table`` [prose, dialogue]: for every section, its heading and how many times
  a word occurs in it. Closest: T8.2 Single-Source Targeted Aggregation.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from golongrl.construct import (
    TABLE_ROWS_AS_ASKED,
    WORD_DEFINITION,
    ConstructionError,
    ConstructionSpec,
    Env,
    Sample,
    fmt,
    ground_truth,
    number,
    require_sections,
    row_line,
    section_counts,
    tables,
)

if TYPE_CHECKING:
    from golongrl.data.assembly import Context

TASK = "structured_extraction"


def _answer(data: list[list[str]]) -> tuple[str, str]:
    label = json.dumps({"data": data}, ensure_ascii=False)
    return label, f"<answer>{label}</answer>"


def multi_table_filter(ctx: "Context", env: Env) -> Sample:
    found = [t for t in tables(ctx, min_rows=5) if t.numeric]
    if not found:
        raise ConstructionError("no table with a numeric column")
    if len(found) < 2:
        raise ConstructionError("fewer than two tables with a numeric column")
    picked = env.rng.sample(found, 2)
    clauses, data, evidence = [], [], []
    for table in picked:
        col = env.rng.choice(table.numeric)
        values = sorted({number(r[col]) for r in table.rows})
        if len(values) < 4:
            raise ConstructionError(f"column {table.header[col]!r} has fewer than 4 distinct values")
        threshold = values[-min(len(values) - 1, env.rng.randint(2, 5))]
        others = [c for c in range(len(table.header)) if c not in (table.key, col)] or [col]
        show = env.rng.choice(others)
        hits = [r for r in table.rows if number(r[col]) >= threshold]
        clauses.append(
            f'from the table "{table.title}", every row whose "{table.header[col]}" is at least {fmt(threshold)}, '
            f'giving its "{table.header[table.key]}" and its "{table.header[show]}"'
        )
        data += [[table.title, r[table.key], r[show]] for r in hits]
        evidence += [row_line(r) for r in hits]
    if len(data) > 16:
        raise ConstructionError("too many rows selected")
    label, answer = _answer(data)
    question = (
        "Extract a table with one row [table title, key, value] per matching row, table by table in the order "
        "listed, rows in table order: " + "; and ".join(clauses) + "."
    )
    return Sample(
        TASK, "multi_table_filter", question, ground_truth(label=label, language=env.language), answer, TASK,
        lbp_task="T8.1 Structured Multi-Source Consistency Verification", evidence=evidence,
        checks=[(f"row {row[1]} in its table", any(row_line(r) in t.block.text for t in picked for r in t.rows if r[t.key] == row[1]))
                for row in data],
        answer_offset=ctx.text.find(evidence[0]) if evidence else None, instruction=TABLE_ROWS_AS_ASKED,
    )


def section_term_table(ctx: "Context", env: Env) -> Sample:
    require_sections(ctx, 3)
    counts = section_counts(ctx)
    words = sorted({w for c in counts for w, n in c.items() if n >= 2 and len(w) >= 4 and w.isalpha()})
    env.rng.shuffle(words)
    word = next((w for w in words if sum(c[w] > 0 for c in counts) >= 2 and len({c[w] for c in counts}) >= 3), None)
    if word is None:
        raise ConstructionError("no word whose counts differ across sections")
    data = [[b.doc.title, str(c[word])] for b, c in zip(ctx.blocks, counts)]
    label, answer = _answer(data)
    question = (
        f'Build a table with one row per section of the context, in context order: [section heading, number of '
        f'times the word "{word}" occurs in that section (0 if none)]. Headings do not count. {WORD_DEFINITION}'
    )
    return Sample(
        TASK, "section_term_table", question, ground_truth(label=label, language=env.language), answer, TASK,
        lbp_task="T8.2 Single-Source Targeted Aggregation", evidence=[f"# {b.doc.title}" for b in ctx.blocks],
        checks=[("one row per section", len(data) == len(ctx.blocks))], answer_offset=ctx.blocks[0].start,
        instruction=TABLE_ROWS_AS_ASKED,
    )


CONSTRUCTIONS = (
    ConstructionSpec("multi_table_filter", TASK, frozenset({"table"}), multi_table_filter,
                     "T8.1 Structured Multi-Source Consistency Verification", sections=(2, 4), section_tokens=4096),
    ConstructionSpec("section_term_table", TASK, frozenset({"prose", "dialogue"}), section_term_table,
                     "T8.2 Single-Source Targeted Aggregation", sections=(3, 8)),
)
