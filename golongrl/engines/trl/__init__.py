"""golongrl on TRL 1.16.0 (one GPU, or a CPU for tests): GRPOTrainer with golongrl's algorithm.

Install with ``pip install -e '.[trl]'`` from the repository. The pieces:

* :mod:`.trainer`: :class:`GoLongRLGRPOTrainer`, TRL's ``GRPOTrainer`` whose advantages are
  :func:`golongrl.advantages.compute_advantages` over the batch's task labels (TMN,
  TMN-Reweight, the QwenLong variants, GRPO, Dr.GRPO) and :class:`GoLongRLReward`, a TRL reward
  function backed by :func:`golongrl.rewards.score_batch`;
* :mod:`.launcher`: a golongrl training config (``configs/trl-*.yaml``) -> ``GRPOConfig``,
  dataset and trainer; ``golongrl train --engine trl`` runs it.

See ``docs/trl.md``.
"""

from __future__ import annotations

import importlib.util

if importlib.util.find_spec("trl") is None:  # pragma: no cover - depends on the environment
    raise ImportError("golongrl.engines.trl needs TRL; install it with `pip install -e '.[trl]'` (pins trl==1.16.0)")

from golongrl.engines.trl.trainer import (  # noqa: E402
    SUPPORTED_TRL_VERSION,
    GoLongRLGRPOTrainer,
    GoLongRLReward,
)

__all__ = ["SUPPORTED_TRL_VERSION", "GoLongRLGRPOTrainer", "GoLongRLReward"]
