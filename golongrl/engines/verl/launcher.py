"""``golongrl train --engine verl``: a golongrl config becomes a verl command line.

A verl preset is an ordinary golongrl training config (:class:`golongrl.training.config.
TrainConfig`, whose ``algorithm`` section is engine-neutral) plus a ``verl:`` section for what
only a cluster run needs: nodes, GPUs, the training backend and its parallelism, the rollout
server. :func:`build_overrides` translates both into verl 0.9.1 Hydra overrides;
:func:`dry_run` shows the full command and the config verl would compose from it; :func:`launch`
runs it through :mod:`golongrl.engines.verl.main`.

Where verl 0.9.1 cannot express a golongrl setting exactly, the translation says so in a
:class:`~golongrl.training.config.ConfigError` (or, where verl's closest equivalent is what the
GoLongRL recipe effectively ran, in the docstring of the function that maps it).
"""

from __future__ import annotations

import math
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from golongrl.engines.verl.plugin import CONFIG_KEY, verl_estimator_name
from golongrl.training.config import ConfigError, TrainConfig, config_from_dict, parse_overrides, resolve_path

#: Module run by :func:`launch` (verl's entry point with golongrl's TaskRunner).
ENTRY_MODULE = "golongrl.engines.verl.main"
#: verl imports these by name inside its reward workers (works on every node, unlike file paths).
REWARD_FUNCTION_PATH = "pkg://golongrl.rewards"  # compute_score already has verl's signature
REWARD_MANAGER_PATH = "pkg://golongrl.engines.verl.reward_manager"
REWARD_MANAGER_CLASS = "GoLongRLRewardManager"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class ParallelConfig(_Section):
    """How the policy is split across GPUs for training (not for rollout)."""

    tensor: int = Field(1, ge=1)
    """Megatron tensor parallelism (splits every matmul; stays inside a node)."""
    pipeline: int = Field(1, ge=1)
    """Megatron pipeline parallelism (splits the layer stack)."""
    context: int = Field(1, ge=1)
    """Megatron context parallelism: each rank holds 1/context of every sequence's tokens, the
    lever for 160K-token sequences (activations grow linearly with the tokens held)."""
    expert: int = Field(1, ge=1)
    """Megatron expert parallelism for MoE models (Qwen3-30B-A3B: 128 experts)."""
    expert_tensor: int | None = Field(None, ge=1)
    """Tensor parallelism inside experts; None lets Megatron use ``tensor``."""
    ulysses: int = Field(1, ge=1)
    """FSDP backend: DeepSpeed-Ulysses sequence parallelism (attention heads all-to-all); must
    divide the number of attention heads and the GPUs per node."""


