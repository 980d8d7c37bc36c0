"""Local generation with transformers: batched, left-padded, chat template, CPU or GPU."""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from dataclasses import dataclass
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


def sampling_logprobs(logits: Any, temperature: float, top_p: float = 1.0, top_k: int = 0) -> Any:
    """Log-probabilities [B, V] of the distribution a token is drawn from, given raw logits [B, V].

    ``temperature`` scales the logits; ``top_k`` > 0 keeps the k largest; ``top_p`` < 1 keeps
    the smallest set of most likely tokens whose probability reaches ``top_p`` (always at least
    one). The kept tokens are renormalised, the rest get ``-inf``: this *is* the sampled
    distribution, so a log-prob read from it is exactly the sampler's. Nothing else (no
    ``min_p``, repetition penalty or n-gram ban from a model's ``generation_config``) shapes it.
    """
    import torch

    logits = logits.float() / temperature
    if top_k > 0 and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        logits = logits.masked_fill(~nucleus(logits, top_p), float("-inf"))
    return torch.log_softmax(logits, dim=-1)


def nucleus(logits: Any, top_p: float, *, candidates: int = 1024) -> Any:
    """Boolean mask [B, V] of each row's top-p nucleus: the most likely tokens in order, each kept
    unless the ones before it already reach ``top_p`` (so at least one is kept).

    Sorting the whole vocabulary per row and step cost ~300 ms at 48 rows x 49K tokens on a CPU.
    The nucleus lies inside the ``candidates`` most likely tokens whenever their mass reaches
    ``top_p``; rows where it does use a top-k, the others the full sort, so the mask is exact."""
    import torch

    probs = torch.softmax(logits, dim=-1)
    top, order = torch.topk(probs, min(candidates, probs.shape[-1]), dim=-1)  # most likely first
    keep = torch.zeros_like(probs, dtype=torch.bool).scatter_(-1, order, _kept(top, top_p))
    outside = top.sum(-1) < top_p  # rows whose nucleus reaches past the candidates
    if bool(outside.any()):
        full, full_order = torch.sort(probs[outside], dim=-1, descending=True)
        keep[outside] = torch.zeros_like(full, dtype=torch.bool).scatter_(-1, full_order, _kept(full, top_p))
    return keep


def _kept(sorted_probs: Any, top_p: float) -> Any:
    """Which of the descending ``sorted_probs`` the nucleus keeps: those whose predecessors' mass is
    still below ``top_p``, and always the first."""
    kept = (sorted_probs.cumsum(-1) - sorted_probs) < top_p
    kept[..., 0] = True
    return kept


@dataclass
class SampledResponses:
    """Responses of :func:`sample_responses`: ``n`` adjacent rows per prompt."""

    tokens: list[list[int]]
    """Response token ids, ending with the first EOS token when one was sampled."""
    logprobs: list[Any]
    """Per response, a float32 tensor [len(tokens)] of each sampled token's log-prob."""
    truncated: list[bool]
    """True when the response hit ``max_new_tokens`` without an EOS token."""


