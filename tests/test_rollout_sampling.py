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


@pytest.mark.parametrize("candidates", [4, 64, 1024])
def test_nucleus_equals_the_full_sort(candidates: int) -> None:
    from golongrl.inference.transformers_backend import nucleus

    torch.manual_seed(0)
    # Peaked rows (nucleus of a few tokens) and flat rows (nucleus wider than the candidates:
    # the full-sort fallback) in one batch.
    logits = torch.randn(6, 500) * torch.tensor([20.0, 5.0, 1.0, 0.2, 0.01, 3.0])[:, None]
    probs = torch.softmax(logits, -1)
    sorted_probs, order = torch.sort(probs, -1, descending=True)
    kept_sorted = (sorted_probs.cumsum(-1) - sorted_probs) < 0.9
    kept_sorted[:, 0] = True
    expected = torch.zeros_like(kept_sorted).scatter(-1, order, kept_sorted)
    got = nucleus(logits, 0.9, candidates=candidates)
    assert torch.equal(got, expected)
    sizes = expected.sum(-1)
    assert sizes.min() <= 4 and sizes.max() > 64  # both paths ran for the small candidate counts


def test_inverse_cdf_draw_is_an_exact_draw() -> None:
    from golongrl.inference.transformers_backend import inverse_cdf_draw

    probs = torch.tensor([0.0, 0.5, 0.0, 0.3, 0.2, 0.0])
    logp = probs.log().expand(40000, -1)
    picks = inverse_cdf_draw(logp, torch.rand(40000, generator=torch.Generator().manual_seed(0)))
    freq = torch.bincount(picks, minlength=6).double() / 40000
    assert freq[probs == 0].sum() == 0
    assert torch.allclose(freq, probs.double(), atol=4 * (0.25 / 40000) ** 0.5)  # four binomial std errors
    # The ends of [0, 1] land on the first and the last token with probability.
    edges = inverse_cdf_draw(probs.log().expand(3, -1), torch.tensor([0.0, 1.0 - 2**-24, 1.0]))
    assert edges.tolist() == [1, 4, 4]


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


# --- The decode path: preallocated KV buffers and single-query attention change nothing sampled ------

def _mixed_prompts(tok) -> list[list[int]]:
    """Three chat prompts of different lengths, so the batch is left-padded."""
    return [encode_prompt(tok, [{"role": "user", "content": "ship " * k}], None) for k in (1, 9, 4)]


def _plain_cache_path(monkeypatch) -> None:
    """Make the sampler decode as before the fast path: transformers' own DynamicCache and SDPA."""
    import contextlib

    from golongrl.inference import decoding

    monkeypatch.setattr(decoding, "prefill_unpadded", lambda *args, **_: None)
    monkeypatch.setattr(decoding, "preallocate_cache", lambda cache, **_: False)
    monkeypatch.setattr(decoding, "single_query_decoding", lambda model: contextlib.nullcontext())


def _watch_preallocation(monkeypatch) -> list[bool]:
    """Whether each preallocation the sampler tries (the unpadded prefill into buffers, then, if
    that declines, moving a padded batch's cache) held the cache, in order."""
    from golongrl.inference import decoding

    calls: list[bool] = []
    real_unpadded, real_move = decoding.prefill_unpadded, decoding.preallocate_cache

    def unpadded(*args, **kwargs):
        result = real_unpadded(*args, **kwargs)
        calls.append(result is not None)
        return result

    def moved(cache, **kwargs):
        calls.append(real_move(cache, **kwargs))
        return calls[-1]

    monkeypatch.setattr(decoding, "prefill_unpadded", unpadded)
    monkeypatch.setattr(decoding, "preallocate_cache", moved)
    return calls


def _watch_decode_attention(monkeypatch) -> list[int]:
    """The query length of every call the sampler makes to the single-query attention."""
    from transformers import AttentionInterface

    from golongrl.inference import decoding

    lengths: list[int] = []
    real = decoding.single_query_attention

    def watched(module, query, *args, **kwargs):
        lengths.append(query.shape[2])
        return real(module, query, *args, **kwargs)

    # Registered once at import: the registry, not the module attribute, is what the model calls.
    monkeypatch.setitem(AttentionInterface._global_mapping, decoding.DECODE_ATTENTION, watched)
    return lengths


def _greedy(model, prompts, *, n, max_new_tokens=8, eos_ids=(-1,), pad_id=0):
    return sample_responses(model, prompts, n=n, max_new_tokens=max_new_tokens, eos_ids=list(eos_ids), pad_id=pad_id,
                            temperature=0.0)


