"""Plain-text helpers shared by corpus ingestion and sample construction (a low layer: it
imports nothing from golongrl, so task construction modules can use it without a circle).

Everything here is deterministic and language-light: paragraphs are blank-line separated,
sentences end at ``.!?`` (or CJK ``。！？``) followed by whitespace, headings are Markdown
``#`` lines. These rules are what make the constructions reproducible on any user folder.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections import Counter
from html.parser import HTMLParser

_BLANK_LINES = re.compile(r"\n[ \t]*\n+")
_SPACES = re.compile(r"[ \t\f\v\u00a0]+")
_SENTENCE_END = re.compile(
    r"(?:(?<=[.!?])|(?<=[.!?][\"'”’)\]]))\s+(?=\S)|(?<=[。！？])(?=[^\s\"'”’)\]])"
)
#: C0/C1 controls (except tab and newline), zero-width and bidi marks, BOM, private use.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff\ue000-\uf8ff]")
_WORD = re.compile(r"\w+(?:['’-]\w+)*")
HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")


def normalize_text(text: str) -> str:
    """NFC-normalise, unify newlines, drop control characters and trailing spaces.

    Tabs and form feeds become spaces; runs of 3+ newlines become a paragraph break.
    """
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _CONTROL.sub("", text)
    lines = [_SPACES.sub(" ", line).rstrip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def split_paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs, stripped, empty ones dropped."""
    return [p.strip() for p in _BLANK_LINES.split(text) if p.strip()]


def unwrap_paragraphs(text: str) -> str:
    """Join hard-wrapped lines inside each paragraph with single spaces (Markdown heading lines
    stay on their own line), so a sentence quoted from the text is one line of text."""
    out = []
    for para in split_paragraphs(text):
        lines = [line.strip() for line in para.split("\n")]
        if HEADING.match(lines[0]):
            rest = " ".join(lines[1:]).strip()
            out.append(lines[0] if not rest else f"{lines[0]}\n\n{rest}")
        else:
            out.append(" ".join(lines))
    return "\n\n".join(out)


def split_sentences(paragraph: str) -> list[str]:
    """Sentences of one paragraph (punctuation-based; good enough to pick quotable spans)."""
    return [s.strip() for s in _SENTENCE_END.split(paragraph) if s.strip()]


def words(text: str) -> list[str]:
    """Word tokens (letters/digits with inner apostrophes or hyphens)."""
    return _WORD.findall(text)


def count_words(text: str) -> int:
    """Whitespace-separated word count (the convention of the corpus tables in CORPUS.md)."""
    return len(text.split())


def word_counts(text: str) -> Counter[str]:
    """Occurrences of each word token of :func:`words` (case-sensitive). A term "occurs as a
    whole word" exactly when it is one of these tokens; every counting construction and its
    verification use this one definition."""
    return Counter(_WORD.findall(text))


def find_word(text: str, term: str) -> tuple[int, int] | None:
    """Span of the first occurrence of ``term`` as a whole word token, or ``None``."""
    return next(((m.start(), m.end()) for m in _WORD.finditer(text) if m.group(0) == term), None)


def count_term(text: str, term: str) -> int:
    """Occurrences of ``term`` as a whole word token, case-sensitive (see :func:`word_counts`)."""
    return sum(1 for w in _WORD.findall(text) if w == term)


class _TextExtractor(HTMLParser):
    # Block-level tags end a paragraph; script/style content is dropped. The standard-library
    # parser tolerates the malformed HTML that real documentation folders contain.
    _BLOCK = frozenset(
        "p div br li tr table pre blockquote section article dd dt ul ol title".split()
    )
    _HEADINGS = {f"h{i}": i for i in range(1, 7)}
    _SKIP = frozenset({"script", "style", "head"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skip += 1
        elif tag in self._HEADINGS:
            self.parts.append("\n\n" + "#" * self._HEADINGS[tag] + " ")
        elif tag in self._BLOCK:
            self.parts.append("\n\n")
        if tag == "pre":
            self._pre += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag in self._HEADINGS or tag in self._BLOCK:
            self.parts.append("\n\n")
        if tag == "pre":
            self._pre = max(0, self._pre - 1)

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        self.parts.append(data if self._pre else re.sub(r"\s+", " ", data))


def html_to_text(markup: str) -> str:
    """Readable text of an HTML page: headings become Markdown ``#`` lines, blocks paragraphs."""
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    text = html.unescape("".join(parser.parts))
    paragraphs = []
    for para in split_paragraphs(normalize_text(text)):
        match = HEADING.match(para)
        if match and "\n" in para:
            para = " ".join(line.strip() for line in para.split("\n"))
        paragraphs.append(para)
    return "\n\n".join(paragraphs)


__all__ = [
    "HEADING",
    "count_term",
    "word_counts",
    "count_words",
    "find_word",
    "html_to_text",
    "normalize_text",
    "split_paragraphs",
    "split_sentences",
    "unwrap_paragraphs",
    "words",
]
