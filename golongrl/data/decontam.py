"""n-gram decontamination of training questions against evaluation benchmarks (spec §4).

Behaviour of the reference (``n_gram.py``), with the target tokenizer in place of its in-house
one: the first ``max_chars`` characters of each benchmark item's text field are tokenised and
every contiguous ``n``-token window is indexed; a training row is contaminated when any
``n``-window of its ``extra_info.question`` (only the question, never the long context) is in
the index. A question shorter than ``n`` tokens is contaminated when its whole token sequence
occurs inside an indexed window. Both sides are tokenised with one leading space, so that in
byte-level BPEs a question's first word gets the same token it has mid-sentence in a benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from golongrl.data.io import read_records
from golongrl.data.schema import DataError


def expand_benchmark_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Benchmark files; a ``.lst`` file lists one path per line (relative to the list file)."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.suffix == ".lst":
            if not path.is_file():
                raise DataError("no such benchmark list file", source=path)
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    listed = Path(line.strip())
                    out.append(listed if listed.is_absolute() else path.parent / listed)
        else:
            out.append(path)
    return out


@dataclass
class NGramIndex:
    """Token ``n``-grams of benchmark items, and which item each first came from."""

    n: int
    grams: dict[tuple[int, ...], int] = field(default_factory=dict)
    sequences: list[list[int]] = field(default_factory=list)
    items: int = 0
    _short: dict[int, dict[tuple[int, ...], int]] = field(default_factory=dict)

    def add(self, ids: Sequence[int]) -> None:
        item = self.items
        self.items += 1
        if len(ids) < self.n:
            return
        self.sequences.append(list(ids))
        for i in range(len(ids) - self.n + 1):
            self.grams.setdefault(tuple(ids[i : i + self.n]), item)

    def _windows(self, length: int) -> dict[tuple[int, ...], int]:
        # Sub-windows of indexed n-grams, built on first need for each short length.
        if length not in self._short:
            table: dict[tuple[int, ...], int] = {}
            for gram, item in self.grams.items():
                for i in range(self.n - length + 1):
                    table.setdefault(gram[i : i + length], item)
            self._short[length] = table
        return self._short[length]

    def hit(self, ids: Sequence[int]) -> int | None:
        """The benchmark item a question overlaps, or ``None``."""
        if not ids:
            return None
        if len(ids) < self.n:
            return self._windows(len(ids)).get(tuple(ids))
        for i in range(len(ids) - self.n + 1):
            item = self.grams.get(tuple(ids[i : i + self.n]))
            if item is not None:
                return item
        return None


def build_index(paths: Iterable[str | Path], counter: Any, *, n: int = 13, text_field: str = "text", max_chars: int = 4000) -> NGramIndex:
    """Index the benchmark files (JSONL or parquet rows with a string ``text_field``)."""
    index = NGramIndex(n)
    for path in expand_benchmark_paths(paths):
        texts: list[str] = []
        for number, row in read_records(path):
            value = row.get(text_field)
            if not isinstance(value, str):
                raise DataError("missing or not a string (set decontamination.text_field)", source=path, row=number, field=text_field)
            texts.append(" " + value[:max_chars])
        for ids in counter.encode_many(texts):
            index.add(ids)
    return index


def contamination_hits(questions: Sequence[str], index: NGramIndex, counter: Any) -> list[int | None]:
    """Per question, the benchmark item it shares an n-gram window with, or ``None``."""
    texts = [" " + str(q).strip() for q in questions]
    return [index.hit(ids) for ids in counter.encode_many(texts)]


def decontaminate(rows: list[dict[str, Any]], index: NGramIndex, counter: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Drop contaminated rows; report the contamination rate and benchmark items hit."""
    found = contamination_hits([r.get("extra_info", {}).get("question", "") for r in rows], index, counter)
    kept = [row for row, item in zip(rows, found) if item is None]
    hits = {item for item in found if item is not None}
    removed = len(rows) - len(kept)
    return kept, {
        "n": index.n,
        "benchmark_items": index.items,
        "removed": removed,
        "contamination_rate": removed / len(rows) if rows else 0.0,
        "benchmark_items_hit": len(hits),
        "benchmark_hit_rate": len(hits) / index.items if index.items else 0.0,
    }


__all__ = ["NGramIndex", "build_index", "contamination_hits", "decontaminate", "expand_benchmark_paths"]
