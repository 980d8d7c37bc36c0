"""Local generation with transformers: batched, left-padded, chat template, CPU or GPU."""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .base import Generation, GenerationRequest, SamplingParams
from .cache import GenerationCache, generate_cached, open_cache
from .models import load_causal_lm, load_tokenizer, resolve_model_path


def render_prompt(tokenizer: Any, request: GenerationRequest) -> str:
    """The chat-template text of a request, ending with the assistant generation prompt.

    ``enable_thinking`` is passed to the template only when set, so templates without the
    switch (SmolLM2) render unchanged and Qwen3-style templates get the user's choice.
    """
    extra = {}
    if request.sampling.enable_thinking is not None:
        extra["enable_thinking"] = request.sampling.enable_thinking
    return tokenizer.apply_chat_template(
        [dict(m) for m in request.messages], tokenize=False, add_generation_prompt=True, **extra
    )


def encode_prompt(tokenizer: Any, messages: Sequence[Mapping[str, Any]], enable_thinking: bool | None) -> list[int]:
    """Token ids of a chat prompt with the generation prompt appended (the rollout's prefix),
    rendered exactly as :func:`render_prompt` renders it for generation. (No warning for prompts
    longer than the tokenizer's nominal maximum: long contexts are the point here.)"""
    request = GenerationRequest(
        messages=tuple(dict(m) for m in messages), sampling=SamplingParams(enable_thinking=enable_thinking)
    )
    return tokenizer(render_prompt(tokenizer, request), add_special_tokens=False, verbose=False)["input_ids"]


