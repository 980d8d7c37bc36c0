"""Validation of ground truth (trusted, but checked once with a clear error).

A dataset row's ``reward_model.ground_truth`` is ``{doc_ids: list[str], golden_label: str,
summary: str}`` (spec §2.1).  Which field a task reads is given by
``golongrl.tasks.Task.ground_truth_field``; comprehension rows routed through
``longbench_pro`` read ``doc_ids`` like the other LongBench-Pro metrics.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


class GroundTruthError(ValueError):
    """A ground-truth record is missing a field or has a malformed one."""


@dataclass(frozen=True)
class Gold:
    """Validated gold for one sample: ``items`` for list-valued metrics, ``label`` for the
    single-string ones, ``rows`` for structured extraction, ``language`` the raw
    ``ground_truth.summary`` field (the reference's language flag).

    From the row's ``extra_info`` (set by :meth:`golongrl.tasks.Task.parse_gold`):
    ``question`` (the question alone), ``candidates`` (the options the question presents, in
    order) and ``lbp`` (the row is scored by a LongBench-Pro metric)."""

    items: tuple[str, ...] = ()
    label: str = ""
    rows: tuple[Any, ...] = ()
    language: str | None = None
    question: str = ""
    candidates: tuple[str, ...] = ()
    lbp: bool = False


def _unwrap(ground_truth: Any) -> Any:
    # The reference's reward manager may pass a list of ground truths; it scores the last.
    if isinstance(ground_truth, (list, tuple)) and ground_truth:
        return ground_truth[-1]
    return ground_truth


def _field(gt: Any, name: str, task: str) -> Any:
    if not isinstance(gt, Mapping):
        raise GroundTruthError(
            f"task {task!r}: ground_truth must be a mapping with field {name!r}, "
            f"got {type(gt).__name__}"
        )
    if name not in gt or gt[name] is None:
        raise GroundTruthError(f"task {task!r}: ground_truth is missing field {name!r}")
    return gt[name]


def _require_str(value: Any, field: str, task: str) -> str:
    if not isinstance(value, str):
        raise GroundTruthError(
            f"task {task!r}: ground_truth.{field} must be a string, got {type(value).__name__}"
        )
    return value


def gold_items(ground_truth: Any, task: str, *, need_language: bool = False) -> Gold:
    """``doc_ids`` as a non-empty tuple of strings (LongBench-Pro style tasks)."""
    gt = _unwrap(ground_truth)
    raw = _field(gt, "doc_ids", task)
    if isinstance(raw, np.ndarray):
        raw = raw.tolist()
    if isinstance(raw, str) or not isinstance(raw, Sequence):
        raise GroundTruthError(
            f"task {task!r}: ground_truth.doc_ids must be a list of strings, "
            f"got {type(raw).__name__}"
        )
    if not raw:
        raise GroundTruthError(f"task {task!r}: ground_truth.doc_ids is empty")
    for i, item in enumerate(raw):
        if not _require_str(item, f"doc_ids[{i}]", task).strip():
            raise GroundTruthError(f"task {task!r}: ground_truth.doc_ids[{i}] is blank")
    language = None
    if need_language:
        language = _require_str(_field(gt, "summary", task), "summary", task)
    elif isinstance(gt.get("summary"), str):
        language = gt["summary"]
    return Gold(items=tuple(raw), language=language)


def _number_label(value: Any) -> Any:
    """A numeric label (GoLongRL's math golds may be stored as numbers) as its decimal text;
    anything else unchanged.  Booleans and non-finite floats are not numbers here."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return value
    if isinstance(value, numbers.Integral):
        return str(int(value))
    number = float(value)
    if not math.isfinite(number):
        return value
    return str(int(number)) if number.is_integer() else repr(number)


def gold_label(ground_truth: Any, task: str) -> Gold:
    """``golden_label`` as a string; a bare string (or number) ground truth is accepted as the
    label, and a numeric label is read as its decimal text (``42``, ``0.5``)."""
    gt = _number_label(_unwrap(ground_truth))
    label = gt if isinstance(gt, str) else _number_label(_field(gt, "golden_label", task))
    if not _require_str(label, "golden_label", task).strip():
        raise GroundTruthError(f"task {task!r}: ground_truth.golden_label is blank")
    return Gold(label=label)


def gold_table(ground_truth: Any, task: str) -> Gold:
    """``golden_label`` holding JSON ``{"data": [[...], ...]}`` (structured extraction)."""
    label = gold_label(ground_truth, task).label
    try:
        parsed = json.loads(label)
    except (ValueError, RecursionError) as exc:
        raise GroundTruthError(
            f"task {task!r}: ground_truth.golden_label is not valid JSON ({exc})"
        ) from None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("data"), list):
        raise GroundTruthError(
            f'task {task!r}: ground_truth.golden_label must be a JSON object {{"data": [...]}}'
        )
    return Gold(label=label, rows=tuple(parsed["data"]))