class RolloutServerConfig(_Section):
    """The inference server that generates rollouts (verl runs it in async mode)."""

    name: Literal["sglang", "vllm"] = "sglang"
    """Engine; GoLongRL used SGLang."""
    tensor_parallel: int = Field(1, ge=1)
    """GPUs per inference replica."""
    gpu_memory_utilization: float = Field(0.6, gt=0, le=1)
    """Share of GPU memory the server may take (weights + KV cache)."""
    max_num_seqs: int = Field(256, ge=1)
    """Requests decoded at once per replica (SGLang: max running requests)."""
    max_num_batched_tokens: int = Field(8192, ge=1)
    """Chunked-prefill chunk size: a 160K prompt is prefilled in pieces of this many tokens."""
    agent_workers: int = Field(8, ge=1)
    """verl agent-loop workers feeding the servers."""
    engine_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Extra engine arguments (``actor_rollout_ref.rollout.engine_kwargs.<name>``)."""


class VerlSection(_Section):
    """Cluster-only settings of a verl run (the ``verl:`` section of a preset)."""

    nnodes: int = Field(1, ge=1)
    """Machines."""
    gpus_per_node: int = Field(8, ge=1)
    """GPUs per machine."""
    backend: Literal["fsdp", "megatron"] = "fsdp"
    """Training backend: FSDP (+ Ulysses) or Megatron-Core (TP/PP/CP/EP)."""
    parallel: ParallelConfig = Field(default_factory=ParallelConfig)
    """Training parallelism."""
    param_offload: bool = False
    """Keep parameters in host memory between uses."""
    optimizer_offload: bool = False
    """Keep Adam states in host memory (they are 12 bytes per parameter in fp32)."""
    recompute: bool = True
    """Megatron: full, uniform, 1-layer activation recomputation; FSDP: gradient checkpointing."""
    use_dynamic_bsz: bool = False
    """Pack micro-batches by token count (``max_token_len_per_gpu``) instead of by sequence."""
    max_token_len_per_gpu: int | None = Field(None, ge=1)
    """Token budget per GPU micro-batch when ``use_dynamic_bsz``; None = prompt + response."""
    rollout: RolloutServerConfig = Field(default_factory=RolloutServerConfig)
    """Rollout server."""
    reward_manager: Literal["batched", "per_sample"] = "batched"
    """``batched``: golongrl's manager (process pool, time cap); ``per_sample``: verl's naive
    manager calling golongrl's ``compute_score``."""
    reward_workers: int = Field(2, ge=1)
    """verl reward-loop workers (each holds its own scoring process pool)."""
    use_v1: bool = True
    """verl's V1 trainer (TransferQueue; dynamic sampling) or its deprecated legacy trainer."""
    project_name: str = "golongrl"
    """Tracking project."""
    experiment_name: str = "golongrl"
    """Run name; checkpoints go to ``output_dir`` (default ``checkpoints/<project>/<experiment>``)."""
    output_dir: str | None = None
    """Checkpoint folder (``trainer.default_local_dir``); a relative path counts from the config file."""
    extra_overrides: list[str] = Field(default_factory=list)
    """Raw verl Hydra overrides appended last (they win); for settings this section lacks."""

    @model_validator(mode="after")
    def _parallel_fits(self) -> VerlSection:
        gpus = self.nnodes * self.gpus_per_node
        p = self.parallel
        if self.backend == "megatron":
            model_parallel = p.tensor * p.pipeline * p.context
            if gpus % model_parallel:
                raise ValueError(
                    f"{gpus} GPUs are not divisible by tensor*pipeline*context = {p.tensor}*{p.pipeline}*{p.context}"
                )
            if p.ulysses != 1:
                raise ValueError("parallel.ulysses applies to the fsdp backend; megatron uses parallel.context")
        else:
            if (p.tensor, p.pipeline, p.context, p.expert) != (1, 1, 1, 1) or p.expert_tensor is not None:
                raise ValueError("tensor/pipeline/context/expert parallelism need backend: megatron")
            if self.gpus_per_node % p.ulysses:
                raise ValueError(f"parallel.ulysses ({p.ulysses}) must divide gpus_per_node ({self.gpus_per_node})")
        if self.gpus_per_node % self.rollout.tensor_parallel:
            raise ValueError(
                f"rollout.tensor_parallel ({self.rollout.tensor_parallel}) must divide gpus_per_node ({self.gpus_per_node})"
            )
        return self


@dataclass(frozen=True)
class VerlJob:
    """A validated verl run: the golongrl config, its ``verl:`` section and where it came from."""

    train: TrainConfig
    verl: VerlSection
    source: str = "<config>"


def load_job(path: str | Path, overrides: list[str] | None = None) -> VerlJob:
    """Read a verl preset: golongrl's training sections plus a ``verl:`` section.

    ``overrides`` are ``KEY=VALUE`` strings for either part (``rollout.n=8``,
    ``verl.nnodes=2``). Raises :class:`ConfigError` naming the file and the dotted key, also for
    settings verl 0.9.1 cannot express, so a job that loads can be launched.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(raw).__name__}")
    requested = parse_overrides(overrides or [])
    verl_raw = {**(raw.pop("verl", None) or {}), **requested.pop("verl", {})}
    train = config_from_dict(raw, source=str(path), overrides=requested)
    base = path.resolve().parent
    train.data.train_files = [resolve_path(p, base) for p in train.data.train_files]
    train.data.eval_files = [resolve_path(p, base) for p in train.data.eval_files]
    try:
        section = VerlSection.model_validate(verl_raw)
    except ValidationError as err:
        lines = [f"{path}: verl.{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in err.errors()]
        raise ConfigError("\n".join(lines)) from None
    if section.output_dir is not None:
        section = section.model_copy(update={"output_dir": resolve_path(section.output_dir, base)})
    job = VerlJob(train=train, verl=section, source=str(path))
    _check_expressible(job)
    return job


def _fmt(value: Any) -> str:
    """A Hydra override value: YAML flow style, so lists, None and strings with spaces survive."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        safe = value and all(ch.isalnum() or ch in "/._-:~+" for ch in value)
        return value if safe else "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_fmt(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as a Hydra override")


