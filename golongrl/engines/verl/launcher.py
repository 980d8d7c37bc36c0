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

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from golongrl.engines.preset import known_reward_options, read_preset, validate_section
from golongrl.engines.verl.plugin import CONFIG_KEY, verl_estimator_name
from golongrl.training.config import ConfigError, TrainConfig, resolve_path

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
    """Chunked-prefill chunk size: a 160K prompt is prefilled in pieces of this many tokens
    (vLLM: ``max_num_batched_tokens``; SGLang: ``engine_kwargs.sglang.chunked_prefill_size``,
    because verl 0.9.1 hands SGLang none of its own prefill keys)."""
    prefix_caching: bool = True
    """Reuse the KV cache of shared prompt prefixes (the n rollouts of a prompt): vLLM's
    ``enable_prefix_caching``, SGLang's radix cache (``disable_radix_cache``)."""
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
    """verl reward-loop workers (each holds its own scoring process pool of ``reward.workers``
    processes): keep ``reward_workers * reward.workers`` within the spare cores of a node."""
    reward_options: dict[str, Any] = Field(default_factory=dict)
    """:class:`golongrl.rewards.ScoreOptions` fields for every reward call (``require_think``,
    ``max_response_chars``...). A thinking model scored in hardened mode must set
    ``require_think`` (true: a response cut before ``</think>`` scores 0)."""
    max_reward_failure_fraction: float = Field(0.05, ge=0, le=1)
    """Stop the run when more than this share of a step's rollouts could not be scored
    (reasons ``timeout``, ``error``, ``gold``); ``reward_failures/*`` step metrics count them."""
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

    @field_validator("reward_options")
    @classmethod
    def _known_reward_options(cls, value: dict[str, Any]) -> dict[str, Any]:
        return known_reward_options(value)

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
    train, verl_raw = read_preset(path, overrides, "verl")
    base = path.resolve().parent
    section = validate_section(VerlSection, verl_raw, path, "verl")
    if section.output_dir is not None:
        section = section.model_copy(update={"output_dir": resolve_path(section.output_dir, base)})
    train.model.name_or_path = resolve_model_path(train.model.name_or_path, base, "model.name_or_path", path)
    if train.model.tokenizer is not None:
        train.model.tokenizer = resolve_model_path(train.model.tokenizer, base, "model.tokenizer", path)
    job = VerlJob(train=train, verl=section, source=str(path))
    _check_expressible(job)
    return job


def resolve_model_path(spec: str, base: Path, key: str, source: Path) -> str:
    """A model folder as every node must see it: an absolute path.

    A relative path counts from the config file's folder (like the data paths) when it starts
    with ``./``/``../``/``~`` or names a folder there; ``org/name`` with no such folder stays a
    Hugging Face Hub id (verl downloads it on each node). Anything else is refused: a relative
    path reaching verl unresolved would be looked up in each Ray worker's own working folder.
    """
    path = Path(spec).expanduser()
    if path.is_absolute():
        return str(path)
    local = (base / path).resolve()
    if spec.startswith((".", "~")) or local.exists():
        return str(local)
    if spec.count("/") == 1 and all(spec.split("/")):
        return spec
    raise ConfigError(f"{source}: {key}: {spec!r} is neither a folder next to the config ({local} does not exist) "
                      "nor a Hugging Face Hub id (org/name); give an absolute path on the shared filesystem")


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
    elif train.batch.generation_prompts != train.batch.prompts_per_step:
        problems.append("batch.generation_prompts: without dynamic sampling verl trains on every prompt it generates "
                        "(golongrl would discard the surplus); set it to batch.prompts_per_step")
    if algo.overlong.enabled:
        problems.append("algorithm.overlong: verl 0.9.1 applies the DAPO overlong penalty only in its dapo reward "
                        "manager, which golongrl's rewards do not use; disable it")
    if train.model.lora.enabled:
        problems.append("model.lora: LoRA through verl is not wired by golongrl; train full weights or use "
                        "verl.extra_overrides with verl's lora keys")
    if train.model.freeze_lower_layers:
        problems.append("model.freeze_lower_layers: not available in verl")
    if algo.task_key != "task":
        problems.append("algorithm.task_key: the verl plugin groups rows by golongrl's task type (the reward "
                        "library's own dispatch); set it to task")
    if train.optimizer.eps != 1e-8:
        problems.append("optimizer.eps: verl 0.9.1 fixes Adam epsilon at 1e-8")
    thinking = "thinking" in train.model.name_or_path.lower() or bool(train.rollout.enable_thinking)
    if train.reward.mode == "hardened" and thinking and "require_think" not in verl.reward_options:
        problems.append("verl.reward_options.require_think: a thinking model scored in hardened mode must set it "
                        "(true: a response cut before </think> scores 0; false: it is scored on its text)")
    if problems:
        raise ConfigError("\n".join(f"{job.source}: {p}" for p in problems))


