"""Precise retrieval (EM) constructions: one exact string that only a search of the whole
context finds.

* ``sentence_section`` [prose, dialogue]: a whole sentence is quoted; the answer is the heading
  of the section that contains it. Every section is a window of another document of the same
  domain, so vocabulary does not give the source away. Closest LongBench-Pro task: T1.2
  Key-Snippet Retrieval (locate one snippet among many).
* ``table_cell_lookup`` [table]: one cell by table, row key and column, in a context of several
  real tables. Closest: T3.2 Single-Hop Fact QA.

Warm-up tier (short contexts, one copy step):

* ``next_word`` [prose, dialogue]: the word right after a quoted run of 4-6 words that occurs
  once in the context (letters only, at least four, not one of the phrase's words).
* ``row_cell_copy`` [table]: ``table_cell_lookup`` on a 1-2 table context.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from golongrl.construct import (
    ConstructionError,
    ConstructionSpec,
    Env,
    Sample,
    complete_sentences,
    depth_pick,
    ground_truth,
    phrase_followers,
    require_sections,
    row_line,
    tables,
    unique_cells,
)

if TYPE_CHECKING:
    from golongrl.data.assembly import Context

TASK = "precise_retrieval"
#: A next-word answer: one word of letters only (no punctuation attached), at least four long.
_NEXT_WORD = re.compile(r"[A-Za-z]{4,}")


def sentence_section(ctx: "Context", env: Env) -> Sample:
    require_sections(ctx, 6)
    found = [(s, b.doc.title) for b in ctx.blocks for s in complete_sentences(ctx, b)]
    sentence, title = depth_pick(found, [ctx.text.find(s) for s, _ in found], ctx, env)
    question = (
        f'The context above consists of sections, each under a "# " heading. Which section contains the '
        f'sentence "{sentence}"? Answer with the section\'s heading exactly as written, without the "#".'
    )
    holder = next(b for b in ctx.blocks if b.doc.title == title)
    return Sample(
        TASK, "sentence_section", question, ground_truth(label=title, language=env.language), title, TASK,
        lbp_task="T1.2 Key-Snippet Retrieval", evidence=[sentence, f"# {title}"],
        checks=[("sentence occurs once", ctx.text.count(sentence) == 1), ("sentence in its section", sentence in holder.text)],
        answer_offset=ctx.text.find(sentence),
    )


def _cell_sample(ctx: "Context", env: Env, construction: str, min_rows: int) -> Sample:
    """One cell, by table, row key and column, whose value is unique in its column."""
    cells = unique_cells(tables(ctx, min_rows))
    if not cells:
        raise ConstructionError("no cell with a value unique in its column")
    table, row, col = depth_pick(cells, [ctx.text.find(row_line(r)) for _, r, _ in cells], ctx, env)
    answer = row[col]
    question = (
        f'In the table "{table.title}", what is the value of the column "{table.header[col]}" in the row whose '
        f'"{table.header[table.key]}" is "{row[table.key]}"?'
    )
    line = row_line(row)
    return Sample(
        TASK, construction, question, ground_truth(label=answer, language=env.language), answer, TASK,
        lbp_task="T3.2 Single-Hop Fact QA", evidence=[line],
        checks=[("row key unique", sum(r[table.key] == row[table.key] for r in table.rows) == 1),
                ("row in its table", line in table.block.text)],
        answer_offset=ctx.text.find(line),
    )


def table_cell_lookup(ctx: "Context", env: Env) -> Sample:
    return _cell_sample(ctx, env, "table_cell_lookup", min_rows=4)


def row_cell_copy(ctx: "Context", env: Env) -> Sample:
    return _cell_sample(ctx, env, "row_cell_copy", min_rows=3)


def next_word(ctx: "Context", env: Env) -> Sample:
    found = phrase_followers(ctx, _NEXT_WORD)
    if not found:
        raise ConstructionError("no phrase that occurs once and is followed by a word of letters")
    phrase, word = depth_pick(found, [ctx.text.find(p) for p, _ in found], ctx, env)
    question = f'In the context, which word comes right after "{phrase}"? Answer with that one word.'
    return Sample(
        TASK, "next_word", question, ground_truth(label=word, language=env.language), word, TASK,
        lbp_task="T1.2 Key-Snippet Retrieval", evidence=[f"{phrase} {word}"],
        checks=[("phrase occurs once", ctx.text.count(phrase) == 1),
                ("word follows the phrase", f"{phrase} {word}" in ctx.text)],
        answer_offset=ctx.text.find(phrase),
    )


CONSTRUCTIONS = (
    ConstructionSpec("sentence_section", TASK, frozenset({"prose", "dialogue"}), sentence_section,
                     "T1.2 Key-Snippet Retrieval", sections=(6, 12), section_tokens=512),
    ConstructionSpec("table_cell_lookup", TASK, frozenset({"table"}), table_cell_lookup,
                     "T3.2 Single-Hop Fact QA", sections=(1, 4), section_tokens=4096),
    ConstructionSpec("next_word", TASK, frozenset({"prose", "dialogue"}), next_word,
                     "T1.2 Key-Snippet Retrieval", sections=(1, 3), section_tokens=384, level="warmup"),
    ConstructionSpec("row_cell_copy", TASK, frozenset({"table"}), row_cell_copy,
                     "T3.2 Single-Hop Fact QA", sections=(1, 2), section_tokens=512, level="warmup"),
)
