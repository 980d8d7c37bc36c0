"""Phase 3 (no-LLM track): question–answer pairs derived from a real document's own structure.

Every construction reads an assembled :class:`~golongrl.data.assembly.Context` (the main
document window plus any distractors) and derives the question and the gold answer from the
text that is actually in that context, so the answer is true by construction; only the
question is synthesised, never the document. Each returns a :class:`Sample` that also carries
its evidence spans and item-by-item checks, which :mod:`golongrl.data.verify` re-runs against
the final context before a row is written.

Constructions per task (the doc kinds each accepts in brackets):

========================  =====================================================================
precise_retrieval (EM)    ``next_word`` [prose, dialogue]: the word right after a unique quoted
                          prefix. ``table_lookup`` [table]: one cell by row key and column.
comprehension (MC)        ``cloze_choice`` [prose, dialogue]: the word blanked out of a quoted
                          sentence, three distractor words of the same shape from the same
                          document. ``table_extreme_choice`` [table]: which of four rows has
                          the largest value in a column.
exhaustive_retrieval (F1) ``present_terms`` [prose, dialogue]: which candidate words occur in
                          the text (absent candidates come from other documents).
                          ``table_matching_keys`` [table]: every row key whose column equals a
                          value.
numerical_reasoning       ``term_count`` [prose, dialogue]: occurrences of a word.
(math_verify)             ``table_aggregate`` [table]: count / sum / max-minus-min over rows.
structured_extraction     ``table_filter_rows`` [table]: two columns of every row meeting a
(IoU)                     numeric or categorical condition, as ``{"data": [[...], ...]}``.
structured_matching       ``utterance_speaker`` [dialogue]: who said each quoted utterance.
(SubEM)                   ``excerpt_source`` [prose, multi-document context]: which document
                          each quoted sentence comes from.
graded_ranking (NDCG)     ``term_frequency_rank`` [prose, dialogue]: words ranked by frequency.
                          ``table_value_rank`` [table]: row keys ranked by a numeric column.
sequence_ordering         ``excerpt_order`` [prose, dialogue, table]: shuffled excerpts (or
(pairwise)                rows) put back in document order.
summarization (ROUGE-L)   ``held_out_description`` [any document with its own description]:
                          the reference is the document's description, which is never in the
                          context.
========================  =====================================================================
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Sequence

from golongrl.data.assembly import Context
from golongrl.data.corpus import Document
from golongrl.data.text import count_term, find_word, split_sentences, word_counts, words
from golongrl.tasks import get_task

#: Requested answer format per task; every prompt ends with its task's line (spec §2.2).
ANSWER_INSTRUCTIONS: dict[str, str] = {
    "precise_retrieval": "Reply with only the answer, exactly as it is written in the text, and nothing else.",
    "comprehension": "End your reply with the line: The correct answer is (X), where X is A, B, C or D.",
    "exhaustive_retrieval": "Write [Answer] on its own line, then every item, one per line.",
    "numerical_reasoning": "Put the final number in \\boxed{} at the end of your reply.",
    "structured_extraction": 'Reply with <answer>{"data": [[...], ...]}</answer>: one inner list per row, '
    "in table order, each value a string exactly as written in the table.",
    "structured_matching": "Write [Answer] on its own line, then one line per excerpt in the form "
    "'number: answer'.",
    "graded_ranking": "Write [Answer] on its own line, then the items ranked, most first, one per line.",
    "sequence_ordering": "Write [Answer] on its own line, then the excerpt numbers in order, one per line.",
    "summarization": "Write [Answer] on its own line, then the summary as one paragraph.",
}

#: The LongBench-Pro ``reward_mode`` each list-task construction is filed under (its metric is
#: the task's metric; the name is the closest of the 25 LongBench-Pro secondary tasks).
REWARD_MODES: dict[str, str] = {
    "present_terms": "T6.2 Targeted Subset Cluster Identification",
    "table_matching_keys": "T6.2 Targeted Subset Cluster Identification",
    "utterance_speaker": "T8.3 Long-Context Procedural State Tracking",
    "excerpt_source": "T6.1 Large-Scale Document Clustering",
    "term_frequency_rank": "T1.2 Key-Snippet Retrieval",
    "table_value_rank": "T1.1 Global Cohesive Retrieval",
    "excerpt_order": "T2.1 Global Timeline Reconstruction",
    "held_out_description": "T4.1 Global-Coverage Constrained Summary",
}

_STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    me more most my myself no nor not now of off on once only or other our ours ourselves out over
    own same she should so some such than that the their theirs them themselves then there these
    they this those through to too under until up upon very was we were what when where which while
    who whom why will with would you your yours yourself yourselves shall may might must unto thee
    thou thy said one two also much many every""".split()
)