def _prefill_engine_kwargs(rs: RolloutServerConfig) -> dict[str, Any]:
    """Chunked prefill and prefix caching in each engine's own terms.

    vLLM reads verl's ``max_num_batched_tokens``/``enable_chunked_prefill``/
    ``enable_prefix_caching`` (vllm_async_server.py). verl 0.9.1's SGLang server builds its
    arguments from a fixed list plus ``engine_kwargs.sglang`` (async_sglang_server.py) and
    ignores those three, so they become SGLang's ``chunked_prefill_size`` and
    ``disable_radix_cache`` (SGLang 0.5.12 ServerArgs names).
    """
    if rs.name == "vllm":
        return {"max_num_batched_tokens": rs.max_num_batched_tokens, "enable_chunked_prefill": True,
                "enable_prefix_caching": rs.prefix_caching}
    return {"chunked_prefill_size": rs.max_num_batched_tokens, "disable_radix_cache": not rs.prefix_caching}


def count_rows(files: list[str]) -> int:
    """Rows in parquet (from the footer, no data read) or JSONL files (non-blank lines)."""
    total = 0
    for name in files:
        if name.endswith(".parquet"):
            import pyarrow.parquet as pq

            total += pq.ParquetFile(name).metadata.num_rows
        else:
            with open(name, "rb") as handle:
                total += sum(1 for line in handle if line.strip())
    return total


