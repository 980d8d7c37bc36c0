"""Structured matching: give each numbered item its label (SubEM in the reference)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from golongrl.rewards import text as T
from golongrl.rewards.metrics import cohen_kappa, subem_precise, subem_recall
from golongrl.tasks.base import (
    REASON_PARSE,
    Gold,
    Result,
    ScoreOptions,
    distinct,
    row_candidates,
    row_prompt,
    row_question,
)
from golongrl.tasks.listing import ListTask, as_answer

_KEYED = re.compile(r"^[(\[]?(\d{1,4})[)\]]?\s*(?:[:：.)\-–—=]\s*|\s+)(\S.*)$")
_NUMBERED_ITEM = re.compile(r"^\s*(\d{1,4})[.):]\s+\S", re.M)
_CHOICE_LABELS = re.compile(r"\(([^()\n]{1,40}?) or ([^()\n]{1,40}?)\)")
_HEADING = re.compile(r"^#\s+(.+?)\s*$", re.M)


def parse_keyed(line: str) -> tuple[str, str] | None:
    """``(key, value)`` of a keyed answer line such as ``1: A``, ``1. A``, ``(1) A``,
    ``**1**: Speaker A``; ``None`` if the line is not keyed."""
    match = _KEYED.match(line.strip().replace("**", "").replace("__", ""))
    if not match:
        return None
    value = T.normalize_item(match.group(2))
    return (match.group(1).lstrip("0") or "0", value) if value else None


def keyed_gold(items: Sequence[str]) -> dict[str, str] | None:
    """The gold as ``{key: label}`` when every item is keyed with a distinct key, else ``None``."""
    pairs = [parse_keyed(item) for item in items]
    if not pairs or any(p is None for p in pairs):
        return None
    mapping = dict(p for p in pairs if p is not None)
    return mapping if len(mapping) == len(pairs) else None


def _canonical_label(value: str, labels: set[str]) -> str:
    """``value`` as one of ``labels``: itself, or its last word when the word before it names
    the kind of label (``Speaker A`` for ``A``) and is not itself a label."""
    if value in labels:
        return value
    words = value.split(" ")
    if len(words) == 2 and words[1] in labels and words[0] not in labels:
        return words[1]
    return value


class StructuredMatching(ListTask):
    """Hardened, keyed gold (``1: B``, one per item): exactly one answer per item, written
    ``1: B``, ``1. B``, ``(1) B`` or ``1: Speaker B``; an item answered twice counts as
    unanswered; the score is Cohen's kappa of the answered labels against the gold, so a
    constant label, the majority label or any blind labelling earns 0.  Un-keyed gold: SubEM
    divided by max(#gold, #lines) so extra lines cost."""

    name = "structured_matching"
    title = "Structured matching"
    metric = "subem"
    ability = "fragment-level structured matching and induction"
    lbp_metric = "SubEM"
    answer_format = "[Answer] then one 'number: label' line per item"
    instruction = ("Write [Answer] on its own line, then one line per excerpt in the form "
                   "'number: answer'.")
    chance = 0.0
    faithful_metric = staticmethod(subem_recall)

    def hardened(self, gold: Gold, answer: str, options: ScoreOptions) -> Result:
        area_lines = [line for line in T.hardened_answer_area(answer).splitlines() if line.strip()]
        if not area_lines:
            return 0.0, REASON_PARSE
        expected = keyed_gold(gold.items)
        if expected is None:
            return subem_precise([T.normalize_item(g) for g in gold.items], T.answer_items(answer)), None
        labels = set(expected.values()) | {T.normalize_item(c) for c in gold.candidates}
        given: dict[str, set[str]] = {}
        for line in area_lines:
            pair = parse_keyed(line)
            if pair is not None and pair[0] in expected:
                given.setdefault(pair[0], set()).add(_canonical_label(pair[1], labels))
        if not given:
            return 0.0, REASON_PARSE
        keys = sorted(expected, key=int)
        # An unanswered (or doubly answered) item gets a label no gold item has.
        predicted = [next(iter(given[k])) if len(given.get(k, ())) == 1 else "\0" for k in keys]
        return cohen_kappa([expected[k] for k in keys], predicted), None

    def labels(self, row: Mapping[str, Any]) -> list[str]:
        """The labels a row's items are matched to: ``extra_info.labels``, else a ``(X or Y)``
        choice in the question, else the prompt's document headings, else
        ``extra_info.candidates``."""
        extra = row.get("extra_info") or {}
        found = extra.get("labels") if isinstance(extra, Mapping) else None
        if isinstance(found, (list, tuple)) and found and all(isinstance(x, str) for x in found):
            return list(found)
        choice = _CHOICE_LABELS.search(row_question(row))
        if choice:
            return [choice.group(1).strip(), choice.group(2).strip()]
        return distinct(_HEADING.findall(row_prompt(row))) or row_candidates(extra) or []

    def baselines(self, row: Mapping[str, Any]) -> dict[str, str]:
        question = row_question(row)
        out = {"echo_question": "[Answer]\n" + question}
        keys = distinct(_NUMBERED_ITEM.findall(question))
        labels = self.labels(row)
        if keys and labels:
            for i, label in enumerate(labels[:6]):
                out[f"constant_label_{i + 1}"] = as_answer([f"{k}: {label}" for k in keys])
            out["labels_cycled"] = as_answer([f"{k}: {labels[i % len(labels)]}" for i, k in enumerate(keys)])
            out["every_label_per_item"] = as_answer([f"{k}: {label}" for k in keys for label in labels])
            out["all_labels_unkeyed"] = as_answer(labels)
        return out


TASK = StructuredMatching()
