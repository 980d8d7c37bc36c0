"""Evaluate a policy on a golongrl dataset split: per-task reward with the reward library.

The implementation lives in :mod:`golongrl.evaluation.policy` (shared with the ``golongrl``
benchmark of ``golongrl eval``); this module keeps the training-side import path.
"""

from __future__ import annotations

from golongrl.evaluation.policy import EvalResult, evaluate_policy, score_responses, select_rows

__all__ = ["EvalResult", "evaluate_policy", "score_responses", "select_rows"]
