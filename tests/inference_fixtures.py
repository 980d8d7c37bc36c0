"""Shared fixtures of the inference/evaluation tests (import the ones you use)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from openai_stub_server import StubServer

from golongrl.inference.models import make_tiny_causal_lm


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-init tiny Llama with the SmolLM2 tokenizer, built once per session."""
    return make_tiny_causal_lm(tmp_path_factory.mktemp("models") / "tiny", seed=0)


@pytest.fixture
def stub_server() -> Iterator[StubServer]:
    """A running OpenAI-compatible stub answering "OK"; tests script it further."""
    with StubServer() as server:
        yield server
