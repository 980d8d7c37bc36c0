"""golongrl for multi-GPU, multi-node training on an unmodified, pinned verl (0.9.1).

Install with ``pip install -e '.[verl]'`` from the repository (see ``docs/verl.md`` for the GPU
stack). The pieces, each usable on its own:

* :mod:`.plugin`: golongrl's advantage estimators registered in verl, the per-sample task label
  carried into verl's own ``compute_advantage`` (legacy and V1 trainers), per-task metrics;
  :func:`install` activates it in the current process.
* per-sample rewards need no adapter: ``golongrl.rewards.compute_score`` has verl's signature
  (``reward.custom_reward_function.path=pkg://golongrl.rewards``).
* :mod:`.reward_manager`: ``GoLongRLRewardManager`` for ``reward.reward_manager.source=importlib``
  (micro-batched, process pool, per-sample time cap).
* :mod:`.main`: the entry point (verl's Hydra config + ``run_ppo`` with golongrl's TaskRunner).
* :mod:`.launcher`: golongrl config -> verl Hydra overrides, ``--dry-run`` text, launch.
* :mod:`.autoload`: ``VERL_USE_EXTERNAL_MODULES=golongrl.engines.verl.autoload`` for verl's stock
  entry point.

See ``docs/verl.md`` for a walk-through.
"""

from __future__ import annotations

import importlib.util

if importlib.util.find_spec("verl") is None:  # pragma: no cover - depends on the environment
    raise ImportError(
        "golongrl.engines.verl needs verl; install it with `pip install -e '.[verl]'` from the repository "
        "(pins verl==0.9.1 and the modules verl imports but does not declare)"
    )

# verl first: with VERL_USE_EXTERNAL_MODULES=golongrl.engines.verl.autoload, importing verl imports
# .autoload -> .plugin, which must not find .plugin half-imported by our own import of verl.
import verl  # noqa: E402,F401

from golongrl.engines.verl.plugin import (  # noqa: E402
    SUPPORTED_VERL_VERSION,
    VERL_ESTIMATORS,
    install,
    is_installed,
    task_labels,
    verl_estimator_name,
)

__all__ = [
    "SUPPORTED_VERL_VERSION",
    "VERL_ESTIMATORS",
    "install",
    "is_installed",
    "task_labels",
    "verl_estimator_name",
]
