"""Rewards for the nine task types: ``compute_score`` (verl's signature) and ``score_batch``.

Two modes: ``faithful`` reproduces the GoLongRL reference scorer exactly (quirks included);
``hardened`` (default) closes the reward-hacking holes listed in docs/rewards.md.  Model text
is never trusted: any string scores in [0, 1] without raising; malformed ground truth raises
:class:`GroundTruthError`.
"""

from golongrl.rewards.batch import ScoreRequest, ScoreResult, close_pool, score_batch
from golongrl.rewards.ground_truth import GroundTruthError
from golongrl.rewards.scoring import MODES, ScoreOptions, compute_score

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