def _rollout_correction(train: TrainConfig) -> dict[str, Any]:
    """GoLongRL's rollout IS (token level, ratio clipped to [0.5, 5], sequence veto below 1e-4) in
    verl 0.9.1's ``algorithm.rollout_correction`` schema (the recipe's ``rollout_is*`` keys are
    from verl 0.6 and no longer exist).

    * Token-level truncated IS -> ``rollout_is=token``, ``rollout_is_threshold=<high>``. verl
      0.9.1 truncates from above only; a ``"low_high"`` threshold would instead zero (IcePop)
      tokens outside the band, a different estimator, so the 0.5 lower clip is not expressible
      and weights below it are kept as they are.
    * The veto (drop a sequence if any token ratio < v) -> rejection sampling ``seq_max_k2``
      with threshold ``0.5 * ln(v)^2``: it rejects a sequence whose largest per-token
      ``0.5 * (log r)^2`` exceeds that, i.e. any token with r < v (or r > 1/v, which the upper
      truncation would have cut to 5 anyway).
    """
    rollout_is = train.algorithm.rollout_is
    if not rollout_is.enabled:
        return {"rollout_is": None, "rollout_rs": None}
    out: dict[str, Any] = {"rollout_is": rollout_is.level, "rollout_is_threshold": float(rollout_is.bounds[1])}
    if rollout_is.veto_threshold:
        out["rollout_rs"] = "seq_max_k2"
        out["rollout_rs_threshold"] = round(0.5 * math.log(rollout_is.veto_threshold) ** 2, 6)
    else:
        out["rollout_rs"] = None
    return out


def _check_expressible(job: VerlJob) -> None:
    train, verl = job.train, job.verl
    algo = train.algorithm
    problems = []
    if algo.dynamic_sampling.enabled:
        if not verl.use_v1:
            problems.append("algorithm.dynamic_sampling: verl's legacy trainer has no dynamic sampling; use verl.use_v1: true")
        if algo.dynamic_sampling.tolerance != 0:
            problems.append("algorithm.dynamic_sampling.tolerance: verl drops exactly-constant groups only; set it to 0")
        if algo.dynamic_sampling.metric != "score":
            problems.append("algorithm.dynamic_sampling.metric: golongrl's verl rewards report the scalar 'score' only")
    if algo.overlong.enabled:
        problems.append("algorithm.overlong: verl 0.9.1 applies the DAPO overlong penalty only in its dapo reward "
                        "manager, which golongrl's rewards do not use; disable it")
    if train.model.lora.enabled:
        problems.append("model.lora: LoRA through verl is not wired by golongrl; train full weights or use "
                        "verl.extra_overrides with verl's lora keys")
    if train.model.freeze_lower_layers:
        problems.append("model.freeze_lower_layers: not available in verl")
    if train.optimizer.eps != 1e-8:
        problems.append("optimizer.eps: verl 0.9.1 fixes Adam epsilon at 1e-8")
    if problems:
        raise ConfigError("\n".join(f"{job.source}: {p}" for p in problems))


