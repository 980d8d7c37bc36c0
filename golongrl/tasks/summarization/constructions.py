"""Summarization (ROUGE-L) constructions whose reference is derived from the context itself,
so every row has its own reference and a title or the question alone shares little with it.

* ``query_focused_extract`` [prose, dialogue]: a query-focused extractive summary: every
  sentence of the context that contains a given word, in context order (2-6 sentences from at
  least two sections). Closest LongBench-Pro task: T4.2 Query-Focused Summary.
* ``table_column_profile`` [table]: a profile of one column of a named table written from its
  rows: how many rows, the smallest and largest values with their row keys, and the mean.
  Closest: T4.1 Global-Coverage Constrained Summary.

Warm-up tier (short contexts; the answer is one span copied from the context, and the scorer
drops the question's words, so echoing the question or the heading it names earns nothing):

* ``sentence_with_word`` [prose, dialogue]: quote the one sentence that contains a given word
  (a word of six or more letters that occurs once in the context, in any letter case).
  Closest: T4.2 Query-Focused Summary.
* ``first_sentence_quote`` [prose, dialogue]: quote the first sentence of a named section that
  is not the context's first (whose opening a lead-of-context answer would copy). Closest: T4.2.
* ``row_description`` [table]: describe one row of a table, named by its key, through two or
  three of its columns (named in the question); the reference is those cells, each unique in
  its column, in the order asked. Closest: T4.1 Global-Coverage Constrained Summary.
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
    complete_sentences,
    depth_pick,
    fmt,
    list_sample,
    number,
    opening_sentence,
    require_sections,
    row_line,
    tables,
    visible_sentences,
)
from golongrl.text import count_term, words

if TYPE_CHECKING:
    from golongrl.data.assembly import Context

TASK = "summarization"
_QUERY = "T4.2 Query-Focused Summary"
_PROFILE = "T4.1 Global-Coverage Constrained Summary"


def query_focused_extract(ctx: "Context", env: Env) -> Sample:
    require_sections(ctx, 2)
    sentences = [(s, i) for i, b in enumerate(ctx.blocks) for s in complete_sentences(ctx, b, min_words=4, max_words=80)]
    vocab = sorted({w for s, _ in sentences for w in words(s) if w.isalpha() and len(w) >= 4})
    env.rng.shuffle(vocab)
    for word in vocab:
        # Every occurrence must be inside a quotable sentence, or the extract would be partial.
        total = sum(count_term(block_body(b), word) for b in ctx.blocks)
        hits = [(s, i) for s, i in sentences if count_term(s, word)]
        if 2 <= len(hits) <= 8 and len({i for _, i in hits}) >= 2 and sum(count_term(s, word) for s, _ in hits) == total:
            break
    else:
        raise ConstructionError("no word whose sentences span two sections")
    hits.sort(key=lambda h: ctx.text.find(h[0]))
    reference = " ".join(s for s, _ in hits)
    question = (
        f'Summarise what the context says about "{word}": quote, in the order they appear, every sentence of the '
        f"context that contains the word \"{word}\", and nothing else. {WORD_DEFINITION}"
    )
    return list_sample(
        TASK, "query_focused_extract", question, [reference], _QUERY, env, evidence=[s for s, _ in hits],
        checks=[("every occurrence quoted", sum(count_term(s, word) for s, _ in hits) == total)],
        answer_offset=ctx.text.find(hits[0][0]),
    )


def table_column_profile(ctx: "Context", env: Env) -> Sample:
    options = [(t, c) for t in tables(ctx, min_rows=5) for c in t.numeric]
    if not options:
        raise ConstructionError("no numeric column")
    table, col = env.rng.choice(options)
    values = [number(r[col]) for r in table.rows]
    low, high = min(values), max(values)
    if values.count(low) > 1 or values.count(high) > 1:
        raise ConstructionError("smallest or largest value is tied")
    key = table.header[table.key]
    low_key = table.rows[values.index(low)][table.key]
    high_key = table.rows[values.index(high)][table.key]
    mean = (sum(values, Decimal(0)) / len(values)).quantize(Decimal("0.01"))
    name = table.header[col]
    reference = (
        f"{len(values)} rows. {name} is smallest at {fmt(low)} ({key} {low_key}) and largest at {fmt(high)} "
        f"({key} {high_key}); the mean is {fmt(mean)}."
    )
    question = (
        f'Profile the column "{name}" of the table "{table.title}" in one or two sentences: the number of rows, the '
        f'smallest and the largest value with the "{key}" of their rows, and the mean rounded to two decimals.'
    )
    return list_sample(
        TASK, "table_column_profile", question, [reference], _PROFILE, env, evidence=[low_key, high_key],
        checks=[("unique extremes", values.count(low) == 1 and values.count(high) == 1)],
        answer_offset=table.block.start,
    )


#: The answer format of the warm-up quotes (a format the hardened scorer reads: text after [Answer]).
QUOTE_FORMAT = "Write [Answer] on its own line, then the sentence."


def sentence_with_word(ctx: "Context", env: Env) -> Sample:
    folded = Counter(w.lower() for w in words(ctx.text))
    options = [
        (word, sentence)
        for b in ctx.blocks
        for sentence in visible_sentences(ctx, b, 6, 30)
        for word in dict.fromkeys(words(sentence))
        if word.isalpha() and len(word) >= 6 and folded[word.lower()] == 1
    ]
    word, sentence = depth_pick(options, [ctx.text.find(s) for _, s in options], ctx, env)
    question = f'Quote the sentence of the context that contains the word "{word}".'
    return list_sample(
        TASK, "sentence_with_word", question, [sentence], _QUERY, env, evidence=[sentence],
        checks=[("the word occurs once", sum(w.lower() == word.lower() for w in words(ctx.text)) == 1),
                ("in this sentence", count_term(sentence, word) == 1)],
        answer_offset=ctx.text.find(sentence), instruction=QUOTE_FORMAT,
    )


def first_sentence_quote(ctx: "Context", env: Env) -> Sample:
    require_sections(ctx, 2)
    options = [(b, s) for b in ctx.blocks[1:] if (s := opening_sentence(ctx, b)) is not None]
    block, sentence = depth_pick(options, [b.start for b, _ in options], ctx, env)
    question = f'Quote the first sentence of the section "{block.doc.title}".'
    return list_sample(
        TASK, "first_sentence_quote", question, [sentence], _QUERY, env, evidence=[sentence],
        checks=[("the section opens with it", block_body(block).startswith(sentence)),
                ("not the first section", block is not ctx.blocks[0])],
        answer_offset=ctx.text.find(sentence), instruction=QUOTE_FORMAT,
    )


def row_description(ctx: "Context", env: Env) -> Sample:
    options = []
    for table in tables(ctx, min_rows=4):
        # Not the first two rows, which a lead-of-context answer would copy.
        for row in table.rows[2:]:
            cols = [
                c for c in range(len(table.header))
                if c != table.key and row[c].strip() and sum(r[c] == row[c] for r in table.rows) == 1
            ]
            if len(cols) >= 2:
                options.append((table, row, cols))
    if not options:
        raise ConstructionError("no row with two cells unique in their columns")
    table, row, cols = depth_pick(options, [ctx.text.find(row_line(o[1])) for o in options], ctx, env)
    cols = sorted(env.rng.sample(cols, min(len(cols), env.rng.randint(2, 3))))
    names = [f'"{table.header[c]}"' for c in cols]
    question = (
        f'Describe in one sentence the row of the table "{table.title}" whose "{table.header[table.key]}" is '
        f'"{row[table.key]}": give its {", ".join(names[:-1])} and {names[-1]}.'
    )
    reference = "; ".join(f"{table.header[c]}: {row[c]}" for c in cols) + "."
    return list_sample(
        TASK, "row_description", question, [reference], _PROFILE, env, evidence=[row_line(row)],
        checks=[(f"{table.header[c]} unique", sum(r[c] == row[c] for r in table.rows) == 1) for c in cols],
        answer_offset=ctx.text.find(row_line(row)),
    )


CONSTRUCTIONS = (
    ConstructionSpec("query_focused_extract", TASK, frozenset({"prose", "dialogue"}), query_focused_extract, _QUERY,
                     sections=(2, 8)),
    ConstructionSpec("table_column_profile", TASK, frozenset({"table"}), table_column_profile, _PROFILE,
                     sections=(1, 4), section_tokens=4096),
    ConstructionSpec("sentence_with_word", TASK, frozenset({"prose", "dialogue"}), sentence_with_word, _QUERY,
                     sections=(1, 3), section_tokens=256, level="warmup"),
    ConstructionSpec("first_sentence_quote", TASK, frozenset({"prose", "dialogue"}), first_sentence_quote, _QUERY,
                     sections=(2, 4), section_tokens=256, level="warmup"),
    ConstructionSpec("row_description", TASK, frozenset({"table"}), row_description, _PROFILE,
                     sections=(1, 3), section_tokens=256, level="warmup"),
)
