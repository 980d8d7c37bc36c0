"""Rewards for the nine task types: ``compute_score`` (verl's signature) and ``score_batch``.

Two modes: ``faithful`` reproduces the GoLongRL reference scorer exactly (quirks included);
``hardened`` (default) pays only for doing the task (docs/rewards.md).  Model text is never
trusted: any string scores in [0, 1] without raising, within a per-sample time cap; a row with
malformed ground truth scores 0 with reason ``gold`` (``prepare`` in
:mod:`golongrl.rewards.scoring` raises :class:`GroundTruthError` naming the field).

The names below load on first use, so that the metric primitives in this package
(:mod:`golongrl.rewards.metrics`, ``lcs``, ``text``), which :mod:`golongrl.tasks` builds on,
import without pulling in the scorer, which dispatches to the tasks.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "MODES": "golongrl.rewards.options",
    "ScoreOptions": "golongrl.rewards.options",
    "GroundTruthError": "golongrl.rewards.ground_truth",
    "compute_score": "golongrl.rewards.batch",
    "ScoreRequest": "golongrl.rewards.batch",
    "ScoreResult": "golongrl.rewards.batch",
    "close_pool": "golongrl.rewards.batch",
    "warm_pool": "golongrl.rewards.batch",
    "score_batch": "golongrl.rewards.batch",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'golongrl.rewards' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
