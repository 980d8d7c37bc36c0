"""``golongrl train --engine trl``: a golongrl config becomes TRL's GRPOConfig, dataset and trainer.

A TRL preset (``configs/trl-*.yaml``) is an ordinary golongrl training config plus a ``trl:``
section for what only TRL needs (vLLM colocation, precision). :func:`grpo_config` maps every
golongrl key TRL can express and :func:`check_expressible` refuses, naming the file and key,
every one it cannot; nothing is silently dropped.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from transformers import TrainerCallback

from golongrl.engines.preset import known_reward_options, read_preset, validate_section
from golongrl.training.config import ConfigError, TrainConfig

#: golongrl loss aggregation -> TRL loss_type (same normalisation of the per-token losses).
LOSS_TYPES = {"token-mean": "dapo", "seq-mean-token-mean": "grpo", "seq-mean-token-sum-norm": "dr_grpo"}


class TrlSection(BaseModel):
    """TRL-only settings of a run (the ``trl:`` section of a preset)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    use_vllm: bool = False
    """Generate with vLLM (``pip install vllm``) instead of transformers' ``generate``."""
    vllm_mode: Literal["colocate", "server"] = "colocate"
    """vLLM in the training process (one GPU) or as ``trl vllm-serve``."""
    vllm_gpu_memory_utilization: float = Field(0.3, gt=0, le=1)
    """Share of the GPU vLLM may take in colocate mode."""
    bf16: bool = False
    """bfloat16 autocast (GPUs); CPUs run float32."""
    use_cpu: bool = False
    """Force the CPU even where an accelerator exists (tests)."""
    reward_options: dict[str, Any] = Field(default_factory=dict)
    """:class:`golongrl.rewards.ScoreOptions` fields (``require_think``...)."""

    @field_validator("reward_options")
    @classmethod
    def _known_reward_options(cls, value: dict[str, Any]) -> dict[str, Any]:
        return known_reward_options(value)


@dataclass(frozen=True)
class TrlJob:
    """A validated TRL run: the golongrl config, its ``trl:`` section and where it came from."""

    train: TrainConfig
    trl: TrlSection
    source: str = "<config>"


def load_job(path: str | Path, overrides: list[str] | None = None) -> TrlJob:
    """Read a TRL preset; ``overrides`` are ``KEY=VALUE`` strings for either part.

    Raises :class:`ConfigError` naming the file and key, also for settings TRL cannot express.
    """
    path = Path(path)
    train, trl_raw = read_preset(path, overrides, "trl")
    base = path.resolve().parent
    local_model = (base / train.model.name_or_path).resolve()
    if train.model.name_or_path.startswith((".", "~")) or local_model.exists():
        train.model.name_or_path = str(local_model)
    section = validate_section(TrlSection, trl_raw, path, "trl")
    job = TrlJob(train=train, trl=section, source=str(path))
    check_expressible(job)
    return job


def check_expressible(job: TrlJob) -> None:
    """Refuse, with file and key, every golongrl setting TRL 1.16.0 cannot run as written."""
    train, algo = job.train, job.train.algorithm
    problems = []
    if algo.dynamic_sampling.enabled:
        problems.append(
            "algorithm.dynamic_sampling: TRL generates a fixed generation batch and splits it into fixed "
            "gradient-accumulation slices, so dropping zero-variance groups and generating replacements is not "
            "possible without rewriting its training loop; set enabled: false (under group baselines such "
            "groups get advantage 0 and no policy gradient, but they still count in the token-mean denominator)")
    elif train.batch.generation_prompts != train.batch.prompts_per_step:
        problems.append("batch.generation_prompts: without dynamic sampling TRL trains on every prompt it generates; "
                        "set it to batch.prompts_per_step")
    if algo.overlong.enabled:
        problems.append("algorithm.overlong: TRL has no soft overlong penalty; disable it")
    if train.training.time_budget_s is not None:
        problems.append("training.time_budget_s: not available in TRL; set training.total_steps")
    if train.logging.sample_every:
        problems.append("logging.sample_every: TRL logs completions itself (log_completions); set it to 0")
    if algo.loss_agg not in LOSS_TYPES:
        problems.append(f"algorithm.loss_agg: {algo.loss_agg!r} has no TRL loss_type; use one of {sorted(LOSS_TYPES)}")
    if algo.kl.enabled and algo.kl.type not in ("k3", "low_var_kl"):
        problems.append("algorithm.kl.type: TRL's KL term is the k3 estimator; use k3")
    if algo.rollout_is.enabled and not job.trl.use_vllm:
        problems.append("algorithm.rollout_is: without vLLM the policy itself samples the rollouts, so there is no "
                        "rollout/training mismatch to correct; disable it or set trl.use_vllm: true")
    if algo.rollout_is.enabled and algo.rollout_is.veto_threshold:
        problems.append("algorithm.rollout_is.veto_threshold: TRL's vLLM correction truncates ratios but has no "
                        "sequence veto; set it to null")
    if train.model.freeze_lower_layers:
        problems.append("model.freeze_lower_layers: not available in TRL; use model.lora")
    if train.evaluation.every_steps:
        problems.append("evaluation.every_steps: evaluate the saved checkpoints with `golongrl evaluate`")
    if train.batch.prompts_per_step % train.batch.mini_batch_prompts:
        problems.append("batch.mini_batch_prompts: must divide batch.prompts_per_step")
    if (train.batch.mini_batch_prompts * train.rollout.n) % train.batch.micro_batch_size:
        problems.append("batch.micro_batch_size: must divide batch.mini_batch_prompts x rollout.n")
    if train.reward.mode == "hardened" and "thinking" in train.model.name_or_path.lower() and (
            "require_think" not in job.trl.reward_options):
        problems.append("trl.reward_options.require_think: a thinking model scored in hardened mode must set it")
    if problems:
        raise ConfigError("\n".join(f"{job.source}: {p}" for p in problems))


