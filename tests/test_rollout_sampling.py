"""The rollout sampler: the log-prob recorded for each token is the log-prob of the distribution
it was actually drawn from, whatever the model's generation_config says, with or without top-p."""

from __future__ import annotations

import math

import pytest
import torch

from golongrl.inference.models import load_causal_lm, load_tokenizer
from golongrl.inference.transformers_backend import (TransformersBackend, encode_prompt, eos_token_ids, render_prompt,
                                                     sample_responses, sample_seed, sampling_logprobs)
from golongrl.inference.base import GenerationRequest, SamplingParams
from golongrl.training import trainer as trainer_mod
from golongrl.training.config import RolloutConfig


@pytest.fixture(scope="module")
def tiny():
    return load_tokenizer("tiny:0"), load_causal_lm("tiny:0")


def _prompts(tok) -> list[list[int]]:
    return [encode_prompt(tok, [{"role": "user", "content": "ship " * (4 * i + 1)}], None) for i in range(2)]


def _full_forward_logits(model, prompt: list[int], response: list[int]) -> torch.Tensor:
    """Raw next-token logits [len(response), V] at every response position, one plain forward."""
    ids = torch.tensor([prompt + response])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0]
    return logits[len(prompt) - 1:len(prompt) - 1 + len(response)]


def test_generation_config_does_not_shape_sampling(tiny) -> None:
    tok, model = tiny
    # Each of these would change what generate() samples while the recorded log-probs ignore it.
    model.generation_config.min_p = 0.5
    model.generation_config.repetition_penalty = 3.0
    model.generation_config.no_repeat_ngram_size = 1
    try:
        prompts = _prompts(tok)
        torch.manual_seed(0)
        ro = trainer_mod.generate_rollouts(
            model, tok, [trainer_mod.Prompt(i, {}, ids, "t", "t") for i, ids in enumerate(prompts)],
            RolloutConfig(n=3, max_new_tokens=12), micro_batch=6)
    finally:
        for key in ("min_p", "repetition_penalty", "no_repeat_ngram_size"):
            setattr(model.generation_config, key, None)
    assert len(ro) == 6
    batch = trainer_mod.pack([p.input_ids for p in ro.prompts], ro.response_ids, tok.pad_token_id)
    training, _ = trainer_mod.response_logprobs(model, batch, 1.0)
    mask = batch["response_mask"].bool()
    recorded = trainer_mod.padded(ro.rollout_logprobs, mask.shape[1])
    # Log-probs are O(10) nats; float32 forwards of different shapes agree to ~1e-5.
    assert float((recorded - training).abs()[mask].max()) < 1e-3


def test_top_p_logprobs_are_of_the_truncated_distribution(tiny) -> None:
    tok, model = tiny
    prompts = _prompts(tok)[:1]
    torch.manual_seed(1)
    sampled = sample_responses(model, prompts, n=4, max_new_tokens=10, eos_ids=eos_token_ids(model, tok),
                               pad_id=tok.pad_token_id, temperature=1.0, top_p=0.3)
    differs = False
    for tokens, recorded in zip(sampled.tokens, sampled.logprobs):
        logits = _full_forward_logits(model, prompts[0], tokens)
        truncated = sampling_logprobs(logits, 1.0, top_p=0.3).gather(-1, torch.tensor(tokens)[:, None]).squeeze(-1)
        full = torch.log_softmax(logits.float(), -1).gather(-1, torch.tensor(tokens)[:, None]).squeeze(-1)
        assert torch.isfinite(recorded).all(), "a token outside the nucleus was sampled"
        assert float((recorded - truncated).abs().max()) < 1e-3
        differs |= bool((recorded - full).abs().max() > 1e-2)
    assert differs, "top_p=0.3 should renormalise over fewer tokens than the full vocabulary"


def test_sampling_logprobs_by_hand() -> None:
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    p = torch.softmax(logits, -1)[0]
    # top_p = 0.7: the first token holds 0.64 < 0.7, so the second joins; then 0.88 >= 0.7 stops.
    got = sampling_logprobs(logits, 1.0, top_p=0.7)[0]
    kept = p[:2] / p[:2].sum()
    torch.testing.assert_close(got[:2].exp(), kept)
    assert got[2:].tolist() == [-math.inf, -math.inf]
    got = sampling_logprobs(logits, 2.0, top_k=3)[0]
    expected = torch.log_softmax(logits[0, :3] / 2.0, -1)
    torch.testing.assert_close(got[:3], expected)
    assert got[3].item() == -math.inf
    # A tiny top_p still keeps the most likely token.
    assert sampling_logprobs(logits, 1.0, top_p=1e-6)[0, 0].item() == pytest.approx(0.0)


def test_evaluation_backend_uses_the_same_sampler(tiny) -> None:
    tok, model = tiny
    messages = ({"role": "user", "content": "ship ship ship"},)
    sampling = SamplingParams(max_new_tokens=6, temperature=1.0, n=2, seed=7)
    request = GenerationRequest(messages, sampling)
    (gen,) = TransformersBackend.from_model(model, tok).generate([request])
    text = render_prompt(tok, request)
    direct = sample_responses(model, [encode_prompt(tok, messages, None)], n=2, max_new_tokens=6,
                              eos_ids=eos_token_ids(model, tok), pad_id=tok.pad_token_id, temperature=1.0,
                              seeds=[sample_seed(7, text, k) for k in range(2)])
    eos = set(eos_token_ids(model, tok))
    assert gen.texts == [tok.decode([t for t in ids if t not in eos], skip_special_tokens=True) for ids in direct.tokens]
