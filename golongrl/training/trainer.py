"""The single-machine GoLongRL trainer, one training step readable top to bottom.

One step (spec §6.2, DAPO dynamic sampling) is :meth:`Trainer.train_step`:

1. draw ``batch.generation_prompts`` prompts (chat template applied; prompts longer than
   ``rollout.max_prompt_tokens`` were dropped and counted when the data was loaded);
2. sample ``rollout.n`` responses per prompt with the model's own batched generation (KV cache),
   recording each sampled token's log-probability under the sampling policy;
3. score every response with the reward library (process pool, per-sample time cap; a timeout
   is a zero reward with a logged reason);
4. dynamic sampling: keep only prompt groups whose rewards differ, and generate more batches
   until ``batch.prompts_per_step`` groups are kept (surplus groups are discarded);
5. advantages with ``golongrl.advantages`` from the reward, the prompt id and the task label of
   each sample (TMN-Reweight by default);
6. PPO update with ``golongrl.losses.policy_loss`` (clip-higher, dual-clip, token-mean,
   truncated rollout importance sampling) over mini-batches with gradient accumulation;
7. log per-task metrics and loss diagnostics; checkpoint every ``checkpoint.every_steps``.

Everything numeric (estimators, loss) lives in the engine-free modules ``golongrl.advantages``
and ``golongrl.losses``; this file only moves tensors between them, so it reads like CleanRL.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
import yaml

from golongrl.advantages import BackfillController, compute_advantages, task_metrics
from golongrl.data.io import atomic_output, default_dir_mode, read_valid_records, remove_orphans
from golongrl.data.schema import record_task
from golongrl.inference.transformers_backend import encode_prompt, eos_token_ids, sample_responses
from golongrl.losses import policy_loss
from golongrl.rewards import ScoreRequest, score_batch
from golongrl.tasks import reference_task_key
from golongrl.training.checkpoint import (TrainingState, capture_rng, check_resume_config, latest_checkpoint,
                                          load_checkpoint, restore_rng, save_checkpoint)
from golongrl.training.config import RolloutConfig, TrainConfig, deep_merge, resume_settings
from golongrl.training.tracking import MetricsLogger

# ============================================================================================
# Data: validated rows -> tokenised prompts, and a resumable shuffled stream over them
# ============================================================================================


@dataclass
class Prompt:
    """One training prompt. ``uid`` is its position in the loaded set (the group id)."""

    uid: int
    record: dict[str, Any]
    input_ids: list[int]
    task: str
    """Canonical task type (one of the nine), used for per-task metrics."""
    label: str
    """Task label the advantage estimator normalises over (see ``algorithm.task_key``)."""


def task_label(record: dict[str, Any], task_key: str) -> str:
    """The advantage-normalisation label of a row: its canonical task, or the reference's key
    (reward_mode mapped to the LongBench-Pro metric name, spec §5)."""
    if task_key == "reward_mode":
        return reference_task_key(record["data_source"], record.get("extra_info"))
    return record_task(record)


def load_rows(files: Sequence[str]) -> list[tuple[str, int, dict[str, Any]]]:
    """Read and validate every row of every file before any work starts.

    A malformed row raises ``golongrl.data.schema.DataError`` naming file, row and field.
    """
    rows = []
    for path in files:
        rows.extend((path, number, rec) for number, rec in read_valid_records(path))
    return rows


def max_token_bytes(tokenizer: Any) -> int:
    """UTF-8 length of the longest vocabulary entry: an upper bound on the bytes of text one token
    covers (byte-level and SentencePiece spellings only over-count it)."""
    return max(1, max((len(token.encode("utf-8")) for token in tokenizer.get_vocab()), default=1))


def load_prompts(files: Sequence[str], tokenizer: Any, cfg: TrainConfig) -> tuple[list[Prompt], dict[str, int]]:
    """Validated, tokenised training prompts and the count of over-long prompts dropped per task.

    Over-long prompts are dropped whole: truncating a long-context prompt in the middle would
    cut the evidence the question depends on and train on a corrupted task.
    """
    if not files:
        raise ValueError("data.train_files is empty: give at least one JSONL/parquet file of training rows")
    prompts: list[Prompt] = []
    dropped: Counter[str] = Counter()
    rows = load_rows(files)
    if not rows:
        raise ValueError(f"no training rows in {', '.join(files)}: the file(s) are empty")
    token_bytes = max_token_bytes(tokenizer)
    for _, _, rec in rows:
        task = record_task(rec)
        # No token is longer than token_bytes, so a prompt with more bytes than that many tokens
        # can hold is over-long for sure: drop it without tokenising megabytes of text.
        size = sum(len(str(m.get("content", "")).encode("utf-8")) for m in rec["prompt"])
        if size // token_bytes > cfg.rollout.max_prompt_tokens:
            dropped[task] += 1
            continue
        ids = encode_prompt(tokenizer, rec["prompt"], cfg.rollout.enable_thinking)
        if len(ids) > cfg.rollout.max_prompt_tokens:
            dropped[task] += 1
            continue
        prompts.append(Prompt(len(prompts), rec, ids, task, task_label(rec, cfg.algorithm.task_key)))
        if cfg.data.max_train_rows and len(prompts) >= cfg.data.max_train_rows:
            break
    if not prompts:
        raise ValueError(f"no training prompt fits rollout.max_prompt_tokens={cfg.rollout.max_prompt_tokens} "
                         f"(dropped per task: {dict(dropped)})")
    return prompts, dict(dropped)


def build_dataset_files(cfg: TrainConfig, out_dir: Path, *, progress: bool) -> tuple[list[str], list[str]]:
    """Build (or resume building) the dataset ``data.build_config`` describes in ``out_dir``;
    returns its (train, eval) files.

    ``data.build_config`` names a ``golongrl data build`` YAML (``default``: the pipeline's own
    defaults); ``data.build_overrides`` are merged on top and validated by the pipeline's config.
    """
    from golongrl.data.config import DataConfig, load_config
    from golongrl.data.pipeline import build_dataset

    base = load_config(None if cfg.data.build_config == "default" else cfg.data.build_config)
    build_cfg = DataConfig.model_validate(deep_merge(base.model_dump(), cfg.data.build_overrides))
    build_dataset(build_cfg, out_dir, progress=progress)
    suffix = "jsonl" if "jsonl" in build_cfg.formats else "parquet"
    return [str(out_dir / f"train.{suffix}")], [str(out_dir / f"eval.{suffix}")]


class PromptStream:
    """Endless epoch-by-epoch shuffled stream of prompts; its position is part of a checkpoint.

    The permutation of epoch ``e`` depends only on ``(seed, e)``, so ``(epoch, cursor)`` is the
    whole state: a resumed run draws exactly the prompts the killed run would have drawn.
    """

    def __init__(self, prompts: Sequence[Prompt], *, seed: int, shuffle: bool) -> None:
        self.prompts, self.seed, self.shuffle = list(prompts), seed, shuffle
        self.epoch, self.cursor = 0, 0
        self._order = self._permutation(0)

    def _permutation(self, epoch: int) -> np.ndarray:
        n = len(self.prompts)
        return np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle else np.arange(n)

    def take(self, k: int) -> list[Prompt]:
        out = []
        while len(out) < k:
            if self.cursor == len(self._order):
                self.epoch, self.cursor = self.epoch + 1, 0
                self._order = self._permutation(self.epoch)
            out.append(self.prompts[int(self._order[self.cursor])])
            self.cursor += 1
        return out

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "cursor": self.cursor}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.cursor = int(state["epoch"]), int(state["cursor"])
        self._order = self._permutation(self.epoch)


# ============================================================================================
# Rollouts: batched sampling with log-probs
# ============================================================================================


@dataclass
class Rollouts:
    """Flat per-response lists (length N = groups x n); responses of one prompt are adjacent."""

    prompts: list[Prompt] = field(default_factory=list)
    group_ids: list[int] = field(default_factory=list)
    """One id per drawn prompt: a prompt drawn twice in a step (small data) forms two groups."""
    response_ids: list[list[int]] = field(default_factory=list)
    rollout_logprobs: list[torch.Tensor] = field(default_factory=list)
    truncated: list[bool] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    reasons: list[str | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.response_ids)

    def select(self, index: Sequence[int]) -> Rollouts:
        return Rollouts(*([getattr(self, f)[i] for i in index] for f in self.__dataclass_fields__))

    def extend(self, other: Rollouts) -> None:
        for f in self.__dataclass_fields__:
            getattr(self, f).extend(getattr(other, f))


def left_pad(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded ids and attention mask, [B, max_len] (decoder-only models generate on the right)."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        if s:
            ids[i, width - len(s):] = torch.tensor(s)
            mask[i, width - len(s):] = 1
    return ids, mask


@torch.no_grad()
def generate_rollouts(model: torch.nn.Module, tokenizer: Any, prompts: Sequence[Prompt], cfg: RolloutConfig,
                      *, micro_batch: int, first_group: int = 0) -> Rollouts:
    """``cfg.n`` sampled responses per prompt, with the log-prob of each sampled token.

    Sampling is :func:`golongrl.inference.transformers_backend.sample_responses`: each prompt is
    prefilled once and its KV cache repeated for its ``n`` rollouts, ``micro_batch`` counts
    sequences (whole groups per chunk), and the recorded log-probs are those of the distribution
    actually sampled (temperature, then top-k and top-p truncation renormalised; nothing from the
    model's ``generation_config``). With top-p < 1 they differ from the training log-probs
    (untruncated), and the rollout-IS weights correct for exactly that. A response ends after its
    first EOS token (kept, so the model learns to stop) or at ``max_new_tokens`` (``truncated``).
    """
    if cfg.temperature <= 0:
        raise ValueError("rollout.temperature must be > 0 for RL rollouts (greedy samples carry no exploration)")
    eos_ids = eos_token_ids(model, tokenizer)
    if not eos_ids:
        raise ValueError("the tokenizer and model define no EOS token; generation could never stop")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_ids[0]
    n, groups_per_chunk = cfg.n, max(1, micro_batch // cfg.n)
    out = Rollouts()
    was_training = model.training
    model.eval()
    for start in range(0, len(prompts), groups_per_chunk):
        chunk = prompts[start:start + groups_per_chunk]
        sampled = sample_responses(model, [p.input_ids for p in chunk], n=n, max_new_tokens=cfg.max_new_tokens,
                                   eos_ids=eos_ids, pad_id=pad_id, temperature=cfg.temperature, top_p=cfg.top_p,
                                   top_k=max(cfg.top_k, 0))
        for row, (tokens, logprobs, truncated) in enumerate(zip(sampled.tokens, sampled.logprobs, sampled.truncated)):
            out.prompts.append(chunk[row // n])
            out.group_ids.append(first_group + start + row // n)
            out.response_ids.append(tokens)
            out.rollout_logprobs.append(logprobs)
            out.truncated.append(truncated)
            out.texts.append(tokenizer.decode(tokens, skip_special_tokens=True))
    model.train(was_training)
    return out


# ============================================================================================
# Rewards
# ============================================================================================


def score_rollouts(ro: Rollouts, cfg: TrainConfig) -> None:
    """Fill ``ro.scores``/``ro.reasons`` through the reward library's batch scorer.

    Timeouts and errors come back as a zero score with a reason; they never stall the step.
    The optional DAPO overlong penalty is applied on top (off in GoLongRL).
    """
    # The task resolved at load (through ``ability`` too) is the one scored: no re-deriving.
    requests = [ScoreRequest(p.record["data_source"], text, p.record["reward_model"]["ground_truth"],
                             p.record.get("extra_info"), task=p.task)
                for p, text in zip(ro.prompts, ro.texts)]
    results = score_batch(requests, mode=cfg.reward.mode, timeout_s=cfg.reward.timeout_s, workers=cfg.reward.workers)
    ol = cfg.algorithm.overlong
    ro.scores, ro.reasons = [], []
    for res, resp in zip(results, ro.response_ids):
        score = float(res.score)
        if ol.enabled:
            excess = len(resp) - (cfg.rollout.max_new_tokens - ol.buffer)
            score += min(-excess / ol.buffer * ol.penalty_factor, 0.0)
        ro.scores.append(score)
        ro.reasons.append(res.reason)


# ============================================================================================
# Log-probs of responses under the current policy
# ============================================================================================


def pack(prompt_ids: Sequence[Sequence[int]], responses: Sequence[Sequence[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """[prompt (left-padded) | response (right-padded)] rows with a position-aware layout.

    Position ids count real tokens only, matching what ``generate`` used for left-padded
    prompts, so training log-probs equal the sampling log-probs for unchanged weights.
    """
    p_ids, p_mask = left_pad(prompt_ids, pad_id)
    width = max(1, max(len(r) for r in responses))
    r_ids = torch.full((len(responses), width), pad_id, dtype=torch.long)
    r_mask = torch.zeros((len(responses), width), dtype=torch.long)
    for i, r in enumerate(responses):
        r_ids[i, :len(r)] = torch.tensor(r, dtype=torch.long)
        r_mask[i, :len(r)] = 1
    input_ids = torch.cat([p_ids, r_ids], dim=1)
    attention = torch.cat([p_mask, r_mask], dim=1)
    positions = (attention.cumsum(-1) - 1).clamp(min=0)
    return {"input_ids": input_ids, "attention_mask": attention, "position_ids": positions,
            "responses": r_ids, "response_mask": r_mask.float()}


def response_logprobs(model: torch.nn.Module, batch: dict[str, torch.Tensor], temperature: float,
                      *, with_entropy: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-token log-probs [B, R] (and entropies) of ``batch["responses"]`` under ``model``.

    Only the last R + 1 positions go through the LM head (``logits_to_keep``): a 49k-vocab
    head over a 2k-token prompt would otherwise dominate memory.
    """
    r = batch["responses"].shape[1]
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                position_ids=batch["position_ids"], logits_to_keep=r + 1, use_cache=False)
    logits = out.logits[:, :-1].float() / temperature
    logp_all = torch.log_softmax(logits, dim=-1)
    logprobs = logp_all.gather(-1, batch["responses"].unsqueeze(-1)).squeeze(-1)
    entropy = -(logp_all.exp() * logp_all).sum(-1) if with_entropy else None
    return logprobs, entropy