def grpo_config(job: TrlJob, output_dir: str | Path) -> Any:
    """TRL's ``GRPOConfig`` for ``job``, writing checkpoints and TensorBoard events under ``output_dir``.

    Batches: one optimizer step consumes ``mini_batch_prompts x n`` completions
    (``micro_batch_size`` per forward pass, the rest gradient accumulation); one generation
    batch holds ``prompts_per_step x n`` completions (``steps_per_generation`` slices).
    """
    from trl import GRPOConfig

    train, algo, batch, optim = job.train, job.train.algorithm, job.train.batch, job.train.optimizer
    accumulation = batch.mini_batch_prompts * train.rollout.n // batch.micro_batch_size
    report_to = (["tensorboard"] if train.logging.tensorboard else []) + (["wandb"] if train.logging.wandb.enabled else [])
    kwargs: dict[str, Any] = {
        "output_dir": str(output_dir),
        "seed": train.training.seed,
        "data_seed": train.training.seed,
        "max_steps": train.training.total_steps or -1,
        "num_train_epochs": train.training.epochs,
        "per_device_train_batch_size": batch.micro_batch_size,
        "gradient_accumulation_steps": accumulation,
        "steps_per_generation": accumulation * (batch.prompts_per_step // batch.mini_batch_prompts),
        "num_generations": train.rollout.n,
        "max_completion_length": train.rollout.max_new_tokens,
        "temperature": train.rollout.temperature,
        "top_p": train.rollout.top_p,
        "top_k": train.rollout.top_k if train.rollout.top_k > 0 else 0,
        "chat_template_kwargs": ({"enable_thinking": train.rollout.enable_thinking}
                                 if train.rollout.enable_thinking is not None else None),
        "shuffle_dataset": train.data.shuffle,
        "loss_type": LOSS_TYPES.get(algo.loss_agg, "dapo"),
        "epsilon": algo.clip_low,
        "epsilon_high": algo.clip_high,
        "delta": algo.dual_clip_c,  # TRL's two-sided clip caps the ratio at delta: dual-clip for A < 0
        "num_iterations": algo.ppo_epochs,
        "beta": algo.kl.coef if algo.kl.enabled else 0.0,
        "entropy_coef": algo.entropy_coef,
        "scale_rewards": "none",  # the advantages are golongrl's; TRL's own scaling is replaced anyway
        "learning_rate": optim.lr,
        "warmup_steps": optim.warmup_steps,
        "lr_scheduler_type": "constant_with_warmup" if optim.schedule == "constant" else "cosine",
        "weight_decay": optim.weight_decay,
        "max_grad_norm": optim.grad_clip if optim.grad_clip is not None else math.inf,
        "adam_beta1": optim.betas[0],
        "adam_beta2": optim.betas[1],
        "adam_epsilon": optim.eps,
        "gradient_checkpointing": train.model.gradient_checkpointing,
        "save_strategy": "steps" if train.checkpoint.every_steps else "no",
        "save_steps": train.checkpoint.every_steps or 500,
        "save_total_limit": train.checkpoint.keep_last,
        "logging_steps": 1,
        "logging_dir": str(Path(output_dir) / "tensorboard"),
        "report_to": report_to or "none",
        "bf16": job.trl.bf16,
        "use_cpu": job.trl.use_cpu,
        "use_vllm": job.trl.use_vllm,
        "vllm_mode": job.trl.vllm_mode,
        "vllm_gpu_memory_utilization": job.trl.vllm_gpu_memory_utilization,
        "vllm_importance_sampling_correction": algo.rollout_is.enabled,
        "dataloader_num_workers": 0,
        "remove_unused_columns": False,
        "disable_tqdm": not train.logging.progress,
    }
    if algo.rollout_is.enabled:
        # token-level truncated IS, ratio clipped to [low, high] exactly as golongrl specifies
        kwargs["vllm_importance_sampling_mode"] = "token_truncate"
        kwargs["vllm_importance_sampling_clip_min"] = float(algo.rollout_is.bounds[0])
        kwargs["vllm_importance_sampling_clip_max"] = float(algo.rollout_is.bounds[1])
    return GRPOConfig(**kwargs)


def trl_rows(job: TrlJob, tokenizer: Any) -> tuple[Any, dict[str, int]]:
    """The training rows as a ``datasets.Dataset`` of TRL columns, and over-long prompts dropped per task.

    Every row is validated first (file, row and field on error). Columns: ``prompt`` (the chat),
    ``golongrl_row`` (data_source, reward_model, extra_info as JSON), ``golongrl_label`` (the
    estimator's label, ``algorithm.task_key``) and ``golongrl_task``.
    """
    from datasets import Dataset

    from golongrl.data.schema import DataError, record_task
    from golongrl.inference.transformers_backend import encode_prompt
    from golongrl.training.trainer import load_rows, task_label

    train = job.train
    if not train.data.train_files:
        raise ConfigError(f"{job.source}: data.train_files is empty")
    try:
        records = load_rows(train.data.train_files)
    except (DataError, OSError) as err:
        raise ConfigError(f"{job.source}: data: {err}") from None
    columns: dict[str, list[Any]] = {"prompt": [], "golongrl_row": [], "golongrl_label": [], "golongrl_task": []}
    dropped: dict[str, int] = {}
    for _, _, record in records:
        task = record_task(record)
        if len(encode_prompt(tokenizer, record["prompt"], train.rollout.enable_thinking)) > train.rollout.max_prompt_tokens:
            dropped[task] = dropped.get(task, 0) + 1
            continue
        columns["prompt"].append([{"role": m["role"], "content": m["content"]} for m in record["prompt"]])
        columns["golongrl_row"].append(json.dumps({key: record.get(key) for key in ("data_source", "reward_model",
                                                                                     "extra_info")}))
        columns["golongrl_label"].append(task_label(record, train.algorithm.task_key))
        columns["golongrl_task"].append(task)
    if train.data.max_train_rows is not None:
        columns = {key: values[: train.data.max_train_rows] for key, values in columns.items()}
    if not columns["prompt"]:
        raise ConfigError(f"{job.source}: rollout.max_prompt_tokens: every training prompt is longer; raise it")
    return Dataset.from_dict(columns), dropped


def lora_config(job: TrlJob) -> Any:
    """peft's LoraConfig for ``model.lora`` (None when off)."""
    lora = job.train.model.lora
    if not lora.enabled:
        return None
    from peft import LoraConfig

    return LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                      target_modules=list(lora.target_modules), task_type="CAUSAL_LM")


