"""OpenAI-compatible HTTP backend (vLLM, SGLang, hosted APIs) with concurrency, retries, deadlines.

The HTTP exchange is written on httpx directly (not the openai client) because a hostile or
broken server must not be able to hang or flood a run: every attempt has a total deadline (not a
per-read timeout, which a server trickling one byte a second never trips), every reply has a
size cap, ``Retry-After`` is honoured only up to a cap, and a reply without the requested
choices is an error, never a cached success.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from .base import Generation, GenerationRequest
from .cache import GenerationCache, generate_cached, open_cache

#: Replies larger than this are refused: 51,200-token generations are a few hundred KB.
DEFAULT_MAX_REPLY_BYTES = 16 * 1024 * 1024
#: The longest ``Retry-After`` a run waits for; a server asking for more fails the request.
DEFAULT_MAX_RETRY_WAIT_S = 60.0
_RETRY_STATUSES = frozenset({408, 409, 429}) | frozenset(range(500, 600))


class BackendError(RuntimeError):
    """Some requests failed after every retry; the message lists the first errors.

    Successful requests of the same call are already in the cache, so a rerun only repeats the
    failed ones.
    """


class RequestFailed(Exception):
    """One attempt failed; ``retryable`` says whether another attempt may succeed and
    ``retry_after`` is the wait the server asked for (seconds), if any."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


