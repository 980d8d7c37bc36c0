"""Answer extraction and normalisation, faithful (spec §3.1-§3.2) and hardened.

Every function here takes untrusted model text and never raises on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
ANSWER_MARKERS = ("[Answer]", "[答案]")


@dataclass(frozen=True)
class GateResult:
    """Outcome of the format gate: ``answer`` is the text the metric may look at, or ``None``
    when the response fails the gate (then ``reason`` says why)."""

    answer: str | None
    reason: str | None = None


def after_think(response: str) -> str:
    """Text after the last ``</think>`` (the reference's ``split("</think>")[-1]``)."""
    return response.rsplit(THINK_CLOSE, 1)[-1]


def hardened_gate(response: str, *, require_think: bool, max_chars: int) -> GateResult:
    """Hardened format gate; the answer is only ever taken from after ``</think>``.

    * longer than ``max_chars`` -> format failure (bounds time and memory, closes
      "enormous output" attempts);
    * more than one ``<think>`` or ``</think>``, or ``<think>`` after ``</think>``, or an
      unclosed ``<think>`` -> format failure (the reasoning would leak into the answer);
    * no tags at all -> the whole response is the answer, unless ``require_think`` (thinking
      models: a missing ``</think>`` means the answer was never given).
    """
    if len(response) > max_chars:
        return GateResult(None, "format")
    opens = response.count(THINK_OPEN)
    closes = response.count(THINK_CLOSE)
    if opens > 1 or closes > 1:
        return GateResult(None, "format")
    if closes == 0:
        if opens or require_think:
            return GateResult(None, "format")
        return GateResult(response)
    close_at = response.index(THINK_CLOSE)
    if opens and response.index(THINK_OPEN) > close_at:
        return GateResult(None, "format")
    return GateResult(response[close_at + len(THINK_CLOSE) :])


def fix_space(text: str) -> str:
    """Collapse every run of whitespace to one space and strip (the reference's ``fix_space``)."""
    return " ".join(text.split())


def faithful_answer_area(text: str) -> str:
    """After the last ``[Answer]`` if present, else after the last ``[答案]``, else all; stripped.

    ``[Answer]`` wins over ``[答案]`` even when ``[答案]`` comes later, as in the reference.
    """
    for marker in ANSWER_MARKERS:
        at = text.rfind(marker)
        if at != -1:
            return text[at + len(marker) :].strip()
    return text.strip()


# What may follow an answer marker before the answer itself: the closing ``**`` of
# ``**[Answer]**`` and a colon (``[Answer]: A``).
_AFTER_MARKER = re.compile(r"^[ \t]*\**[ \t]*[:：]?")


def hardened_answer_area(text: str) -> str:
    """After whichever answer marker occurs last (and its ``**`` / ``:`` decoration), else
    all; stripped."""
    best = -1
    best_len = 0
    for marker in ANSWER_MARKERS:
        at = text.rfind(marker)
        if at > best:
            best, best_len = at, len(marker)
    if best == -1:
        return text.strip()
    rest = text[best + best_len :]
    return rest[_AFTER_MARKER.match(rest).end() :].strip()  # type: ignore[union-attr]


#: Wrappers a model puts around an answer: markdown emphasis and code, quotes, brackets.
_WRAPPERS = (
    ("**", "**"), ("__", "__"), ("*", "*"), ("_", "_"), ("`", "`"), ('"', '"'), ("'", "'"),
    ("\u201c", "\u201d"), ("\u2018", "\u2019"), ("\u00ab", "\u00bb"), ("\u300c", "\u300d"),
    ("(", ")"), ("[", "]"), ("\uff08", "\uff09"),
)
_TRAILING_PUNCT = ".,;:!?\u3002\uff0c\uff1b\uff1a\uff01\uff1f"
_LIST_MARKER = re.compile(r"^(?:[-*\u2022+]|#{1,6}|\(?\d{1,3}[.)]|\(\d{1,3}\))[ \t]+(?=\S)")


def strip_decoration(text: str) -> str:
    """Remove what surrounds an answer without being part of it: whitespace, trailing
    punctuation and matched wrappers (``**x**``, `` `x` ``, ``"x"``, ``(x)``), repeatedly.

    Never removes characters from inside the answer, so it is no substring match.
    """
    s = text.strip()
    while True:
        before = s
        s = s.rstrip(_TRAILING_PUNCT).strip()
        for opening, closing in _WRAPPERS:
            if len(s) > len(opening) + len(closing) and s.startswith(opening) and s.endswith(closing):
                s = s[len(opening) : -len(closing)].strip()
        if s == before:
            return s


def strip_list_marker(line: str) -> str:
    """Drop a leading bullet (``-``, ``*``, ``•``), markdown heading mark (``# ``: small models
    copy a context's section headings with it) or item number (``1.``, ``2)``, ``(3)``)."""
    return _LIST_MARKER.sub("", line.strip(), count=1)


def normalize_item(text: str) -> str:
    """A list item or gold item compared case- and space-insensitively, decoration removed."""
    return fix_space(strip_decoration(fix_space(text)).lower())


def answer_items(answer: str) -> list[str]:
    """Hardened list answer: the answer area's non-blank lines, each without list marker or
    decoration, normalised by :func:`normalize_item`."""
    items = (normalize_item(strip_list_marker(line)) for line in hardened_answer_area(answer).splitlines())
    return [item for item in items if item]


def normalize_gold(items: list[str]) -> list[str]:
    """Lowercase, strip, collapse whitespace (both modes)."""
    return [fix_space(item.lower()) for item in items]


def faithful_lines(response: str) -> list[str]:
    """The reference's prediction list: answer area, lowercased, split on ``\\n`` only, each
    line whitespace-collapsed; blank lines stay as ``''`` items."""
    return [fix_space(line) for line in faithful_answer_area(response).lower().split("\n")]


def hardened_lines(answer: str) -> list[str]:
    """Hardened prediction list: answer area, lowercased, split on any line break,
    whitespace-collapsed, blank lines dropped."""
    lines = (fix_space(line) for line in hardened_answer_area(answer).lower().splitlines())
    return [line for line in lines if line]


_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef]")


def is_mostly_chinese(text: str, threshold: float = 0.2) -> bool:
    """Whether CJK ideographs make up at least ``threshold`` of the non-space characters;
    hardened mode decides on jieba segmentation from the gold text itself (spec §3.4 quirk 4)."""
    chars = len(text) - text.count(" ")
    if chars <= 0:
        return False
    return len(_CJK.findall(text)) / chars >= threshold