def test_fast_decode_greedy_matches_plain_cache_and_generate(tiny, monkeypatch) -> None:
    tok, model = tiny
    prompts = _mixed_prompts(tok)
    with monkeypatch.context() as patch:
        calls = _watch_preallocation(patch)
        query_lengths = _watch_decode_attention(patch)
        buffered = _greedy(model, prompts, n=2)
    assert calls == [True], "a Llama's cache should decode in preallocated buffers"
    # Two layers: each prompt prefilled alone (through SDPA), then 7 single-query decode steps.
    assert query_lengths == [len(p) for p in prompts for _ in range(2)] + [1] * 14
    assert model.config._attn_implementation == "sdpa"
    with monkeypatch.context() as patch:
        _plain_cache_path(patch)
        plain = _greedy(model, prompts, n=2)
    assert buffered.tokens == plain.tokens
    for a, b in zip(buffered.logprobs, plain.logprobs):
        assert float((a - b).abs().max()) < 1e-4 * max(1.0, float(b.abs().max()))
    # An independent reference: transformers' generate on the same left-padded batch.
    width = max(len(p) for p in prompts)
    ids = torch.tensor([[0] * (width - len(p)) + p for p in prompts])
    mask = (torch.arange(width)[None, :] >= torch.tensor([width - len(p) for p in prompts])[:, None]).long()
    with torch.no_grad():
        generated = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=8,
                                   min_new_tokens=8, pad_token_id=0, eos_token_id=None)
    expected = generated[:, width:].tolist()
    assert buffered.tokens == [row for row in expected for _ in range(2)]


