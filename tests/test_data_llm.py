"""The LLM-backed construction path against a local OpenAI-compatible HTTP server: JSON
replies become verified rows, bad replies and endpoint failures are recorded (the build still
finishes), and a rerun is answered from the content-addressed cache."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from golongrl.data.config import DataConfig
from golongrl.data.io import read_records
from golongrl.data.pipeline import build_dataset
from golongrl.data.verify import reference_response
from golongrl.rewards import compute_score

from openai_stub_server import StubServer, last_user_message


def _reply(body: dict) -> str | dict:
    """A scripted model: quotes a real sentence of the passage it was given."""
    prompt = last_user_message(body)
    passage = prompt.split(":\n\n", 1)[1].rsplit("\n\n", 1)[0]
    sentences = [s for s in re.split(r"(?<=[.;:])\s+", passage) if 6 <= len(s.split()) <= 60 and "\n" not in s]
    evidence = sentences[len(sentences) // 2]
    if "Summarise the passage" in prompt:
        if "GNU" in passage:
            return "this is not JSON"
        return {"summary": "The passage sets out terms about copying, modifying and distributing covered works."}
    if "multiple-choice" in prompt:
        return {"question": "Which statement does the passage support?", "options": ["It does", "It does not", "Maybe", "Unclear"],
                "correct": "A", "evidence": evidence}
    return {"question": "Which word ends the quoted sentence?", "answer": evidence.split()[-1], "evidence": evidence}


@pytest.fixture()
def llm_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("GOLONGRL_CACHE", str(tmp_path / "cache"))

    def make(base_url: str) -> DataConfig:
        return DataConfig.model_validate({
            "samples_per_task": 0, "eval_samples_per_task": 0, "eval_fraction": 0,
            "corpus": {"default_domains": ["legal"], "max_dialogues": 0},
            "context": {"train_lengths": [512]},
            "llm": {"enabled": True, "backend": f"openai:{base_url}#stub-model", "samples_per_task": 3,
                    "max_retries": 0, "concurrency": 1},
        })

    return make


def test_llm_rows_verify_failures_recorded_and_rerun_is_cached(llm_config, tmp_path: Path) -> None:
    with StubServer(_reply) as server:
        config = llm_config(server.base_url)
        server.fail_next(1)
        build_dataset(config, tmp_path / "a")
        first = server.request_count
        rows = [r for _, r in read_records(tmp_path / "a" / "train.jsonl")]
        failures = [json.loads(line)["reason"] for line in (tmp_path / "a" / "failures.jsonl").read_text().splitlines()]
        assert first == 9
        assert sum("endpoint failed" in f for f in failures) == 1
        assert all(("not JSON" in f or "endpoint failed" in f) for f in failures)
        assert {r["extra_info"]["construction"] for r in rows} >= {"llm_span_question", "llm_multiple_choice"}
        assert len(rows) + len(failures) == 9
        for row in rows:
            score = compute_score(row["data_source"], reference_response(row), row["reward_model"]["ground_truth"], row["extra_info"])
            assert score >= 1 - 1e-6
        assert server.requests[0]["response_format"] == {"type": "json_object"}

        build_dataset(config, tmp_path / "b")
        # Only the request that failed is sent again; everything else comes from the cache.
        assert server.request_count == first + 1
        assert len(list(read_records(tmp_path / "b" / "train.jsonl"))) == len(rows) + 1
