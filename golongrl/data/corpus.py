"""Phase 1: source documents — the shipped default corpus, user folders, cleaning, dedup.

A :class:`Document` is one real text with its provenance and metadata. Documents come from

* the default corpus shipped in ``golongrl/data/corpus/<domain>.jsonl.xz`` (literature,
  government, technical, legal, tables, and the opt-in papers and multitables; see CORPUS.md
  and ``scripts/build_corpus.py``), plus dialogues read at run time from the installed
  ``chitchat-dataset`` package (MIT);
* a user folder: ``.txt``, ``.md``, ``.html``/``.htm``, ``.csv`` (a table), ``.jsonl`` (one
  document per line: ``text`` plus optional ``id``, ``title``, ``domain``, ``kind``,
  ``language``, ``summary``), ``.pdf`` (text layer, via ``pypdf``) and ``.epub`` (its spine's
  XHTML in reading order). The domain of a plain file is its first sub-folder's name.

Malformed documents (not UTF-8, empty, too short, one huge line) are skipped with a logged
reason, never an exception. Exact duplicates (same normalised text) and near duplicates
(MinHash-estimated Jaccard similarity of word 5-shingles above a threshold, confirmed exactly)
are dropped, keeping the first in id order.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import lzma
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from golongrl.text import count_words, html_to_text, normalize_text, unwrap_paragraphs

log = logging.getLogger(__name__)

CORPUS_DIR = Path(__file__).with_name("corpus")
SHIPPED_DOMAINS: tuple[str, ...] = ("literature", "government", "technical", "legal", "tables", "papers", "multitables")
#: Every domain :func:`load_default_corpus` can load.
AVAILABLE_DOMAINS: tuple[str, ...] = (*SHIPPED_DOMAINS, "dialogues")
#: What a build uses when the config names no domains. ``papers`` (JSS articles with their
#: abstracts) and ``multitables`` (groups of related tables to join) are opt-in, so adding
#: them did not change existing builds.
DEFAULT_DOMAINS: tuple[str, ...] = ("literature", "government", "technical", "legal", "tables", "dialogues")
KINDS: frozenset[str] = frozenset({"prose", "table", "dialogue"})
TEXT_SUFFIXES = frozenset({".txt", ".md", ".html", ".htm", ".csv", ".jsonl", ".pdf", ".epub"})


@dataclass
class Document:
    """One real document.

    Attributes:
        id: unique, stable identifier (``austen/persuasion``, ``folder/sub/file.txt``).
        title: human-readable title (used in prompts).
        domain: corpus domain (``literature``, ``government``, ``technical``, ``legal``,
            ``tables``, ``dialogues`` or a user folder name).
        kind: ``prose`` (paragraphs), ``table`` (CSV text, first line the header) or
            ``dialogue`` (one ``Speaker: utterance`` line per turn).
        text: the normalised text.
        language: ISO code (``en``, ``zh`` ...).
        provenance: where it came from: ``package``, ``version``, ``license``, ``origin``.
        summary: the document's own description/abstract, kept out of ``text`` (the reference
            of no-LLM summarisation), or ``None``.
        meta: anything else (table column descriptions, a speech's year ...).
        tokens: length in the target tokenizer's tokens, filled by :func:`annotate_tokens`.
    """

    id: str
    title: str
    domain: str
    kind: str
    text: str
    language: str = "en"
    provenance: dict[str, str] = field(default_factory=dict)
    summary: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    tokens: int | None = None

    @property
    def words(self) -> int:
        """Whitespace words; for a table, cells (a CSV row has no spaces between values)."""
        if self.kind == "table":
            return sum(len(line.split(",")) for line in self.text.split("\n"))
        return count_words(self.text)

    def metadata(self) -> dict[str, Any]:
        """The per-document record written to ``documents.jsonl`` by a build."""
        return {
            "id": self.id,
            "title": self.title,
            "domain": self.domain,
            "kind": self.kind,
            "language": self.language,
            "words": self.words,
            "tokens": self.tokens,
            "has_summary": self.summary is not None,
            "provenance": self.provenance,
        }


@dataclass(frozen=True)
class Skipped:
    """A document that was not ingested, and why."""

    source: str
    reason: str


@dataclass(frozen=True)
class CleaningRules:
    """Thresholds for rejecting malformed documents.

    Attributes:
        min_words: fewer words than this is too little to build a question from.
        max_line_chars: a line longer than this is treated as a malformed (minified, binary or
            unsplit) file: such text has no structure a construction could use.
    """

    min_words: int = 50
    max_line_chars: int = 100_000


def check_document(doc: Document, rules: CleaningRules) -> str | None:
    """Why ``doc`` must be skipped, or ``None`` if it is usable."""
    if doc.kind not in KINDS:
        return f"unknown kind {doc.kind!r} (use one of {sorted(KINDS)})"
    if not doc.text.strip():
        return "empty after normalisation"
    longest = max(len(line) for line in doc.text.split("\n"))
    if longest > rules.max_line_chars:
        return f"a single line of {longest:,} characters (> {rules.max_line_chars:,})"
    if doc.words < rules.min_words:
        return f"only {doc.words} words (< {rules.min_words})"
    return None


def _doc_from_dict(
    raw: dict[str, Any], *, default_id: str, default_domain: str, normalize: bool = True
) -> Document:
    kind = raw.get("kind", "prose")
    text = str(raw.get("text", ""))
    if normalize:
        text = normalize_text(text)
        if kind == "prose":
            text = unwrap_paragraphs(text)
    meta = dict(raw.get("meta") or {})
    for key in ("columns", "year", "tokens"):
        if key in raw:
            meta[key] = raw[key]
    return Document(
        id=str(raw.get("id", default_id)),
        title=str(raw.get("title") or default_id),
        domain=str(raw.get("domain", default_domain)),
        kind=kind,
        text=text,
        language=str(raw.get("language", "en")),
        provenance=dict(raw.get("provenance") or {}),
        summary=raw.get("summary") or None,
        meta=meta,
    )


@functools.lru_cache(maxsize=8)
def _shipped(domain: str) -> tuple[Document, ...]:
    path = CORPUS_DIR / f"{domain}.jsonl.xz"
    with lzma.open(path, "rt", encoding="utf-8") as handle:
        return tuple(
            # Shipped text was normalised by scripts/build_corpus.py; doing it again costs
            # seconds per build for nothing.
            _doc_from_dict(json.loads(line), default_id=f"{domain}/{n}", default_domain=domain, normalize=False)
            for n, line in enumerate(handle)
        )


def _chitchat_path() -> Path:
    import chitchat_dataset

    return Path(chitchat_dataset.__file__).with_name("dataset.json")


@functools.lru_cache(maxsize=4)
def load_dialogues(max_documents: int = 60, min_words: int = 400) -> tuple[Document, ...]:
    """Human–human chats from the installed ``chitchat-dataset`` (MIT), as documents.

    Conversations with at least ``min_words`` words are taken in id order (deterministic);
    each consecutive block of one sender's messages is one turn ``Speaker A: ...``.
    """
    from importlib.metadata import version

    raw = json.loads(_chitchat_path().read_text(encoding="utf-8"))
    pkg_version = version("chitchat-dataset")
    docs: list[Document] = []
    for uuid in sorted(raw):
        convo = raw[uuid]
        speakers: dict[str, str] = {}
        lines = []
        for turn in convo.get("messages", []):
            if not turn:
                continue
            sender = turn[0].get("sender", "")
            label = speakers.setdefault(sender, f"Speaker {chr(ord('A') + len(speakers))}")
            said = " ".join(normalize_text(m.get("text", "")).replace("\n", " ") for m in turn).strip()
            if said:
                lines.append(f"{label}: {said}")
        text = "\n".join(lines)
        if len(speakers) != 2 or count_words(text) < min_words:
            continue
        docs.append(
            Document(
                id=f"chitchat/{uuid}",
                title=f"Chat {uuid[:8]}",
                domain="dialogues",
                kind="dialogue",
                text=text,
                provenance={
                    "package": "chitchat-dataset (PyPI)",
                    "version": pkg_version,
                    "license": "MIT",
                    "origin": f"dataset.json[{uuid}]",
                },
                meta={"opening_prompt": convo.get("prompt", "")},
            )
        )
        if len(docs) >= max_documents:
            break
    return tuple(docs)


def load_default_corpus(
    domains: Sequence[str] = DEFAULT_DOMAINS, *, max_dialogues: int = 60
) -> list[Document]:
    """The built-in corpus: shipped domains plus chitchat dialogues, in a fixed order."""
    unknown = set(domains) - set(AVAILABLE_DOMAINS)
    if unknown:
        raise ValueError(f"unknown default-corpus domains {sorted(unknown)}; known: {AVAILABLE_DOMAINS}")
    docs: list[Document] = []
    for domain in domains:
        if domain == "dialogues":
            docs.extend(load_dialogues(max_dialogues))
        else:
            docs.extend(_shipped(domain))
    return [_copy(d) for d in docs]


def _copy(doc: Document) -> Document:
    return Document(**{**doc.__dict__, "provenance": dict(doc.provenance), "meta": dict(doc.meta)})


class UnreadableDocument(ValueError):
    """A PDF or EPUB file that cannot be read; the message says why."""


def read_pdf(path: Path) -> str:
    """The text layer of a PDF, pages joined by blank lines (``pypdf``). Scanned PDFs without a
    text layer come back empty and are then skipped as empty documents."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(path)
        if reader.is_encrypted:
            raise UnreadableDocument("encrypted PDF")
        return "\n\n".join((page.extract_text() or "").strip() for page in reader.pages)
    except (PdfReadError, ValueError, KeyError, OSError) as exc:
        if isinstance(exc, UnreadableDocument):
            raise
        raise UnreadableDocument(f"not a readable PDF ({type(exc).__name__}: {exc})") from None


def read_epub(path: Path) -> tuple[str, str | None]:
    """Text and title of an EPUB: the XHTML documents of the package's spine, in reading order.

    An EPUB is a zip holding ``META-INF/container.xml``, which names the OPF package file whose
    manifest and spine list the content documents; stdlib ``zipfile`` + ``xml.etree`` and the
    corpus' own HTML-to-text conversion read it, so no EPUB library (and its lxml dependency)
    is needed for a format this small."""
    import posixpath
    import xml.etree.ElementTree as ET
    import zipfile

    try:
        with zipfile.ZipFile(path) as book:
            container = ET.fromstring(book.read("META-INF/container.xml"))
            rootfile = next(e for e in container.iter() if e.tag.endswith("rootfile")).get("full-path", "")
            opf = ET.fromstring(book.read(rootfile))
            base = posixpath.dirname(rootfile)
            manifest = {e.get("id"): e.get("href", "") for e in opf.iter() if e.tag.endswith("}item")}
            spine = [e.get("idref") for e in opf.iter() if e.tag.endswith("itemref")]
            title = next((e.text for e in opf.iter() if e.tag.endswith("}title") and e.text), None)
            parts = []
            for idref in spine:
                href = manifest.get(idref)
                if href is None:
                    raise UnreadableDocument(f"spine item {idref!r} is not in the manifest")
                raw = book.read(posixpath.normpath(posixpath.join(base, href)))
                parts.append(html_to_text(raw.decode("utf-8", "replace")))
    except (zipfile.BadZipFile, KeyError, StopIteration, ET.ParseError) as exc:
        raise UnreadableDocument(f"not a readable EPUB ({type(exc).__name__}: {exc})") from None
    return "\n\n".join(p for p in parts if p.strip()), title


def _read_file(path: Path, root: Path) -> Iterator[Document | Skipped]:
    rel = path.relative_to(root).as_posix()
    parts = path.relative_to(root).parts
    domain = parts[0] if len(parts) > 1 else "general"
    provenance = {"package": "user folder", "version": "", "license": "as supplied", "origin": rel}
    title = path.stem.replace("_", " ").replace("-", " ")
    if path.suffix.lower() in (".pdf", ".epub"):
        try:
            if path.suffix.lower() == ".pdf":
                text, own_title = read_pdf(path), None
            else:
                text, own_title = read_epub(path)
        except UnreadableDocument as exc:
            yield Skipped(rel, str(exc))
            return
        yield _doc_from_dict({"text": text, "kind": "prose", "title": own_title or title, "provenance": provenance},
                             default_id=rel, default_domain=domain)
        return
    try:
        raw = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        yield Skipped(rel, f"not UTF-8 (byte {exc.start})")
        return
    except OSError as exc:
        yield Skipped(rel, f"unreadable ({exc.strerror})")
        return
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        for number, line in enumerate(raw.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                yield Skipped(f"{rel}:{number}", f"not valid JSON ({exc.msg})")
                continue
            if not isinstance(item, dict) or not isinstance(item.get("text"), str):
                yield Skipped(f"{rel}:{number}", "not an object with a string 'text'")
                continue
            item.setdefault("provenance", {**provenance, "origin": f"{rel}:{number}"})
            yield _doc_from_dict(item, default_id=f"{rel}:{number}", default_domain=domain)
        return
    if suffix in (".html", ".htm"):
        text, kind = html_to_text(raw), "prose"
    elif suffix == ".csv":
        text, kind = raw, "table"
    else:
        text, kind = raw, "dialogue" if domain == "dialogues" else "prose"
    yield _doc_from_dict(
        {"text": text, "kind": kind, "title": title, "provenance": provenance},
        default_id=rel,
        default_domain=domain,
    )


def ingest_folder(folder: str | os.PathLike[str]) -> tuple[list[Document], list[Skipped]]:
    """All documents under ``folder`` (recursive, sorted by path) and the files skipped.

    Only reading problems are reported here; :func:`clean_corpus` applies the content rules.
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"document folder {root} does not exist")
    docs: list[Document] = []
    skipped: list[Skipped] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.name.startswith("."):
            continue
        if path.suffix.lower() not in TEXT_SUFFIXES:
            skipped.append(Skipped(path.relative_to(root).as_posix(), f"unsupported type {path.suffix or '(none)'}"))
            continue
        for item in _read_file(path, root):
            (skipped if isinstance(item, Skipped) else docs).append(item)
    return docs, skipped


# ---------------------------------------------------------------------------------------------
# Deduplication. MinHash is written out here (about 30 lines of numpy) rather than pulled in as
# a new dependency: vectorised numpy hashing handles the 1M-word default corpus in about a
# second, and zlib.crc32 word hashes keep signatures identical across processes (Python's
# hash() is salted per process), which the byte-identical resume guarantee needs.

_SHINGLE_BASE = np.uint64(1_000_003)


def _shingles(text: str, n: int = 5) -> np.ndarray:
    """Distinct 64-bit hashes of the word ``n``-grams (lower-cased) of ``text``."""
    tokens = text.lower().split() or [""]
    hashes = np.fromiter((zlib.crc32(t.encode("utf-8")) for t in tokens), dtype=np.uint64, count=len(tokens))
    if len(hashes) < n:
        hashes = np.concatenate([hashes, np.zeros(n - len(hashes), dtype=np.uint64)])
    width = len(hashes) - n + 1
    acc = np.zeros(width, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(n):  # polynomial rolling hash, wrapping mod 2^64
            acc = acc * _SHINGLE_BASE + hashes[k : k + width]
    return np.unique(acc)


def _minhash(shingles: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # Multiply-shift hashing (a odd): h(x) = (a*x + b) mod 2^64, top 32 bits; one permutation
    # per row, looped to keep memory at one array of the document's shingles.
    out = np.empty(len(a), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for i in range(len(a)):
            out[i] = ((shingles * a[i] + b[i]) >> np.uint64(32)).min()
    return out


def near_duplicate_pairs(
    texts: Sequence[str], *, threshold: float = 0.8, num_perm: int = 64, bands: int = 16
) -> list[tuple[int, int, float]]:
    """Pairs ``(i, j, jaccard)`` with ``i < j`` whose word-5-shingle Jaccard >= ``threshold``.

    Candidates come from MinHash LSH (``bands`` bands of ``num_perm // bands`` rows); each
    candidate's similarity is then computed exactly, so no false positive survives.
    """
    rng = np.random.default_rng(0x5EED)
    a = rng.integers(0, 1 << 63, size=num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    b = rng.integers(0, 1 << 63, size=num_perm, dtype=np.uint64)
    shingle_sets = [_shingles(t) for t in texts]
    rows = num_perm // bands
    buckets: dict[tuple[int, bytes], list[int]] = {}
    for i, sh in enumerate(shingle_sets):
        signature = _minhash(sh, a, b)
        for band in range(bands):
            key = (band, signature[band * rows : (band + 1) * rows].tobytes())
            buckets.setdefault(key, []).append(i)
    candidates = {(i, j) for members in buckets.values() for k, i in enumerate(members) for j in members[k + 1 :]}
    pairs = []
    for i, j in sorted(candidates):
        si, sj = shingle_sets[i], shingle_sets[j]
        inter = len(np.intersect1d(si, sj, assume_unique=True))
        union = len(np.union1d(si, sj))
        jaccard = inter / union if union else 1.0
        if jaccard >= threshold:
            pairs.append((i, j, jaccard))
    return pairs


def deduplicate(docs: Sequence[Document], *, near_threshold: float = 0.8) -> tuple[list[Document], list[Skipped]]:
    """Drop exact and near duplicates, keeping the earliest document of each group."""
    kept: list[Document] = []
    skipped: list[Skipped] = []
    seen: dict[str, str] = {}
    for doc in docs:
        digest = hashlib.sha256(" ".join(doc.text.lower().split()).encode("utf-8")).hexdigest()
        if digest in seen:
            skipped.append(Skipped(doc.id, f"exact duplicate of {seen[digest]}"))
            continue
        seen[digest] = doc.id
        kept.append(doc)
    drop: dict[int, tuple[int, float]] = {}
    for i, j, jaccard in near_duplicate_pairs([d.text for d in kept], threshold=near_threshold):
        if i not in drop and j not in drop:
            drop[j] = (i, jaccard)
    for j, (i, jaccard) in sorted(drop.items()):
        skipped.append(Skipped(kept[j].id, f"near duplicate of {kept[i].id} (Jaccard {jaccard:.2f})"))
    return [d for k, d in enumerate(kept) if k not in drop], skipped


def clean_corpus(
    docs: Iterable[Document], rules: CleaningRules = CleaningRules(), *, near_threshold: float = 0.8
) -> tuple[list[Document], list[Skipped]]:
    """Apply :func:`check_document` then :func:`deduplicate`; ids must be unique."""
    good: list[Document] = []
    skipped: list[Skipped] = []
    ids: set[str] = set()
    for doc in docs:
        reason = check_document(doc, rules)
        if reason is None and doc.id in ids:
            reason = "duplicate document id"
        if reason is not None:
            log.info("skipping document %s: %s", doc.id, reason)
            skipped.append(Skipped(doc.id, reason))
            continue
        ids.add(doc.id)
        good.append(doc)
    kept, dups = deduplicate(good, near_threshold=near_threshold)
    for item in dups:
        log.info("skipping document %s: %s", item.source, item.reason)
    return kept, skipped + dups


def annotate_tokens(docs: Sequence[Document], counter: Any) -> None:
    """Fill ``doc.tokens`` with the length in ``counter``'s tokenizer (batched).

    Shipped documents carry their count for the default tokenizer (``meta["tokens"]``,
    measured by scripts/build_corpus.py), which saves counting ~2M tokens per build."""
    todo = []
    for doc in docs:
        known = (doc.meta.get("tokens") or {}).get(counter.spec)
        if isinstance(known, int):
            doc.tokens = known
        else:
            todo.append(doc)
    for doc, n in zip(todo, counter.count_many([d.text for d in todo])):
        doc.tokens = n


__all__ = [
    "AVAILABLE_DOMAINS",
    "CORPUS_DIR",
    "CleaningRules",
    "DEFAULT_DOMAINS",
    "Document",
    "SHIPPED_DOMAINS",
    "Skipped",
    "annotate_tokens",
    "check_document",
    "clean_corpus",
    "deduplicate",
    "ingest_folder",
    "load_default_corpus",
    "load_dialogues",
    "near_duplicate_pairs",
    "read_epub",
    "read_pdf",
]
