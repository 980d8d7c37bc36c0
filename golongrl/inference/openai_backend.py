"""OpenAI-compatible HTTP backend (vLLM, SGLang, hosted APIs) with concurrency, retries, timeouts."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from .base import Generation, GenerationRequest
from .cache import GenerationCache, generate_cached, open_cache


class BackendError(RuntimeError):
    """Some requests failed after every retry; the message lists the first errors.

    Successful requests of the same call are already in the cache, so a rerun only repeats the
    failed ones.
    """


class OpenAICompatibleBackend:
    """Chat completions against ``base_url`` (e.g. ``http://localhost:8000/v1``).

    * ``concurrency``: requests in flight at once (a thread pool over one pooled HTTP client);
    * ``max_retries``: retries of a failed request (connection errors, timeouts, 408/409/429 and
      5xx), with the openai client's exponential backoff and jitter (0.5 s doubling to 8 s,
      honouring ``Retry-After``);
    * ``timeout_s``: per-request timeout in seconds (long-context generations need many minutes);
    * ``api_key``: else the environment variable ``api_key_env`` (default ``OPENAI_API_KEY``),
      else ``"EMPTY"`` (vLLM and SGLang accept any key);
    * ``on_error``: ``"raise"`` (default) raises :class:`BackendError` after the other requests
      finished; ``"empty"`` answers failed requests with empty texts and finish reason
      ``"error"`` (never cached), which scorers count as wrong, like the reference scripts do;
    * ``enable_thinking`` in the sampling params is sent as vLLM/SGLang
      ``chat_template_kwargs``; ``extra_body`` adds any other server-specific field.
    """

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        *,
        api_key: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 8,
        max_retries: int = 4,
        timeout_s: float = 3600.0,
        on_error: str = "raise",
        extra_body: Mapping[str, Any] | None = None,
        cache: GenerationCache | str | os.PathLike[str] | None = None,
    ) -> None:
        import httpx
        import openai

        if on_error not in ("raise", "empty"):
            raise ValueError(f"on_error must be 'raise' or 'empty', got {on_error!r}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        key = api_key or os.environ.get(api_key_env) or "EMPTY"
        self.base_url = base_url.rstrip("/")
        self.concurrency = concurrency
        self.on_error = on_error
        self.extra_body = dict(extra_body or {})
        self.client = openai.OpenAI(
            base_url=self.base_url,
            api_key=key,
            max_retries=max_retries,
            timeout=timeout_s,
            # One keep-alive connection per worker thread, so concurrency is not capped by the pool.
            http_client=httpx.Client(
                limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
                timeout=timeout_s,
            ),
        )
        self._model = model
        self._model_lock = threading.Lock()
        self.cache = open_cache(cache)

    @property
    def model(self) -> str:
        """The served model name; asked from ``GET /models`` when not given (vLLM serves one)."""
        with self._model_lock:
            if self._model is None:
                models = self.client.models.list().data
                if not models:
                    raise BackendError(f"{self.base_url}/models lists no model; pass the model name")
                self._model = models[0].id
            return self._model

    @property
    def name(self) -> str:
        return f"openai:{self.base_url}#{self._model or '?'}"

    @property
    def identity(self) -> dict[str, Any]:
        # The URL is left out on purpose: the same model served on another host or port is the
        # same cache entry, so a restarted server resumes from the cache.
        return {"kind": "openai", "model": self.model, "extra_body": self.extra_body}

    def generate(
        self, requests: Sequence[GenerationRequest], *, progress: bool = False
    ) -> list[Generation]:
        return generate_cached(
            self.cache, self.identity, list(requests), lambda idx: self._run(requests, idx, progress)
        )

    def _body(self, request: GenerationRequest) -> dict[str, Any]:
        sp = request.sampling
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [dict(m) for m in request.messages],
            "max_tokens": sp.max_new_tokens,
            "temperature": sp.temperature,
            "top_p": sp.top_p,
        }
        if sp.n != 1:
            body["n"] = sp.n
        if sp.seed is not None:
            body["seed"] = sp.seed
        if sp.stop:
            body["stop"] = list(sp.stop)
        extra = dict(self.extra_body)
        if sp.enable_thinking is not None:
            extra["chat_template_kwargs"] = {
                **extra.get("chat_template_kwargs", {}),
                "enable_thinking": sp.enable_thinking,
            }
        if extra:
            body["extra_body"] = extra
        return body

    def _one(self, request: GenerationRequest) -> Generation:
        response = self.client.chat.completions.create(**self._body(request))
        choices = sorted(response.choices, key=lambda c: c.index)
        usage = response.usage
        return Generation(
            texts=[c.message.content or "" for c in choices],
            finish_reasons=[c.finish_reason or "stop" for c in choices],
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=[usage.completion_tokens] if usage and len(choices) == 1 else [],
        )

    def _run(
        self, requests: Sequence[GenerationRequest], indices: list[int], progress: bool
    ) -> Iterator[tuple[int, Generation]]:
        from rich.progress import Progress

        errors: list[str] = []
        pending = iter(indices)
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool, Progress(
            disable=not progress, transient=True
        ) as bar:
            task = bar.add_task(f"requests to {self.base_url}", total=len(indices))
            # Submit lazily (at most `concurrency` queued beyond the running ones) so a large
            # evaluation does not build every request body up front.
            in_flight: dict[Future[Generation], int] = {}

            def fill() -> None:
                while len(in_flight) < 2 * self.concurrency:
                    index = next(pending, None)
                    if index is None:
                        return
                    in_flight[pool.submit(self._one, requests[index])] = index

            fill()
            while in_flight:
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    index = in_flight.pop(future)
                    bar.advance(task)
                    try:
                        generation = future.result()
                    except Exception as exc:  # noqa: BLE001 - reported below, per request
                        errors.append(f"request {index}: {type(exc).__name__}: {exc}")
                        if self.on_error == "raise":
                            continue
                        n = requests[index].sampling.n
                        generation = Generation(texts=[""] * n, finish_reasons=["error"] * n)
                    yield index, generation
                fill()
        if errors and self.on_error == "raise":
            shown = "\n  ".join(errors[:5])
            raise BackendError(f"{len(errors)} of {len(indices)} requests failed:\n  {shown}")
