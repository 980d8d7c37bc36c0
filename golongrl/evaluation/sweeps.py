"""Length x depth sweeps built offline and deterministically from real text.

Three tasks, each item hitting a target length (tokens of the rendered chat prompt in the target
tokenizer) within 1 %:

* ``retrieval``: real documents (golongrl's default corpus, cut into chunks at paragraph
  boundaries) labelled with random IDs; one sentence of the needle chunk is quoted and the model
  names the chunk's ID. Every other chunk is a real distractor from other documents or parts.
* ``ordering``: same haystack; four sentences of the needle chunk are shown shuffled (A-D) and
  the model orders them by appearance. Scored by pairwise order accuracy.
* ``mrcr``: MRCR-style multi-round co-reference over real human dialogues (chitchat corpus):
  the conversation alternates a request "write a short chat about <topic>" with a real chat on
  that topic; 2, 4 or 8 chats share the needle topic and the final turn asks for the i-th of
  them verbatim after a random prefix. Scored with the official MRCR rule.

``depth`` in [0, 1] is where the needle (the chunk, or the requested chat) sits in the context.
An item depends only on (task, length, depth, sample index, seed, tokenizer).
"""

from __future__ import annotations

import functools
import random
import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from golongrl.rewards.metrics import pairwise_hardened

from .benchmarks import ANSWER_FORMAT, EvalItem, ItemResult
from .scoring import score_mrcr
from .text import chat_token_count, extract_final_answer

SWEEP_TASKS = ("retrieval", "ordering", "mrcr")
DEFAULT_LENGTHS = (4096, 8192, 16384, 32768, 65536, 131072)
DEFAULT_DEPTHS = (0.0, 0.25, 0.5, 0.75, 1.0)
LENGTH_TOLERANCE = 0.01  # items must land within 1 % of the target
_FIT_TOLERANCE = 0.003  # what the fitter aims for, leaving slack for the check

PROSE_DOMAINS = ("literature", "government", "technical", "legal")


class SweepError(ValueError):
    """A sweep cannot be built as asked (e.g. the corpus is shorter than the target length)."""


# ---------------------------------------------------------------------------------- sources
def _default_documents() -> list[Any]:
    # The data pipeline's default corpus (golongrl.data.corpus), prose domains only: tables make
    # a poor haystack and dialogues feed the MRCR task instead.
    from golongrl.data.corpus import load_default_corpus

    return load_default_corpus(PROSE_DOMAINS)


_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")


@dataclass(frozen=True)
class Chunk:
    """A run of whole paragraphs of one real document, with its token ids."""

    doc_id: str
    text: str
    ids: tuple[int, ...]

    def sentences(self) -> list[str]:
        return [s.strip() for p in self.text.split("\n\n") for s in _SENTENCE.split(p) if s.strip()]


@functools.lru_cache(maxsize=1)
def _documents() -> tuple[tuple[str, str], ...]:
    return tuple((doc.id, doc.text) for doc in _default_documents())


@functools.lru_cache(maxsize=4096)
def _doc_paragraphs(tokenizer: Any, index: int) -> tuple[tuple[str, tuple[int, ...]], ...]:
    # Tokenised per document and on demand: a 4K item touches a few documents, a 1M item all.
    text = _documents()[index][1]
    paras = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip() and not p.startswith("#")]
    ids = tokenizer(paras, add_special_tokens=False, verbose=False)["input_ids"] if paras else []
    return tuple(zip(paras, (tuple(i) for i in ids)))


@functools.lru_cache(maxsize=4096)
def doc_chunks(tokenizer: Any, index: int, chunk_tokens: int) -> tuple[Chunk, ...]:
    """Document ``index`` of the corpus cut into chunks of about ``chunk_tokens`` tokens at
    paragraph boundaries (a longer paragraph is its own chunk, cut to ``2 * chunk_tokens``)."""
    doc_id = _documents()[index][0]
    sep = tuple(tokenizer("\n\n", add_special_tokens=False)["input_ids"])
    chunks = []
    texts: list[str] = []
    ids: list[int] = []
    for text, pids in _doc_paragraphs(tokenizer, index):
        if texts and len(ids) + len(pids) > chunk_tokens:
            chunks.append(Chunk(doc_id, "\n\n".join(texts), tuple(ids[: 2 * chunk_tokens])))
            texts, ids = [], []
        texts.append(text)
        ids.extend((sep if len(texts) > 1 else ()) + pids)
    if texts and len(ids) >= chunk_tokens // 4:
        chunks.append(Chunk(doc_id, "\n\n".join(texts), tuple(ids[: 2 * chunk_tokens])))
    return tuple(chunks)