def test_fast_decode_logprobs_match_a_full_forward(tiny) -> None:
    tok, model = tiny
    prompts = _mixed_prompts(tok)
    torch.manual_seed(3)
    sampled = sample_responses(model, prompts, n=3, max_new_tokens=12, eos_ids=[-1], pad_id=0, temperature=1.0)
    assert len(sampled.tokens) == 9
    for row, (tokens, recorded) in enumerate(zip(sampled.tokens, sampled.logprobs)):
        logits = _full_forward_logits(model, prompts[row // 3], tokens)
        expected = torch.log_softmax(logits.float(), -1).gather(-1, torch.tensor(tokens)[:, None]).squeeze(-1)
        # Log-probs here are ~11 nats (a random model over 49K tokens); float32 agrees to ~1e-5 of that.
        assert float((recorded - expected).abs().max()) < 1e-4 * float(expected.abs().max())


def test_seeded_sampling_is_unchanged_by_the_fast_decode(tiny, monkeypatch) -> None:
    tok, model = tiny
    prompts = _mixed_prompts(tok)
    seeds = list(range(100, 106))

    def draw():
        return sample_responses(model, prompts, n=2, max_new_tokens=10, eos_ids=[-1], pad_id=0, temperature=1.0,
                                top_p=0.9, seeds=seeds)

    buffered = draw()
    with monkeypatch.context() as patch:
        _plain_cache_path(patch)
        plain = draw()
    assert buffered.tokens == plain.tokens
    for a, b in zip(buffered.logprobs, plain.logprobs):
        assert float((a - b).abs().max()) < 1e-4 * max(1.0, float(b.abs().max()))


def test_a_response_stops_at_its_first_eos(tiny) -> None:
    tok, model = tiny
    prompts = _mixed_prompts(tok)
    free = _greedy(model, prompts, n=1, max_new_tokens=8)
    # The third token of the second prompt's greedy response becomes the stop token.
    stop = free.tokens[1][2]
    stopped = _greedy(model, prompts, n=1, max_new_tokens=8, eos_ids=[stop], pad_id=0)
    for free_tokens, tokens, truncated, logprobs in zip(free.tokens, stopped.tokens, stopped.truncated,
                                                        stopped.logprobs):
        end = free_tokens.index(stop) + 1 if stop in free_tokens else None
        assert tokens == free_tokens[:end]
        assert truncated == (end is None)
        assert logprobs.shape == (len(tokens),)
    assert stopped.tokens[1][-1] == stop and len(stopped.tokens[1]) <= 3


def test_caches_it_cannot_hold_fall_back_to_transformers(monkeypatch) -> None:
    from transformers import MistralConfig, MistralForCausalLM

    torch.manual_seed(0)
    config = MistralConfig(vocab_size=256, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, sliding_window=4,
                           attn_implementation="sdpa")
    model = MistralForCausalLM(config).eval()
    prompts = [[5, 6, 7, 8, 9, 10], [11, 12, 13]]
    calls = _watch_preallocation(monkeypatch)
    sampled = _greedy(model, prompts, n=2, max_new_tokens=6)
    assert calls == [False, False], "a sliding-window cache must keep transformers' own layers"
    ids = torch.tensor([prompts[0], [0, 0, 0] + prompts[1]])
    mask = (ids != 0).long()
    with torch.no_grad():
        generated = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=6,
                                   min_new_tokens=6, pad_token_id=0, eos_token_id=None)
    assert sampled.tokens == [row for row in generated[:, 6:].tolist() for _ in range(2)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("padded", [False, True])
def test_single_query_attention_equals_sdpa(padded: bool, dtype: torch.dtype) -> None:
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.masking_utils import sdpa_mask

    from golongrl.inference.decoding import single_query_attention

    torch.manual_seed(0)
    batch, heads, kv_heads, length, dim = 3, 6, 2, 37, 16
    module = torch.nn.Module()
    module.num_key_value_groups, module.is_causal = heads // kv_heads, True
    # Keys/values as the preallocated buffer hands them out: views of a longer buffer.
    key = torch.randn(batch, kv_heads, length + 5, dim, dtype=dtype)[:, :, :length]
    value = torch.randn(batch, kv_heads, length + 5, dim, dtype=dtype)[:, :, :length]
    query = torch.randn(batch, heads, 1, dim, dtype=dtype)
    padding = torch.ones(batch, length, dtype=torch.bool)
    if padded:
        padding[0, :11] = False
        padding[2, :30] = False
    mask = sdpa_mask(batch_size=batch, q_length=1, kv_length=length, q_offset=length - 1, attention_mask=padding)
    assert (mask is not None) == padded
    expected, _ = sdpa_attention_forward(module, query, key, value, mask, scaling=0.3)
    got, _ = single_query_attention(module, query, key, value, mask, scaling=0.3)
    assert got.shape == expected.shape == (batch, 1, heads, dim) and got.dtype == dtype
    # Both round their result to ``dtype``: a few units of its epsilon (2^-23 fp32, 2^-7 bf16).
    tol = 8 * torch.finfo(dtype).eps
    torch.testing.assert_close(got, expected, rtol=tol, atol=tol * float(expected.abs().max()))


def test_the_attention_implementation_is_restored_after_an_error(tiny) -> None:
    from golongrl.inference.decoding import DECODE_ATTENTION, single_query_decoding

    _, model = tiny
    assert model.config._attn_implementation == "sdpa"
    with pytest.raises(RuntimeError, match="inside"):
        with single_query_decoding(model):
            assert model.config._attn_implementation == DECODE_ATTENTION
            raise RuntimeError("inside")
    assert model.config._attn_implementation == "sdpa"


@pytest.mark.parametrize("first_out", ["first_in", "last_in"])
def test_threads_sharing_a_model_nest_the_single_query_switch(first_out: str, monkeypatch) -> None:
    import threading

    from transformers import LlamaConfig, LlamaForCausalLM

    from golongrl.inference.decoding import DECODE_ATTENTION, single_query_decoding

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, attn_implementation="sdpa")
    model = LlamaForCausalLM(config).eval()
    prompt = torch.tensor([[3, 17, 9, 40, 5, 77]])

    def decode_step() -> torch.Tensor:
        """Last-position logits of a one-query step after a cached prefill."""
        with torch.no_grad():
            out = model(input_ids=prompt[:, :-1], use_cache=True)
            return model(input_ids=prompt[:, -1:], past_key_values=out.past_key_values).logits[0, -1]

    expected = decode_step()  # SDPA
    one_query_calls = _watch_decode_attention(monkeypatch)
    entered = {name: threading.Event() for name in ("a", "b")}
    leave = {name: threading.Event() for name in ("a", "b")}
    left = {name: threading.Event() for name in ("a", "b")}
    outputs: dict[str, list[torch.Tensor]] = {"a": [], "b": []}
    errors: list[BaseException] = []

    def user(name: str) -> None:
        try:
            with single_query_decoding(model):
                outputs[name].append(decode_step())
                entered[name].set()
                assert leave[name].wait(30)
                outputs[name].append(decode_step())  # after the other one left, or before it did
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            entered[name].set()
            left[name].set()

    def implementation() -> str:
        return model.config._attn_implementation

    threads = {name: threading.Thread(target=user, args=(name,)) for name in ("a", "b")}
    threads["a"].start()
    assert entered["a"].wait(30) and implementation() == DECODE_ATTENTION
    threads["b"].start()
    assert entered["b"].wait(30) and implementation() == DECODE_ATTENTION
    order = ("a", "b") if first_out == "first_in" else ("b", "a")
    leave[order[0]].set()
    assert left[order[0]].wait(30)
    assert implementation() == DECODE_ATTENTION, "the first to leave must not switch back under the other"
    leave[order[1]].set()
    assert left[order[1]].wait(30)
    for thread in threads.values():
        thread.join(30)
    assert not errors, errors
    assert implementation() == "sdpa"
    assert 1 in one_query_calls, "the decode steps ran the single-query kernel"
    scale = float(expected.abs().max())
    for got in [*outputs["a"], *outputs["b"]]:
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5 * scale)
    with single_query_decoding(model):  # and a later block switches again
        assert implementation() == DECODE_ATTENTION
    assert implementation() == "sdpa"
