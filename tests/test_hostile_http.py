"""A misbehaving OpenAI-compatible server and secrets (issue 14 items 1, 4, 7, 9).

Every server here is the scripted stub on 127.0.0.1; waits are bounded by the backend's own
limits (a hang shows up as pytest's failure to finish, never as a timed assert).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from openai_stub_server import StubReply, StubServer

from golongrl.inference import GenerationRequest, SamplingParams, chat, make_backend
from golongrl.inference.cache import GenerationCache
from golongrl.inference.judge import make_judge
from golongrl.inference.openai_backend import BackendError


def _requests(count: int) -> list[GenerationRequest]:
    return [GenerationRequest(chat(f"question {i}"), SamplingParams(max_new_tokens=8)) for i in range(count)]


def test_empty_choices_is_an_error_and_never_cached(tmp_path: Path) -> None:
    cache = tmp_path / "cache.sqlite"
    with StubServer(StubReply("ignored", choices=0)) as server:
        backend = make_backend(f"openai:{server.base_url}#m", cache=cache, max_retries=0)
        with pytest.raises(BackendError, match="reply has 0 choices, expected 1"):
            backend.generate(_requests(2))
        soft = make_backend(f"openai:{server.base_url}#m", cache=cache, max_retries=0, on_error="empty")
        assert [g.finish_reasons for g in soft.generate(_requests(2))] == [["error"], ["error"]]
    assert len(GenerationCache(cache)) == 0
    with StubServer("fixed") as server:  # a rerun asks again instead of serving empty replies
        out = make_backend(f"openai:{server.base_url}#m", cache=cache).generate(_requests(2))
        assert server.request_count == 2 and [g.texts for g in out] == [["fixed"], ["fixed"]]


def test_fewer_choices_than_asked_is_an_error() -> None:
    with StubServer(StubReply("one", choices=1)) as server:
        backend = make_backend(f"openai:{server.base_url}#m", max_retries=0)
        request = GenerationRequest(chat("q"), SamplingParams(max_new_tokens=8, n=3, temperature=1.0))
        with pytest.raises(BackendError, match="reply has 1 choices, expected 3"):
            backend.generate([request])


def test_trickling_server_hits_the_total_deadline() -> None:
    # One byte every 0.2 s: each read succeeds well within 0.5 s, so only a total deadline stops it
    # (the reply is ~300 bytes, about a minute of trickle).
    with StubServer(StubReply("slow", trickle_s=0.2)) as server:
        backend = make_backend(f"openai:{server.base_url}#m", timeout_s=0.5, max_retries=0)
        with pytest.raises(BackendError, match="no complete reply .* within timeout_s=0.5"):
            backend.generate(_requests(1))
        assert server.request_count == 1


def test_retry_after_within_cap_is_honoured() -> None:
    replies = iter([StubReply(status=429, headers={"Retry-After": "0.05"}), "after the wait"])
    with StubServer(lambda body: next(replies)) as server:
        out = make_backend(f"openai:{server.base_url}#m", max_retries=2).generate(_requests(1))
        assert out[0].texts == ["after the wait"] and server.request_count == 2


def test_retry_after_past_cap_fails_with_that_reason() -> None:
    with StubServer(StubReply(status=429, headers={"Retry-After": "3600"})) as server:
        backend = make_backend(f"openai:{server.base_url}#m", max_retries=4, max_retry_wait_s=5)
        with pytest.raises(BackendError, match="retry after 3600 s, more than max_retry_wait_s=5"):
            backend.generate(_requests(1))
        assert server.request_count == 1  # no blind retries against a server that said "an hour"


def test_oversized_reply_is_refused_and_not_cached(tmp_path: Path) -> None:
    cache = tmp_path / "cache.sqlite"
    with StubServer(StubReply("big", pad_bytes=200_000)) as server:
        backend = make_backend(f"openai:{server.base_url}#m", cache=cache, max_reply_bytes=100_000, max_retries=3)
        with pytest.raises(BackendError, match="exceeds max_reply_bytes=100000"):
            backend.generate(_requests(1))
        assert server.request_count == 1  # a size refusal is not retried
    assert len(GenerationCache(cache)) == 0


def test_always_500_fails_after_bounded_retries() -> None:
    with StubServer(StubReply(status=500)) as server:
        backend = make_backend(f"openai:{server.base_url}#m", max_retries=1)
        with pytest.raises(BackendError, match="1 of 1 requests failed:\n  request 0: HTTP 500"):
            backend.generate(_requests(1))
        assert server.request_count == 2


def test_judge_spec_never_gets_the_policy_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "policy-secret")
    monkeypatch.delenv("JUDGE_API_KEY", raising=False)
    monkeypatch.delenv("JUDGE_BASE_URL", raising=False)
    with StubServer("[[YES]]") as server:
        judge = make_judge(f"openai:{server.base_url}#judge")
        judge.backend.generate(_requests(1))
        assert server.authorizations == ["Bearer EMPTY"]


def test_judge_key_goes_only_to_the_judge_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUDGE_API_KEY", "judge-secret")
    with StubServer("[[YES]]") as judge_host, StubServer("[[YES]]") as other_host:
        monkeypatch.setenv("JUDGE_BASE_URL", judge_host.base_url)
        make_judge().backend.generate(_requests(1))
        make_judge(f"openai:{judge_host.base_url}#judge").backend.generate(_requests(1))
        make_judge(f"openai:{other_host.base_url}#judge").backend.generate(_requests(1))
        assert judge_host.authorizations == ["Bearer judge-secret"] * 2
        assert other_host.authorizations == ["Bearer EMPTY"]


def test_openai_key_bound_to_its_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "policy-secret")
    with StubServer() as own, StubServer() as foreign:
        monkeypatch.setenv("OPENAI_BASE_URL", own.base_url)
        make_backend(f"openai:{own.base_url}#m").generate(_requests(1))
        make_backend(f"openai:{foreign.base_url}#m").generate(_requests(1))
        assert own.authorizations == ["Bearer policy-secret"]
        assert foreign.authorizations == ["Bearer EMPTY"]
