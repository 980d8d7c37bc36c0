"""The OpenAI-compatible backend and the judge against the local stub server."""

from __future__ import annotations

from pathlib import Path

import pytest
from inference_fixtures import stub_server  # noqa: F401, F811 - pytest fixture
from openai_stub_server import StubReply, StubServer, last_user_message

from golongrl.inference import GenerationRequest, SamplingParams, chat, make_backend
from golongrl.inference.judge import (
    Judge,
    JudgeCase,
    verdict_correct_brackets,
    verdict_lbv1,
    verdict_yes_brackets,
    verdict_yes_substring,
)
from golongrl.inference.openai_backend import BackendError, OpenAICompatibleBackend


def _requests(count: int, **sampling: object) -> list[GenerationRequest]:
    return [GenerationRequest(chat(f"question {i}"), SamplingParams(max_new_tokens=16, **sampling)) for i in range(count)]


def test_spec_parsing_and_model_discovery(stub_server: StubServer) -> None:
    backend = make_backend(f"openai:{stub_server.base_url}")
    assert isinstance(backend, OpenAICompatibleBackend)
    assert backend.model == "stub-model"  # from GET /models
    named = make_backend(f"{stub_server.base_url}#served-name")
    assert named.model == "served-name"


def test_answers_in_order_with_sampling_fields(stub_server: StubServer) -> None:
    stub_server.reply = lambda body: "echo " + last_user_message(body)
    backend = make_backend(f"openai:{stub_server.base_url}#m", concurrency=4)
    out = backend.generate(_requests(6, temperature=0.7, top_p=0.95, seed=3, stop=("END",), enable_thinking=False))
    assert [g.texts for g in out] == [[f"echo question {i}"] for i in range(6)]
    body = stub_server.requests[0]
    assert body["temperature"] == 0.7 and body["top_p"] == 0.95 and body["seed"] == 3
    assert body["stop"] == ["END"] and body["max_tokens"] == 16
    assert body["chat_template_kwargs"] == {"enable_thinking": False}


def test_n_choices(stub_server: StubServer) -> None:
    stub_server.reply = lambda body: f"choice {body['_choice_index']}"
    out = make_backend(f"openai:{stub_server.base_url}#m").generate(_requests(1, n=3, temperature=1.0))
    assert out[0].texts == ["choice 0", "choice 1", "choice 2"]


def test_concurrency_limit_is_reached_and_respected() -> None:
    with StubServer(delay_s=0.15) as server:
        backend = make_backend(f"openai:{server.base_url}#m", concurrency=5)
        backend.generate(_requests(20))
        assert server.max_in_flight == 5
        assert server.request_count == 20


def test_retry_after_500(stub_server: StubServer) -> None:
    stub_server.fail_next(2, status=500)
    backend = make_backend(f"openai:{stub_server.base_url}#m", max_retries=3)
    out = backend.generate(_requests(1))
    assert out[0].texts == ["OK"]
    assert stub_server.request_count == 3


def test_timeout_raises_after_others_finish() -> None:
    slow = lambda body: StubReply("late", delay_s=2.0) if "question 1" in last_user_message(body) else "fast"  # noqa: E731
    with StubServer(slow) as server:
        backend = make_backend(f"openai:{server.base_url}#m", timeout_s=0.3, max_retries=0)
        with pytest.raises(BackendError, match="1 of 3 requests failed"):
            backend.generate(_requests(3))
        soft = make_backend(f"openai:{server.base_url}#m", timeout_s=0.3, max_retries=0, on_error="empty")
        out = soft.generate(_requests(3))
        assert [g.finish_reasons for g in out] == [["stop"], ["error"], ["stop"]]


