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

Warm-up tier (short contexts, the items listed as candidates in a shuffled order that is
neither their order nor its reverse, and never one that sorts itself alphabetically or
numerically, so only the text tells the order):

* ``headings_in_order`` [prose, dialogue]: the context's 4-6 section headings, to be put in the
  order the sections appear. Closest: T2.1 Global Timeline Reconstruction.
* ``sentences_in_order`` [prose, dialogue]: four numbered sentences of one section, to be
  ordered as in the text. Closest: T2.2 Local Causal Chain Sorting.
* ``rows_in_order`` [table]: four values of one column of a table, to be ordered as their rows
  appear. Closest: T2.1 Global Timeline Reconstruction.
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
    depth_pick,
    fmt,
    headings,
    list_sample,
    number,
    require_sections,
    row_line,
    section_words_of_length,
    shuffled_presentation,
    sorts_itself,
    tables,
    visible_sentences,
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


#: Items per warm-up ordering question: with three, a blind order earns 0.28 on average (its
#: clipped Kendall tau), with four 0.19.
_ITEMS = 4


def _listed_order_question(listing: str, shown: list[str], ask: str) -> str:
    lines = "\n".join(f"- {item}" for item in shown)
    return f"{listing}, listed here in a random order:\n{lines}\n{ask}"


def headings_in_order(ctx: "Context", env: Env) -> Sample:
    require_sections(ctx, _ITEMS)
    ordered = headings(ctx)
    if sorts_itself(ordered):
        raise ConstructionError("the sections happen to be in alphabetical order")
    shown = shuffled_presentation(ordered, env.rng)
    question = _listed_order_question(
        "The sections of the context have these headings", shown,
        "List the headings in the order their sections appear in the context.",
    )
    sample = list_sample(
        TASK, "headings_in_order", question, ordered, _ROWS, env, evidence=[f"# {t}" for t in ordered],
        checks=[("headings appear in this order", all(a.start < b.start for a, b in zip(ctx.blocks, ctx.blocks[1:])))],
        answer_offset=ctx.blocks[0].start, instruction=ITEMS_IN_ORDER,
    )
    sample.candidates = shown
    return sample


def sentences_in_order(ctx: "Context", env: Env) -> Sample:
    options = [(i, found) for i, b in enumerate(ctx.blocks) if len(found := visible_sentences(ctx, b, 5, 30)) >= _ITEMS]
    i, sentences = depth_pick(options, [ctx.blocks[o[0]].start for o in options], ctx, env)
    picked = sorted(env.rng.sample(sentences, _ITEMS), key=ctx.text.find)
    shown = shuffled_presentation(picked, env.rng)
    lines = "\n".join(f'{n + 1}. "{s}"' for n, s in enumerate(shown))
    question = (
        f'The numbered sentences below come from the section "{ctx.blocks[i].doc.title}", listed in a random order. '
        f"Give their numbers in the order the sentences appear in the text.\n{lines}"
    )
    order = [str(shown.index(s) + 1) for s in picked]
    offsets = [ctx.text.find(s) for s in picked]
    sample = list_sample(
        TASK, "sentences_in_order", question, order, _WORDS, env, evidence=picked,
        checks=[("sentences appear in this order", all(0 <= a < b for a, b in zip(offsets, offsets[1:])))],
        answer_offset=offsets[0],
    )
    sample.candidates = [str(n + 1) for n in range(len(shown))]
    return sample


def rows_in_order(ctx: "Context", env: Env) -> Sample:
    options = []
    for table in tables(ctx, min_rows=_ITEMS):
        for col in range(len(table.header)):
            values = [r[col] for r in table.rows]
            if all(v.strip() for v in values) and len(set(values)) == len(values):
                options.append((table, col))
    env.rng.shuffle(options)
    for table, col in options:
        picked = sorted(env.rng.sample(range(len(table.rows)), _ITEMS))
        ordered = [table.rows[r][col] for r in picked]
        if not sorts_itself(ordered):
            break
    else:
        raise ConstructionError("no column whose values are unique and out of sorted order")
    shown = shuffled_presentation(ordered, env.rng)
    question = _listed_order_question(
        f'These values of the column "{table.header[col]}" of the table "{table.title}"', shown,
        "List them in the order their rows appear in the table.",
    )
    lines = [row_line(table.rows[r]) for r in picked]
    offsets = [ctx.text.find(line) for line in lines]
    sample = list_sample(
        TASK, "rows_in_order", question, ordered, _ROWS, env, evidence=lines,
        checks=[("rows appear in this order", all(0 <= a < b for a, b in zip(offsets, offsets[1:]))),
                ("values unique in the column", all(sum(r[col] == v for r in table.rows) == 1 for v in ordered))],
        answer_offset=offsets[0], instruction=ITEMS_IN_ORDER,
    )
    sample.candidates = shown
    return sample


CONSTRUCTIONS = (
    ConstructionSpec("section_words_in_order", TASK, frozenset({"prose", "dialogue"}), section_words_in_order, _WORDS,
                     sections=(2, 8)),
    ConstructionSpec("table_rows_by_value", TASK, frozenset({"table"}), table_rows_by_value, _ROWS,
                     sections=(1, 4), section_tokens=4096),
    ConstructionSpec("headings_in_order", TASK, frozenset({"prose", "dialogue"}), headings_in_order, _ROWS,
                     sections=(4, 6), section_tokens=192, level="warmup"),
    ConstructionSpec("sentences_in_order", TASK, frozenset({"prose", "dialogue"}), sentences_in_order, _WORDS,
                     sections=(1, 3), section_tokens=256, level="warmup"),
    ConstructionSpec("rows_in_order", TASK, frozenset({"table"}), rows_in_order, _ROWS,
                     sections=(1, 3), section_tokens=256, level="warmup"),
)