def eos_token_ids(model: Any, tokenizer: Any) -> list[int]:
    """The token ids that end a generation: the model's ``generation_config.eos_token_id`` (one
    id or a list) plus the tokenizer's EOS token if it is not among them (as vLLM stops on
    both). Empty when neither defines one."""
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = list(configured) if isinstance(configured, (list, tuple)) else [configured]
    ids = [int(i) for i in ids if i is not None]
    if tokenizer.eos_token_id is not None and int(tokenizer.eos_token_id) not in ids:
        ids.append(int(tokenizer.eos_token_id))
    return ids


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Text before the earliest stop string (OpenAI semantics: the stop string is excluded)."""
    positions = [p for s in stop if s and (p := text.find(s)) >= 0]
    if not positions:
        return text, False
    return text[: min(positions)], True


def sample_seed(seed: int, prompt: str, k: int) -> int:
    """The generator seed of sample ``k`` of ``prompt`` under sampling seed ``seed``."""
    digest = hashlib.sha256(f"{seed}\0{k}\0{prompt}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


class PerSampleGumbel:
    """A logits processor that turns greedy decoding into seeded sampling, one generator per row.

    Scores are divided by the temperature, cut to the top-p nucleus, and perturbed with Gumbel
    noise drawn from the row's own generator; the greedy argmax of the result is an exact draw
    from the tempered nucleus distribution (the Gumbel-max trick). Row ``r`` uses the ``t``-th
    draw of its generator at step ``t`` whatever the other rows do.
    """

    def __init__(self, seeds: Sequence[int], temperature: float, top_p: float) -> None:
        import torch

        self.generators = [torch.Generator().manual_seed(s) for s in seeds]
        self.temperature, self.top_p = temperature, top_p

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        scores = scores.float() / self.temperature
        if self.top_p < 1.0:
            ordered, order = torch.sort(scores, descending=True, dim=-1)
            mass = ordered.softmax(dim=-1).cumsum(dim=-1)
            outside = mass - ordered.softmax(dim=-1) >= self.top_p  # keep the token that crosses top_p
            scores = scores.masked_fill(outside.scatter(-1, order, outside), float("-inf"))
        uniform = torch.stack([torch.rand(scores.shape[-1], generator=g) for g in self.generators])
        exponential = (-torch.log(uniform.clamp_min(1e-20))).clamp_min(1e-20)
        gumbel = -torch.log(exponential)
        return scores + gumbel.to(scores.device)


class TransformersBackend:
    """An :class:`~golongrl.inference.base.InferenceBackend` over a local causal LM.

    Requests sharing sampling parameters are batched (``batch_size`` prompts per forward, longest
    first so padding stays small) and left-padded. With ``sampling.seed`` set, every sample draws
    its noise from its own generator, seeded by the seed, the prompt and the sample's number
    (:class:`PerSampleGumbel`): a prompt's samples do not depend on which other prompts share its
    batch, so an evaluation resumed from the cache samples exactly what the full run would have.
    ``rope_scaling`` (e.g. ``yarn_rope_scaling(4.0, 262144)``) extends the context window the way
    the reference's vLLM runs do.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] = "smollm2",
        *,
        dtype: str = "auto",
        device: str | None = None,
        rope_scaling: Mapping[str, Any] | None = None,
        batch_size: int = 8,
        cache: GenerationCache | str | os.PathLike[str] | None = None,
        attn_implementation: str | None = None,
    ) -> None:
        import torch

        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.name = f"transformers:{model}"
        self.device = device
        self.batch_size = batch_size
        self.tokenizer = load_tokenizer(str(model))
        self.model = load_causal_lm(
            model,
            dtype=dtype,
            rope_scaling=rope_scaling,
            device=device,
            attn_implementation=attn_implementation,
        )
        self.cache = open_cache(cache)
        self.identity: dict[str, Any] = {
            "kind": "transformers",
            "model": str(resolve_model_path(model)),
            "rope_scaling": dict(rope_scaling or {}),
            "dtype": str(self.model.dtype),
        }

    @classmethod
    def from_model(
        cls,
        model: Any,
        tokenizer: Any,
        *,
        name: str = "in-memory",
        batch_size: int = 8,
        cache: GenerationCache | str | os.PathLike[str] | None = None,
    ) -> TransformersBackend:
        """Wrap an already loaded model (e.g. the trainer's policy) without reloading it.

        ``name`` is the cache identity: give each checkpoint its own name if you pass a cache.
        """
        self = cls.__new__(cls)
        self.name = f"transformers:{name}"
        self.model = model
        self.tokenizer = tokenizer
        self.device = str(next(model.parameters()).device)
        self.batch_size = batch_size
        self.cache = open_cache(cache)
        self.identity = {"kind": "transformers", "model": name}
        return self

    def generate(
        self, requests: Sequence[GenerationRequest], *, progress: bool = False
    ) -> list[Generation]:
        """One :class:`Generation` per request, in order (cached ones are not recomputed)."""
        return generate_cached(
            self.cache, self.identity, list(requests), lambda idx: self._run(requests, idx, progress)
        )

    def _batches(
        self, requests: Sequence[GenerationRequest], indices: list[int]
    ) -> list[tuple[SamplingParams, list[int], list[str]]]:
        groups: dict[SamplingParams, list[int]] = defaultdict(list)
        for index in indices:
            groups[requests[index].sampling].append(index)
        batches = []
        for sampling, members in groups.items():
            texts = {i: render_prompt(self.tokenizer, requests[i]) for i in members}
            members.sort(key=lambda i: len(texts[i]), reverse=True)
            for start in range(0, len(members), self.batch_size):
                chunk = members[start : start + self.batch_size]
                batches.append((sampling, chunk, [texts[i] for i in chunk]))
        return batches

    def _run(
        self, requests: Sequence[GenerationRequest], indices: list[int], progress: bool
    ) -> Iterator[tuple[int, Generation]]:
        from rich.progress import Progress

        batches = self._batches(requests, indices)
        with Progress(disable=not progress, transient=True) as bar:
            task = bar.add_task("generating", total=len(indices))
            for sampling, chunk, texts in batches:
                for index, generation in zip(chunk, self._generate_batch(sampling, texts)):
                    yield index, generation
                bar.advance(task, len(chunk))

    def _generate_batch(
        self, sampling: SamplingParams, texts: list[str]
    ) -> list[Generation]:
        import torch

        tok = self.tokenizer
        enc = tok(
            texts,
            add_special_tokens=False,  # the chat template already placed every special token
            padding=True,
            padding_side="left",
            return_tensors="pt",
        ).to(self.device)
        prompt_counts = enc["attention_mask"].sum(dim=1).tolist()
        eos_ids = eos_token_ids(self.model, tok)
        pad_id = tok.pad_token_id if tok.pad_token_id is not None else eos_ids[0]
        kwargs: dict[str, Any] = {
            "max_new_tokens": sampling.max_new_tokens,
            "num_return_sequences": sampling.n,
            "pad_token_id": pad_id,
            "eos_token_id": eos_ids,
        }
        if sampling.temperature > 0 and sampling.seed is not None:
            # Seeded sampling per sample (see PerSampleGumbel): the rows are repeated n times here
            # so each sample is its own row with its own generator.
            enc = {key: value.repeat_interleave(sampling.n, dim=0) for key, value in enc.items()}
            seeds = [sample_seed(sampling.seed, text, k) for text in texts for k in range(sampling.n)]
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None, num_return_sequences=1,
                          logits_processor=[PerSampleGumbel(seeds, sampling.temperature, sampling.top_p)])
        elif sampling.temperature > 0:
            kwargs.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if sampling.stop:
            kwargs.update(stop_strings=list(sampling.stop), tokenizer=tok)
        with torch.inference_mode():
            output = self.model.generate(**enc, **kwargs)
        prompt_len = enc["input_ids"].shape[1]
        new_tokens = output[:, prompt_len:].tolist()
        generations = []
        for row in range(len(texts)):
            gen = Generation(texts=[], prompt_tokens=int(prompt_counts[row]))
            for k in range(sampling.n):
                ids = new_tokens[row * sampling.n + k]
                ended = next((j for j, t in enumerate(ids) if t in eos_ids), None)
                kept = ids if ended is None else ids[:ended]
                text, stopped = cut_at_stop(tok.decode(kept, skip_special_tokens=True), sampling.stop)
                hit_limit = ended is None and not stopped and len(ids) >= sampling.max_new_tokens
                gen.texts.append(text)
                gen.finish_reasons.append("length" if hit_limit else "stop")
                gen.completion_tokens.append(len(kept))
            generations.append(gen)
        return generations