def grouped_logprobs(model: torch.nn.Module, prompt_ids: Sequence[Sequence[int]], responses: Sequence[Sequence[int]],
                     n: int, temperature: float, pad_id: int, *, with_entropy: bool = False
                     ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Like :func:`response_logprobs` for ``len(prompt_ids)`` groups of ``n`` responses each
    (response ``i`` belongs to prompt ``i // n``), running every prompt through the model once.

    The prompt's KV cache is repeated for its ``n`` responses and gradients flow back through
    it, so the result (and its gradient) equals the per-sequence computation while a long
    prompt is processed once instead of ``n`` times; response tokens are usually a small
    fraction of a long-context sequence, so the update gets up to ``n`` times cheaper.
    """
    device = next(model.parameters()).device
    p_ids, p_mask = (t.to(device) for t in left_pad(prompt_ids, pad_id))
    p_pos = (p_mask.cumsum(-1) - 1).clamp(min=0)
    first = model(input_ids=p_ids, attention_mask=p_mask, position_ids=p_pos, use_cache=True, logits_to_keep=1)
    cache = first.past_key_values
    cache.batch_repeat_interleave(n)
    width = max(1, max(len(r) for r in responses))
    r_ids = torch.full((len(responses), width), pad_id, dtype=torch.long, device=device)
    r_mask = torch.zeros((len(responses), width), dtype=torch.long, device=device)
    for i, r in enumerate(responses):
        r_ids[i, :len(r)] = torch.tensor(r, dtype=torch.long)
        r_mask[i, :len(r)] = 1
    lengths = p_mask.sum(-1).repeat_interleave(n)
    r_pos = lengths.unsqueeze(1) + torch.arange(width, device=device).unsqueeze(0)
    attention = torch.cat([p_mask.repeat_interleave(n, 0), r_mask], dim=1)
    rest = model(input_ids=r_ids, attention_mask=attention, position_ids=r_pos, past_key_values=cache,
                 use_cache=True, logits_to_keep=width)
    # Token 0 of each response is predicted by the prompt's last position, the rest by the
    # response positions before them.
    logits = torch.cat([first.logits[:, -1:].repeat_interleave(n, 0), rest.logits[:, :-1]], dim=1).float() / temperature
    logp_all = torch.log_softmax(logits, dim=-1)
    logprobs = logp_all.gather(-1, r_ids.unsqueeze(-1)).squeeze(-1)
    entropy = -(logp_all.exp() * logp_all).sum(-1) if with_entropy else None
    return logprobs, entropy


def padded(rows: Sequence[torch.Tensor], width: int) -> torch.Tensor:
    out = torch.zeros((len(rows), width))
    for i, row in enumerate(rows):
        out[i, :len(row)] = row
    return out


# ============================================================================================
# Model setup: freezing, LoRA, optimizer, schedule
# ============================================================================================


def decoder_layers(model: torch.nn.Module) -> torch.nn.ModuleList:
    """The stack of transformer blocks (``model.model.layers`` in Llama/Qwen/Mistral/Gemma)."""
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    if not isinstance(layers, torch.nn.ModuleList):
        raise ValueError(f"{type(model).__name__}: cannot find model.layers to freeze; use LoRA instead")
    return layers


def prepare_policy(model: torch.nn.Module, cfg: TrainConfig) -> torch.nn.Module:
    """Apply freezing, LoRA and gradient checkpointing; returns the module to train."""
    mc = cfg.model
    if mc.freeze_lower_layers:
        layers = decoder_layers(model)
        if mc.freeze_lower_layers > len(layers):
            raise ValueError(f"model.freeze_lower_layers={mc.freeze_lower_layers} exceeds the model's {len(layers)} layers")
        # Embeddings are frozen with the lowest layers (with tied weights this also freezes the
        # LM head); that removes the largest single tensor from the optimizer state.
        model.get_input_embeddings().requires_grad_(False)
        for layer in layers[:mc.freeze_lower_layers]:
            layer.requires_grad_(False)
    if mc.lora.enabled:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=mc.lora.r, lora_alpha=mc.lora.alpha, lora_dropout=mc.lora.dropout,
                                                 target_modules=list(mc.lora.target_modules), task_type="CAUSAL_LM"))
    if mc.gradient_checkpointing:
        # Non-reentrant checkpointing works with frozen inputs (no enable_input_require_grads hack).
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model


def sampling_copy(model: torch.nn.Module, dtype: str | None) -> torch.nn.Module:
    """The module the sampler runs (``rollout.dtype``): ``model`` itself when ``dtype`` is None or
    already the model's, else a frozen copy in ``dtype`` (keep it current with
    :func:`refresh_sampling_copy`)."""
    import copy

    if dtype is None or getattr(torch, dtype) == next(model.parameters()).dtype:
        return model
    twin = copy.deepcopy(model).to(getattr(torch, dtype)).eval()
    twin.requires_grad_(False)
    return twin


@torch.no_grad()
def refresh_sampling_copy(twin: torch.nn.Module, model: torch.nn.Module) -> None:
    """Copy ``model``'s trainable weights into its sampling copy (a no-op when they are one module).
    Frozen weights never change, so only the trainable ones travel: with the lower 24 of 30
    layers frozen that is a fifth of the model."""
    if twin is model:
        return
    target = dict(twin.named_parameters())
    for name, param in model.named_parameters():
        if param.requires_grad:
            target[name].copy_(param)


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, total_updates: int
                   ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW on trainable parameters (no decay on biases/norms) with linear warm-up."""
    oc = cfg.optimizer
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 else decay).append(p)
    if not decay and not no_decay:
        raise ValueError("no trainable parameters (everything frozen?)")
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": oc.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=oc.lr, betas=oc.betas, eps=oc.eps)

    def lr_factor(update: int) -> float:
        if update < oc.warmup_steps:
            return (update + 1) / (oc.warmup_steps + 1)
        if oc.schedule == "cosine":
            progress = (update - oc.warmup_steps) / max(1, total_updates - oc.warmup_steps)
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
        return 1.0

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)


