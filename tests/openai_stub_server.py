"""A scriptable local OpenAI-compatible server for tests and benchmarks (stdlib only).

Usage::

    from openai_stub_server import StubReply, StubServer

    with StubServer(reply="Therefore, the answer is 42") as server:
        backend = make_backend(f"openai:{server.base_url}#stub-model")
        ...
        assert server.request_count == 3

``server.base_url`` is ``http://127.0.0.1:<free port>/v1``. The server answers
``POST /v1/chat/completions`` (and ``GET /v1/models``) on a background thread, one thread per
connection, with HTTP/1.1 keep-alive.

Scripting the answers (``reply=``):

* a string: every request gets that assistant message;
* a callable ``reply(body) -> str | dict | StubReply`` receiving the parsed request JSON (use
  :func:`last_user_message` for the prompt). A dict is sent as a JSON string (for JSON-output
  tests); a :class:`StubReply` also sets status code, delay and finish reason per request;
* a list of rules ``[(substring, answer), ...]``: the first rule whose substring occurs in the last
  user message answers (answer may be any of the above); ``default=`` answers the rest.

Misbehaviours (a :class:`StubReply` field each): ``choices=0`` answers ``{"choices": []}``;
``pad_bytes=N`` adds N bytes of padding to the reply (a huge reply); ``trickle_s=T`` sends the
body one byte every T seconds; ``headers={...}`` adds response headers (e.g. ``Retry-After``
with a 429 status). ``server.authorizations`` records every request's ``Authorization`` header.

Faults and timing: ``server.fail_next(n, status=500)`` makes the next ``n`` requests fail;
``delay_s=`` (constructor or attribute) sleeps before every answer, for timeout and concurrency
tests. Requests with ``n > 1`` get ``n`` choices (``reply`` is called once per choice, with
``body["_choice_index"]`` set).

Observations: ``server.requests`` (parsed bodies, arrival order), ``server.request_count``,
``server.max_in_flight`` (the most requests handled at once), ``server.reset_stats()``; the
last two also as JSON from ``GET /v1/stats`` (for a server run in another process, see
:func:`serve_in_subprocess`).
An ``Authorization: Bearer <key>`` header is required when ``api_key=`` is given (else 401).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Union


@dataclass
class StubReply:
    """One scripted answer: assistant text (or a dict sent as JSON), HTTP status, extra delay."""

    content: str | dict[str, Any] = ""
    status: int = 200
    delay_s: float = 0.0
    finish_reason: str = "stop"
    choices: int | None = None
    """Send this many choices instead of the ``n`` asked for (0: ``{"choices": []}``)."""
    pad_bytes: int = 0
    """Padding added to the reply JSON (an oversized reply)."""
    trickle_s: float = 0.0
    """Send the body one byte every this many seconds (a server that never times out a read)."""
    headers: dict[str, str] | None = None
    """Extra response headers, e.g. ``{"Retry-After": "3600"}``."""


ReplyValue = Union[str, dict[str, Any], StubReply]
Reply = Union[ReplyValue, Callable[[dict[str, Any]], ReplyValue], Sequence[tuple[str, Any]]]


def last_user_message(body: dict[str, Any]) -> str:
    """The content of the last ``user`` message of a chat-completions request body."""
    for message in reversed(body.get("messages", [])):
        if message.get("role") == "user":
            content = message.get("content", "")
            if isinstance(content, list):  # OpenAI content parts
                return "".join(part.get("text", "") for part in content if isinstance(part, dict))
            return str(content)
    return ""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The listen backlog defaults to 5, which refuses connections at concurrency 64.
    request_queue_size = 256
    stub: StubServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and hung up is part of the tests, not a server error.
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers do
    # Headers and body go out in separate writes; with Nagle's algorithm on, the client's
    # delayed ACK would add ~40 ms to every request.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence stderr
        return

    def _send_json(self, status: int, payload: dict[str, Any], scripted: StubReply | None = None) -> None:
        if scripted is not None and scripted.pad_bytes:
            payload = {**payload, "padding": "x" * scripted.pad_bytes}
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in ((scripted.headers or {}) if scripted is not None else {}).items():
            self.send_header(name, value)
        self.end_headers()
        if scripted is not None and scripted.trickle_s:
            stub = self.server.stub  # type: ignore[attr-defined]
            for position in range(len(data)):
                if stub._stopping.is_set():
                    return
                self.wfile.write(data[position : position + 1])
                self.wfile.flush()
                time.sleep(scripted.trickle_s)
            return
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        stub = self.server.stub  # type: ignore[attr-defined]
        if self.path.rstrip("/").endswith("/stats"):
            self._send_json(200, {"request_count": stub.request_count, "max_in_flight": stub.max_in_flight})
        elif self.path.rstrip("/").endswith("/models"):
            self._send_json(200, {"object": "list", "data": [{"id": "stub-model", "object": "model"}]})
        else:
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        stub = self.server.stub  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        with stub._lock:
            stub.authorizations.append(self.headers.get("Authorization"))
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})
            return
        if stub.api_key is not None and self.headers.get("Authorization") != f"Bearer {stub.api_key}":
            self._send_json(401, {"error": {"message": "bad api key", "type": "auth"}})
            return
        try:
            body = json.loads(raw)
        except json.JSONDecodeError as exc:
            self._send_json(400, {"error": {"message": f"invalid JSON: {exc}"}})
            return
        status, payload, scripted = stub._handle(body)
        self._send_json(status, payload, scripted)


class StubServer:
    """See the module docstring. Use as a context manager or call ``start()``/``stop()``."""

    def __init__(
        self,
        reply: Reply = "OK",
        *,
        default: ReplyValue = "OK",
        delay_s: float = 0.0,
        api_key: str | None = None,
        model: str = "stub-model",
    ) -> None:
        self.reply = reply
        self.default = default
        self.delay_s = delay_s
        self.api_key = api_key
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self.authorizations: list[str | None] = []
        self._stopping = threading.Event()
        self.max_in_flight = 0
        self._in_flight = 0
        self._failures: list[int] = []
        self._lock = threading.Lock()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle -----------------------------------------------------------------------------
    def start(self) -> StubServer:
        self._httpd = _Server(("127.0.0.1", 0), _Handler)  # port 0: the OS picks a free port
        self._httpd.stub = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # trickling handlers give up, so shutdown does not wait on them
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> StubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # scripting and observations ---------------------------------------------------------------
    def fail_next(self, n: int = 1, status: int = 500) -> None:
        """Answer the next ``n`` chat requests with HTTP ``status`` (they are still counted)."""
        with self._lock:
            self._failures.extend([status] * n)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self.requests)

    def reset_stats(self) -> None:
        with self._lock:
            self.requests.clear()
            self.authorizations.clear()
            self.max_in_flight = 0

    # request handling ------------------------------------------------------------------------
    def _resolve(self, body: dict[str, Any]) -> StubReply:
        reply: Any = self.reply
        if isinstance(reply, (list, tuple)):
            prompt = last_user_message(body)
            reply = next((answer for key, answer in reply if key in prompt), self.default)
        if callable(reply):
            reply = reply(body)
        if isinstance(reply, StubReply):
            return reply
        return StubReply(content=reply)

    def _handle(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], StubReply | None]:
        with self._lock:
            self.requests.append(body)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            failure = self._failures.pop(0) if self._failures else None
        try:
            if self.delay_s:
                time.sleep(self.delay_s)
            if failure is not None:
                return failure, {"error": {"message": "injected failure", "type": "server_error"}}, None
            choices = []
            scripted = None
            for index in range(int(body.get("n") or 1)):
                scripted = self._resolve({**body, "_choice_index": index})
                if scripted.delay_s:
                    time.sleep(scripted.delay_s)
                if scripted.status != 200:
                    error = {"error": {"message": "scripted failure", "type": "server_error"}}
                    return scripted.status, error, scripted
                content = scripted.content
                text = content if isinstance(content, str) else json.dumps(content)
                choices.append(
                    {
                        "index": index,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": scripted.finish_reason,
                    }
                )
            if scripted is not None and scripted.choices is not None:
                choices = (choices * (scripted.choices or 1))[: scripted.choices]
            prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
            completion_tokens = sum(len(c["message"]["content"].split()) for c in choices)
            return 200, {
                "id": f"chatcmpl-stub-{len(self.requests)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", self.model),
                "choices": choices,
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }, scripted
        finally:
            with self._lock:
                self._in_flight -= 1


def _serve_forever(reply: str, delay_s: float, port_queue: Any) -> None:
    server = StubServer(reply, delay_s=delay_s).start()
    port_queue.put(server.port)
    threading.Event().wait()


def serve_in_subprocess(reply: str = "OK", *, delay_s: float = 0.0) -> tuple[str, Any]:
    """Start a stub in a child process (so client and server do not share one GIL, as in a
    throughput benchmark); returns ``(base_url, process)``; call ``process.terminate()``."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=_serve_forever, args=(reply, delay_s, queue), daemon=True)
    process.start()
    return f"http://127.0.0.1:{queue.get(timeout=60)}/v1", process
