"""Comprehension (multiple choice, A-D) constructions whose options are all true facts of the
context's own sections, so neither the question nor priors about famous texts pick the
answer; the gold letter cycles A-D over the samples (no majority letter).

* ``most_mentions_choice`` [prose, dialogue]: which of four sections uses a given word most
  often (a strict maximum, counted by the stated word definition). Closest LongBench-Pro
  task: T3.1 Multi-Doc Integration QA.
* ``table_extreme_choice`` [table]: which of four rows has the largest value of a column.
  Closest: T3.2 Single-Hop Fact QA.

Warm-up tier (short contexts, one comparison):

* ``sentence_seen_choice`` [prose, dialogue]: which of four whole sentences occurs in the
  context; the three others come from the same documents outside their windows (same style and
  vocabulary), and share neither their first nor last six words with the context.
* ``row_value_choice`` [table]: a row's value of a column, among three other values of that
  column.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from golongrl.construct import (
    WORD_DEFINITION,
    ConstructionError,
    ConstructionSpec,
    Env,
    Sample,
    complete_sentences,
    depth_pick,
    ground_truth,
    letters_question,
    number,
    outside_sentences,
    place_gold,
    require_sections,
    row_line,
    section_counts,
    tables,
    unique_cells,
)
from golongrl.text import word_counts

if TYPE_CHECKING:
    from golongrl.data.assembly import Context

TASK = "comprehension"


def _longest(options: list[str], gold: str) -> bool:
    """Whether the gold is among the longest options while lengths differ (a surface cue a
    blind guess exploits; with equal lengths the balanced letter decides)."""
    lengths = {len(o) for o in options}
    return len(lengths) > 1 and len(gold) == max(lengths)


def _mc_answer(letter: str) -> str:
    return f"The correct answer is ({letter})"


def most_mentions_choice(ctx: "Context", env: Env) -> Sample:
    require_sections(ctx, 4)
    counts = section_counts(ctx)
    for _ in range(8):
        picks = env.rng.sample(range(len(ctx.blocks)), 4)
        words = sorted({w for i in picks for w, n in counts[i].items() if len(w) >= 4 and w.isalpha()})
        env.rng.shuffle(words)
        for word in words:
            values = [counts[i][word] for i in picks]
            best = max(values)
            titles = [ctx.blocks[i].doc.title for i in picks]
            if values.count(best) == 1 and best >= 2 and sum(v > 0 for v in values) >= 3 \
                    and not _longest(titles, titles[values.index(best)]):
                break
        else:
            continue
        break
    else:
        raise ConstructionError("no word with a strict most-frequent section among four")
    gold_title = titles[values.index(best)]
    options, letter = place_gold(titles, gold_title, env)
    question = letters_question(
        f'In which of these sections of the context does the word "{word}" occur most often? {WORD_DEFINITION}',
        options,
    )
    recount = {b.doc.title: word_counts(b.text.split("\n\n", 1)[1])[word] for b in ctx.blocks}
    return Sample(
        TASK, "most_mentions_choice", question, ground_truth(label=letter, language=env.language), _mc_answer(letter),
        TASK, lbp_task="T3.1 Multi-Doc Integration QA", evidence=[f"# {t}" for t in titles],
        checks=[(f"{gold_title!r} beats {t!r}", recount[gold_title] > recount[t]) for t in titles if t != gold_title],
        answer_offset=ctx.text.find(f"# {gold_title}"), candidates=options,
    )


def table_extreme_choice(ctx: "Context", env: Env) -> Sample:
    found = [t for t in tables(ctx) if t.numeric]
    if not found:
        raise ConstructionError("no table with a numeric column")
    table = env.rng.choice(found)
    col = env.rng.choice(table.numeric)
    by_value: dict = {}
    for r in table.rows:
        by_value.setdefault(number(r[col]), []).append(r)
    distinct = [rows[0] for rows in by_value.values() if len(rows) == 1]
    if len(distinct) < 4:
        raise ConstructionError("fewer than four rows with distinct values")
    for _ in range(12):
        chosen = env.rng.sample(distinct, 4)
        best = max(chosen, key=lambda r: number(r[col]))
        if not _longest([r[table.key] for r in chosen], best[table.key]):
            break
    else:
        raise ConstructionError("the largest row's key is always the longest option")
    keys = [r[table.key] for r in chosen]
    options, letter = place_gold(keys, best[table.key], env)
    question = letters_question(
        f'In the table "{table.title}", which of these rows (identified by "{table.header[table.key]}") has the '
        f'largest value of "{table.header[col]}"?',
        options,
    )
    return Sample(
        TASK, "table_extreme_choice", question, ground_truth(label=letter, language=env.language), _mc_answer(letter),
        TASK, lbp_task="T3.2 Single-Hop Fact QA", evidence=[row_line(r) for r in chosen],
        checks=[(f"{best[table.key]} largest", all(number(best[col]) > number(r[col]) for r in chosen if r is not best))],
        answer_offset=ctx.text.find(row_line(best)), candidates=options,
    )


def sentence_seen_choice(ctx: "Context", env: Env) -> Sample:
    # Shaped like the distractors (capital first, plain end), so no verse number or closing
    # quote singles the gold out.
    found = [(s, b) for b in ctx.blocks if b.doc.kind != "table" for s in complete_sentences(ctx, b, 6, 24)
             if s[0].isupper() and s[-1] in ".!?"]
    if not found:
        raise ConstructionError("no whole sentence that occurs once in the context")
    others = outside_sentences(ctx, 6, 24)
    if len(others) < 3:
        raise ConstructionError("fewer than three sentences of these documents outside the context")
    sentence, block = depth_pick(found, [ctx.text.find(s) for s, _ in found], ctx, env)
    # Distractors of about the gold's length, so length does not single it out.
    others.sort(key=lambda o: (abs(len(o) - len(sentence)), o))
    pool = others[:8]
    for _ in range(12):
        chosen = env.rng.sample(pool, 3) + [sentence]
        if not _longest(chosen, sentence):
            break
    else:
        raise ConstructionError("the context's sentence is always the longest option")
    options, letter = place_gold(chosen, sentence, env)
    question = letters_question("Which of these sentences occurs in the context?", options)
    return Sample(
        TASK, "sentence_seen_choice", question, ground_truth(label=letter, language=env.language), _mc_answer(letter),
        TASK, lbp_task="T3.2 Single-Hop Fact QA", evidence=[sentence],
        checks=[("gold sentence in its section", sentence in block.text)]
        + [(f"distractor {o[:30]!r} not in the context", o not in ctx.text) for o in options if o != sentence],
        answer_offset=ctx.text.find(sentence), candidates=options,
    )


def row_value_choice(ctx: "Context", env: Env) -> Sample:
    options_by_cell = []
    for table, row, col in unique_cells(tables(ctx, min_rows=4)):
        values = list(dict.fromkeys(r[col] for r in table.rows if r is not row and r[col].strip()))
        if len(values) >= 3:
            options_by_cell.append((table, row, col, values))
    if not options_by_cell:
        raise ConstructionError("no column with four distinct values")
    table, row, col, values = depth_pick(
        options_by_cell, [ctx.text.find(row_line(o[1])) for o in options_by_cell], ctx, env)
    gold = row[col]
    for _ in range(12):
        chosen = env.rng.sample(values, 3) + [gold]
        if not _longest(chosen, gold):
            break
    else:
        raise ConstructionError("the gold value is always the longest option")
    options, letter = place_gold(chosen, gold, env)
    question = letters_question(
        f'In the table "{table.title}", what is the value of "{table.header[col]}" in the row whose '
        f'"{table.header[table.key]}" is "{row[table.key]}"?',
        options,
    )
    line = row_line(row)
    return Sample(
        TASK, "row_value_choice", question, ground_truth(label=letter, language=env.language), _mc_answer(letter),
        TASK, lbp_task="T3.2 Single-Hop Fact QA", evidence=[line],
        checks=[("row key unique", sum(r[table.key] == row[table.key] for r in table.rows) == 1),
                ("gold unique in its column", sum(r[col] == gold for r in table.rows) == 1)],
        answer_offset=ctx.text.find(line), candidates=options,
    )


CONSTRUCTIONS = (
    ConstructionSpec("most_mentions_choice", TASK, frozenset({"prose", "dialogue"}), most_mentions_choice,
                     "T3.1 Multi-Doc Integration QA", sections=(4, 10)),
    ConstructionSpec("table_extreme_choice", TASK, frozenset({"table"}), table_extreme_choice,
                     "T3.2 Single-Hop Fact QA", sections=(1, 4), section_tokens=4096),
    ConstructionSpec("sentence_seen_choice", TASK, frozenset({"prose", "dialogue"}), sentence_seen_choice,
                     "T3.2 Single-Hop Fact QA", sections=(1, 3), section_tokens=384, level="warmup"),
    ConstructionSpec("row_value_choice", TASK, frozenset({"table"}), row_value_choice,
                     "T3.2 Single-Hop Fact QA", sections=(1, 2), section_tokens=512, level="warmup"),
)
