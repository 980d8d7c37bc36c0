"""Entry point: verl's own Hydra config and ``run_ppo``, with golongrl's plugin in the TaskRunner.

    python -m golongrl.engines.verl.main [verl Hydra overrides ...]

This is verl's ``verl.trainer.main_ppo`` through the seam verl keeps for recipes,
``run_ppo(config, task_runner_class=...)``: the TaskRunner classes below are verl's own, with
``run`` first installing :mod:`golongrl.engines.verl.plugin` in the actor process, the one that
runs the trainer and so computes advantages and step metrics. Every other verl setting keeps its
meaning; ``golongrl train --engine verl`` builds the override list from a golongrl config.
"""

from __future__ import annotations

import os
from typing import Any

import hydra
import ray
from omegaconf import DictConfig

import verl.trainer.main_ppo as verl_main_ppo
from golongrl.engines.verl.plugin import install
from verl.trainer.main_ppo import TaskRunnerV1, run_ppo
from verl.trainer.ppo.utils import need_critic, need_reference_policy
from verl.utils.config import validate_config
from verl.utils.device import auto_set_device

#: verl's packaged Hydra config folder (``ppo_trainer.yaml`` and its groups).
VERL_CONFIG_DIR = os.path.join(os.path.dirname(verl_main_ppo.__file__), "config")


class GoLongRLTaskRunnerV1(TaskRunnerV1.__ray_actor_class__):  # type: ignore[name-defined,misc]
    """verl's V1 TaskRunner (TransferQueue trainer, verl's default) with the plugin installed."""

    def run(self, config: DictConfig) -> Any:
        install(announce=True)
        return super().run(config)


def task_runner_class(use_v1: bool) -> Any:
    """The Ray actor class for ``run_ppo``: V1 (default) or verl's deprecated legacy trainer."""
    if use_v1:
        return ray.remote(GoLongRLTaskRunnerV1)
    from verl.trainer.main_ppo_v0 import TaskRunner as TaskRunnerV0

    class GoLongRLTaskRunnerV0(TaskRunnerV0.__ray_actor_class__):  # type: ignore[name-defined,misc]
        """verl's legacy (``trainer.use_v1=false``) TaskRunner with the plugin installed."""

        def run(self, config: DictConfig) -> Any:
            install(announce=True)
            return super().run(config)

    return ray.remote(GoLongRLTaskRunnerV0)


def run(config: DictConfig) -> None:
    """What verl's ``main`` does, with golongrl's TaskRunner."""
    auto_set_device(config)
    validate_config(config=config, use_reference_policy=need_reference_policy(config), use_critic=need_critic(config))
    run_ppo(config, task_runner_class=task_runner_class(bool(config.trainer.use_v1)))


@hydra.main(config_path=VERL_CONFIG_DIR, config_name="ppo_trainer", version_base=None)
def main(config: DictConfig) -> None:
    run(config)


if __name__ == "__main__":
    main()
