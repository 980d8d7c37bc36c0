"""Shared machinery of the rule-based constructions (one module per task under
``golongrl/tasks/<name>/constructions.py``).

A construction reads an assembled context (:class:`golongrl.data.assembly.Context`: several
*sections*, each a window of one real document under its title as a ``# heading``) and derives
a question and its gold from the text that is actually in it. Only the question is
synthesised, never the document. The result is a :class:`Sample` carrying evidence spans and
item-by-item checks that :mod:`golongrl.data.verify` re-runs on the final context.

This module is a low layer: it imports only :mod:`golongrl.text` and :mod:`golongrl.tasks`
(never :mod:`golongrl.data`, whose package imports the row schema, which imports the task
registry), so task modules can import it at import time without an import circle. Context
types are used by attribute only.
"""

from __future__ import annotations

import csv
import io
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Callable, Sequence

from golongrl.text import split_sentences, word_counts

if TYPE_CHECKING:
    from golongrl.data.assembly import Block, Context

#: The one definition of a word that every counting question states and every check uses
#: (it is :func:`golongrl.text.words`).
WORD_DEFINITION = (
    "A word is a maximal run of letters and digits; an apostrophe or hyphen between two letters "
    "or digits joins them into one word (so \"don't\" and \"well-known\" are one word each). "
    "Matching is case-sensitive and whole-word (\"Law\" does not count \"law\" or \"Laws\")."
)

#: Answer formats for constructions whose items differ from what the task's default
#: ``instruction`` names (both are formats the hardened scorer accepts).
ITEMS_IN_ORDER = "Write [Answer] on its own line, then the items in order, one per line."
TABLE_ROWS_AS_ASKED = (
    'Reply with <answer>{"data": [[...], ...]}</answer>: one inner list per row, in the order asked, '
    "each value a string exactly as written in the text."
)


class ConstructionError(ValueError):
    """This context cannot support this construction (reason in the message); try another."""


@dataclass
class Sample:
    """One constructed question with its gold, before it becomes a dataset row.

    Attributes:
        task / construction: canonical task name and the construction that made it.
        question: the question alone (``extra_info.question``; what decontamination reads).
        gold: ``reward_model.ground_truth`` (``doc_ids``, ``golden_label``, ``summary``).
        answer: the body of a correct response (what follows ``</think>``).
        reward_mode: ``extra_info.reward_mode`` (a LongBench-Pro name for ``longbench_pro`` rows).
        lbp_task: the LongBench-Pro secondary task this construction is closest to.
        evidence: spans that must occur verbatim in the context.
        checks: ``(what, passed)`` item-by-item verifications computed from the context.
        answer_offset: character offset of the first evidence in the context (answer depth).
        candidates: the items the question presents, in the order it presents them.
        instruction: the answer format, when not the task's own ``instruction``.
    """

    task: str
    construction: str
    question: str
    gold: dict[str, Any]
    answer: str
    reward_mode: str
    lbp_task: str = ""
    evidence: list[str] = field(default_factory=list)
    checks: list[tuple[str, bool]] = field(default_factory=list)
    answer_offset: int | None = None
    candidates: list[str] | None = None
    instruction: str | None = None


@dataclass
class Env:
    """What a construction may use besides the context.

    ``position`` is the requested evidence depth (0-1, ``None`` for random); ``slot`` is the
    sample's balancing slot in its (split, task) plan, which constructions use to spread gold
    letters and gold magnitudes evenly (no majority answer).
    """

    rng: random.Random
    position: float | None
    language: str = "English"
    slot: int = 0


Construction = Callable[["Context", Env], Sample]

#: Curriculum tiers of constructions, easiest last (see :class:`ConstructionSpec`).
LEVELS: tuple[str, ...] = ("core", "warmup")


@dataclass(frozen=True)
class ConstructionSpec:
    """A registered construction: which task it serves and what context it needs.

    ``sections`` is the (min, max) number of same-domain documents in its context; the
    assembler uses about one section per ``section_tokens`` of the target length. ``level``
    is its curriculum tier: ``"core"`` (the default build: long-context skills at full
    difficulty) or ``"warmup"`` (short, few-section contexts and one-step skills - copy a value,
    pick among a few options - that a small policy solves sometimes, so its RL groups carry
    signal; a data config selects tiers with ``levels``).
    """

    name: str
    task: str
    kinds: frozenset[str]
    fn: Construction
    lbp_task: str
    sections: tuple[int, int] = (4, 12)
    section_tokens: int = 1024
    level: str = "core"

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"construction {self.name!r}: level {self.level!r} is not one of {LEVELS}")


