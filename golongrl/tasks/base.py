"""The :class:`Task` unit: everything golongrl knows about one task type, in one place.

A task holds its labels (``data_source``, LongBench-Pro metric, ``ability``), the one gold
parser that the schema, the scorer and verl all use, the answer instruction its prompts carry,
its answer extraction and metric in both modes (``faithful`` reproduces the GoLongRL reference,
``hardened`` pays only for doing the task), a reference (perfect) response and a library of
gold-independent *baselines* that ``golongrl audit`` scores to prove the hardened metric pays
them nothing.

Metric primitives live one layer below in :mod:`golongrl.rewards.metrics`,
:mod:`golongrl.rewards.lcs` and :mod:`golongrl.rewards.text`; they never import tasks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from golongrl.rewards import text as T
from golongrl.rewards.ground_truth import Gold, GroundTruthError, gold_items, gold_label
from golongrl.rewards.options import (
    REASON_ERROR,
    REASON_FORMAT,
    REASON_PARSE,
    Result,
    ScoreOptions,
)

__all__ = [
    "REASON_ERROR",
    "REASON_FORMAT",
    "REASON_PARSE",
    "Gold",
    "GroundTruthError",
    "Result",
    "ScoreOptions",
    "Task",
    "row_candidates",
    "row_question",
]


def row_question(row: Mapping[str, Any]) -> str:
    """The question of a dataset row: ``extra_info.question``, else the last user message."""
    extra = row.get("extra_info") or {}
    question = extra.get("question") if isinstance(extra, Mapping) else None
    if isinstance(question, str) and question.strip():
        return question
    for message in reversed(row.get("prompt") or []):
        if isinstance(message, Mapping) and message.get("role") == "user":
            return str(message.get("content", ""))
    return ""


def row_prompt(row: Mapping[str, Any]) -> str:
    """All prompt messages' text, joined (the context the baselines may copy from)."""
    return "\n\n".join(
        str(m.get("content", "")) for m in row.get("prompt") or [] if isinstance(m, Mapping)
    )


def _string_list(value: Any) -> list[str] | None:
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def row_candidates(extra_info: Mapping[str, Any] | None) -> list[str] | None:
    """``extra_info.candidates`` (the options in the order the question presents them) when it
    is a non-empty list of strings, else ``None``."""
    if not isinstance(extra_info, Mapping):
        return None
    return _string_list(extra_info.get("candidates"))


_NUMBERED_LINE = re.compile(r"^\s*(\d{1,3})[.):]\s+\S", re.M)
_CANDIDATES_LINE = re.compile(r"(?:candidates|options|items|words)\s*:\s*(.+)$", re.I | re.M)