class JsonlMetrics(TrainerCallback):
    """Appends each logged step to ``metrics.jsonl`` (``logging.jsonl``)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if logs and state.is_world_process_zero:
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps({"step": state.global_step, **logs}, default=float) + "\n")


def build_trainer(job: TrlJob, output_dir: str | Path) -> Any:
    """Model, tokenizer, dataset, reward and :class:`GoLongRLGRPOTrainer`, ready for ``train()``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from golongrl.engines.trl.trainer import GoLongRLGRPOTrainer, GoLongRLReward

    train = job.train
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    if train.training.num_threads is not None:
        torch.set_num_threads(train.training.num_threads)
    tokenizer = AutoTokenizer.from_pretrained(train.model.tokenizer or train.model.name_or_path)
    model = AutoModelForCausalLM.from_pretrained(train.model.name_or_path, dtype=getattr(torch, train.model.dtype))
    dataset, _ = trl_rows(job, tokenizer)
    reward = GoLongRLReward(mode=train.reward.mode, timeout_s=train.reward.timeout_s, workers=train.reward.workers,
                            **job.trl.reward_options)
    callbacks = []
    if train.logging.jsonl:
        callbacks.append(JsonlMetrics(output_dir / "metrics.jsonl"))
    return GoLongRLGRPOTrainer(
        model=model, processing_class=tokenizer, reward_funcs=[reward], args=grpo_config(job, output_dir),
        train_dataset=dataset, peft_config=lora_config(job), callbacks=callbacks,
        estimator=train.algorithm.estimator.name, estimator_params=train.algorithm.estimator.params(),
    )


def launch(job: TrlJob, output_dir: str | Path) -> Any:
    """Train; resumes from the newest checkpoint in ``output_dir`` when ``checkpoint.resume``."""
    trainer = build_trainer(job, output_dir)
    resume = job.train.checkpoint.resume and any(Path(output_dir).glob("checkpoint-*"))
    result = trainer.train(resume_from_checkpoint=True if resume else None)
    trainer.save_model(str(Path(output_dir) / "final"))
    return result