@functools.lru_cache(maxsize=1)
def chitchat_conversations() -> tuple[tuple[str, str], ...]:
    """``(topic prompt, transcript)`` for every chitchat-dataset chat that has a topic; turns
    alternate speakers A and B, one speaker's consecutive messages joined by spaces."""
    from chitchat_dataset import Dataset

    data = Dataset()
    convs = []
    for key in sorted(data):
        chat = data[key]
        topic = chat.get("prompt")
        if not topic:
            continue
        lines = []
        for turn_number, turn in enumerate(chat["messages"]):
            speaker = "AB"[turn_number % 2]
            lines.append(f"{speaker}: " + " ".join(m["text"].strip() for m in turn))
        convs.append((topic.strip(), "\n".join(lines)))
    return tuple(convs)


# ------------------------------------------------------------------------------- length fitting
def _fit(render: Callable[[int], tuple[dict[str, str], ...]], target: int, tokenizer: Any) -> tuple[tuple[dict[str, str], ...], int]:
    """Find a trim (tokens removed from the filler end) that puts the prompt within tolerance.

    ``render(trim)`` must shrink monotonically with ``trim`` and ``render(0)`` must be over-full.
    Steps by the measured excess (exact except for merges across joins and per-filler overhead)
    until the target is bracketed, then bisects; returns the closest prompt seen."""
    trim, low, high = 0, 0, None  # low: a trim still >= target; high: a trim already < target
    best: tuple[int, tuple[dict[str, str], ...], int] | None = None
    for _ in range(24):
        messages = render(trim)
        count = chat_token_count(messages, tokenizer)
        if best is None or abs(count - target) < best[0]:
            best = (abs(count - target), messages, count)
        if abs(count - target) <= _FIT_TOLERANCE * target:
            break
        if count > target:
            low = trim
            step = trim + (count - target)
        else:
            high = trim
            step = trim - (target - count)
        trim = step if high is None or low < step < high else (low + high) // 2
        if high is not None and (trim <= low or trim >= high):
            trim = (low + high) // 2
            if trim == low:
                break
    assert best is not None
    if best[0] > LENGTH_TOLERANCE * target:
        raise SweepError(f"could not fit an item to {target} tokens (closest: {best[2]})")
    return best[1], best[2]


def _trimmed_texts(fillers: Sequence[tuple[int, ...]], texts: Sequence[str], trim: int, tokenizer: Any) -> list[str]:
    """Filler texts with ``trim`` tokens dropped from the end (whole fillers first, then part of
    the last one kept); only that partial filler is decoded again."""
    kept = len(fillers)
    while trim > 0 and kept:
        if len(fillers[kept - 1]) <= trim:
            trim -= len(fillers[kept - 1])
            kept -= 1
        else:
            last = fillers[kept - 1]
            return [*texts[: kept - 1], tokenizer.decode(last[: len(last) - trim])]
    return list(texts[:kept])


def _rng(*parts: object) -> random.Random:
    return random.Random("|".join(str(p) for p in parts))


# --------------------------------------------------------------------------- document haystacks
RETRIEVAL_QUESTION = "Which document contains the following sentence? Answer with the document's ID.\n\n\"{sentence}\""
ORDERING_QUESTION = (
    "The following sentences all come from one of the documents above, shuffled. Order them by "
    "where they appear in that document, earliest first, and answer with the letters separated "
    "by commas.\n\n{options}"
)
HAYSTACK_HEADER = "Below are documents, each introduced by its ID. Read them and answer the question that follows.\n\n"


