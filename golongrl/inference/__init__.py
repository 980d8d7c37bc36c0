"""Inference backends shared by evaluation, the data pipeline and the trainer.

``make_backend(spec, **kw)`` is the one entry point. Specs:

* ``openai:<base_url>#<model>`` (``#<model>`` optional: the first model of ``GET /models``),
  or a bare ``http(s)://...`` URL: :class:`OpenAICompatibleBackend`; keyword arguments such as
  ``concurrency``, ``max_retries``, ``timeout_s``, ``api_key_env``, ``cache`` pass through;
* anything else is a model spec for :class:`TransformersBackend`: a local Hugging Face folder,
  ``smollm2`` or ``tiny[:seed]`` (see :mod:`golongrl.inference.models`); keyword arguments such as
  ``dtype``, ``device``, ``rope_scaling``, ``batch_size``, ``cache`` pass through.

Heavy imports (torch, transformers, openai) happen only when a backend is built.
"""

from __future__ import annotations

from typing import Any

from .base import Generation, GenerationRequest, InferenceBackend, Message, SamplingParams
from .cache import GenerationCache, request_key
from .models import (
    ModelSpecError,
    load_causal_lm,
    load_tokenizer,
    make_tiny_causal_lm,
    resolve_model_path,
    yarn_rope_scaling,
)

__all__ = [
    "Generation",
    "GenerationCache",
    "GenerationRequest",
    "InferenceBackend",
    "Message",
    "ModelSpecError",
    "SamplingParams",
    "chat",
    "load_causal_lm",
    "load_tokenizer",
    "make_backend",
    "make_tiny_causal_lm",
    "parse_openai_spec",
    "request_key",
    "resolve_model_path",
    "yarn_rope_scaling",
]


def parse_openai_spec(spec: str) -> tuple[str, str | None] | None:
    """``(base_url, model or None)`` for an HTTP spec, or None for a local model spec."""
    if spec.startswith("openai:"):
        spec = spec[len("openai:") :]
    elif not spec.startswith(("http://", "https://")):
        return None
    base_url, _, model = spec.partition("#")
    if not base_url.startswith(("http://", "https://")):
        raise ModelSpecError(f"backend spec 'openai:{spec}': the base URL must start with http(s)://")
    return base_url, model or None


def make_backend(spec: str, **kwargs: Any) -> InferenceBackend:
    """Build the backend a spec names (see the module docstring)."""
    parsed = parse_openai_spec(str(spec))
    if parsed is not None:
        from .openai_backend import OpenAICompatibleBackend

        return OpenAICompatibleBackend(parsed[0], parsed[1], **kwargs)
    from .transformers_backend import TransformersBackend

    return TransformersBackend(spec, **kwargs)


def chat(content: str, *, system: str | None = None) -> tuple[Message, ...]:
    """Messages for a single user turn, optionally after a system prompt."""
    user: Message = {"role": "user", "content": content}
    return ({"role": "system", "content": system}, user) if system else (user,)