def sample_responses(model: Any, prompt_ids: Sequence[Sequence[int]], *, n: int, max_new_tokens: int,
                     eos_ids: Sequence[int], pad_id: int, temperature: float, top_p: float = 1.0,
                     top_k: int = 0, seeds: Sequence[int] | None = None) -> SampledResponses:
    """``n`` responses per prompt from ``model``, with the log-prob of every sampled token.

    A KV-cached decode loop of plain forwards, written out instead of ``model.generate`` so that
    the distribution sampled from is exactly :func:`sampling_logprobs` (the model's
    ``generation_config`` plays no part) and only one log-prob per token is kept, never the
    [B, T, V] logits. Each prompt is prefilled once, alone (no padding mask), with the LM head on
    its last position only, and its cache repeated for its ``n`` responses into buffers sized for the whole rollout
    (:func:`~golongrl.inference.decoding.preallocate_cache`), so a step writes only its new
    keys and values, and each decode step's attention reads K and V once
    (:func:`~golongrl.inference.decoding.single_query_decoding`). ``temperature == 0`` is
    greedy (log-probs of the untempered distribution). Draws from torch's global RNG (seed it to reproduce), or, with
    ``seeds`` (one per response, prompt-major), each response from its own generator.
    """
    import torch

    from .decoding import preallocate_cache, prefill_unpadded, single_query_decoding

    if not prompt_ids or any(len(p) == 0 for p in prompt_ids):
        raise ValueError("sample_responses needs at least one prompt and no empty prompt")
    if seeds is not None and len(seeds) != len(prompt_ids) * n:
        raise ValueError(f"sample_responses needs one seed per response ({len(prompt_ids) * n}), got {len(seeds)}")
    generators = None if seeds is None else [torch.Generator().manual_seed(int(x)) for x in seeds]
    device = next(model.parameters()).device
    width = max(len(p) for p in prompt_ids)
    ids = torch.full((len(prompt_ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompt_ids), width), dtype=torch.long)
    for i, p in enumerate(prompt_ids):
        ids[i, width - len(p):] = torch.tensor(list(p), dtype=torch.long)
        mask[i, width - len(p):] = 1
    ids, mask = ids.to(device), mask.to(device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    eos = torch.tensor(list(eos_ids), dtype=torch.long, device=device)
    tokens, logprobs = [], []
    with torch.inference_mode(), single_query_decoding(model):
        # Each prompt prefilled alone into in-place KV buffers sized for the whole rollout (no
        # padding mask in the prefill, no per-step copy of the cache); caches those buffers
        # cannot hold (sliding-window, linear-attention, ...) go through transformers' own.
        filled = prefill_unpadded(model, prompt_ids, repeats=n, capacity=width + max_new_tokens, device=device)
        if filled is not None:
            cache, last = filled
        else:
            out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1)
            cache, last = out.past_key_values, out.logits[:, -1]
            if not preallocate_cache(cache, repeats=n, capacity=width + max_new_tokens) and n > 1:
                cache.batch_repeat_interleave(n)
        logits = last.repeat_interleave(n, 0)
        mask = mask.repeat_interleave(n, 0)
        next_position = mask.sum(-1, keepdim=True)
        done = torch.zeros(mask.shape[0], dtype=torch.bool, device=device)
        for step in range(max_new_tokens):
            if temperature > 0:
                logp = sampling_logprobs(logits, temperature, top_p, top_k)
                if generators is not None:
                    token = seeded_draw(logp, generators)
                else:
                    token = inverse_cdf_draw(logp, torch.rand(logp.shape[0]))
            else:
                logp = torch.log_softmax(logits.float(), dim=-1)
                token = logp.argmax(-1)
            logprobs.append(logp.gather(-1, token.unsqueeze(-1)).squeeze(-1))
            token = torch.where(done, torch.full_like(token, pad_id), token)
            tokens.append(token)
            done = done | torch.isin(token, eos)
            if bool(done.all()) or step == max_new_tokens - 1:
                break
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            out = model(input_ids=token.unsqueeze(-1), attention_mask=mask, position_ids=next_position,
                        past_key_values=cache, use_cache=True)
            next_position = next_position + 1
            logits = out.logits[:, -1]
    all_tokens = torch.stack(tokens, dim=1).cpu() if tokens else torch.zeros((mask.shape[0], 0), dtype=torch.long)
    all_logprobs = torch.stack(logprobs, dim=1).float().cpu() if logprobs else torch.zeros(all_tokens.shape)
    eos_set = set(int(e) for e in eos_ids)
    result = SampledResponses([], [], [])
    for row in range(all_tokens.shape[0]):
        seq = all_tokens[row].tolist()
        end = next((t + 1 for t, tok in enumerate(seq) if tok in eos_set), None)
        length = end if end is not None else len(seq)
        result.tokens.append(seq[:length])
        result.logprobs.append(all_logprobs[row, :length].clone())
        result.truncated.append(end is None)
    return result


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


