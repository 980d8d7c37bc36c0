"""Structured matching (SubEM) constructions: numbered items matched to where they come from,
one ``number: answer`` line each. Every source is a same-domain document, so vocabulary and
genre do not give the match away; excerpts are whole sentences.

* ``excerpt_section_match`` [prose, dialogue]: 3-6 quoted sentences, each matched to the
  heading of the section that contains it. Closest LongBench-Pro task: T6.1 Large-Scale
  Document Clustering (assigning passages to their documents).
* ``value_row_match`` [table]: 3-6 cell values, each unique in its column, matched to the key
  of the row holding it. Closest: T8.1 Structured Multi-Source Consistency Verification.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from golongrl.construct import (
    ConstructionError,
    ConstructionSpec,
    Env,
    Sample,
    complete_sentences,
    list_sample,
    require_sections,
    row_line,
    tables,
    visible_sentences,
)

if TYPE_CHECKING:
    from golongrl.data.assembly import Context

TASK = "structured_matching"
_EXCERPT = "T6.1 Large-Scale Document Clustering"
_VALUE = "T8.1 Structured Multi-Source Consistency Verification"


def excerpt_section_match(ctx: "Context", env: Env) -> Sample:
    require_sections(ctx, 3)
    by_block = [(b.doc.title, complete_sentences(ctx, b)) for b in ctx.blocks]
    usable = [(t, s) for t, s in by_block if s]
    if len(usable) < 3:
        raise ConstructionError("fewer than three sections with a whole quotable sentence")
    k = min(len(usable), env.rng.randint(3, 6))
    chosen = [(env.rng.choice(s), t) for t, s in env.rng.sample(usable, k)]
    lines = "\n".join(f'{i + 1}. "{s}"' for i, (s, _) in enumerate(chosen))
    question = (
        "Each excerpt below is a sentence from one section of the context. For each, give the heading of its "
        f'section, exactly as written without the "#".\n{lines}'
    )
    gold = [f"{i + 1}: {t}" for i, (_, t) in enumerate(chosen)]
    holder = {b.doc.title: b.text for b in ctx.blocks}
    return list_sample(
        TASK, "excerpt_section_match", question, gold, _EXCERPT, env, evidence=[s for s, _ in chosen],
        checks=[(f"excerpt {i + 1} in {t}", s in holder[t] and ctx.text.count(s) == 1) for i, (s, t) in enumerate(chosen)],
        answer_offset=min(ctx.text.find(s) for s, _ in chosen),
    )


def sentence_section_match(ctx: "Context", env: Env) -> Sample:
    require_sections(ctx, 2)
    usable = [(b.doc.title, found) for b in ctx.blocks if (found := visible_sentences(ctx, b, 5, 30))]
    if len(usable) < 2:
        raise ConstructionError("fewer than two sections with a whole quotable sentence")
    # Two sections for sure, the third sentence from any section (kappa needs two labels).
    first, second = env.rng.sample(usable, 2)
    chosen = [(env.rng.choice(first[1]), first[0]), (env.rng.choice(second[1]), second[0])]
    title, pool = env.rng.choice(usable)
    rest = [x for x in pool if x not in {c for c, _ in chosen}]
    if rest:
        chosen.append((env.rng.choice(rest), title))
    env.rng.shuffle(chosen)
    lines = "\n".join(f'{i + 1}. "{s}"' for i, (s, _) in enumerate(chosen))
    question = (
        "Each sentence below comes from one section of the context. For each, give the heading of its section, "
        f'exactly as written without the "#".\n{lines}'
    )
    gold = [f"{i + 1}: {t}" for i, (_, t) in enumerate(chosen)]
    holder = {b.doc.title: b.text for b in ctx.blocks}
    return list_sample(
        TASK, "sentence_section_match", question, gold, _EXCERPT, env, evidence=[s for s, _ in chosen],
        checks=[(f"sentence {i + 1} in {t}", s in holder[t] and ctx.text.count(s) == 1)
                for i, (s, t) in enumerate(chosen)],
        answer_offset=min(ctx.text.find(s) for s, _ in chosen),
    )


def _values_to_row_keys(ctx: "Context", env: Env, name: str, min_rows: int, count: tuple[int, int]) -> Sample:
    """``count`` cell values of one column of a table (each unique in it), matched to their rows' keys."""
    options = []
    for table in tables(ctx, min_rows=min_rows):
        for col in range(len(table.header)):
            if col == table.key:
                continue
            if any(r[col] == r[table.key] for r in table.rows):
                continue  # a column that repeats the key would answer itself
            seen = Counter(r[col] for r in table.rows)
            unique = [r for r in table.rows if r[col].strip() and seen[r[col]] == 1]
            if len(unique) >= count[0]:
                options.append((table, col, unique))
    if not options:
        raise ConstructionError(f"no column with {count[0]} values unique in it")
    table, col, unique = env.rng.choice(options)
    chosen = env.rng.sample(unique, min(len(unique), env.rng.randint(*count)))
    lines = "\n".join(f"{i + 1}. {r[col]}" for i, r in enumerate(chosen))
    question = (
        f'Each value below occurs exactly once in the column "{table.header[col]}" of the table "{table.title}". '
        f'For each, give the "{table.header[table.key]}" of its row.\n{lines}'
    )
    gold = [f"{i + 1}: {r[table.key]}" for i, r in enumerate(chosen)]
    return list_sample(
        TASK, name, question, gold, _VALUE, env, evidence=[row_line(r) for r in chosen],
        checks=[(f"value {i + 1} unique", sum(x[col] == r[col] for x in table.rows) == 1) for i, r in enumerate(chosen)],
        answer_offset=min(ctx.text.find(row_line(r)) for r in chosen),
    )


def value_row_match(ctx: "Context", env: Env) -> Sample:
    return _values_to_row_keys(ctx, env, "value_row_match", 6, (3, 6))


def cell_row_match(ctx: "Context", env: Env) -> Sample:
    return _values_to_row_keys(ctx, env, "cell_row_match", 4, (2, 3))


CONSTRUCTIONS = (
    ConstructionSpec("excerpt_section_match", TASK, frozenset({"prose", "dialogue"}), excerpt_section_match, _EXCERPT,
                     sections=(3, 10)),
    ConstructionSpec("value_row_match", TASK, frozenset({"table"}), value_row_match, _VALUE,
                     sections=(1, 4), section_tokens=4096),
    ConstructionSpec("sentence_section_match", TASK, frozenset({"prose", "dialogue"}), sentence_section_match,
                     _EXCERPT, sections=(2, 4), section_tokens=256, level="warmup"),
    ConstructionSpec("cell_row_match", TASK, frozenset({"table"}), cell_row_match, _VALUE,
                     sections=(1, 3), section_tokens=256, level="warmup"),
)