class ConstructionError(ValueError):
    """This context cannot support this construction (reason in the message); try another."""


@dataclass
class Sample:
    """One constructed question with its gold, before it becomes a dataset row.

    Attributes:
        task: canonical task name. construction: which construction made it.
        question: the question alone (``extra_info.question``; what decontamination reads).
        gold: ``reward_model.ground_truth`` (``doc_ids``, ``golden_label``, ``summary``).
        answer: the body of a correct response (what follows ``</think>``).
        reward_mode: ``extra_info.reward_mode``.
        evidence: spans that must occur verbatim in the context.
        checks: ``(what, passed)`` item-by-item verifications computed from the context.
        answer_offset: character offset of the first evidence in the context (answer depth).
    """

    task: str
    construction: str
    question: str
    gold: dict[str, Any]
    answer: str
    reward_mode: str
    evidence: list[str] = field(default_factory=list)
    checks: list[tuple[str, bool]] = field(default_factory=list)
    answer_offset: int | None = None
    source_ids: list[str] = field(default_factory=list)


@dataclass
class Env:
    """What a construction may use besides the context."""

    rng: random.Random
    position: float | None
    others: Sequence[Document]  # documents not in the context (source of absent candidates)
    language: str = "English"


def ground_truth(*, doc_ids: Sequence[str] = (), label: str = "", language: str = "English") -> dict[str, Any]:
    """A ``reward_model.ground_truth`` dict with all three fields present (parquet needs one
    schema for every row)."""
    # ``summary`` carries the language name: the reference scorer passes this field as its
    # ``language`` argument and segments Chinese with jieba only when it reads "Chinese".
    return {"doc_ids": list(doc_ids), "golden_label": label, "summary": language}


def _pick(cands: list[Any], offsets: list[int], ctx: Context, env: Env) -> Any:
    """A candidate near the requested answer depth (random when no depth is requested)."""
    if not cands:
        raise ConstructionError("no usable candidate in the context")
    if env.position is None:
        return env.rng.choice(cands)
    size = max(1, len(ctx.text))
    ranked = sorted(range(len(cands)), key=lambda i: (abs(offsets[i] / size - env.position), i))
    return cands[env.rng.choice(ranked[:3])]


def _main_sentences(ctx: Context, min_words: int = 6, max_words: int = 40) -> tuple[list[str], list[int]]:
    """Sentences (or dialogue utterances) of the main window that occur once in the context."""
    block = ctx.main
    found, offsets = [], []
    for i, unit in enumerate(block.units):
        base = ctx.unit_offset(ctx.main_index, i)
        if block.doc.kind == "dialogue":
            parts = [unit.split(": ", 1)[1]] if ": " in unit else []
        else:
            # Line by line first: a verse or list item per line must not be quoted with the
            # next line's number glued to it.
            parts = [s for line in unit.split("\n") for s in split_sentences(line)]
        for sentence in parts:
            if sentence.startswith("#") or not (min_words <= len(sentence.split()) <= max_words):
                continue
            if ctx.text.count(sentence) != 1:
                continue
            found.append(sentence)
            offsets.append(base + max(0, unit.find(sentence)))
    return found, offsets


def _content_words(text: str) -> list[str]:
    return [w for w in words(text) if w.isalpha() and len(w) >= 4 and w.lower() not in _STOPWORDS]




# --- precise retrieval ----------------------------------------------------------------------