def build_overrides(job: VerlJob | TrainConfig) -> list[str]:
    """verl Hydra overrides (``key=value``, ``+key=value`` for keys verl's schema lacks) for a job.

    A bare :class:`TrainConfig` runs with the default ``verl:`` section (1 node x 8 GPUs, FSDP).
    """
    if isinstance(job, TrainConfig):
        job = VerlJob(train=job, verl=VerlSection())
    _check_expressible(job)
    train, verl = job.train, job.verl
    algo, rollout, batch, optim = train.algorithm, train.rollout, train.batch, train.optimizer
    if not train.data.train_files:
        raise ConfigError(f"{job.source}: data.train_files is empty; export a verl parquet with "
                          "`golongrl data export --format verl` and list it there")
    megatron = verl.backend == "megatron"
    actor = "actor_rollout_ref.actor"
    roll = "actor_rollout_ref.rollout"
    seq_len = rollout.max_prompt_tokens + rollout.max_new_tokens
    out: dict[str, Any] = {}
    plus: dict[str, Any] = {}  # keys absent from verl's schema (Hydra needs a leading '+')

    # which backend and how the cluster looks
    if megatron:
        out["model_engine"] = "megatron"
    out["trainer.nnodes"] = verl.nnodes
    out["trainer.n_gpus_per_node"] = verl.gpus_per_node
    out["trainer.use_v1"] = verl.use_v1

    # data: the prompt filter uses the policy's tokenizer and chat template, like the export
    out["data.train_files"] = list(train.data.train_files)
    out["data.val_files"] = list(train.data.eval_files or train.data.train_files)
    out["data.shuffle"] = train.data.shuffle
    out["data.seed"] = train.training.seed
    if train.data.max_train_rows is not None:
        out["data.train_max_samples"] = train.data.max_train_rows
    if train.data.max_eval_rows is not None:
        out["data.val_max_samples"] = train.data.max_eval_rows
    out["data.max_prompt_length"] = rollout.max_prompt_tokens
    out["data.max_response_length"] = rollout.max_new_tokens
    out["data.filter_overlong_prompts"] = True
    out["data.truncation"] = "error"
    if rollout.enable_thinking is not None:
        plus["data.apply_chat_template_kwargs.enable_thinking"] = rollout.enable_thinking
    # V1 submits prompts in gen_batch_size units that must divide the step's batch; GoLongRL's
    # 512-prompt generation batch becomes ceil(512 / 128) = 4 batches in flight.
    out["data.train_batch_size"] = batch.prompts_per_step
    out["data.gen_batch_size"] = batch.prompts_per_step

    # model
    out["actor_rollout_ref.model.path"] = train.model.name_or_path
    if train.model.tokenizer is not None:
        out["actor_rollout_ref.model.tokenizer_path"] = train.model.tokenizer
    out["actor_rollout_ref.model.enable_gradient_checkpointing"] = verl.recompute or train.model.gradient_checkpointing

    # algorithm: estimator (golongrl's, through the plugin) and its parameters
    out["algorithm.adv_estimator"] = verl_estimator_name(algo.estimator.name)
    for key, value in algo.estimator.params().items():
        plus[f"algorithm.{CONFIG_KEY}.estimator_params.{key}"] = list(value) if isinstance(value, tuple) else value
    out["algorithm.use_kl_in_reward"] = False
    out["algorithm.filter_groups.enable"] = algo.dynamic_sampling.enabled
    if algo.dynamic_sampling.enabled:
        out["algorithm.filter_groups.metric"] = "reward"
        out["algorithm.filter_groups.max_inflight_gen_batches"] = max(
            1, math.ceil(batch.generation_prompts / batch.prompts_per_step)
        )
    for key, value in _rollout_correction(train).items():
        out[f"algorithm.rollout_correction.{key}"] = value

    # policy loss: vanilla PPO clip with clip-higher and dual-clip
    out[f"{actor}.policy_loss.loss_mode"] = "vanilla"
    out[f"{actor}.clip_ratio_low"] = algo.clip_low
    out[f"{actor}.clip_ratio_high"] = algo.clip_high
    # verl always applies dual-clip; a bound no ratio reaches switches it off
    out[f"{actor}.clip_ratio_c"] = algo.dual_clip_c if algo.dual_clip_c is not None else 1e9
    out[f"{actor}.loss_agg_mode"] = algo.loss_agg
    out[f"{actor}.ppo_epochs"] = algo.ppo_epochs
    out[f"{actor}.entropy_coeff"] = algo.entropy_coef
    out[f"{actor}.use_kl_loss"] = algo.kl.enabled
    out[f"{actor}.kl_loss_coef"] = algo.kl.coef
    out[f"{actor}.kl_loss_type"] = algo.kl.type
    out[f"{actor}.data_loader_seed"] = train.training.seed

    # batches (verl counts mini-batches in prompts and micro-batches in sequences per GPU)
    out[f"{actor}.ppo_mini_batch_size"] = batch.mini_batch_prompts
    out[f"{actor}.ppo_micro_batch_size_per_gpu"] = batch.micro_batch_size
    out[f"{roll}.log_prob_micro_batch_size_per_gpu"] = batch.micro_batch_size
    out["actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu"] = batch.micro_batch_size
    out[f"{actor}.use_dynamic_bsz"] = verl.use_dynamic_bsz
    out[f"{actor}.ppo_max_token_len_per_gpu"] = verl.max_token_len_per_gpu or seq_len

    # optimiser
    out[f"{actor}.optim.lr"] = optim.lr
    out[f"{actor}.optim.lr_warmup_steps"] = optim.warmup_steps
    out[f"{actor}.optim.weight_decay"] = optim.weight_decay
    out[f"{actor}.optim.betas"] = list(optim.betas)
    # verl always clips; an unreachable norm switches clipping off
    out[f"{actor}.optim.clip_grad"] = optim.grad_clip if optim.grad_clip is not None else 1e9
    if megatron:
        out[f"{actor}.optim.lr_decay_style"] = optim.schedule
    else:
        out[f"{actor}.optim.lr_scheduler_type"] = optim.schedule

    # training backend and parallelism
    p = verl.parallel
    if megatron:
        mg = f"{actor}.megatron"
        out[f"{mg}.tensor_model_parallel_size"] = p.tensor
        out[f"{mg}.pipeline_model_parallel_size"] = p.pipeline
        out[f"{mg}.context_parallel_size"] = p.context
        out[f"{mg}.expert_model_parallel_size"] = p.expert
        out[f"{mg}.expert_tensor_parallel_size"] = p.expert_tensor
        out[f"{mg}.param_offload"] = verl.param_offload
        out[f"{mg}.optimizer_offload"] = verl.optimizer_offload
        if verl.recompute:
            tc = f"{mg}.override_transformer_config"
            out[f"{tc}.recompute_granularity"] = "full"
            out[f"{tc}.recompute_method"] = "uniform"
            out[f"{tc}.recompute_num_layers"] = 1
        if p.expert > 1:
            plus[f"{mg}.override_transformer_config.moe_router_dtype"] = "fp32"
    else:
        out[f"{actor}.fsdp_config.param_offload"] = verl.param_offload
        out[f"{actor}.fsdp_config.optimizer_offload"] = verl.optimizer_offload
        out[f"{actor}.ulysses_sequence_parallel_size"] = p.ulysses

    # rollout server and sampling
    rs = verl.rollout
    out[f"{roll}.name"] = rs.name
    out[f"{roll}.mode"] = "async"
    out[f"{roll}.n"] = rollout.n
    out[f"{roll}.temperature"] = rollout.temperature
    out[f"{roll}.top_p"] = rollout.top_p
    out[f"{roll}.top_k"] = rollout.top_k
    out[f"{roll}.calculate_log_probs"] = True
    out[f"{roll}.tensor_model_parallel_size"] = rs.tensor_parallel
    out[f"{roll}.gpu_memory_utilization"] = rs.gpu_memory_utilization
    out[f"{roll}.max_model_len"] = seq_len
    out[f"{roll}.max_num_seqs"] = rs.max_num_seqs
    out[f"{roll}.max_num_batched_tokens"] = rs.max_num_batched_tokens
    out[f"{roll}.enable_chunked_prefill"] = True
    out[f"{roll}.enable_prefix_caching"] = True
    out[f"{roll}.agent.num_workers"] = rs.agent_workers
    for key, value in rs.engine_kwargs.items():
        plus[f"{roll}.engine_kwargs.{rs.name}.{key}"] = value
    out[f"{roll}.val_kwargs.temperature"] = train.evaluation.temperature
    out[f"{roll}.val_kwargs.top_p"] = train.evaluation.top_p
    out[f"{roll}.val_kwargs.n"] = train.evaluation.n
    out[f"{roll}.val_kwargs.do_sample"] = train.evaluation.temperature > 0

    # rewards: golongrl's library, selected mode, through the batched manager or per sample
    out["reward.num_workers"] = verl.reward_workers
    if verl.reward_manager == "batched":
        out["reward.reward_manager.source"] = "importlib"
        out["reward.reward_manager.name"] = REWARD_MANAGER_CLASS
        out["reward.reward_manager.module.path"] = REWARD_MANAGER_PATH
        plus["reward.custom_reward_function.reward_kwargs.timeout_s"] = train.reward.timeout_s
        if train.reward.workers is not None:
            plus["reward.custom_reward_function.reward_kwargs.workers"] = train.reward.workers
    else:
        out["reward.custom_reward_function.path"] = REWARD_FUNCTION_PATH
        out["reward.custom_reward_function.name"] = "compute_score"
    plus["reward.custom_reward_function.reward_kwargs.mode"] = train.reward.mode

    # run length, checkpoints, logging
    out["trainer.total_epochs"] = train.training.epochs
    out["trainer.total_training_steps"] = train.training.total_steps
    out["trainer.save_freq"] = train.checkpoint.every_steps or -1
    out["trainer.max_actor_ckpt_to_keep"] = train.checkpoint.keep_last
    out["trainer.resume_mode"] = "auto" if train.checkpoint.resume else "disable"
    out["trainer.project_name"] = verl.project_name
    out["trainer.experiment_name"] = verl.experiment_name
    if verl.output_dir is not None:
        out["trainer.default_local_dir"] = verl.output_dir
    loggers = ["console"] + (["tensorboard"] if train.logging.tensorboard else []) + (
        ["wandb"] if train.logging.wandb.enabled else []
    )
    out["trainer.logger"] = loggers
    out["trainer.test_freq"] = train.evaluation.every_steps or -1
    out["trainer.val_before_train"] = bool(train.data.eval_files) and train.evaluation.every_steps > 0
    out["trainer.critic_warmup"] = 0

    overrides = [f"{key}={_fmt(value)}" for key, value in out.items()]
    overrides += [f"+{key}={_fmt(value)}" for key, value in plus.items()]
    return overrides + list(verl.extra_overrides)