def planned_steps(job: VerlJob) -> int:
    """Training steps of the run, set explicitly as ``trainer.total_training_steps``.

    ``training.total_steps`` when given. Otherwise the GoLongRL recipe's count: every step
    consumes at least one generation batch of ``batch.generation_prompts`` prompts (drop_last),
    so ``epochs`` passes give at most ``epochs * (rows // generation_prompts)`` steps (22,965 rows
    / 512 -> 44 per epoch, 440 in 10 epochs). verl would count ``rows // train_batch_size``
    per epoch instead (1,790 for the same run: V1 with dynamic sampling fetches prompts one by
    one and the legacy trainer trains on every generated batch). Rows are counted in the train
    files (capped by ``data.max_train_rows``), before verl's overlong-prompt filter.

    Raises ConfigError naming ``training.total_steps`` when the files cannot be counted here.
    """
    train = job.train
    if train.training.total_steps is not None:
        return train.training.total_steps
    try:
        rows = count_rows(train.data.train_files)
    except OSError as err:
        raise ConfigError(f"{job.source}: training.total_steps: the run length comes from the row count of "
                          f"data.train_files, which cannot be read here ({err}); set training.total_steps") from None
    if train.data.max_train_rows is not None:
        rows = min(rows, train.data.max_train_rows)
    per_step = train.batch.prompts_per_step
    if train.algorithm.dynamic_sampling.enabled:
        per_step = max(per_step, train.batch.generation_prompts)
    steps = train.training.epochs * (rows // per_step)  # golongrl's own trainer: epochs * rows // generation_prompts
    if steps < 1:
        raise ConfigError(f"{job.source}: training.epochs: {rows} training rows make no full batch of {per_step} "
                          "prompts; add rows or set training.total_steps")
    return steps


def validate_rows(job: VerlJob) -> int:
    """Read every train and eval row and check it (golongrl.data.schema.validate_record) before
    any GPU is touched; returns the number of training rows.

    Raises ConfigError with the file, row and field of the first bad row.
    """
    from golongrl.data.io import read_valid_records
    from golongrl.data.schema import DataError

    rows = 0
    for files, counted in ((job.train.data.train_files, True), (job.train.data.eval_files, False)):
        for name in files:
            try:
                for _ in read_valid_records(name):
                    rows += counted
            except (DataError, OSError) as err:
                raise ConfigError(f"{job.source}: data: {err}") from None
    return rows


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
    # verl 0.9.1 drops longer prompts at load (rl_dataset.maybe_filter_out_long_prompts); its
    # data.truncation key is read but never used, and a prompt the filter misses is
    # left-truncated by the agent loop with a warning, so golongrl does not set it.
    out["data.filter_overlong_prompts"] = True
    if rollout.enable_thinking is not None:
        plus["data.apply_chat_template_kwargs.enable_thinking"] = rollout.enable_thinking
    # With dynamic sampling V1 forces data.gen_batch_size=1 and refills prompt by prompt;
    # GoLongRL's 512-prompt generation batch becomes ceil(512 / 128) = 4 batches in flight,
    # and the run length is fixed by trainer.total_training_steps (see planned_steps).
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
    out[f"{roll}.max_num_seqs"] = rs.max_num_seqs  # SGLang: max_running_requests
    out[f"{roll}.agent.num_workers"] = rs.agent_workers
    engine_kwargs = _prefill_engine_kwargs(rs)
    clash = sorted(set(engine_kwargs) & set(rs.engine_kwargs))
    if clash:
        raise ConfigError(f"{job.source}: verl.rollout.engine_kwargs.{clash[0]}: set by golongrl from "
                          "verl.rollout.max_num_batched_tokens / prefix_caching; set those instead")
    if rs.name == "vllm":
        for key, value in engine_kwargs.items():
            out[f"{roll}.{key}"] = value
    else:
        for key, value in engine_kwargs.items():
            plus[f"{roll}.engine_kwargs.sglang.{key}"] = value
    for key, value in rs.engine_kwargs.items():
        plus[f"{roll}.engine_kwargs.{rs.name}.{key}"] = value
    out[f"{roll}.val_kwargs.temperature"] = train.evaluation.temperature
    out[f"{roll}.val_kwargs.top_p"] = train.evaluation.top_p
    out[f"{roll}.val_kwargs.n"] = train.evaluation.n
    out[f"{roll}.val_kwargs.do_sample"] = train.evaluation.temperature > 0

    # rewards: golongrl's library, selected mode, through the batched manager or per sample
    out["reward.num_workers"] = verl.reward_workers
    reward_kwargs = "reward.custom_reward_function.reward_kwargs"
    if verl.reward_manager == "batched":
        out["reward.reward_manager.source"] = "importlib"
        out["reward.reward_manager.name"] = REWARD_MANAGER_CLASS
        out["reward.reward_manager.module.path"] = REWARD_MANAGER_PATH
        if train.reward.workers is not None:
            plus[f"{reward_kwargs}.workers"] = train.reward.workers
    else:
        out["reward.custom_reward_function.path"] = REWARD_FUNCTION_PATH
        out["reward.custom_reward_function.name"] = "compute_score"
    # both routes: the time cap reaches score_batch and compute_score alike
    plus[f"{reward_kwargs}.timeout_s"] = train.reward.timeout_s
    plus[f"{reward_kwargs}.mode"] = train.reward.mode
    for key, value in verl.reward_options.items():
        plus[f"{reward_kwargs}.{key}"] = value
    plus[f"algorithm.{CONFIG_KEY}.max_reward_failure_fraction"] = verl.max_reward_failure_fraction

    # run length, checkpoints, logging
    out["trainer.total_epochs"] = train.training.epochs
    out["trainer.total_training_steps"] = planned_steps(job)
    out["trainer.save_freq"] = train.checkpoint.every_steps or -1
    out["trainer.max_actor_ckpt_to_keep"] = train.checkpoint.keep_last
    out["trainer.resume_mode"] = "auto" if train.checkpoint.resume else "disable"
    out["trainer.project_name"] = verl.project_name
    out["trainer.experiment_name"] = verl.experiment_name
    if verl.output_dir is not None:
        out["trainer.default_local_dir"] = verl.output_dir
    loggers = ["console"] + (["tensorboard"] if train.logging.tensorboard else []) + (
        ["file"] if train.logging.jsonl else []) + (["wandb"] if train.logging.wandb.enabled else [])
    out["trainer.logger"] = loggers
    # verl's TensorBoard and file loggers take their folders from the TaskRunner's environment
    env = "ray_kwargs.ray_init.runtime_env.env_vars"
    if verl.output_dir is not None:
        if train.logging.tensorboard:
            plus[f"{env}.TENSORBOARD_DIR"] = str(Path(verl.output_dir) / "tensorboard")
        if train.logging.jsonl:
            plus[f"{env}.VERL_FILE_LOGGER_PATH"] = str(Path(verl.output_dir) / "metrics.jsonl")
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
    """Validate every data row, then run the verl job in a child process (inherits
    stdout/stderr); returns its exit code."""
    if isinstance(job, TrainConfig):
        job = VerlJob(train=job, verl=VerlSection())
    validate_rows(job)
    return subprocess.run(build_command(job), check=False).returncode
