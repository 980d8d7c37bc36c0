"""The one interface every inference backend implements.

Evaluation, the data pipeline (difficulty calibration, shortcut probes, LLM-backed QA
construction) and the trainer's evaluate step all talk to models through
:class:`InferenceBackend`, so a local transformers model and an OpenAI-compatible server are
interchangeable everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence, runtime_checkable

Message = dict[str, str]


@dataclass(frozen=True)
class SamplingParams:
    """How to sample. ``temperature == 0`` means greedy decoding; ``n`` completions per request."""

    max_new_tokens: int = 512
    temperature: float = 0.0
    top_p: float = 1.0
    n: int = 1
    seed: int | None = None
    stop: tuple[str, ...] = ()
    enable_thinking: bool | None = None


@dataclass(frozen=True)
class GenerationRequest:
    """One prompt (chat messages) and how to sample it."""

    messages: tuple[Message, ...]
    sampling: SamplingParams = field(default_factory=SamplingParams)


@dataclass
class Generation:
    """The ``n`` completions of one request, in order."""

    texts: list[str]
    finish_reasons: list[str] = field(default_factory=list)
    prompt_tokens: int | None = None
    completion_tokens: list[int] = field(default_factory=list)
    cached: bool = False


@runtime_checkable
class InferenceBackend(Protocol):
    """Generates completions for a batch of chat requests, returning one Generation per request."""

    name: str

    def generate(
        self, requests: Sequence[GenerationRequest], *, progress: bool = False
    ) -> list[Generation]: ...
