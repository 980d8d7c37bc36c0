"""Structured extraction (row IoU) constructions: a small table assembled from facts spread
over the context. Rows are compared whole, so copying keys or headings without the values
scores nothing.

* ``multi_table_filter`` [table]: from two real tables of the context, the key and one value
  of every row meeting each table's own threshold, as ``[table, key, value]`` rows. Closest LongBench-Pro task: T8.1 Structured Multi-Source
  Consistency Verification (filters across sources).
* ``section_term_table`` [prose, dialogue]: for every section, its heading and how many times
  a word occurs in it. Closest: T8.2 Single-Source Targeted Aggregation.

Warm-up tier (short contexts, rows copied and split into cells):

* ``section_first_words`` [prose, dialogue]: ``[heading, first word]`` of every section (2-5).
* ``row_to_json`` [table]: the whole row with a given key (at most 100 characters, cells filled).
* ``two_columns_json`` [table]: ``[key, value]`` of 2-3 named rows of a table of at least four
  rows per asked row, so listing the whole table for those two columns matches few rows.
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
    block_body,
    depth_pick,
    fmt,
    ground_truth,
    number,
    require_sections,
    row_line,
    section_counts,
    tables,
)
from golongrl.text import words

if TYPE_CHECKING:
    from golongrl.data.assembly import Context

TASK = "structured_extraction"
_MAX_ROW_CHARS = 100
_ONE_ROW = (
    'Reply with <answer>{"data": [[...]]}</answer>: one inner list holding the row\'s values in column order, '
    "each value a string exactly as written in the table."
)


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


def row_to_json(ctx: "Context", env: Env) -> Sample:
    # Short rows with a value in most cells: a short answer that copying the key alone misses.
    rows = [(t, r) for t in tables(ctx, min_rows=3) for r in t.rows
            if len(row_line(r)) <= _MAX_ROW_CHARS and sum(bool(v.strip()) for v in r) >= max(2, len(r) - 1)]
    if not rows:
        raise ConstructionError(f"no row of at most {_MAX_ROW_CHARS} characters with its cells filled")
    table, row = depth_pick(rows, [ctx.text.find(row_line(r)) for _, r in rows], ctx, env)
    label, answer = _answer([list(row)])
    question = (
        f'Give the row of the table "{table.title}" whose "{table.header[table.key]}" is "{row[table.key]}", '
        "with every value of that row in column order."
    )
    line = row_line(row)
    return Sample(
        TASK, "row_to_json", question, ground_truth(label=label, language=env.language), answer, TASK,
        lbp_task="T8.2 Single-Source Targeted Aggregation", evidence=[line],
        checks=[("row key unique", sum(r[table.key] == row[table.key] for r in table.rows) == 1)],
        answer_offset=ctx.text.find(line), instruction=_ONE_ROW,
    )


def two_columns_json(ctx: "Context", env: Env) -> Sample:
    # At least four rows per asked row, so listing the whole table (or its first half) for the
    # two named columns matches few of the asked rows.
    found = [t for t in tables(ctx, min_rows=8) if len(t.header) >= 3]
    if not found:
        raise ConstructionError("no table with eight rows and three columns")
    table = env.rng.choice(found)
    col = env.rng.choice([c for c in range(len(table.header)) if c != table.key])
    count = min(3, len(table.rows) // 4)
    picked = sorted(env.rng.sample(range(len(table.rows)), count))
    rows = [table.rows[i] for i in picked]
    data = [[r[table.key], r[col]] for r in rows]
    label, answer = _answer(data)
    keys = ", ".join(f'"{r[table.key]}"' for r in rows)
    question = (
        f'From the table "{table.title}", give ["{table.header[table.key]}", "{table.header[col]}"] for the rows '
        f'whose "{table.header[table.key]}" is {keys}, in that order.'
    )
    return Sample(
        TASK, "two_columns_json", question, ground_truth(label=label, language=env.language), answer, TASK,
        lbp_task="T8.2 Single-Source Targeted Aggregation", evidence=[row_line(r) for r in rows],
        checks=[(f"row {r[table.key]!r} key unique", sum(x[table.key] == r[table.key] for x in table.rows) == 1)
                for r in rows],
        answer_offset=ctx.text.find(row_line(rows[0])), instruction=TABLE_ROWS_AS_ASKED,
    )


def section_first_words(ctx: "Context", env: Env) -> Sample:
    require_sections(ctx, 2)
    data = []
    for block in ctx.blocks:
        first = words(block_body(block))[:1]
        if not first:
            raise ConstructionError(f"section {block.doc.title!r} has no word")
        data.append([block.doc.title, first[0]])
    label, answer = _answer(data)
    question = (
        "Build a table with one row per section of the context, in context order: [section heading (without "
        '"# "), the first word of the section\'s text].'
    )
    return Sample(
        TASK, "section_first_words", question, ground_truth(label=label, language=env.language), answer, TASK,
        lbp_task="T8.2 Single-Source Targeted Aggregation", evidence=[f"# {t}\n\n" for t, _ in data],
        checks=[(f"{t!r} starts with {w!r}", block_body(b).lstrip().startswith(w))
                for (t, w), b in zip(data, ctx.blocks)],
        answer_offset=ctx.blocks[0].start, instruction=TABLE_ROWS_AS_ASKED,
    )


CONSTRUCTIONS = (
    ConstructionSpec("multi_table_filter", TASK, frozenset({"table"}), multi_table_filter,
                     "T8.1 Structured Multi-Source Consistency Verification", sections=(2, 4), section_tokens=4096),
    ConstructionSpec("section_term_table", TASK, frozenset({"prose", "dialogue"}), section_term_table,
                     "T8.2 Single-Source Targeted Aggregation", sections=(3, 8)),
    ConstructionSpec("section_first_words", TASK, frozenset({"prose", "dialogue"}), section_first_words,
                     "T8.2 Single-Source Targeted Aggregation", sections=(2, 5), section_tokens=192, level="warmup"),
    ConstructionSpec("row_to_json", TASK, frozenset({"table"}), row_to_json,
                     "T8.2 Single-Source Targeted Aggregation", sections=(1, 2), section_tokens=512, level="warmup"),
    ConstructionSpec("two_columns_json", TASK, frozenset({"table"}), two_columns_json,
                     "T8.2 Single-Source Targeted Aggregation", sections=(1, 2), section_tokens=512, level="warmup"),
)
