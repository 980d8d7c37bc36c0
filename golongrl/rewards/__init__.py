"""Rewards for the nine task types: ``compute_score`` (verl's signature) and ``score_batch``.

Two modes: ``faithful`` reproduces the GoLongRL reference scorer exactly (quirks included);
``hardened`` (default) closes the reward-hacking holes listed in docs/rewards.md.  Model text
is never trusted: any string scores in [0, 1] without raising, within a per-sample time cap; a
row with malformed ground truth scores 0 with reason ``gold`` (``prepare`` in
:mod:`golongrl.rewards.scoring` raises :class:`GroundTruthError` naming the field).
"""

from golongrl.rewards.batch import (
    ScoreRequest,
    ScoreResult,
    close_pool,
    compute_score,
    score_batch,
)
from golongrl.rewards.ground_truth import GroundTruthError
from golongrl.rewards.scoring import MODES, ScoreOptions

__all__ = [
    "MODES",
    "GroundTruthError",
    "ScoreOptions",
    "ScoreRequest",
    "ScoreResult",
    "close_pool",
    "compute_score",
    "score_batch",
]
