"""Numerical reasoning (math_verify) constructions: a number aggregated over the whole
context, with the counting rule stated, and gold magnitudes spread over a range (no majority
answer).

* ``term_total`` [prose, dialogue]: how many times a word occurs in all sections together
  (targets 6-48 occurrences, cycling over samples; small counts are guessable blind). Closest LongBench-Pro task: T8.2
  Single-Source Targeted Aggregation (here across sources).
* ``table_filtered_sum`` [table]: the sum of one column over the rows of a named table that
  meet a threshold on another column. Closest: T8.2 Single-Source Targeted Aggregation.

Warm-up tier (short contexts, one number copied or compared; never 0, 1, 2 or a number the
question states, which blind answers give):

* ``number_after_phrase`` [prose, dialogue]: the number right after a quoted run of 4-6 words
  that occurs once.
* ``table_number_lookup`` [table]: a numeric cell (unique in its column) by row key and column.
* ``table_max_value`` [table]: the largest value of a numeric column of one table.
"""

from __future__ import annotations

import re
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
    depth_pick,
    fmt,
    ground_truth,
    number,
    phrase_followers,
    require_sections,
    row_line,
    section_counts,
    spread_target,
    tables,
    unique_cells,
)
from golongrl.text import word_counts

if TYPE_CHECKING:
    from golongrl.data.assembly import Context

TASK = "numerical_reasoning"
_LBP = "T8.2 Single-Source Targeted Aggregation"
_LOOKUP = "T3.2 Single-Hop Fact QA"
#: Numbers a blind answer gives (the audit boxes 0, 1 and 2).
_CONSTANTS = {Decimal(0), Decimal(1), Decimal(2)}
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
#: A number written plainly in prose (no thousands separator, unit or punctuation attached).
_PLAIN_NUMBER = re.compile(r"[1-9]\d*")


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


def _blind_guess(value: Decimal, question: str) -> bool:
    """Whether a gold-independent answer hits ``value``: a small constant, or a number the
    question itself states (a numeric row key)."""
    stated = {number(n) for n in _NUMBER.findall(question)}
    return value in _CONSTANTS or value in stated


def _number_sample(ctx: "Context", env: Env, construction: str, lbp_task: str, question: str, value: Decimal,
                   rows: list[list[str]], checks: list[tuple[str, bool]]) -> Sample:
    if _blind_guess(value, question):
        raise ConstructionError(f"the answer {fmt(value)} is a blind guess")
    answer = fmt(value)
    lines = [row_line(r) for r in rows]
    return Sample(
        TASK, construction, question, ground_truth(label=answer, language=env.language), f"\\boxed{{{answer}}}",
        TASK, lbp_task=lbp_task, evidence=lines, checks=checks,
        answer_offset=ctx.text.find(lines[0]),
    )


def table_number_lookup(ctx: "Context", env: Env) -> Sample:
    cells = [(t, r, c) for t, r, c in unique_cells(tables(ctx, min_rows=3))
             if c in t.numeric and number(r[c]) not in _CONSTANTS]
    if not cells:
        raise ConstructionError("no numeric cell unique in its column")
    table, row, col = depth_pick(cells, [ctx.text.find(row_line(r)) for _, r, _ in cells], ctx, env)
    question = (
        f'In the table "{table.title}", what is the number in the column "{table.header[col]}" of the row whose '
        f'"{table.header[table.key]}" is "{row[table.key]}"?'
    )
    return _number_sample(ctx, env, "table_number_lookup", _LOOKUP, question, number(row[col]), [row],
                          [("row key unique", sum(r[table.key] == row[table.key] for r in table.rows) == 1)])


def table_max_value(ctx: "Context", env: Env) -> Sample:
    options = [(t, c) for t in tables(ctx, min_rows=3) for c in t.numeric
               if len({number(r[c]) for r in t.rows}) >= 3 and max(number(r[c]) for r in t.rows) not in _CONSTANTS]
    if not options:
        raise ConstructionError("no numeric column with three different values")
    table, col = env.rng.choice(options)
    best = max(number(r[col]) for r in table.rows)
    question = f'In the table "{table.title}", what is the largest value in the column "{table.header[col]}"?'
    holder = next(r for r in table.rows if number(r[col]) == best)
    return _number_sample(ctx, env, "table_max_value", _LBP, question, best, [holder],
                          [("no larger value", all(number(r[col]) <= best for r in table.rows)),
                           ("rows all in the context", all(row_line(r) in ctx.text for r in table.rows))])


def number_after_phrase(ctx: "Context", env: Env) -> Sample:
    found = [(p, n) for p, n in phrase_followers(ctx, _PLAIN_NUMBER) if number(n) not in _CONSTANTS]
    if not found:
        raise ConstructionError("no phrase that occurs once and is followed by a number")
    phrase, text = depth_pick(found, [ctx.text.find(p) for p, _ in found], ctx, env)
    question = f'In the context, which number comes right after "{phrase}"?'
    value = number(text)
    if _blind_guess(value, question):
        raise ConstructionError(f"the answer {text} is a blind guess")
    return Sample(
        TASK, "number_after_phrase", question, ground_truth(label=fmt(value), language=env.language),
        f"\\boxed{{{fmt(value)}}}", TASK, lbp_task=_LOOKUP, evidence=[f"{phrase} {text}"],
        checks=[("phrase occurs once", ctx.text.count(phrase) == 1),
                ("number follows the phrase", f"{phrase} {text}" in ctx.text)],
        answer_offset=ctx.text.find(phrase),
    )


CONSTRUCTIONS = (
    ConstructionSpec("term_total", TASK, frozenset({"prose", "dialogue"}), term_total, _LBP, sections=(3, 8)),
    ConstructionSpec("table_filtered_sum", TASK, frozenset({"table"}), table_filtered_sum, _LBP,
                     sections=(1, 4), section_tokens=4096),
    ConstructionSpec("number_after_phrase", TASK, frozenset({"prose", "dialogue"}), number_after_phrase,
                     _LOOKUP, sections=(1, 3), section_tokens=384, level="warmup"),
    ConstructionSpec("table_number_lookup", TASK, frozenset({"table"}), table_number_lookup,
                     _LOOKUP, sections=(1, 2), section_tokens=512, level="warmup"),
    ConstructionSpec("table_max_value", TASK, frozenset({"table"}), table_max_value, _LBP,
                     sections=(1, 2), section_tokens=512, level="warmup"),
)