def inverse_cdf_draw(logp: Any, uniform: Any) -> Any:
    """One token per row from log-probabilities ``logp`` [B, V] and one uniform [0, 1) number per
    row: the first token whose cumulative probability exceeds ``uniform`` (an exact draw from
    ``exp(logp)``; a token of probability 0 is never drawn). One random number per row instead
    of ``torch.multinomial``'s or Gumbel-max's pass over the vocabulary: at 48 rows x 49K
    tokens it is the difference between ~10 ms and 100-400 ms per decode step on a CPU. The CDF
    is summed in float64 so that a token's share of [0, 1) is its probability to ~1e-16."""
    import torch

    cdf = logp.double().exp().cumsum(-1)
    total = cdf[:, -1:]
    # Kept below the total, so even a uniform that rounded up to 1 lands on a token with probability.
    target = torch.minimum(uniform.to(cdf).unsqueeze(-1) * total, torch.nextafter(total, torch.zeros_like(total)))
    return torch.searchsorted(cdf, target, right=True).squeeze(-1)


def seeded_draw(logp: Any, generators: Sequence[Any]) -> Any:
    """:func:`inverse_cdf_draw` with row ``r``'s number drawn from ``generators[r]`` alone, so a
    row's draws do not depend on which other rows share its batch: that is what makes a resumed
    sampled evaluation identical, and a before/after evaluation pair use common random numbers."""
    import torch

    uniform = torch.cat([torch.rand(1, generator=g) for g in generators])
    return inverse_cdf_draw(logp, uniform)


class TransformersBackend:
    """An :class:`~golongrl.inference.base.InferenceBackend` over a local causal LM.

    Requests sharing sampling parameters are batched (``batch_size`` prompts per forward, longest
    first so padding stays small) and left-padded. With ``sampling.seed`` set, every sample draws
    its noise from its own generator, seeded by the seed, the prompt and the sample's number
    (:func:`seeded_draw`): a prompt's samples do not depend on which other prompts share its
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
        # add_special_tokens=False: the chat template already placed every special token.
        prompt_ids = [tok(text, add_special_tokens=False, verbose=False)["input_ids"] for text in texts]
        eos_ids = eos_token_ids(self.model, tok)
        pad_id = tok.pad_token_id if tok.pad_token_id is not None else eos_ids[0]
        seeds = None
        if sampling.seed is not None:
            seeds = [sample_seed(sampling.seed, text, k) for text in texts for k in range(sampling.n)]
        # The trainer's sampler: same distribution, same stopping, whichever caller evaluates.
        sampled = sample_responses(self.model, prompt_ids, n=sampling.n, max_new_tokens=sampling.max_new_tokens,
                                   eos_ids=eos_ids, pad_id=pad_id, temperature=sampling.temperature,
                                   top_p=sampling.top_p, seeds=seeds)
        prompt_counts = [len(p) for p in prompt_ids]
        eos_set = set(eos_ids)
        new_tokens = [ids[:-1] if ids and ids[-1] in eos_set else ids for ids in sampled.tokens]
        generations = []
        for row in range(len(texts)):
            gen = Generation(texts=[], prompt_tokens=int(prompt_counts[row]))
            for k in range(sampling.n):
                kept = new_tokens[row * sampling.n + k]
                text, stopped = cut_at_stop(tok.decode(kept, skip_special_tokens=True), sampling.stop)
                hit_limit = sampled.truncated[row * sampling.n + k] and not stopped
                gen.texts.append(text)
                gen.finish_reasons.append("length" if hit_limit else "stop")
                gen.completion_tokens.append(len(kept))
            generations.append(gen)
        return generations