def next_word(ctx: Context, env: Env) -> Sample:
    sentences, offsets = _main_sentences(ctx, min_words=8)
    cands, cand_offsets = [], []
    for sentence, offset in zip(sentences, offsets):
        spans = [m for m in re.finditer(r"[A-Za-z]+(?:['’][a-z]+)?", sentence)]
        for k in range(5, len(spans) - 1):
            prefix = sentence[: spans[k - 1].end()]
            answer = spans[k].group(0)
            between = sentence[spans[k - 1].end() : spans[k].start()]
            if between != " " or len(answer) < 3 or ctx.text.count(prefix) != 1:
                continue
            cands.append((prefix, answer))
            cand_offsets.append(offset)
            break
    prefix, answer = _pick(cands, cand_offsets, ctx, env)
    question = f'In the text above, which word comes immediately after "{prefix}"?'
    follows = ctx.text.count(f"{prefix} {answer}") == 1
    return Sample(
        "precise_retrieval", "next_word", question, ground_truth(label=answer, language=env.language), answer,
        "precise_retrieval", evidence=[f"{prefix} {answer}"],
        checks=[("prefix occurs exactly once", ctx.text.count(prefix) == 1), ("answer follows prefix", follows)],
        answer_offset=ctx.text.find(prefix),
    )


def _table(ctx: Context) -> tuple[list[str], list[list[str]]]:
    block = ctx.main
    if block.doc.kind != "table":
        raise ConstructionError("needs a table")
    rows = list(csv.reader(io.StringIO("\n".join(block.units))))
    header, body = rows[0], [r for r in rows[1:] if len(r) == len(rows[0])]
    if len(body) < 4:
        raise ConstructionError("table window has fewer than 4 rows")
    return header, body


def _key_column(header: list[str], body: list[list[str]]) -> int:
    """The first column whose values are distinct and non-empty (a usable row key)."""
    for c in range(len(header)):
        values = [r[c] for r in body]
        if all(values) and len(set(values)) == len(values):
            return c
    raise ConstructionError("table has no column that identifies rows")


def _number(text: str) -> Decimal | None:
    try:
        value = Decimal(text.strip())
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() else None


def _numeric_columns(header: list[str], body: list[list[str]], skip: int) -> list[int]:
    return [c for c in range(len(header)) if c != skip and all(_number(r[c]) is not None for r in body)]


