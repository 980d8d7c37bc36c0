"""Evaluation: long-context benchmarks scored as the reference does, length x depth sweeps from
real documents, the ``golongrl eval`` command and its reports.

Public names other code relies on: :func:`score_mrcr` (the official MRCR rule),
:func:`strip_thinking`, the benchmark registry :data:`BENCHMARKS`, :func:`generate_sweep`;
:mod:`golongrl.evaluation.policy` is the per-task reward of a policy on a golongrl split (the
``golongrl`` benchmark and the trainer's held-out evaluation both use it).
Heavy modules (benchmarks, sweeps, plotting) load on first use.
"""

from __future__ import annotations

from typing import Any

from .scoring import cover_exact_match, score_docmath_rule, score_mrcr, token_f1
from .text import strip_thinking

__all__ = [
    "BENCHMARKS",
    "cover_exact_match",
    "generate_sweep",
    "score_docmath_rule",
    "score_mrcr",
    "strip_thinking",
    "token_f1",
]


def __getattr__(name: str) -> Any:
    if name == "BENCHMARKS":
        from .benchmarks import BENCHMARKS

        return BENCHMARKS
    if name == "generate_sweep":
        from .sweeps import generate_sweep

        return generate_sweep
    raise AttributeError(f"module 'golongrl.evaluation' has no attribute {name!r}")
