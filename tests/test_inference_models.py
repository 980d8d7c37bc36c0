"""Model specs, the tiny model, rope scaling and the transformers backend."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from inference_fixtures import tiny_model_dir  # noqa: F401, F811 - pytest fixture

from golongrl.inference import (
    GenerationRequest,
    ModelSpecError,
    SamplingParams,
    chat,
    load_causal_lm,
    load_tokenizer,
    make_backend,
    make_tiny_causal_lm,
    yarn_rope_scaling,
)
from golongrl.inference.transformers_backend import TransformersBackend, cut_at_stop


def _digest(folder: Path) -> str:
    return hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()


def test_smollm2_tokenizer_needs_no_weights() -> None:
    tok = load_tokenizer("smollm2")
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == ("<|im_start|>", "<|im_end|>", "<|im_end|>")
    assert tok.eos_token_id == 2 and len(tok) == 49152
    rendered = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert rendered.endswith("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
    assert load_tokenizer("tiny:3") is tok  # same shipped tokenizer, cached


def test_bad_specs_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ModelSpecError, match="neither a local Hugging Face folder"):
        load_tokenizer(str(tmp_path / "nowhere"))
    with pytest.raises(ModelSpecError, match="seed after 'tiny:'"):
        load_causal_lm("tiny:abc")


def test_tiny_model_is_deterministic_per_seed(tmp_path: Path, tiny_model_dir: Path) -> None:
    again = make_tiny_causal_lm(tmp_path / "again", seed=0)
    other = make_tiny_causal_lm(tmp_path / "other", seed=1)
    assert _digest(again) == _digest(tiny_model_dir)
    assert _digest(other) != _digest(tiny_model_dir)
    assert make_tiny_causal_lm(again, seed=5) == again  # existing folder left untouched
    assert _digest(again) == _digest(tiny_model_dir)


def test_yarn_override_reaches_the_rotary_tables(tiny_model_dir: Path) -> None:
    model = load_causal_lm(tiny_model_dir, rope_scaling=yarn_rope_scaling(4.0, 32768))
    rope = model.config.rope_parameters
    assert rope["rope_type"] == "yarn" and rope["factor"] == 4.0
    assert rope["original_max_position_embeddings"] == 32768 and rope["rope_theta"] == 10000.0
    assert model.config.max_position_embeddings == 131072
    plain = load_causal_lm(tiny_model_dir)
    assert plain.config.rope_parameters["rope_type"] == "default"
    with pytest.raises(ValueError):
        yarn_rope_scaling(1.0, 1024)


def test_batched_left_padding_matches_one_by_one(tiny_model_dir: Path) -> None:
    backend = make_backend(str(tiny_model_dir), batch_size=4, dtype="float32")
    assert isinstance(backend, TransformersBackend)
    prompts = ["hi", "a much longer prompt " * 6, "medium sized prompt here", "x"]
    greedy = SamplingParams(max_new_tokens=6)
    requests = [GenerationRequest(chat(p), greedy) for p in prompts]
    batched = backend.generate(requests)
    backend.batch_size = 1
    single = backend.generate(requests)
    assert [g.texts for g in batched] == [g.texts for g in single]
    assert all(g.finish_reasons in (["length"], ["stop"]) for g in batched)
    assert batched[1].prompt_tokens > batched[0].prompt_tokens


def test_sampling_seeds_n_and_cache(tiny_model_dir: Path, tmp_path: Path) -> None:
    backend = TransformersBackend(tiny_model_dir, cache=tmp_path / "c.sqlite")
    sampled = GenerationRequest(chat("tell me"), SamplingParams(max_new_tokens=5, temperature=1.0, n=3, seed=7))
    first = backend.generate([sampled])[0]
    assert len(first.texts) == 3 and len(first.completion_tokens) == 3 and not first.cached
    again = backend.generate([sampled])[0]
    assert again.cached and again.texts == first.texts
    fresh = TransformersBackend(tiny_model_dir)
    assert fresh.generate([sampled])[0].texts == first.texts  # same seed, same samples


def test_stop_strings_are_cut() -> None:
    assert cut_at_stop("abc STOP def", ("STOP",)) == ("abc ", True)
    assert cut_at_stop("abc", ("STOP", "")) == ("abc", False)
    assert cut_at_stop("x1y2", ("2", "1")) == ("x", True)