def resolve_device(spec: str) -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(spec)


# ============================================================================================
# The trainer
# ============================================================================================


@dataclass
class StepBatch:
    """The kept groups of one step and everything the update needs, per response."""

    rollouts: Rollouts
    advantages: torch.Tensor   # [N]
    metrics: dict[str, float]


class Trainer:
    """Single-machine GoLongRL trainer. ``Trainer(cfg, run_dir).train()`` runs or resumes a run.

    ``model``/``tokenizer`` may be passed in (tests, the main job); otherwise they are loaded
    from ``cfg.model.name_or_path`` through ``golongrl.inference.models``.
    """

    def __init__(self, cfg: TrainConfig, run_dir: str | Path, *, model: torch.nn.Module | None = None,
                 tokenizer: Any = None) -> None:
        from golongrl.inference.models import load_causal_lm, load_tokenizer

        self.cfg, self.run_dir = cfg, Path(run_dir)
        if cfg.checkpoint.resume:  # before any loading: a changed config fails in a second
            check_resume_config(self.checkpoint_dir(), cfg)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        remove_orphans(self.run_dir)  # what a killed run's atomic writes left behind
        if cfg.training.num_threads:
            torch.set_num_threads(cfg.training.num_threads)
        self.device = resolve_device(cfg.model.device)
        self.tokenizer = tokenizer or load_tokenizer(cfg.model.tokenizer or cfg.model.name_or_path)
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        if not cfg.data.train_files and cfg.data.build_config is not None:
            # `golongrl train --config configs/tiny-test.yaml` with no files: build the data the
            # config describes into the run folder (resumable), as the main job does.
            cfg.data.train_files, built_eval = build_dataset_files(cfg, self.run_dir / "data",
                                                                   progress=cfg.logging.progress)
            cfg.data.eval_files = cfg.data.eval_files or built_eval
        # Every row is validated here, before any model is loaded: a bad row fails fast.
        self.prompts, self.dropped = load_prompts(cfg.data.train_files, self.tokenizer, cfg)
        self.stream = PromptStream(self.prompts, seed=cfg.training.seed, shuffle=cfg.data.shuffle)

        torch.manual_seed(cfg.training.seed)  # LoRA init draws from it: same seed, same adapters
        base = model if model is not None else load_causal_lm(cfg.model.name_or_path, dtype=cfg.model.dtype)
        self.model = prepare_policy(base, cfg).to(self.device)
        self.model.train()
        self.ref_model = self._reference_model() if cfg.algorithm.kl.enabled else None
        self.sampler = sampling_copy(self.model, cfg.rollout.dtype)

        bc = cfg.batch
        self.updates_per_step = cfg.algorithm.ppo_epochs * (bc.prompts_per_step // bc.mini_batch_prompts)
        self.total_steps = cfg.training.total_steps or cfg.training.epochs * max(1, len(self.prompts) // bc.generation_prompts)
        self.optimizer, self.scheduler = make_optimizer(self.model, cfg, self.total_steps * self.updates_per_step)
        self.step = 0

    def _reference_model(self) -> torch.nn.Module:
        import copy

        if self.cfg.model.lora.enabled:
            return self.model  # with LoRA the reference is the same model with adapters disabled
        ref = copy.deepcopy(self.model).eval()
        ref.requires_grad_(False)
        return ref

    # ---------------------------------------------------------------------------- one step

    def collect(self) -> StepBatch:
        """Steps 1-5: generate, score, filter with backfill, compute advantages."""
        cfg, ds = self.cfg, self.cfg.algorithm.dynamic_sampling
        n, want = cfg.rollout.n, cfg.batch.prompts_per_step
        filtering = ds.enabled and n > 1  # one-rollout groups have no spread to filter on
        # Without filtering, one generation batch is taken as it is (first groups win).
        control = BackfillController(target_groups=want, max_gen_batches=ds.max_gen_batches if filtering else 1,
                                     tol=ds.tolerance, metric=ds.metric)
        kept, seen = Rollouts(), Rollouts()
        while control.need_more:
            ro = generate_rollouts(self.sampler, self.tokenizer, self.stream.take(cfg.batch.generation_prompts),
                                   cfg.rollout, micro_batch=cfg.batch.generation_micro_batch,
                                   first_group=len(seen) // n)
            score_rollouts(ro, cfg)
            seen.extend(ro)
            if filtering:
                keep = control.add(torch.tensor(ro.scores, dtype=torch.float64), _group_ids(ro)).tolist()
            else:
                control.gen_batches += 1
                keep = [i < want * n for i in range(len(ro))]
            kept.extend(ro.select([i for i, k in enumerate(keep) if k]))
            if not filtering:
                break
        if filtering and control.cap_hit and ds.strict:
            raise RuntimeError(
                f"dynamic sampling kept {len(kept) // n} of {want} prompt groups after {control.gen_batches} "
                "generation batches (every other group's rewards were all equal); raise "
                "algorithm.dynamic_sampling.max_gen_batches, use easier data, or set strict: false")
        # Not strict: train on the groups that were kept; with none, the step makes no update
        # (every advantage would be zero) but is still logged, so the curves show it.
        gen_batches = control.gen_batches

        scores = torch.tensor(kept.scores, dtype=torch.float32)
        group_ids = _group_ids(kept)
        labels = [p.label for p in kept.prompts]
        est = cfg.algorithm.estimator
        advantages, adv_metrics = compute_advantages(est.name, scores, group_ids, labels, **est.params())

        metrics = {f"advantage/{k}" if "/" not in k else k: float(v) for k, v in adv_metrics.items()}
        metrics.update(task_metrics(scores, group_ids, [p.task for p in kept.prompts]))
        # Reward per task over everything generated (before filtering): the unbiased training
        # curve, and defined even in a step where dynamic sampling kept nothing.
        for key, value in task_metrics(seen.scores, seen.group_ids, [p.task for p in seen.prompts]).items():
            if key.endswith("/mean_reward"):
                metrics["generated/" + key[len("task_metrics/"):]] = value
        metrics.update(self._rollout_metrics(seen, kept, gen_batches))
        if filtering:
            metrics.update(control.metrics())
        return StepBatch(kept, advantages, metrics)

    def _rollout_metrics(self, seen: Rollouts, kept: Rollouts, gen_batches: int) -> dict[str, float]:
        # Lengths over every generated response: what the policy produces, kept or not.
        lengths = torch.tensor([len(r) for r in seen.response_ids], dtype=torch.float32)
        reasons = Counter(r for r in seen.reasons if r is not None)
        m = {
            "reward/mean_generated": float(np.mean(seen.scores)),
            "reward/mean_kept": float(np.mean(kept.scores)) if len(kept) else float("nan"),
            "rollout/gen_batches": float(gen_batches),
            "rollout/kept_groups": float(len(kept) // self.cfg.rollout.n),
            "rollout/generated_groups": float(len(seen) // self.cfg.rollout.n),
            "rollout/response_length_mean": float(lengths.mean()),
            "rollout/response_length_max": float(lengths.max()),
            "rollout/truncated_fraction": float(np.mean(seen.truncated)),
            "data/epoch": float(self.stream.epoch),
        }
        m.update({f"reward/reason_{k}": float(v) for k, v in sorted(reasons.items())})
        return m

    def update(self, batch: StepBatch) -> dict[str, float]:
        """Step 6: PPO over mini-batches of prompt groups, gradients accumulated over micro-batches."""
        cfg, ac = self.cfg, self.cfg.algorithm
        ro, n = batch.rollouts, cfg.rollout.n
        if len(ro) == 0:
            return {"actor/updated": 0.0}
        num_groups = len(ro) // n
        mini = [list(range(g * n, min(num_groups, g + cfg.batch.mini_batch_prompts) * n))
                for g in range(0, num_groups, cfg.batch.mini_batch_prompts)]
        # With one optimizer step per batch the policy has not moved since sampling, so the PPO
        # "old" log-probs equal the current ones up to autograd: use them detached and skip a
        # whole forward pass (verl does the same when on-policy).
        on_policy = len(mini) * ac.ppo_epochs == 1
        old = None if on_policy else self._old_logprobs(ro)
        # Each micro-batch contributes its loss *sum* (denominator 1) and the count it covers; the
        # accumulated gradient is divided by the mini-batch's total count at the end. The count
        # is only known after the forward (rollout-IS vetoes remove responses from it, as verl
        # does), and dividing once keeps accumulated gradients equal to one big micro-batch's.
        # The loss terms add up over micro-batches; the other diagnostics are averaged.
        additive = {"actor/pg_loss", "actor/kl_loss", "actor/entropy"}
        sums: dict[str, list[float]] = {}
        skipped = 0
        params = [p for p in self.model.parameters() if p.requires_grad]
        for _ in range(ac.ppo_epochs):
            for idx in mini:
                self.optimizer.zero_grad(set_to_none=True)
                totals: dict[str, float] = {}
                count = 0.0
                for micro in self._micro_batches(idx):
                    loss, m = self._micro_loss(ro, micro, batch.advantages, old)
                    loss.backward()
                    count += m.pop("actor/agg_count")
                    for k, v in m.items():
                        if k in additive:
                            totals[k] = totals.get(k, 0.0) + float(v)
                        else:
                            sums.setdefault(k, []).append(float(v))
                scale = 1.0 / max(count, 1.0)
                for p in params:
                    if p.grad is not None:
                        p.grad.mul_(scale)
                for k, v in totals.items():
                    sums.setdefault(k, []).append(v * scale)
                clip = cfg.optimizer.grad_clip
                grad_norm = float(torch.nn.utils.clip_grad_norm_(params, clip if clip else float("inf")))
                sums.setdefault("actor/grad_norm", []).append(grad_norm)
                if not math.isfinite(grad_norm):
                    # One NaN/inf gradient would poison every weight through Adam's moments: skip
                    # the update (and its schedule tick) and say so in the metrics.
                    self.optimizer.zero_grad(set_to_none=True)
                    skipped += 1
                    continue
                self.optimizer.step()
                self.scheduler.step()
        refresh_sampling_copy(self.sampler, self.model)
        out = {k if "/" in k else f"actor/{k}": float(np.mean(v)) for k, v in sums.items()}
        out["actor/lr"] = self.scheduler.get_last_lr()[0]
        out["actor/skipped_nonfinite"] = float(skipped)
        out["actor/updated"] = 1.0 if skipped < len(mini) * ac.ppo_epochs else 0.0
        return out

    def _shared(self) -> bool:
        return self.cfg.batch.share_prompt_prefix and not self.cfg.model.gradient_checkpointing

    def _micro_batches(self, idx: Sequence[int]) -> list[Sequence[int]]:
        """Split a mini-batch (whole groups, in order) into micro-batches; whole groups when
        prompts are shared, so each micro-batch is one prefill per group."""
        size = self.cfg.batch.micro_batch_size
        if self._shared():
            size = max(1, size // self.cfg.rollout.n) * self.cfg.rollout.n
        return [idx[i:i + size] for i in range(0, len(idx), size)]

    def _logprobs(self, model: torch.nn.Module, ro: Rollouts, micro: Sequence[int], *, with_entropy: bool = False
                  ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Log-probs [B, R], entropies, and the response mask of the sequences ``micro``."""
        responses = [ro.response_ids[i] for i in micro]
        width = max(1, max(len(r) for r in responses))
        mask = torch.zeros((len(micro), width), device=self.device)
        for j, r in enumerate(responses):
            mask[j, :len(r)] = 1.0
        n = self.cfg.rollout.n
        if self._shared():
            prompts = [ro.prompts[i].input_ids for i in micro[::n]]
            lp, ent = grouped_logprobs(model, prompts, responses, n, self.cfg.rollout.temperature, self.pad_id,
                                       with_entropy=with_entropy)
        else:
            batch = {k: v.to(self.device) for k, v in pack([ro.prompts[i].input_ids for i in micro], responses, self.pad_id).items()}
            lp, ent = response_logprobs(model, batch, self.cfg.rollout.temperature, with_entropy=with_entropy)
        return lp, ent, mask

    def _micro_loss(self, ro: Rollouts, micro: Sequence[int], advantages: torch.Tensor,
                    old: list[torch.Tensor] | None) -> tuple[torch.Tensor, dict[str, Any]]:
        """The micro-batch's loss as a sum (aggregation denominator 1) and its diagnostics."""
        ac = self.cfg.algorithm
        logprobs, entropy, mask = self._logprobs(self.model, ro, micro, with_entropy=ac.entropy_coef > 0)
        width = mask.shape[1]
        old_lp = logprobs.detach() if old is None else padded([old[i] for i in micro], width).to(self.device)
        rollout_lp = padded([ro.rollout_logprobs[i] for i in micro], width).to(self.device)
        ris = ac.rollout_is
        ref_lp = None
        if self.ref_model is not None:
            ref_lp = self._ref_logprobs(ro, micro)
        adv = advantages[list(micro)].to(self.device)
        loss, metrics = policy_loss(
            logprobs, old_lp, adv, mask, clip_low=ac.clip_low, clip_high=ac.clip_high,
            dual_clip_c=ac.dual_clip_c, agg=ac.loss_agg,
            rollout_logprobs=rollout_lp if ris.enabled else None, tis_bounds=ris.bounds if ris.enabled else None,
            tis_veto=ris.veto_threshold if ris.enabled else None,
            ref_logprobs=ref_lp, kl_coef=ac.kl.coef if ac.kl.enabled else 0.0, kl_type=ac.kl.type,
            entropy=entropy, entropy_coef=ac.entropy_coef, agg_denominator=1.0,
            norm_length=self.cfg.rollout.max_new_tokens)
        return loss, metrics

    @torch.no_grad()
    def _ref_logprobs(self, ro: Rollouts, micro: Sequence[int]) -> torch.Tensor:
        ctx = self.model.disable_adapter() if self.cfg.model.lora.enabled else contextlib.nullcontext()
        with ctx:
            lp, _, _ = self._logprobs(self.ref_model, ro, micro)
        return lp

    @torch.no_grad()
    def _old_logprobs(self, ro: Rollouts) -> list[torch.Tensor]:
        out = []
        for micro in self._micro_batches(range(len(ro))):
            lp, _, _ = self._logprobs(self.model, ro, micro)
            out.extend(lp[j, :len(ro.response_ids[i])].cpu() for j, i in enumerate(micro))
        return out

    def train_step(self) -> dict[str, float]:
        """One full GoLongRL step; returns its metrics (``time/*`` keys are wall-clock)."""
        t0 = time.perf_counter()
        batch = self.collect()
        t1 = time.perf_counter()
        metrics = {**batch.metrics, **self.update(batch)}
        t2 = time.perf_counter()
        metrics.update({"time/rollout_and_reward_s": t1 - t0, "time/update_s": t2 - t1, "time/step_s": t2 - t0})
        return metrics

    # ---------------------------------------------------------------------------- the loop

    def checkpoint_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    def resume(self) -> int:
        """Restore the newest complete checkpoint if there is one; returns its step (0 if none)."""
        ckpt = latest_checkpoint(self.checkpoint_dir())
        if ckpt is None:
            return 0
        state = load_checkpoint(ckpt, self.model)
        self.optimizer.load_state_dict(state.optimizer)
        self.scheduler.load_state_dict(state.scheduler)
        self.stream.load_state_dict(state.data)
        restore_rng(state.rng)
        refresh_sampling_copy(self.sampler, self.model)
        self.step = state.step
        return state.step

    def save(self) -> Path:
        state = TrainingState(step=self.step, optimizer=self.optimizer.state_dict(),
                              scheduler=self.scheduler.state_dict(), data=self.stream.state_dict(), rng=capture_rng())
        meta = {"model": self.cfg.model.name_or_path, "lora": self.cfg.model.lora.enabled,
                "freeze_lower_layers": self.cfg.model.freeze_lower_layers, "config": resume_settings(self.cfg)}
        return save_checkpoint(self.checkpoint_dir(), self.model, state, meta, keep_last=self.cfg.checkpoint.keep_last)

    def export(self, path: Path) -> Path:
        """Write the current policy as a plain Hugging Face folder (LoRA adapters merged into a
        copy, so training could continue), atomically."""
        import copy
        import shutil
        import tempfile

        model = self.model
        if self.cfg.model.lora.enabled:
            model = copy.deepcopy(self.model).merge_and_unload()
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        tmp.chmod(default_dir_mode())  # mkdtemp makes it owner-only; give it mkdir's mode
        try:
            model.save_pretrained(tmp)
            self.tokenizer.save_pretrained(tmp)
            if path.exists():
                shutil.rmtree(path)
            tmp.rename(path)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return path

    def train(self, *, on_step: Any = None,
              step_metrics: Callable[[int], dict[str, float]] | None = None) -> list[dict[str, Any]]:
        """Run (or resume) until ``total_steps``; returns the per-step metrics of this call.

        ``on_step(step, metrics)`` is called after each step (the main job's progress hook).
        ``step_metrics(step)`` returns extra metrics logged with that step (the main job's
        held-out curve; ``{}`` for steps it skips); on a fresh run it is also called for step 0
        (the base policy), logged as a row of its own unless ``metrics.jsonl`` already has one.
        """
        cfg = self.cfg
        with atomic_output(self.run_dir / "config.yaml", "w") as handle:
            yaml.safe_dump(cfg.to_dict(), handle, sort_keys=False)
        if cfg.checkpoint.resume:
            self.resume()
        logger = MetricsLogger(self.run_dir, cfg.logging, resume_step=self.step, config_dict=cfg.to_dict())
        if step_metrics is not None and self.step == 0 and 0 not in logger.logged_steps:
            base = step_metrics(0)
            if base:
                logger.log(0, base)
        history: list[dict[str, Any]] = []
        first = self.step == 0
        began, budget = time.perf_counter(), cfg.training.time_budget_s
        self.stopped_early = False
        try:
            with _progress(cfg.logging.progress, self.total_steps, self.step) as advance:
                while self.step < self.total_steps:
                    if budget is not None and history:
                        elapsed = time.perf_counter() - began
                        if elapsed + elapsed / len(history) > budget:
                            self.stopped_early = True
                            break
                    metrics = self.train_step()
                    self.step += 1
                    if first and self.dropped:
                        metrics.update({f"data/dropped_overlong/{t}": float(c) for t, c in self.dropped.items()})
                        first = False
                    if step_metrics is not None:
                        metrics.update(step_metrics(self.step))
                    logger.log(self.step, metrics)
                    history.append({"step": self.step, **metrics})
                    every = cfg.checkpoint.every_steps
                    if (every and self.step % every == 0) or self.step == self.total_steps:
                        self.save()
                    advance(self.step, metrics)
                    if on_step is not None:
                        on_step(self.step, metrics)
            if self.stopped_early and history:
                self.save()
        finally:
            logger.close()
        if cfg.checkpoint.export_final and (self.step == self.total_steps or self.stopped_early):
            self.export(self.run_dir / "final")
        return history


def _group_ids(ro: Rollouts) -> torch.Tensor:
    return torch.tensor(ro.group_ids, dtype=torch.long)


@contextlib.contextmanager
def _progress(enabled: bool, total: int, done: int) -> Iterator[Any]:
    """A rich progress bar showing step, mean reward and seconds per step; a no-op when disabled."""
    if not enabled:
        yield lambda step, metrics: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.description}"), transient=False) as bar:
        task = bar.add_task("", total=total, completed=done)

        def advance(step: int, metrics: dict[str, float]) -> None:
            bar.update(task, completed=step, description=(
                f"reward {metrics.get('reward/mean_generated', float('nan')):.3f} "
                f"kept {metrics.get('rollout/kept_groups', 0):.0f} "
                f"{metrics.get('time/step_s', 0):.1f}s/step"))

        yield advance