def ground_truth(*, doc_ids: Sequence[str] = (), label: str = "", language: str = "English") -> dict[str, Any]:
    """A ``reward_model.ground_truth`` dict with all three fields present (parquet needs one
    schema for every row). ``summary`` carries the language name: the reference scorer passes
    this field as its ``language`` argument (spec §3.4, quirk 4)."""
    return {"doc_ids": list(doc_ids), "golden_label": label, "summary": language}


def list_answer(items: Sequence[str]) -> str:
    return "[Answer]\n" + "\n".join(items)


def list_sample(
    task: str, construction: str, question: str, items: Sequence[str], lbp_task: str, env: Env, *,
    evidence: list[str], checks: list[tuple[str, bool]], answer_offset: int | None = None,
    instruction: str | None = None,
) -> Sample:
    """A :class:`Sample` whose gold is the list ``items`` (``doc_ids``), answered by listing
    them, and scored as the LongBench-Pro task ``lbp_task`` (its reward mode)."""
    return Sample(
        task, construction, question, ground_truth(doc_ids=items, language=env.language), list_answer(items),
        lbp_task, lbp_task=lbp_task, evidence=evidence, checks=checks, answer_offset=answer_offset,
        instruction=instruction,
    )


# --- sections -------------------------------------------------------------------------------


def block_body(block: "Block") -> str:
    """A section's text without its heading."""
    return block.text.split("\n\n", 1)[1] if "\n\n" in block.text else ""


def headings(ctx: "Context") -> list[str]:
    return [b.doc.title for b in ctx.blocks]


def require_sections(ctx: "Context", minimum: int) -> None:
    if len(ctx.blocks) < minimum:
        raise ConstructionError(f"needs {minimum} sections, context has {len(ctx.blocks)}")
    if len(set(headings(ctx))) != len(ctx.blocks):
        raise ConstructionError("two sections share a heading")


def section_counts(ctx: "Context") -> list[Any]:
    """Word counts (:data:`WORD_DEFINITION`) of each section's body, in context order."""
    return [word_counts(block_body(b)) for b in ctx.blocks]


def complete_sentences(ctx: "Context", block: "Block", min_words: int = 8, max_words: int = 40) -> list[str]:
    """Whole sentences of a section (they end in . ! or ? (or a closing quote), start with a
    capital letter, a digit (a verse number) or a quote, and do not come from the unit the
    window was cut in) that occur exactly once in the context."""
    found = []
    # The unit the window was cut from may end (or, for a tail cut, start) mid-sentence.
    cut = set() if block.cut_source is None else {0 if block.cut_tail else len(block.units) - 1}
    for i, unit in enumerate(block.units):
        if i in cut:
            continue
        for line in unit.split("\n"):
            for sentence in split_sentences(line):
                if sentence.startswith("#") or not (min_words <= len(sentence.split()) <= max_words):
                    continue
                if not (sentence[0].isupper() or sentence[0].isdigit() or sentence[0] in "\"'“‘(") \
                        or sentence[-1] not in ".!?\"'”’)":
                    continue
                if ctx.text.count(sentence) == 1:
                    found.append(sentence)
    return found


def depth_pick(items: Sequence[Any], offsets: Sequence[int], ctx: "Context", env: Env) -> Any:
    """An item near the requested answer depth (random when no depth is requested)."""
    if not items:
        raise ConstructionError("no usable candidate in the context")
    if env.position is None:
        return env.rng.choice(list(items))
    size = max(1, len(ctx.text))
    ranked = sorted(range(len(items)), key=lambda i: (abs(offsets[i] / size - env.position), i))
    return items[env.rng.choice(ranked[:3])]


def section_words_of_length(
    ctx: "Context", env: Env, candidates: Sequence[Sequence[str]], lengths: range, count: tuple[int, int]
) -> tuple[int, int, list[str]]:
    """``(section index, length, words)``: a section near the requested depth, the smallest
    length in ``lengths`` for which ``count[0]``-``count[1]`` of its ``candidates`` (one list
    per section, in context order) have at least that many letters, and those words in the
    order given. Raises :class:`ConstructionError` when no section has such a length."""
    options = []
    for i, words in enumerate(candidates):
        for length in lengths:
            hits = [w for w in words if len(w) >= length]
            if count[0] <= len(hits) <= count[1]:
                options.append((i, length, hits))
                break
    return depth_pick(options, [ctx.blocks[o[0]].start for o in options], ctx, env)


def spread_target(env: Env, low: int, high: int) -> int:
    """A target magnitude in [low, high] that cycles with the slot (balanced gold values)."""
    span = high - low + 1
    return low + (env.slot * 7 + env.rng.randrange(3)) % span