def origin(url: str) -> tuple[str, str, int | None]:
    """``(scheme, host, port)`` of a URL, the unit a credential is bound to."""
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def key_for(base_url: str, api_key_env: str, bound_url_env: str | None) -> str | None:
    """The key in ``$api_key_env`` if it may go to ``base_url``, else None.

    A key belongs to the host of ``$bound_url_env`` when that variable is set (the
    ``OPENAI_BASE_URL``/``OPENAI_API_KEY`` and ``JUDGE_BASE_URL``/``JUDGE_API_KEY`` pairs), so it is
    never sent to another host; without that variable the key is the user's key for whatever
    endpoint they named.
    """
    key = os.environ.get(api_key_env)
    if not key:
        return None
    bound = os.environ.get(bound_url_env) if bound_url_env else None
    if bound and origin(bound) != origin(base_url):
        return None
    return key


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (delta seconds or an HTTP date)."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class OpenAICompatibleBackend:
    """Chat completions against ``base_url`` (e.g. ``http://localhost:8000/v1``).

    * ``concurrency``: requests in flight at once (a thread pool over one pooled HTTP client);
    * ``max_retries``: retries of a failed attempt (connection errors, deadlines, 408/409/429 and
      5xx, malformed replies) with exponential backoff and jitter (0.5 s doubling to 8 s); a
      ``Retry-After`` up to ``max_retry_wait_s`` is waited for, a longer one fails the request
      with that reason;
    * ``timeout_s``: total deadline of one attempt, from connecting to the last byte of the reply
      (long-context generations need many minutes); checked on every received chunk, so a server
      that trickles bytes cannot stretch it;
    * ``max_reply_bytes``: larger replies are refused (and never cached);
    * ``api_key``: else the environment variable ``api_key_env`` (default ``OPENAI_API_KEY``) when
      the key may go to this host (see :func:`key_for`; ``api_key_url_env`` names the variable
      holding the key's own URL, ``OPENAI_BASE_URL`` for ``OPENAI_API_KEY``), else ``"EMPTY"`` (vLLM and SGLang accept any key);
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
        api_key_url_env: str | None = None,
        concurrency: int = 8,
        max_retries: int = 4,
        timeout_s: float = 3600.0,
        max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES,
        max_retry_wait_s: float = DEFAULT_MAX_RETRY_WAIT_S,
        on_error: str = "raise",
        extra_body: Mapping[str, Any] | None = None,
        cache: GenerationCache | str | os.PathLike[str] | None = None,
    ) -> None:
        import httpx

        if on_error not in ("raise", "empty"):
            raise ValueError(f"on_error must be 'raise' or 'empty', got {on_error!r}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        if not timeout_s > 0 or timeout_s == float("inf"):
            raise ValueError(f"timeout_s must be a positive finite number, got {timeout_s}")
        if max_reply_bytes < 1:
            raise ValueError(f"max_reply_bytes must be >= 1, got {max_reply_bytes}")
        self.base_url = base_url.rstrip("/")
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.timeout_s = float(timeout_s)
        self.max_reply_bytes = max_reply_bytes
        self.max_retry_wait_s = max_retry_wait_s
        self.on_error = on_error
        self.extra_body = dict(extra_body or {})
        if api_key_url_env is None and api_key_env == "OPENAI_API_KEY":
            api_key_url_env = "OPENAI_BASE_URL"
        key = api_key or key_for(self.base_url, api_key_env, api_key_url_env) or "EMPTY"
        self._headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        # One keep-alive connection per worker thread, so concurrency is not capped by the pool.
        # Redirects are not followed: the key must not travel to a host it was not given for.
        self._http = httpx.Client(
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            timeout=self.timeout_s,
            follow_redirects=False,
        )
        self._model = model
        self._model_lock = threading.Lock()
        self.cache = open_cache(cache)

    @property
    def model(self) -> str:
        """The served model name; asked from ``GET /models`` when not given (vLLM serves one)."""
        with self._model_lock:
            if self._model is None:
                try:
                    listing = self._call("GET", "/models", None)
                except RequestFailed as exc:
                    raise BackendError(f"{self.base_url}/models: {exc}") from None
                models = listing.get("data") if isinstance(listing, dict) else None
                if not models or not isinstance(models[0], dict) or not isinstance(models[0].get("id"), str):
                    raise BackendError(f"{self.base_url}/models lists no model; pass the model name")
                self._model = models[0]["id"]
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
        body.update(extra)  # server-specific fields travel at the top level, as vLLM reads them
        return body

    # ---------------------------------------------------------------------------- one exchange

    def _attempt(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        """One HTTP exchange under the total deadline and the size cap; the parsed JSON reply."""
        import httpx

        url = self.base_url + path
        deadline = time.monotonic() + self.timeout_s
        content = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        try:
            with self._http.stream(method, url, content=content, headers=self._headers) as response:
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > self.max_reply_bytes:
                    raise RequestFailed(
                        f"reply of {int(declared)} bytes from {url} exceeds max_reply_bytes="
                        f"{self.max_reply_bytes}", retryable=False)
                chunks, size = [], 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > self.max_reply_bytes:
                        raise RequestFailed(
                            f"reply from {url} exceeds max_reply_bytes={self.max_reply_bytes}",
                            retryable=False)
                    if time.monotonic() > deadline:
                        raise RequestFailed(
                            f"no complete reply from {url} within timeout_s={self.timeout_s:g}",
                            retryable=True)
                    chunks.append(chunk)
                status, headers = response.status_code, response.headers
        except httpx.TimeoutException:
            raise RequestFailed(f"no reply from {url} within timeout_s={self.timeout_s:g}",
                                retryable=True) from None
        except httpx.HTTPError as exc:
            raise RequestFailed(f"{type(exc).__name__} talking to {url}: {exc}", retryable=True) from None
        raw = b"".join(chunks)
        if status != 200:
            detail = raw[:300].decode("utf-8", "replace").strip()
            hint = {401: " (authentication failed: check the API key)", 403: " (forbidden)",
                    404: " (no such route or model)"}.get(status, "")
            raise RequestFailed(f"HTTP {status} from {url}{hint}: {detail}",
                                retryable=status in _RETRY_STATUSES, retry_after=_retry_after(headers))
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise RequestFailed(f"reply from {url} is not JSON: {raw[:120]!r}", retryable=True) from None

    def _call(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        """:meth:`_attempt` with retries; raises the last :class:`RequestFailed`."""
        for attempt in range(self.max_retries + 1):
            try:
                return self._attempt(method, path, body)
            except RequestFailed as exc:
                if not exc.retryable or attempt == self.max_retries:
                    raise
                wait_s = min(8.0, 0.5 * 2**attempt) * (1 - 0.25 * random.random())
                if exc.retry_after is not None:
                    if exc.retry_after > self.max_retry_wait_s:
                        raise RequestFailed(
                            f"{exc}; the server asks to retry after {exc.retry_after:g} s, more than "
                            f"max_retry_wait_s={self.max_retry_wait_s:g}: rerun later",
                            retryable=False) from None
                    wait_s = exc.retry_after
                time.sleep(wait_s)
        raise AssertionError("unreachable: the loop returns or raises")

    def _one(self, request: GenerationRequest) -> Generation:
        reply = self._call("POST", "/chat/completions", self._body(request))
        return parse_completion(reply, request.sampling.n)

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
                    except RequestFailed as exc:
                        errors.append(f"request {index}: {exc}")
                        if self.on_error == "raise":
                            continue
                        n = requests[index].sampling.n
                        generation = Generation(texts=[""] * n, finish_reasons=["error"] * n)
                    yield index, generation
                fill()
        if errors and self.on_error == "raise":
            shown = "\n  ".join(errors[:5])
            raise BackendError(f"{len(errors)} of {len(indices)} requests failed:\n  {shown}")


def parse_completion(reply: Any, n: int) -> Generation:
    """A chat-completions reply as a :class:`Generation` of exactly ``n`` texts.

    A reply without ``n`` well-formed choices raises :class:`RequestFailed`: an empty
    ``choices`` list is a broken server, not ``n`` empty answers, and must never be cached."""
    choices = reply.get("choices") if isinstance(reply, dict) else None
    if not isinstance(choices, list) or len(choices) != n:
        got = len(choices) if isinstance(choices, list) else "no"
        raise RequestFailed(f"reply has {got} choices, expected {n}", retryable=True)
    texts, reasons = [], []
    for position, choice in enumerate(sorted(choices, key=lambda c: c.get("index", 0) if isinstance(c, dict) else 0)):
        message = choice.get("message") if isinstance(choice, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(message, dict) or not isinstance(content, (str, type(None))):
            raise RequestFailed(f"reply choice {position} has no message content", retryable=True)
        texts.append(content or "")
        reasons.append(choice.get("finish_reason") or "stop")
    usage = reply.get("usage") if isinstance(reply.get("usage"), dict) else {}
    prompt_tokens = usage.get("prompt_tokens")
    completion_tokens = usage.get("completion_tokens")
    return Generation(
        texts=texts,
        finish_reasons=reasons,
        prompt_tokens=prompt_tokens if isinstance(prompt_tokens, int) else None,
        completion_tokens=[completion_tokens] if isinstance(completion_tokens, int) and n == 1 else [],
    )
