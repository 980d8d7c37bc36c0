"""Graded ranking (NDCG) constructions: the top items by a quantity that has to be counted or
read, without the candidates being listed in the question (so echoing or sorting a given
list is impossible). Gold values are strictly decreasing, and the next item is strictly
below the last one asked for, so the ranking is unique.

* ``sections_by_term_count`` [prose, dialogue]: the three sections in which a word occurs most
  often, most first. Closest LongBench-Pro task: T1.1 Global Cohesive Retrieval.
* ``table_top_rows`` [table]: the keys of the four rows of a named table with the largest
  value of a column that the table is not sorted by. Closest: T1.2 Key-Snippet Retrieval.

Warm-up tier:

* ``earliest_words`` [prose, dialogue]: of four words that each occur once in the context
  (listed as candidates, the earliest one's place cycling), the two that occur first, earliest
  first: a graded quantity (position) read off the text, not counted. Closest: T1.1.
* ``top_rows_small`` [table]: of four rows of a short table, named by their keys (listed as
  candidates, the top row's place cycling over the samples), the two with the largest value of
  a numeric column, largest first. Closest: T1.2 Key-Snippet Retrieval.

Other graded quantities of prose (occurrences, lengths) have to be counted, which is not one
step for a small policy; position is the one a reader finds by looking.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from golongrl.construct import (
    WORD_DEFINITION,
    ConstructionError,
    ConstructionSpec,
    Env,
    Sample,
    block_body,
    headings,
    list_sample,
    number,
    require_sections,
    row_line,
    section_counts,
    tables,
)

from golongrl.text import find_word, words

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


def _top_placed(ranked: list[str], env: Env) -> list[str]:
    """The ranked candidates in the order a question lists them: the top one at the slot's
    place (cycling over the samples, so no place is the answer more often), the rest shuffled."""
    others = ranked[1:]
    env.rng.shuffle(others)
    place = env.slot % len(ranked)
    return others[:place] + [ranked[0]] + others[place:]


def _quoted_choices(items: list[str]) -> str:
    quoted = [f'"{k}"' for k in items]
    return f'{", ".join(quoted[:-1])} or {quoted[-1]}'


def earliest_words(ctx: "Context", env: Env) -> Sample:
    folded = Counter(w.lower() for w in words(ctx.text))
    heading_words = {w.lower() for t in headings(ctx) for w in words(t)}
    once = list(dict.fromkeys(
        w for b in ctx.blocks for w in words(block_body(b))
        if w.isalpha() and len(w) >= 5 and folded[w.lower()] == 1 and w.lower() not in heading_words
    ))
    if len(once) < 4:
        raise ConstructionError("fewer than four words that occur once in the context")
    chosen = env.rng.sample(once, 4)
    ranked = sorted(chosen, key=once.index)
    shown = _top_placed(ranked, env)
    question = (
        f"Which two of the words {_quoted_choices(shown)} occur earliest in the context (each occurs once)? "
        "List the two, earliest first."
    )
    offsets = [find_word(ctx.text, w) for w in ranked]
    tokens = [x.lower() for x in words(ctx.text)]
    sample = list_sample(
        TASK, "earliest_words", question, ranked[:2], _SECTIONS, env, evidence=ranked,
        checks=[("each word occurs once", all(tokens.count(w.lower()) == 1 for w in ranked)),
                ("ranked by position", all(a is not None and b is not None and a[0] < b[0]
                                           for a, b in zip(offsets, offsets[1:])))],
        answer_offset=offsets[0][0] if offsets[0] else None,
    )
    sample.candidates = shown
    return sample


def top_rows_small(ctx: "Context", env: Env) -> Sample:
    options = []
    for table in tables(ctx, min_rows=4):
        for col in table.numeric:
            if len({number(r[col]) for r in table.rows}) >= 4:
                options.append((table, col))
    if not options:
        raise ConstructionError("no numeric column with four distinct values")
    table, col = env.rng.choice(options)
    by_value: dict = {}
    for r in table.rows:
        by_value.setdefault(number(r[col]), r)
    # One row per distinct value, so the four candidates have a strict ranking.
    rows = env.rng.sample(list(by_value.values()), 4)
    ranked = sorted(rows, key=lambda r: -number(r[col]))
    shown = _top_placed([r[table.key] for r in ranked], env)
    key = table.header[table.key]
    question = (
        f'In the table "{table.title}", take the rows whose "{key}" is {_quoted_choices(shown)}. '
        f'Which two of them have the largest "{table.header[col]}"? List their "{key}", largest first.'
    )
    top = [r[table.key] for r in ranked[:2]]
    sample = list_sample(
        TASK, "top_rows_small", question, top, _ROWS, env, evidence=[row_line(r) for r in rows],
        checks=[("strict top two of the four", _strict_top([number(r[col]) for r in rows], 2)),
                ("keys unique", len({r[table.key] for r in rows}) == 4)],
        answer_offset=min(ctx.text.find(row_line(r)) for r in rows),
    )
    sample.candidates = shown
    return sample


CONSTRUCTIONS = (
    ConstructionSpec("sections_by_term_count", TASK, frozenset({"prose", "dialogue"}), sections_by_term_count,
                     _SECTIONS, sections=(8, 12), section_tokens=256),
    ConstructionSpec("table_top_rows", TASK, frozenset({"table"}), table_top_rows, _ROWS,
                     sections=(1, 4), section_tokens=4096),
    ConstructionSpec("top_rows_small", TASK, frozenset({"table"}), top_rows_small, _ROWS,
                     sections=(1, 3), section_tokens=256, level="warmup"),
    ConstructionSpec("earliest_words", TASK, frozenset({"prose", "dialogue"}), earliest_words, _SECTIONS,
                     sections=(1, 3), section_tokens=256, level="warmup"),
)