def _row_line(row: list[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(row)
    return buf.getvalue()


def _keyed_numeric_table(ctx: Context) -> tuple[list[str], list[list[str]], int, list[int]]:
    """Header, rows, key column and numeric columns of the main table (at least one)."""
    header, body = _table(ctx)
    key = _key_column(header, body)
    numeric = _numeric_columns(header, body, key)
    if not numeric:
        raise ConstructionError("no numeric column")
    return header, body, key, numeric


def table_lookup(ctx: Context, env: Env) -> Sample:
    header, body = _table(ctx)
    key = _key_column(header, body)
    cols = [c for c in range(len(header)) if c != key and all(r[c].strip() for r in body)]
    if not cols:
        raise ConstructionError("no value column")
    offsets = [ctx.text.find(_row_line(r)) for r in body]
    row = _pick(body, offsets, ctx, env)
    col = env.rng.choice(cols)
    answer = row[col]
    question = (
        f'In the table "{ctx.main.doc.title}", what is the value of column "{header[col]}" in the row '
        f'where "{header[key]}" is "{row[key]}"?'
    )
    line = _row_line(row)
    return Sample(
        "precise_retrieval", "table_lookup", question, ground_truth(label=answer, language=env.language), answer,
        "precise_retrieval", evidence=[line],
        checks=[("row key unique", sum(r[key] == row[key] for r in body) == 1), ("row in context", line in ctx.text)],
        answer_offset=ctx.text.find(line),
    )


# --- comprehension ----------------------------------------------------------------------------


def _letters_question(stem: str, options: list[str]) -> str:
    return stem + "\n" + "\n".join(f"({'ABCD'[i]}) {o}" for i, o in enumerate(options))


def cloze_choice(ctx: Context, env: Env) -> Sample:
    sentences, offsets = _main_sentences(ctx, min_words=8)
    vocab = sorted(set(_content_words(" ".join(ctx.main.units))))
    cands, cand_offsets = [], []
    for sentence, offset in zip(sentences, offsets):
        targets = [w for w in _content_words(sentence) if count_term(sentence, w) == 1]
        if targets:
            cands.append((sentence, targets))
            cand_offsets.append(offset)
    sentence, targets = _pick(cands, cand_offsets, ctx, env)
    word = env.rng.choice(sorted(targets))
    shape = [
        w for w in vocab
        if w != word and w[0].isupper() == word[0].isupper() and abs(len(w) - len(word)) <= 3
        and count_term(sentence, w) == 0
    ]
    start, end = find_word(sentence, word) or (0, 0)
    blanked = sentence[:start] + "_____" + sentence[end:]
    distractors = [w for w in env.rng.sample(shape, min(len(shape), 12)) if blanked.replace("_____", w) not in ctx.text][:3]
    if len(distractors) < 3:
        raise ConstructionError("not enough distractor words of the same shape")
    options = distractors + [word]
    env.rng.shuffle(options)
    letter = "ABCD"[options.index(word)]
    question = _letters_question(
        f'Which word fills the blank in this sentence from the text above?\n"{blanked}"', options
    )
    return Sample(
        "comprehension", "cloze_choice", question, ground_truth(label=letter, language=env.language),
        f"The correct answer is ({letter})", "comprehension", evidence=[sentence],
        checks=[("original sentence in context", sentence in ctx.text)]
        + [(f"option {o!r} does not fit the text", blanked.replace("_____", o) not in ctx.text) for o in distractors],
        answer_offset=ctx.text.find(sentence),
    )


def table_extreme_choice(ctx: Context, env: Env) -> Sample:
    header, body, key, numeric = _keyed_numeric_table(ctx)
    col = env.rng.choice(numeric)
    rows = env.rng.sample(body, 4)
    values = [_number(r[col]) for r in rows]
    best = max(values)
    if values.count(best) != 1:
        raise ConstructionError("tie for the largest value")
    winner = rows[values.index(best)]
    letter = "ABCD"[values.index(best)]
    question = _letters_question(
        f'In the table "{ctx.main.doc.title}", which of these rows (identified by "{header[key]}") has the '
        f'largest "{header[col]}"?',
        [r[key] for r in rows],
    )
    return Sample(
        "comprehension", "table_extreme_choice", question, ground_truth(label=letter, language=env.language),
        f"The correct answer is ({letter})", "comprehension", evidence=[_row_line(r) for r in rows],
        checks=[(f"{r[key]} <= winner", _number(r[col]) <= best) for r in rows],
        answer_offset=ctx.text.find(_row_line(winner)),
    )


# --- exhaustive retrieval -----------------------------------------------------------------------


def present_terms(ctx: Context, env: Env) -> Sample:
    counts = ctx.word_counts()
    present = sorted({w for w in _content_words(" ".join(ctx.main.units)) if counts[w] >= 1})
    absent_pool = sorted({w for d in env.others[:8] for w in _content_words(d.text[:20000]) if counts[w] == 0})
    k_in = env.rng.randint(2, 5)
    k_out = env.rng.randint(2, 5)
    if len(present) < k_in or len(absent_pool) < k_out:
        raise ConstructionError("not enough present/absent candidate words")
    gold = env.rng.sample(present, k_in)
    absent = env.rng.sample(absent_pool, k_out)
    lowered = {w.lower() for w in gold}
    absent = [w for w in absent if w.lower() not in lowered]
    candidates = gold + absent
    env.rng.shuffle(candidates)
    question = (
        "Which of the following words occur in the text above (case-sensitive, as whole words)? "
        "List every one that does.\nCandidates: " + ", ".join(candidates)
    )
    gold_sorted = [w for w in candidates if w in gold]
    recount = word_counts(ctx.text)
    return Sample(
        "exhaustive_retrieval", "present_terms", question, ground_truth(doc_ids=gold_sorted, language=env.language),
        "[Answer]\n" + "\n".join(gold_sorted), REWARD_MODES["present_terms"], evidence=gold_sorted,
        checks=[(f"{w!r} present", recount[w] > 0) for w in gold_sorted]
        + [(f"{w!r} absent", recount[w] == 0) for w in absent],
        answer_offset=min(ctx.text.find(w) for w in gold_sorted),
    )


def _categorical_columns(header: list[str], body: list[list[str]], key: int) -> list[int]:
    out = []
    for c in range(len(header)):
        values = [r[c] for r in body]
        distinct = set(values)
        if c != key and 2 <= len(distinct) <= max(2, len(body) // 2) and all(v.strip() for v in values):
            out.append(c)
    return out


def table_matching_keys(ctx: Context, env: Env) -> Sample:
    header, body = _table(ctx)
    key = _key_column(header, body)
    cats = _categorical_columns(header, body, key)
    options = []
    for c in cats:
        for value in sorted({r[c] for r in body}):
            hits = [r for r in body if r[c] == value]
            if 2 <= len(hits) <= 12:
                options.append((c, value, hits))
    if not options:
        raise ConstructionError("no categorical condition selects 2-12 rows")
    col, value, hits = env.rng.choice(options)
    keys = [r[key] for r in hits]
    question = (
        f'In the table "{ctx.main.doc.title}", list the "{header[key]}" of every row whose "{header[col]}" '
        f'is "{value}".'
    )
    return Sample(
        "exhaustive_retrieval", "table_matching_keys", question, ground_truth(doc_ids=keys, language=env.language),
        "[Answer]\n" + "\n".join(keys), REWARD_MODES["table_matching_keys"], evidence=[_row_line(r) for r in hits],
        checks=[(f"row {r[key]} matches", r[col] == value and _row_line(r) in ctx.text) for r in hits]
        + [("no other row matches", sum(r[col] == value for r in body) == len(hits))],
        answer_offset=ctx.text.find(_row_line(hits[0])),
    )


# --- numerical reasoning ---------------------------------------------------------------------


def term_count(ctx: Context, env: Env) -> Sample:
    all_counts = ctx.word_counts()
    counts = {w: all_counts[w] for w in set(_content_words(" ".join(ctx.main.units)))}
    cands = sorted(w for w, n in counts.items() if 2 <= n <= 15)
    if not cands:
        raise ConstructionError("no word occurs 2-15 times")
    word = env.rng.choice(cands)
    n = counts[word]
    question = f'How many times does the word "{word}" occur in the text above (case-sensitive, as a whole word)?'
    return Sample(
        "numerical_reasoning", "term_count", question, ground_truth(label=str(n), language=env.language),
        f"The word occurs {n} times.\n\\boxed{{{n}}}", "numerical_reasoning", evidence=[word],
        checks=[("recount matches", count_term(ctx.text, word) == n)],
        answer_offset=ctx.text.find(word),
    )


def _fmt(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text if text not in ("-0",) else "0"


def table_aggregate(ctx: Context, env: Env) -> Sample:
    header, body = _table(ctx)
    key = _key_column(header, body)
    numeric = _numeric_columns(header, body, key)
    cats = _categorical_columns(header, body, key)
    op = env.rng.choice(["count", "sum", "range"] if numeric else ["count"])
    title = ctx.main.doc.title
    if op == "count":
        if not cats:
            raise ConstructionError("no categorical column to count by")
        col = env.rng.choice(cats)
        value = env.rng.choice(sorted({r[col] for r in body}))
        result = Decimal(sum(r[col] == value for r in body))
        question = f'In the table "{title}", how many rows have "{header[col]}" equal to "{value}"?'
    elif op == "sum":
        col = env.rng.choice(numeric)
        chosen = env.rng.sample(body, min(len(body), env.rng.randint(3, 6)))
        result = sum((_number(r[col]) for r in chosen), Decimal(0))
        names = ", ".join(f'"{r[key]}"' for r in chosen)
        question = f'In the table "{title}", what is the sum of "{header[col]}" over the rows whose "{header[key]}" is one of {names}?'
    else:
        col = env.rng.choice(numeric)
        values = [_number(r[col]) for r in body]
        result = max(values) - min(values)
        question = f'In the table "{title}", what is the largest "{header[col]}" minus the smallest "{header[col]}" over all rows shown?'
    answer = _fmt(result)
    return Sample(
        "numerical_reasoning", "table_aggregate", question, ground_truth(label=answer, language=env.language),
        f"\\boxed{{{answer}}}", "numerical_reasoning", evidence=[header[col]],
        checks=[("result is finite", result.is_finite())], answer_offset=ctx.main.start,
    )


# --- structured extraction --------------------------------------------------------------------


def table_filter_rows(ctx: Context, env: Env) -> Sample:
    header, body = _table(ctx)
    key = _key_column(header, body)
    numeric = _numeric_columns(header, body, key)
    conditions: list[tuple[str, Callable[[list[str]], bool]]] = []
    for c in numeric:
        values = sorted({_number(r[c]) for r in body})
        if len(values) >= 4:
            threshold = values[-min(len(values) - 1, env.rng.randint(2, 8))]
            conditions.append((f'"{header[c]}" is greater than or equal to {_fmt(threshold)}',
                               lambda r, c=c, t=threshold: _number(r[c]) >= t))
    for c in _categorical_columns(header, body, key):
        value = env.rng.choice(sorted({r[c] for r in body}))
        conditions.append((f'"{header[c]}" is "{value}"', lambda r, c=c, v=value: r[c] == v))
    env.rng.shuffle(conditions)
    for text, test in conditions:
        hits = [r for r in body if test(r)]
        if 1 <= len(hits) <= 10:
            break
    else:
        raise ConstructionError("no condition selects 1-10 rows")
    other = env.rng.choice([c for c in range(len(header)) if c != key] or [key])
    cols = [key, other]
    data = [[r[c] for c in cols] for r in hits]
    label = json.dumps({"data": data}, ensure_ascii=False)
    question = (
        f'From the table "{ctx.main.doc.title}", extract "{header[cols[0]]}" and "{header[cols[1]]}" for every '
        f"row where {text}."
    )
    return Sample(
        "structured_extraction", "table_filter_rows", question, ground_truth(label=label, language=env.language),
        f"<answer>{label}</answer>", "structured_extraction", evidence=[_row_line(r) for r in hits],
        checks=[(f"row {r[key]} in context", _row_line(r) in ctx.text) for r in hits],
        answer_offset=ctx.text.find(_row_line(hits[0])),
    )


# --- structured matching ----------------------------------------------------------------------


def utterance_speaker(ctx: Context, env: Env) -> Sample:
    if ctx.main.doc.kind != "dialogue":
        raise ConstructionError("needs a dialogue")
    cands = []
    for unit in ctx.main.units:
        speaker, _, said = unit.partition(": ")
        if 5 <= len(said.split()) <= 40 and ctx.text.count(said) == 1 and speaker.startswith("Speaker"):
            cands.append((said, speaker.removeprefix("Speaker ").strip()))
    k = min(len(cands), env.rng.randint(3, 6))
    if k < 3 or len({s for _, s in cands}) < 2:
        raise ConstructionError("fewer than 3 quotable utterances from two speakers")
    chosen = env.rng.sample(cands, k)
    lines = "\n".join(f'{i + 1}. "{said}"' for i, (said, _) in enumerate(chosen))
    question = f"Which speaker (A or B) said each of these utterances in the conversation above?\n{lines}"
    gold = [f"{i + 1}: {spk}" for i, (_, spk) in enumerate(chosen)]
    return Sample(
        "structured_matching", "utterance_speaker", question, ground_truth(doc_ids=gold, language=env.language),
        "[Answer]\n" + "\n".join(gold), REWARD_MODES["utterance_speaker"], evidence=[s for s, _ in chosen],
        checks=[(f"utterance {i + 1} by {spk}", f"Speaker {spk}: {said}" in ctx.text) for i, (said, spk) in enumerate(chosen)],
        answer_offset=min(ctx.text.find(s) for s, _ in chosen),
    )


def excerpt_source(ctx: Context, env: Env) -> Sample:
    prose = [i for i, b in enumerate(ctx.blocks) if b.doc.kind == "prose"]
    if len(prose) < 2:
        raise ConstructionError("needs at least two prose documents in the context")
    picks = []
    for i in prose:
        block = ctx.blocks[i]
        for unit in block.units:
            for sentence in (s for line in unit.split("\n") for s in split_sentences(line)):
                if 8 <= len(sentence.split()) <= 40 and ctx.text.count(sentence) == 1 and not sentence.startswith("#"):
                    picks.append((sentence, block.doc.title))
    titles = sorted({t for _, t in picks})
    if len(titles) < 2 or len(picks) < 3:
        raise ConstructionError("not enough quotable sentences in two documents")
    chosen = [env.rng.choice([p for p in picks if p[1] == t]) for t in titles]
    extra = [p for p in picks if p not in chosen]
    chosen += env.rng.sample(extra, min(len(extra), env.rng.randint(1, 3)))
    env.rng.shuffle(chosen)
    lines = "\n".join(f'{i + 1}. "{s}"' for i, (s, _) in enumerate(chosen))
    question = (
        "Each excerpt below comes from one of the documents above. For each, give the title of its document, "
        f"exactly as in the document's heading.\n{lines}"
    )
    gold = [f"{i + 1}: {t}" for i, (_, t) in enumerate(chosen)]
    by_title = {b.doc.title: b for b in ctx.blocks}
    return Sample(
        "structured_matching", "excerpt_source", question, ground_truth(doc_ids=gold, language=env.language),
        "[Answer]\n" + "\n".join(gold), REWARD_MODES["excerpt_source"], evidence=[s for s, _ in chosen],
        checks=[(f"excerpt {i + 1} in {t}", s in by_title[t].text) for i, (s, t) in enumerate(chosen)],
        answer_offset=min(ctx.text.find(s) for s, _ in chosen),
        source_ids=sorted({b.doc.id for b in ctx.blocks}),
    )


# --- graded ranking ----------------------------------------------------------------------------


def term_frequency_rank(ctx: Context, env: Env) -> Sample:
    all_counts = ctx.word_counts()
    counts: dict[int, list[str]] = {}
    for w in sorted(set(_content_words(" ".join(ctx.main.units)))):
        counts.setdefault(all_counts[w], []).append(w)
    levels = sorted(n for n in counts if n >= 1)
    k = min(len(levels), env.rng.randint(3, 5))
    if k < 3:
        raise ConstructionError("fewer than 3 distinct word frequencies")
    chosen_levels = sorted(env.rng.sample(levels, k), reverse=True)
    ranked = [env.rng.choice(counts[n]) for n in chosen_levels]
    shown = list(ranked)
    env.rng.shuffle(shown)
    recount = word_counts(ctx.text)
    question = (
        "Rank these words by how many times each occurs in the text above (case-sensitive, whole words), "
        "most frequent first: " + ", ".join(shown)
    )
    return Sample(
        "graded_ranking", "term_frequency_rank", question, ground_truth(doc_ids=ranked, language=env.language),
        "[Answer]\n" + "\n".join(ranked), REWARD_MODES["term_frequency_rank"], evidence=ranked,
        checks=[(f"{a!r} more frequent than {b!r}", recount[a] > recount[b]) for a, b in zip(ranked, ranked[1:])],
        answer_offset=ctx.text.find(ranked[0]),
    )


def table_value_rank(ctx: Context, env: Env) -> Sample:
    header, body, key, numeric = _keyed_numeric_table(ctx)
    col = env.rng.choice(numeric)
    by_value: dict[Decimal, list[list[str]]] = {}
    for r in body:
        by_value.setdefault(_number(r[col]), []).append(r)
    distinct = [rows[0] for v, rows in by_value.items() if len(rows) == 1]
    k = min(len(distinct), env.rng.randint(3, 6))
    if k < 3:
        raise ConstructionError("fewer than 3 rows with distinct values")
    chosen = env.rng.sample(distinct, k)
    ranked = [r[key] for r in sorted(chosen, key=lambda r: _number(r[col]), reverse=True)]
    shown = [r[key] for r in chosen]
    question = (
        f'In the table "{ctx.main.doc.title}", rank these rows (by "{header[key]}") by "{header[col]}", '
        "largest first: " + ", ".join(shown)
    )
    values = {r[key]: _number(r[col]) for r in chosen}
    return Sample(
        "graded_ranking", "table_value_rank", question, ground_truth(doc_ids=ranked, language=env.language),
        "[Answer]\n" + "\n".join(ranked), REWARD_MODES["table_value_rank"], evidence=[_row_line(r) for r in chosen],
        checks=[(f"{a} > {b}", values[a] > values[b]) for a, b in zip(ranked, ranked[1:])],
        answer_offset=ctx.main.start,
    )


# --- sequence ordering -------------------------------------------------------------------------


def excerpt_order(ctx: Context, env: Env) -> Sample:
    if ctx.main.doc.kind == "table":
        items = [u for u in ctx.main.units[1:] if ctx.text.count(u) == 1]
    else:
        items, _ = _main_sentences(ctx)
    k = min(len(items), env.rng.randint(4, 7))
    if k < 3:
        raise ConstructionError("fewer than 3 quotable excerpts")
    picks = sorted(env.rng.sample(range(len(items)), k))
    ordered = [items[i] for i in picks]
    shown = list(range(k))
    while shown == sorted(shown):
        env.rng.shuffle(shown)
    lines = "\n".join(f'{n + 1}. "{ordered[i]}"' for n, i in enumerate(shown))
    gold = [str(shown.index(i) + 1) for i in range(k)]
    question = (
        "The excerpts below are taken from the text above and shuffled. List their numbers in the order in "
        f"which they appear in the text.\n{lines}"
    )
    positions = [ctx.text.find(s) for s in ordered]
    return Sample(
        "sequence_ordering", "excerpt_order", question, ground_truth(doc_ids=gold, language=env.language),
        "[Answer]\n" + "\n".join(gold), REWARD_MODES["excerpt_order"], evidence=ordered,
        checks=[("excerpts in increasing position", all(0 <= a < b for a, b in zip(positions, positions[1:])))],
        answer_offset=positions[0],
    )


# --- summarization -----------------------------------------------------------------------------


def held_out_description(ctx: Context, env: Env) -> Sample:
    doc = ctx.main.doc
    if not doc.summary:
        raise ConstructionError("document has no description of its own")
    if doc.summary in ctx.text:
        raise ConstructionError("description occurs in the context")
    kind = {"table": "dataset", "dialogue": "conversation"}.get(doc.kind, "document")
    question = f'Write a short description of the {kind} "{doc.title}" above: what it contains and what it is about.'
    return Sample(
        "summarization", "held_out_description", question, ground_truth(doc_ids=[doc.summary], language=env.language),
        "[Answer]\n" + doc.summary, REWARD_MODES["held_out_description"],
        checks=[("reference not in context", doc.summary not in ctx.text)], answer_offset=ctx.main.start,
    )


Construction = Callable[[Context, Env], Sample]


@dataclass(frozen=True)
class ConstructionSpec:
    """A registered construction: which task it serves and what it needs."""

    name: str
    task: str
    kinds: frozenset[str]
    fn: Construction
    multi_document: bool = False  # needs distractor documents in the context
    needs_summary: bool = False


CONSTRUCTIONS: dict[str, ConstructionSpec] = {
    spec.name: spec
    for spec in (
        ConstructionSpec("next_word", "precise_retrieval", frozenset({"prose", "dialogue"}), next_word),
        ConstructionSpec("table_lookup", "precise_retrieval", frozenset({"table"}), table_lookup),
        ConstructionSpec("cloze_choice", "comprehension", frozenset({"prose", "dialogue"}), cloze_choice),
        ConstructionSpec("table_extreme_choice", "comprehension", frozenset({"table"}), table_extreme_choice),
        ConstructionSpec("present_terms", "exhaustive_retrieval", frozenset({"prose", "dialogue"}), present_terms),
        ConstructionSpec("table_matching_keys", "exhaustive_retrieval", frozenset({"table"}), table_matching_keys),
        ConstructionSpec("term_count", "numerical_reasoning", frozenset({"prose", "dialogue"}), term_count),
        ConstructionSpec("table_aggregate", "numerical_reasoning", frozenset({"table"}), table_aggregate),
        ConstructionSpec("table_filter_rows", "structured_extraction", frozenset({"table"}), table_filter_rows),
        ConstructionSpec("utterance_speaker", "structured_matching", frozenset({"dialogue"}), utterance_speaker),
        ConstructionSpec("excerpt_source", "structured_matching", frozenset({"prose"}), excerpt_source, multi_document=True),
        ConstructionSpec("term_frequency_rank", "graded_ranking", frozenset({"prose", "dialogue"}), term_frequency_rank),
        ConstructionSpec("table_value_rank", "graded_ranking", frozenset({"table"}), table_value_rank),
        ConstructionSpec("excerpt_order", "sequence_ordering", frozenset({"prose", "dialogue", "table"}), excerpt_order),
        ConstructionSpec("held_out_description", "summarization", frozenset({"prose", "dialogue", "table"}),
                         held_out_description, needs_summary=True),
    )
}


def constructions_for(task: str) -> list[ConstructionSpec]:
    """The registered no-LLM constructions of ``task`` (validated task name)."""
    get_task(task)
    return [c for c in CONSTRUCTIONS.values() if c.task == task]


__all__ = [
    "ANSWER_INSTRUCTIONS",
    "CONSTRUCTIONS",
    "ConstructionError",
    "ConstructionSpec",
    "Env",
    "REWARD_MODES",
    "Sample",
    "constructions_for",
    "ground_truth",
]
