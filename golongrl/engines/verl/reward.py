"""``reward.custom_reward_function`` entry: golongrl's rewards, called per sample by verl.

Point verl at it with::

    reward.custom_reward_function.path=pkg://golongrl.engines.verl.reward
    reward.custom_reward_function.name=compute_score
    +reward.custom_reward_function.reward_kwargs.mode=faithful     # or hardened (the default)

``pkg://`` makes verl import the installed module instead of a file path, so the same setting
works on every node of a cluster. verl's naive/dapo reward managers call :func:`compute_score`
once per rollout inside the reward-loop workers; for the process pool and the per-sample time
cap use :mod:`golongrl.engines.verl.reward_manager` instead.
"""

from __future__ import annotations

from typing import Any, Mapping

from golongrl import rewards
from golongrl.tasks import resolve_task

#: reward_extra_info key carrying the task type. Prefixed because verl's legacy trainer merges
#: these keys into the batch next to the dataset's own columns.
TASK_KEY = "golongrl_task"

# Keyword arguments verl's reward loop adds for reward-model routing; golongrl scores by rule.
_VERL_ROUTING_KWARGS = ("reward_router_address", "reward_model_tokenizer")


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    *,
    mode: str = "hardened",
    **kwargs: Any,
) -> dict[str, Any]:
    """Score one rollout in verl's reward-function signature.

    Returns ``{"score": float, "golongrl_task": task}``; verl uses ``score`` as the reward and
    keeps the other key as ``reward_extra_info`` (per-rollout, shown in verl's dumps). Remaining
    ``reward_kwargs`` go to :func:`golongrl.rewards.compute_score`.

    Raises:
        golongrl.rewards.GroundTruthError: when the row's gold answer is malformed (a data bug,
            not a model failure: model output never raises).
    """
    for key in _VERL_ROUTING_KWARGS:
        kwargs.pop(key, None)
    score = rewards.compute_score(data_source, solution_str, ground_truth, extra_info, mode=mode, **kwargs)
    return {"score": float(score), TASK_KEY: resolve_task(data_source, extra_info)}
