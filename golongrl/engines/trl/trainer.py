"""TRL's GRPOTrainer with golongrl's rewards, task labels and task-aware advantage estimators.

TRL 1.16.0 computes advantages inline in ``GRPOTrainer._generate_and_score_completions`` (group
mean and std, or batch std) and offers no estimator hook. Its ``_calculate_rewards`` returns the
rewards already gathered across processes, one row per completion, with the completions of one
prompt next to each other (TRL's ``RepeatSampler``; TRL's own baseline relies on the same
layout). :class:`GoLongRLGRPOTrainer` keeps those rewards, lets TRL finish the batch, then
replaces ``advantages`` (the tensor ``_compute_loss`` consumes) with golongrl's for this
process's slice. TRL's logged ``advantages`` column is replaced too; its
``frac_reward_zero_std`` metric still describes the raw rewards.

Dataset rows carry the golongrl/verl schema flattened into TRL columns (see
:func:`golongrl.engines.trl.launcher.trl_rows`): ``prompt`` (the chat), ``golongrl_row`` (the
row's ``data_source``, ``reward_model`` and ``extra_info`` as JSON, so that rows with different
extra fields live in one Arrow table) and ``golongrl_label`` (the estimator's task label).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from accelerate.utils import gather_object
from trl import GRPOTrainer

from golongrl.advantages import ESTIMATORS, compute_advantages, task_metrics
from golongrl.rewards import ScoreRequest, score_batch

#: The TRL release this integration is written and tested against (pinned by ``golongrl[trl]``).
SUPPORTED_TRL_VERSION = "1.16.0"
#: Dataset columns added by the launcher.
ROW_COLUMN = "golongrl_row"
LABEL_COLUMN = "golongrl_label"
#: Reasons that mean the reward could not be computed (a policy's bad answer is ``format``/``parse``).
REWARD_FAILURE_REASONS = ("timeout", "error", "gold")


def completion_text(completion: Any) -> str:
    """TRL hands conversational completions as ``[{"role": "assistant", "content": ...}]``."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and completion and isinstance(completion[-1], Mapping):
        return str(completion[-1].get("content", ""))
    return str(completion)


class GoLongRLReward:
    """A TRL reward function: golongrl's scorer over the whole generation batch at once.

    Reads each completion's dataset row from the ``golongrl_row`` column; scores with
    :func:`golongrl.rewards.score_batch` (process pool, per-sample time cap ``timeout_s``);
    reports ``reward_failures/<reason>`` through TRL's ``log_metric``. ``last_results`` keeps
    the latest batch's :class:`golongrl.rewards.ScoreResult` list.
    """

    __name__ = "golongrl"

    def __init__(self, mode: str = "hardened", timeout_s: float = 10.0, workers: int | None = None,
                 **score_options: Any) -> None:
        self.mode, self.timeout_s, self.workers, self.score_options = mode, timeout_s, workers, score_options
        self.last_results: list[Any] = []

    def __call__(self, prompts: list[Any], completions: list[Any], golongrl_row: list[str], log_metric: Any = None,
                 **unused_columns: Any) -> list[float]:
        requests = []
        for completion, encoded in zip(completions, golongrl_row):
            row = json.loads(encoded)
            requests.append(ScoreRequest(data_source=row["data_source"], solution_str=completion_text(completion),
                                         ground_truth=row["reward_model"]["ground_truth"],
                                         extra_info=row.get("extra_info") or {}))
        results = score_batch(requests, mode=self.mode, timeout_s=self.timeout_s, workers=self.workers,
                              **self.score_options)
        self.last_results = results
        if log_metric is not None:
            reasons = Counter(r.reason for r in results)
            for reason in REWARD_FAILURE_REASONS:
                log_metric(f"reward_failures/{reason}", float(reasons[reason]))
        return [float(r.score) for r in results]


class GoLongRLGRPOTrainer(GRPOTrainer):
    """``trl.GRPOTrainer`` whose advantages are golongrl's.

    Args:
        estimator: a :data:`golongrl.advantages.ESTIMATORS` name (``tmn_reweight``...).
        estimator_params: the estimator's keyword parameters (``alpha``, ``gamma``, ``eps``...).
        *args, **kwargs: ``GRPOTrainer``'s; ``train_dataset`` needs the ``golongrl_label``
            column (and ``golongrl_row`` for :class:`GoLongRLReward`).

    After each generation batch, ``last_advantages`` holds the advantages of the whole
    (all-process) batch as golongrl computed them, and the step metrics gain golongrl's
    ``task_metrics/<task>/*`` and estimator metrics.
    """

    def __init__(self, *args: Any, estimator: str = "tmn_reweight", estimator_params: Mapping[str, Any] | None = None,
                 **kwargs: Any) -> None:
        if estimator not in ESTIMATORS:
            raise ValueError(f"unknown golongrl estimator {estimator!r}; choose one of {sorted(ESTIMATORS)}")
        super().__init__(*args, **kwargs)
        self.golongrl_estimator = estimator
        self.golongrl_estimator_params = dict(estimator_params or {})
        self.last_advantages: torch.Tensor | None = None
        self._gathered_rewards: torch.Tensor | None = None

    def _calculate_rewards(self, inputs: Any, prompts: Any, completions: Any, completion_ids_list: Any) -> torch.Tensor:
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._gathered_rewards = rewards_per_func  # (all-process batch, reward functions)
        return rewards_per_func

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        output = super()._generate_and_score_completions(inputs)
        per_func = self._gathered_rewards
        if per_func is None:
            raise RuntimeError("TRL did not compute rewards through _calculate_rewards; TRL's GRPOTrainer changed")
        mode = "train" if self.model.training else "eval"
        group_size = self.num_generations if mode == "train" else self.num_generations_eval
        rewards = (per_func * self.reward_weights.to(per_func.device).unsqueeze(0)).nansum(dim=1).float().cpu()
        labels = gather_object([row[LABEL_COLUMN] for row in inputs])
        if len(labels) != len(rewards) or len(rewards) % group_size:
            raise RuntimeError(f"{len(rewards)} rewards, {len(labels)} labels, groups of {group_size}: TRL's batch "
                               "layout is not the one golongrl was written for")
        groups = np.arange(len(rewards)) // group_size
        advantages, metrics = compute_advantages(self.golongrl_estimator, rewards, groups, labels,
                                                 **self.golongrl_estimator_params)
        self.last_advantages = advantages
        local = slice(self.accelerator.process_index * len(inputs), (self.accelerator.process_index + 1) * len(inputs))
        output["advantages"] = advantages[local].to(device=output["advantages"].device, dtype=output["advantages"].dtype)
        logged = self._logs["advantages"]
        for _ in range(min(len(advantages), len(logged))):
            logged.pop()
        logged.extend(advantages.tolist())
        for key, value in {**metrics, **task_metrics(rewards, groups, labels)}.items():
            self._metrics[mode][key].append(float(value))
        return output