def _document_item(task: str, length: int, depth: float, sample: int, seed: int, tokenizer: Any) -> EvalItem:
    rng = _rng(seed, task, length, depth, sample)
    chunk_tokens = max(128, min(2048, length // 24))
    order = list(range(len(_documents())))
    rng.shuffle(order)
    min_sentences = 4 if task == "ordering" else 1
    needle: Chunk | None = None
    sentences: list[str] = []
    for index in order:
        candidates = list(doc_chunks(tokenizer, index, chunk_tokens))
        rng.shuffle(candidates)
        for chunk in candidates:
            sentences = [s for s in chunk.sentences() if 8 <= len(s.split()) <= 60]
            if len(sentences) >= min_sentences:
                needle = chunk
                break
        if needle is not None:
            break
    if needle is None:
        raise SweepError("no corpus chunk has enough quotable sentences")
    # Distractors: chunks of the other documents, taken in the shuffled document order until
    # they cover the length, then shuffled together.
    others: list[Chunk] = []
    covered = 0
    for index in order:
        if _documents()[index][0] == needle.doc_id:
            continue
        for chunk in doc_chunks(tokenizer, index, chunk_tokens):
            others.append(chunk)
            covered += len(chunk.ids)
        if covered >= 1.05 * length + 256:
            break
    rng.shuffle(others)
    if task == "retrieval":
        # The quote must identify one chunk: skip sentences that also occur in other chunks.
        unique = [s for s in sentences if not any(s in c.text for c in others)] or sentences
        quote = rng.choice(unique)
        question = RETRIEVAL_QUESTION.format(sentence=quote)
        gold: Any = None
    else:
        picked = sorted(rng.sample(range(len(sentences)), 4))
        shown = picked[:]
        while shown == picked:
            rng.shuffle(shown)
        letters = "ABCD"
        options = "\n".join(f"{letters[i]}. {sentences[s]}" for i, s in enumerate(shown))
        question = ORDERING_QUESTION.format(options=options)
        gold = [letters[shown.index(s)] for s in picked]
    tail = f"\n\n{question}\n\n{ANSWER_FORMAT}"
    overhead = chat_token_count(({"role": "user", "content": HAYSTACK_HEADER + tail},), tokenizer)
    budget = length - overhead - len(needle.ids) - 8
    fillers: list[tuple[int, ...]] = []
    total = 0
    for chunk in others:
        if total >= budget * 1.01 + 64:
            break
        fillers.append(chunk.ids)
        total += len(chunk.ids) + 6
    else:
        raise SweepError(f"the corpus is too short for {length} tokens")
    ids = rng.sample(range(10000, 100000), len(fillers) + 1)
    needle_id = ids[-1]
    cum, position = 0, len(fillers)
    for i, f in enumerate(fillers):
        if cum >= depth * total:
            position = i
            break
        cum += len(f) + 6
    if task == "retrieval":
        gold = str(needle_id)

    filler_texts = tokenizer.batch_decode(fillers)

    def render(trim: int) -> tuple[dict[str, str], ...]:
        texts = _trimmed_texts(fillers, filler_texts, trim, tokenizer)
        pos = min(position, len(texts))
        labelled = [f"Document [{ids[i]}]\n{t}" for i, t in enumerate(texts)]
        labelled.insert(pos, f"Document [{needle_id}]\n{needle.text}")
        return ({"role": "user", "content": HAYSTACK_HEADER + "\n\n".join(labelled) + tail},)

    messages, count = _fit(render, length, tokenizer)
    return EvalItem(
        id=f"{task}-{length}-{depth:g}-{sample}",
        messages=messages,
        gold=gold,
        question=question,
        groups={"length": str(length), "depth": f"{depth:g}"},
        extra={"n_tokens": count, "needle_doc": needle.doc_id},
    )


# ------------------------------------------------------------------------------ MRCR (chitchat)
MRCR_REQUEST = "Write a short chat between two friends about this question: {topic}"
MRCR_FINAL = (
    "Prepend {prefix} to the {ordinal} (1 indexed) short chat about this question: {topic} "
    "Do not include any other text in your response."
)
MRCR_NEEDLE_COUNTS = (2, 4, 8)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _mrcr_item(length: int, depth: float, sample: int, seed: int, tokenizer: Any) -> EvalItem:
    rng = _rng(seed, "mrcr", length, depth, sample)
    convs = chitchat_conversations()
    by_topic: dict[str, list[str]] = {}
    needles_n = MRCR_NEEDLE_COUNTS[sample % len(MRCR_NEEDLE_COUNTS)]
    # Needles together stay under about a fifth of the context (and short enough to reproduce).
    max_words = max(40, min(400, length // (7 * needles_n)))
    for topic, text in convs:
        if 30 <= len(text.split()) <= max_words:
            by_topic.setdefault(topic, []).append(text)
    topics = sorted(t for t, v in by_topic.items() if len(v) >= needles_n)
    topic = rng.choice(topics)
    needles = rng.sample(by_topic[topic], needles_n)
    target_index = rng.randrange(needles_n)
    prefix = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(10))
    final = MRCR_FINAL.format(prefix=prefix, ordinal=_ordinal(target_index + 1), topic=topic)
    pair_overhead = chat_token_count(
        ({"role": "user", "content": "x"}, {"role": "assistant", "content": "x"}), tokenizer
    ) - chat_token_count(({"role": "user", "content": "x"},), tokenizer) + 2
    distractor_pool = [(t, x) for t, x in convs if t != topic]
    rng.shuffle(distractor_pool)
    needle_tokens = sum(len(tokenizer.encode(n, add_special_tokens=False)) + pair_overhead + 16 for n in needles)
    budget = length - chat_token_count(({"role": "user", "content": final},), tokenizer) - needle_tokens
    fillers: list[tuple[int, ...]] = []
    filler_topics: list[str] = []
    total = 0
    batch = max(16, min(256, budget // 120))  # ~120 tokens per short chat; encode what is needed
    for start in range(0, len(distractor_pool), batch):
        part = distractor_pool[start : start + batch]
        encoded = tokenizer([x for _, x in part], add_special_tokens=False, verbose=False)["input_ids"]
        for (t, _), ids in zip(part, encoded):
            if total >= budget * 1.01 + 64:
                break
            fillers.append(tuple(ids))
            filler_topics.append(t)
            total += len(ids) + pair_overhead + 16
        if total >= budget * 1.01 + 64:
            break
    else:
        raise SweepError(f"the chitchat corpus is too short for {length} tokens")
    # The requested needle sits at `depth`; the others before/after it keep its ordinal right.
    cum, anchor = 0, len(fillers)
    for i, f in enumerate(fillers):
        if cum >= depth * total:
            anchor = i
            break
        cum += len(f) + pair_overhead + 16
    before = sorted(rng.randint(0, anchor) for _ in range(target_index))
    after = sorted(rng.randint(anchor, len(fillers)) for _ in range(needles_n - target_index - 1))
    slots = before + [anchor] + after  # insertion positions among fillers, in needle order

    filler_texts = tokenizer.batch_decode(fillers)

    def render(trim: int) -> tuple[dict[str, str], ...]:
        texts = _trimmed_texts(fillers, filler_texts, trim, tokenizer)
        turns: list[tuple[str, str]] = [(filler_topics[i], text) for i, text in enumerate(texts)]
        for k in reversed(range(needles_n)):
            turns.insert(min(slots[k], len(turns)), (topic, needles[k]))
        messages: list[dict[str, str]] = []
        for t, text in turns:
            messages.append({"role": "user", "content": MRCR_REQUEST.format(topic=t)})
            messages.append({"role": "assistant", "content": text})
        messages.append({"role": "user", "content": final})
        return tuple(messages)

    messages, count = _fit(render, length, tokenizer)
    return EvalItem(
        id=f"mrcr-{length}-{depth:g}-{sample}",
        messages=messages,
        gold=prefix + needles[target_index],
        question=final,
        groups={"length": str(length), "depth": f"{depth:g}", "needles": str(needles_n)},
        extra={"n_tokens": count, "random_string_to_prepend": prefix},
    )


# ---------------------------------------------------------------------------------- public API
def generate_sweep_item(task: str, length: int, depth: float, sample: int, *, tokenizer: Any, seed: int = 0) -> EvalItem:
    """One sweep item; see the module docstring. ``length`` in target-tokenizer tokens."""
    if not 0.0 <= depth <= 1.0:
        raise ValueError(f"depth must be in [0, 1], got {depth}")
    if task == "mrcr":
        return _mrcr_item(length, depth, sample, seed, tokenizer)
    if task in ("retrieval", "ordering"):
        return _document_item(task, length, depth, sample, seed, tokenizer)
    raise ValueError(f"unknown sweep task {task!r}; known: {', '.join(SWEEP_TASKS)}")


def generate_sweep(
    task: str,
    *,
    tokenizer: Any,
    lengths: Sequence[int] = DEFAULT_LENGTHS,
    depths: Sequence[float] = DEFAULT_DEPTHS,
    samples: int = 1,
    seed: int = 0,
) -> list[EvalItem]:
    """All items of a sweep, ordered by length, depth, sample."""
    return [
        generate_sweep_item(task, length, depth, s, tokenizer=tokenizer, seed=seed)
        for length in lengths
        for depth in depths
        for s in range(samples)
    ]


_LETTERS = re.compile(r"\b([A-D])\b")
_DIGITS = re.compile(r"\d{5}")


def score_sweep(task: str, items: Sequence[EvalItem], responses: Sequence[str]) -> list[ItemResult]:
    """Scores in [0, 1]: retrieval = the extracted answer names the needle ID; ordering =
    pairwise order accuracy over the gold's pairs (missing letters cost their pairs; the reward
    library's hardened pairwise metric); mrcr = the official MRCR rule."""
    results = []
    for item, response in zip(items, responses):
        if task == "mrcr":
            score = score_mrcr(response, item.gold, item.extra["random_string_to_prepend"])
            details: dict[str, Any] = {}
        elif task == "retrieval":
            found = _DIGITS.findall(extract_final_answer(response))
            score = float(bool(found) and found[-1] == item.gold)
            details = {"extracted": found[-1] if found else None}
        else:
            letters = list(dict.fromkeys(_LETTERS.findall(extract_final_answer(response))))
            score = pairwise_hardened(item.gold, letters)
            details = {"extracted": letters}
        results.append(ItemResult(item.id, score, item.groups, details))
    return results
