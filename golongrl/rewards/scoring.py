"""Resolve the task, parse its gold, and let the task score the response (``compute_score``,
verl's signature, wraps this with a time cap in :mod:`golongrl.rewards.batch`).

``faithful`` reproduces the GoLongRL reference scorer (spec §3) exactly, quirks included.
``hardened`` (the default) pays only for doing the task: every gold-independent answer earns at
most chance (docs/rewards.md has the per-task table).  Both modes never raise on model text:
any failure becomes ``(0.0, reason)``.  The per-task metrics live in ``golongrl.tasks``; this
module holds no task-specific branch.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from golongrl.rewards.ground_truth import Gold
from golongrl.rewards.options import (
    MODES,
    REASON_ERROR,
    REASON_FORMAT,
    REASON_GOLD,
    REASON_PARSE,
    REASON_TIMEOUT,
    Result,
    ScoreOptions,
    make_options,
)
from golongrl.tasks import get_task, resolve_task

__all__ = [
    "MODES",
    "REASON_ERROR",
    "REASON_FORMAT",
    "REASON_GOLD",
    "REASON_PARSE",
    "REASON_TIMEOUT",
    "Prepared",
    "Result",
    "ScoreOptions",
    "make_options",
    "prepare",
    "score_prepared",
]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prepared:
    """A validated request, ready to score (picklable; sent to batch workers): the canonical
    task name, resolved once, and the task's parsed gold."""

    task: str
    gold: Gold


def prepare(
    data_source: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None,
    mode: str,
    *,
    task: str | None = None,
) -> Prepared:
    """Resolve the task (or take the already-resolved ``task``) and parse its gold.

    Raises:
        golongrl.tasks.UnknownTaskError: labels that map to no task type.
        GroundTruthError: missing or malformed ground-truth field (in faithful mode only
            where the reference itself fails; it scores an empty gold).
        ValueError: unknown ``mode``.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    name = task or resolve_task(data_source, extra_info)
    gold = get_task(name).parse_gold(
        ground_truth, extra_info, data_source=data_source, strict=mode == "hardened"
    )
    return Prepared(task=name, gold=gold)


def score_prepared(prepared: Prepared, solution: Any, mode: str, opts: ScoreOptions) -> Result:
    """Score one response; never raises on model output (returns ``(0.0, reason)``)."""
    try:
        return get_task(prepared.task).score(prepared.gold, solution, mode, opts)
    except Exception:  # noqa: BLE001 - untrusted text must never crash training; reason says so
        _log.debug("scorer failed on a %s response", prepared.task, exc_info=True)
        return 0.0, REASON_ERROR