def build_command(job: VerlJob | TrainConfig) -> list[str]:
    """The full argv: this interpreter running :mod:`golongrl.engines.verl.main` with the overrides."""
    return [sys.executable, "-m", ENTRY_MODULE, *build_overrides(job)]


def compose(overrides: list[str]) -> Any:
    """verl's own Hydra composition of ``ppo_trainer`` with ``overrides`` (an OmegaConf DictConfig).

    Raises Hydra's error for a key verl's schema does not have, so this is the check that a
    preset means something to verl.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from golongrl.engines.verl.main import VERL_CONFIG_DIR

    with initialize_config_dir(config_dir=VERL_CONFIG_DIR, version_base=None):
        return hydra_compose(config_name="ppo_trainer", overrides=overrides)


def dry_run(job: VerlJob | TrainConfig) -> str:
    """The full command line and the resolved verl config it composes to; starts nothing."""
    from omegaconf import OmegaConf

    command = build_command(job)
    config = compose(command[3:])
    resolved = OmegaConf.to_yaml(config, resolve=True, sort_keys=True)
    return "\n".join([
        "# golongrl train --engine verl: command",
        " \\\n    ".join([shlex.join(command[:3])] + [shlex.quote(arg) for arg in command[3:]]),
        "",
        "# resolved verl config (verl/trainer/config/ppo_trainer.yaml + the overrides above)",
        resolved.rstrip(),
        "",
    ])


def launch(job: VerlJob | TrainConfig) -> int:
    """Run the verl job in a child process (inherits stdout/stderr); returns its exit code."""
    return subprocess.run(build_command(job), check=False).returncode