# --- tables ---------------------------------------------------------------------------------


@dataclass
class Table:
    """One table section: header, complete rows, key column, numeric and categorical columns."""

    block: "Block"
    header: list[str]
    rows: list[list[str]]
    key: int
    numeric: list[int]
    categorical: list[int]

    @property
    def title(self) -> str:
        return self.block.doc.title


def number(text: str) -> Decimal | None:
    try:
        value = Decimal(text.strip())
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() else None


def fmt(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return "0" if text == "-0" else text


def row_line(row: Sequence[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(row)
    return buf.getvalue()


def parse_table(block: "Block", min_rows: int = 4) -> Table | None:
    """The table of a section, or ``None`` when it has no row key or too few rows."""
    if block.doc.kind != "table" or not block.units:
        return None
    parsed = list(csv.reader(io.StringIO("\n".join(block.units))))
    header = parsed[0]
    body = [r for r in parsed[1:] if len(r) == len(header)]
    if len(body) < min_rows:
        return None
    key = next(
        (c for c in range(len(header))
         if all(r[c].strip() for r in body) and len({r[c] for r in body}) == len(body)),
        None,
    )
    if key is None:
        return None
    numeric = [c for c in range(len(header)) if c != key and all(number(r[c]) is not None for r in body)]
    categorical = [
        c for c in range(len(header))
        if c != key and c not in numeric and 2 <= len({r[c] for r in body}) <= max(2, len(body) // 2)
    ]
    return Table(block, header, body, key, numeric, categorical)


def tables(ctx: "Context", min_rows: int = 4) -> list[Table]:
    found = [t for t in (parse_table(b, min_rows) for b in ctx.blocks) if t is not None]
    if not found:
        raise ConstructionError("no usable table in the context")
    return found


def letters_question(stem: str, options: Sequence[str]) -> str:
    return stem + "\n" + "\n".join(f"({'ABCD'[i]}) {o}" for i, o in enumerate(options))


def place_gold(options: list[str], gold: str, env: Env) -> tuple[list[str], str]:
    """Options with the gold at the slot's letter (letters cycle A-D over the samples)."""
    others = [o for o in options if o != gold]
    env.rng.shuffle(others)
    index = env.slot % 4
    placed = others[:index] + [gold] + others[index:]
    return placed[:4], "ABCD"[index]


__all__ = [
    "Construction",
    "ConstructionError",
    "ConstructionSpec",
    "Env",
    "Sample",
    "Table",
    "ITEMS_IN_ORDER",
    "TABLE_ROWS_AS_ASKED",
    "WORD_DEFINITION",
    "block_body",
    "complete_sentences",
    "depth_pick",
    "fmt",
    "ground_truth",
    "headings",
    "letters_question",
    "list_answer",
    "list_sample",
    "number",
    "outside_sentences",
    "parse_table",
    "phrase_followers",
    "place_gold",
    "require_sections",
    "row_line",
    "section_counts",
    "section_words_of_length",
    "spread_target",
    "tables",
    "unique_cells",
    "whole_units",
]


# --- warm-up tier helpers -------------------------------------------------------------------


def whole_units(block: "Block") -> list[str]:
    """A section's units without the one its window was cut in (that one may start or end
    mid-sentence)."""
    if block.cut_source is None:
        return list(block.units)
    cut = 0 if block.cut_tail else len(block.units) - 1
    return [u for i, u in enumerate(block.units) if i != cut]


def unique_cells(found: Sequence[Table]) -> list[tuple[Table, list[str], int]]:
    """``(table, row, column)`` of every non-empty cell whose value occurs once in its column
    and differs from its row's key (a value equal to the key would be named by a question
    that identifies the row by its key)."""
    cells = []
    for t in found:
        for c in range(len(t.header)):
            if c == t.key:
                continue
            seen = Counter(r[c] for r in t.rows)
            cells += [(t, r, c) for r in t.rows if r[c].strip() and seen[r[c]] == 1 and r[c] != r[t.key]]
    return cells


def outside_sentences(ctx: "Context", min_words: int, max_words: int) -> list[str]:
    """Whole sentences of the context's own documents, outside their windows, that share neither
    their first nor their last six words with the context (so no near-copy of a context
    sentence): same-domain text the context does not contain, for distractor options."""
    found: list[str] = []
    for block in ctx.blocks:
        if block.doc.kind == "table":
            continue
        for line in block.doc.text.split("\n"):
            for sentence in split_sentences(line):
                tokens = sentence.split()
                if not (min_words <= len(tokens) <= max_words) or not sentence[0].isupper() \
                        or sentence[-1] not in ".!?":
                    continue
                if " ".join(tokens[:6]) in ctx.text or " ".join(tokens[-6:]) in ctx.text:
                    continue
                found.append(sentence)
    return list(dict.fromkeys(found))


def phrase_followers(ctx: "Context", follower: "re.Pattern[str]") -> list[tuple[str, str]]:
    """``(phrase, next)`` pairs: a run of 4-6 whitespace-separated words of one line of a
    prose or dialogue section (whole units only) that occurs exactly once in the context, and
    the word right after it, which matches ``follower`` whole and is not one of the phrase's
    words (so neither copying the phrase nor its last word answers)."""
    found = []
    for block in ctx.blocks:
        if block.doc.kind == "table":
            continue
        for unit in whole_units(block):
            for line in unit.split("\n"):
                tokens = line.split()
                for i in range(len(tokens) - 4):
                    size = 4 + i % 3
                    if i + size >= len(tokens) or not follower.fullmatch(tokens[i + size]):
                        continue
                    phrase = " ".join(tokens[i:i + size])
                    word = tokens[i + size]
                    if '"' not in phrase and word not in tokens[i:i + size] and ctx.text.count(phrase) == 1:
                        found.append((phrase, word))
    return found


# --- warm-up tier: presentation and sentence helpers -------------------------------------------


def _pairs_in_order(order: Sequence[int]) -> float:
    """The fraction of pairs of ``order`` (positions) that are increasing."""
    n = len(order)
    pairs = [(a, b) for i, a in enumerate(order) for b in order[i + 1:]]
    return sum(a < b for a, b in pairs) / max(1, n * (n - 1) // 2)


def shuffled_presentation(items: Sequence[Any], rng: random.Random) -> list[Any]:
    """``items`` (at least four, distinct, in their true order) in a random order from which no
    blind reading recovers much: the listed order, its reverse and its half rotation (what an
    ordering audit tries) each have at most 2/3 of the pairs in true order, so each earns at most
    1/3 of the rescaled pairwise reward on a row (about 0.1 on average), and the best fixed
    rearrangement of the listed order averages about 0.26 (four items) or less (more items)."""
    if len(items) < 4 or len(set(items)) != len(items):
        raise ConstructionError("needs at least four distinct items to shuffle")
    order = list(range(len(items)))
    half = len(order) // 2
    while True:
        rng.shuffle(order)
        readings = (order, order[::-1], order[half:] + order[:half])
        if all(_pairs_in_order(r) <= 2 / 3 + 1e-9 for r in readings):
            return [items[i] for i in order]


def sorts_itself(items: Sequence[str]) -> bool:
    """Whether ``items`` are in sorted order (alphabetical, case-insensitive, or numeric when all
    are numbers), ascending or descending: an order a policy could produce without the text."""
    keys: list[list[Any]] = [[i.lower() for i in items]]
    if all(number(i) is not None for i in items):
        keys.append([number(i) for i in items])
    return any(k == sorted(k) or k == sorted(k, reverse=True) for k in keys)


def opening_sentence(ctx: "Context", block: "Block", min_words: int = 6, max_words: int = 40) -> str | None:
    """The first sentence of a section's body when it is whole (the section starts on a whole
    unit), ``min_words``-``max_words`` words long and occurs once in the context; else ``None``."""
    if not block.units:
        return None
    first_line = next((line for line in block.units[0].split("\n") if line.strip()), "")
    sentences = split_sentences(first_line)
    if not sentences:
        return None
    # visible_sentences leaves out the sentence a cut runs through, so a cut opening is refused.
    return sentences[0] if sentences[0] in visible_sentences(ctx, block, min_words, max_words) else None


def visible_sentences(ctx: "Context", block: "Block", min_words: int = 8, max_words: int = 40) -> list[str]:
    """:func:`complete_sentences`, plus the whole sentences of the unit the window was cut in
    (all but the one the cut runs through): a short section is often one cut paragraph."""
    if block.cut_source is None:
        return complete_sentences(ctx, block, min_words, max_words)
    edge = 0 if block.cut_tail else len(block.units) - 1
    lines = block.units[edge].split("\n")
    at = 0 if block.cut_tail else len(lines) - 1
    pieces = split_sentences(lines[at])
    lines[at] = " ".join(pieces[1:] if block.cut_tail else pieces[:-1])
    units = list(block.units)
    units[edge] = "\n".join(lines)
    # Every sentence is still checked to occur once, verbatim, in the context.
    return complete_sentences(ctx, type(block)(block.doc, units, block.role), min_words, max_words)


__all__ += ["opening_sentence", "shuffled_presentation", "sorts_itself", "visible_sentences"]