def test_resume_from_cache_repeats_only_failures(tmp_path: Path) -> None:
    cache = tmp_path / "cache.sqlite"
    flaky = lambda body: StubReply(status=503) if "question 2" in last_user_message(body) else "fine"  # noqa: E731
    with StubServer(flaky) as server:
        first = make_backend(f"openai:{server.base_url}#m", cache=cache, max_retries=0)
        with pytest.raises(BackendError):
            first.generate(_requests(4))
        assert server.request_count == 4
    # A restarted server on another port: same model name, so the cache still applies.
    with StubServer("fixed") as server:
        second = make_backend(f"openai:{server.base_url}#m", cache=cache)
        out = second.generate(_requests(4))
        assert server.request_count == 1
        assert [g.texts[0] for g in out] == ["fine", "fine", "fixed", "fine"]
        assert [g.cached for g in out] == [True, True, False, True]


def test_api_key_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    with StubServer(api_key="sekrit") as server:
        monkeypatch.setenv("MY_KEY", "sekrit")
        ok = make_backend(f"openai:{server.base_url}#m", api_key_env="MY_KEY")
        assert ok.generate(_requests(1))[0].texts == ["OK"]
        monkeypatch.setenv("MY_KEY", "wrong")
        bad = make_backend(f"openai:{server.base_url}#m", api_key_env="MY_KEY", max_retries=0)
        with pytest.raises(BackendError, match="HTTP 401 .*authentication failed"):
            bad.generate(_requests(1))


@pytest.mark.parametrize(
    ("reply", "yes_sub", "yes_br", "lbv1", "correct"),
    [
        ("Explanation...\n[[YES]]", True, True, True, False),
        ("They differ. [[NO]]", False, False, False, False),
        ("YES they match but format forgotten", True, False, None, False),
        ("[[YES]] ... on reflection [[NO]]", True, False, True, False),
        ("final: [[ yes ]]", False, False, True, False),
        ("Final verdict: [[NO]] (not YES)", True, False, False, False),
        ("[[CORRECT]]", False, False, None, True),
        ("It is [[INCORRECT]]", False, False, None, False),
        ("[[CORRECT]] no wait [[INCORRECT]]", False, False, None, False),
        ("", False, False, None, False),
    ],
)
def test_verdict_parsing(reply: str, yes_sub: bool, yes_br: bool, lbv1: bool | None, correct: bool) -> None:
    assert verdict_yes_substring(reply) is yes_sub
    assert verdict_yes_brackets(reply) is yes_br
    assert verdict_lbv1(reply) is lbv1
    assert verdict_correct_brackets(reply) is correct


def test_judge_prompts_and_lbv1_reask(stub_server: StubServer) -> None:
    answers = iter(["I am not sure.", "Reasoning... [[Yes]]"])
    stub_server.reply = lambda body: next(answers)
    judge = Judge(make_backend(f"openai:{stub_server.base_url}#judge"))
    verdict = judge.judge("lbv1", [JudgeCase("Who?", "Alice", "alice")])[0]
    assert verdict.correct and verdict.attempts == 2
    first, second = stub_server.requests
    assert first["temperature"] == 0.0 and "seed" not in first and second["seed"] == 1
    assert "Answer 1: Alice\nAnswer 2: alice" in first["messages"][0]["content"]


def test_judge_protocol_message_layout(stub_server: StubServer) -> None:
    stub_server.reply = [("Answer 1: 42", "equivalent [[YES]]")]
    stub_server.default = "[[NO]]"
    judge = Judge(make_backend(f"openai:{stub_server.base_url}#judge"))
    # CorpusQA: model answer first; DocMath: gold first.
    corpus = judge.judge("corpusqa", [JudgeCase("q", "42", "41"), JudgeCase("q", "41", "42")])
    docmath = judge.judge("docmath", [JudgeCase("q", "41", "42")])
    assert [v.correct for v in corpus] == [True, False]
    assert docmath[0].correct is True
    system = stub_server.requests[0]["messages"][0]
    assert system["role"] == "system" and "[[YES]] or [[NO]]" in system["content"]