class Task:
    """One capability-oriented task type (subclasses fill in the metric and baselines).

    Attributes:
        name: canonical snake_case name used in configs, logs and metrics.
        title: human-readable name.
        metric: the natural metric (``em``, ``accuracy``, ``f1``, ``math_verify``, ``iou``,
            ``subem``, ``ndcg``, ``pairwise``, ``rouge_l``).
        binary: whether the reward is 0/1 rather than graded.
        data_source: the ``data_source`` value the reference dispatches on for this task.
        ground_truth_field: which ``reward_model.ground_truth`` field carries the gold.
        ability: the dataset's ``ability`` string (compared case-folded).
        lbp_metric: the LongBench-Pro metric name when rows come through ``longbench_pro``.
        answer_format: the answer convention a response must follow (one line, for docs).
        instruction: the answer instruction a prompt of this task ends with, in the format
            the hardened scorer accepts.
        chance: the hardened reward a blind (gold-independent) answer earns in expectation;
            ``golongrl audit`` flags a strategy that earns more than this (or 0.3).
    """

    name: str = ""
    title: str = ""
    metric: str = ""
    binary: bool = False
    data_source: str = "longbench_pro"
    ground_truth_field: str = "doc_ids"
    ability: str = ""
    lbp_metric: str | None = None
    answer_format: str = ""
    instruction: str = ""
    chance: float = 0.0

    def __repr__(self) -> str:
        return f"<Task {self.name}>"

    # ------------------------------------------------------------------ gold

    def parse_gold(
        self,
        ground_truth: Any,
        extra_info: Mapping[str, Any] | None = None,
        *,
        data_source: str | None = None,
        strict: bool = True,
    ) -> Gold:
        """Validate the row's ground truth and return the :class:`Gold` the metric reads.

        ``strict=False`` (faithful mode) lets through the empty golds the reference scores
        anyway (an empty ``doc_ids`` list, a blank ``golden_label``).

        Raises:
            GroundTruthError: naming the task and the missing or malformed field.
        """
        if self.ground_truth_field == "doc_ids":
            gold = self._items_gold(ground_truth, strict)
        else:
            gold = self._label_gold(ground_truth, strict)
        return self._with_row(gold, extra_info, data_source)

    def _items_gold(self, ground_truth: Any, strict: bool) -> Gold:
        try:
            return gold_items(ground_truth, self.name)
        except GroundTruthError:
            if strict:
                raise
            gt = ground_truth[-1] if isinstance(ground_truth, (list, tuple)) and ground_truth else ground_truth
            raw = gt.get("doc_ids") if isinstance(gt, Mapping) else None
            items = _string_list(raw)
            if items is None and not (isinstance(raw, (list, tuple, np.ndarray)) and len(raw) == 0):
                raise
            language = gt.get("summary") if isinstance(gt.get("summary"), str) else None
            return Gold(items=tuple(items or ()), language=language)

    def _label_gold(self, ground_truth: Any, strict: bool) -> Gold:
        try:
            return gold_label(ground_truth, self.name)
        except GroundTruthError:
            if strict:
                raise
            gt = ground_truth[-1] if isinstance(ground_truth, (list, tuple)) and ground_truth else ground_truth
            label = gt if isinstance(gt, str) else gt.get("golden_label") if isinstance(gt, Mapping) else None
            if not isinstance(label, str):
                raise
            return Gold(label=label)

    def _with_row(self, gold: Gold, extra_info: Mapping[str, Any] | None, data_source: str | None) -> Gold:
        extra = extra_info if isinstance(extra_info, Mapping) else {}
        question = extra.get("question")
        return replace(
            gold,
            question=question if isinstance(question, str) else "",
            candidates=tuple(row_candidates(extra) or ()),
            lbp=self._is_lbp(data_source, extra),
        )

    def _is_lbp(self, data_source: str | None, extra: Mapping[str, Any]) -> bool:
        return self.ground_truth_field == "doc_ids"

    # ------------------------------------------------------------------ scoring

    def score(self, gold: Gold, response: Any, mode: str, options: ScoreOptions) -> Result:
        """Score one response in ``mode``: the mode's format gate, then the metric.

        Never raises on model text; returns ``(score in [0, 1], reason or None)``.
        """
        if not isinstance(response, str):
            return 0.0, REASON_FORMAT
        if mode == "faithful":
            require_think = True if options.require_think is None else options.require_think
            if require_think and T.THINK_CLOSE not in response:
                return 0.0, REASON_FORMAT
            if response.count(T.THINK_OPEN) > 1 or response.count(T.THINK_CLOSE) > 1:
                return 0.0, REASON_FORMAT
            return self.faithful(gold, response, options)
        gate = T.hardened_gate(
            response, require_think=bool(options.require_think), max_chars=options.max_response_chars
        )
        if gate.answer is None:
            return 0.0, gate.reason
        return self.hardened(gold, gate.answer, options)

    def faithful(self, gold: Gold, response: str, options: ScoreOptions) -> Result:
        """The reference's metric on the whole response (which passed the think gate)."""
        raise NotImplementedError

    def hardened(self, gold: Gold, answer: str, options: ScoreOptions) -> Result:
        """The hardened metric on the answer (the text after ``</think>``)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ references

    def reference_response(self, gold: Gold) -> str:
        """A perfect answer (the text after ``</think>``) in the format :attr:`instruction`
        asks for; it scores 1.0 in hardened mode."""
        return "[Answer]\n" + "\n".join(gold.items)

    def candidates(self, row: Mapping[str, Any]) -> list[str]:
        """The options a row's question presents, in presentation order: ``extra_info.candidates``
        when present, else parsed from the question text (``Candidates: a, b`` or numbered
        lines); ``[]`` when the question presents none."""
        found = row_candidates(row.get("extra_info"))
        if found:
            return found
        return parse_candidates(row_question(row))

    def baselines(self, row: Mapping[str, Any]) -> dict[str, str]:
        """Gold-independent lazy answers to ``row`` (built from its question, candidates and
        prompt, never from its gold), by strategy name."""
        question = row_question(row)
        return {"echo_question": f"[Answer]\n{question}"}


def parse_candidates(question: str) -> list[str]:
    """Options a question lists: after ``Candidates:`` (comma separated), else the numbers of
    numbered lines (``1. ...``), else after the last ``": "`` when it is comma separated."""
    match = _CANDIDATES_LINE.search(question)
    if match:
        return [c.strip() for c in match.group(1).split(",") if c.strip()]
    numbers = _NUMBERED_LINE.findall(question)
    if len(numbers) >= 2:
        return list(dict.fromkeys(numbers))
    # ": " rather than ":" so that a timestamp's colons do not split the list.
    head, sep, tail = question.rpartition(": ")
    if sep and "," in tail and "\n" not in tail.strip():
        return [c.strip().rstrip(".?") for c in tail.split(",") if c.strip()]
    return []


def distinct(items: Sequence[str]) -> list[str]:
    """Items in first-occurrence order without repeats."""
    return list(dict.fromkeys(items))


def prompt_tables(prompt: str) -> list[tuple[list[str], list[list[str]]]]:
    """CSV-like tables in a prompt: blank-line separated blocks of three or more lines with the
    same number (at least one) of commas; ``(header, rows)`` each."""
    tables = []
    for block in re.split(r"\n\s*\n", prompt):
        lines = [line for line in block.splitlines() if line.strip()]
        if len(lines) < 3:
            continue
        width = lines[0].count(",")
        if width == 0 or any(line.count(",") != width for line in lines):
            continue
        cells = [[c.strip() for c in line.split(",")] for line in lines]
        tables.append((cells[0], cells[1:]))
    return tables


def key_column(rows: Sequence[Sequence[str]]) -> int:
    """The first column whose values are all distinct (a table's key, guessed blind)."""
    for col in range(len(rows[0]) if rows else 0):
        values = [r[col] for r in rows if col < len(r)]
        if len(set(values)) == len(values):
            return col
    return 0
