"""Phase 4: 13-gram decontamination, the shortcut probe and two-stage difficulty calibration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import golongrl.inference
from golongrl.data.config import CalibrationConfig, DataConfig
from golongrl.data.decontam import build_index, decontaminate
from golongrl.data.refine import refine, stage_one_label, stage_two_label
from golongrl.data.schema import DataError
from golongrl.data.tokens import get_counter
from golongrl.data.verify import reference_response
from golongrl.inference import Generation


def _row(uid: str, question: str, answer: str = "Paris") -> dict:
    return {
        "data_source": "EM",
        "prompt": [{"role": "user", "content": f"Some context.\n\nQuestion: {question}"}],
        "ability": "precise long-range information retrieval",
        "reward_model": {"style": "rule", "ground_truth": {"doc_ids": [], "golden_label": answer, "summary": "English"}},
        "extra_info": {"uid": uid, "question": question, "task_type": "precise_retrieval", "split": "train"},
    }


def test_thirteen_gram_overlap_removes_only_contaminated_questions(tmp_path: Path) -> None:
    leaked = "Which river flows through the ancient city that the first chapter of the report describes in detail"
    bench = tmp_path / "bench.jsonl"
    bench.write_text(json.dumps({"text": f"Preamble. {leaked}? More text follows here."}) + "\n"
                     + json.dumps({"text": "Short item"}) + "\n")
    listing = tmp_path / "benchmarks.lst"
    listing.write_text("# eval sets\nbench.jsonl\n")
    counter = get_counter("smollm2")
    index = build_index([listing], counter, n=13)
    rows = [_row("a", leaked + "?"), _row("b", "What is the capital of a country that has no capital at all today?"),
            _row("c", "the first chapter of the report")]
    kept, report = decontaminate(rows, index, counter)
    assert [r["extra_info"]["uid"] for r in kept] == ["b"]
    assert report["removed"] == 2 and report["benchmark_items"] == 2 and report["benchmark_items_hit"] == 1
    bench.write_text(json.dumps({"question": "x"}) + "\n")
    with pytest.raises(DataError, match=r"bench.jsonl: row 1: field 'text'"):
        build_index([bench], counter)


def test_stage_labels_follow_thresholds() -> None:
    cfg = CalibrationConfig(easy_min=0.8, medium_min=0.2, large_medium_min=0.5, large_hard_min=0.0)
    assert [stage_one_label(p, cfg) for p in (1.0, 0.8, 0.5, 0.2, 0.1, 0.0)] == ["easy", "easy", "medium", "medium", "unsolved", "unsolved"]
    assert [stage_two_label(p, cfg) for p in (0.75, 0.5, 0.25, 0.0)] == ["medium", "medium", "hard", "discard"]


class _ScriptedPolicy:
    """Answers correctly for the first ``k`` rollouts of rows whose question is in ``skill``."""

    def __init__(self, skill: dict[str, int], rows: list[dict]) -> None:
        self.name = "scripted"
        self.skill = skill
        self.answers = {r["extra_info"]["question"]: reference_response(r) for r in rows}
        self.calls = 0

    def generate(self, requests, *, progress=False):
        self.calls += 1
        out = []
        for req in requests:
            text = req.messages[-1]["content"]
            question = text.split("Question: ", 1)[1].split("\n\n", 1)[0]
            k = self.skill.get(question, 0)
            n = req.sampling.n
            out.append(Generation(texts=[self.answers[question] if i < k else "no idea" for i in range(n)]))
        return out


def test_two_stage_calibration_and_shortcut_probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [_row(f"r{i}", f"Question number {i}?") for i in range(5)]
    small = {"Question number 0?": 4, "Question number 1?": 2}  # easy, medium, rest unsolved
    large = {"Question number 2?": 3, "Question number 3?": 1}  # medium, hard, r4 discarded
    policies = {"small": _ScriptedPolicy(small, rows), "large": _ScriptedPolicy(large, rows),
                "blind": _ScriptedPolicy({"Question number 1?": 2}, rows)}
    monkeypatch.setattr(golongrl.inference, "make_backend", lambda spec, **kw: policies[spec])
    config = DataConfig.model_validate({
        "calibration": {"enabled": True, "small_policy": "small", "large_policy": "large", "rollouts": 4},
        "shortcut_probe": {"enabled": True, "policy": "blind", "rollouts": 4, "max_pass_rate": 0.25},
    })
    kept, dropped, report = refine(config, [json.loads(json.dumps(r)) for r in rows], get_counter("smollm2"), tmp_path)
    labels = {r["extra_info"]["uid"]: r["extra_info"]["difficulty"] for r in kept}
    assert labels == {"r0": "easy", "r2": "medium", "r3": "hard"}
    assert dropped == {"shortcut": 1, "calibration": 1}
    assert report["difficulty"] == {"discard": 1, "easy": 1, "hard": 1, "medium": 1}
    assert kept[0]["extra_info"]["pass_rate_small"] == 1.0
    # Rerun: every pass rate comes from the logs in the work folder, no policy is asked again.
    calls = {k: p.calls for k, p in policies.items()}
    refine(config, [json.loads(json.dumps(r)) for r in rows], get_counter("smollm2"), tmp_path)
    assert {k: p.calls for k, p in policies.items()} == calls


def test_calibration_runs_through_a_local_transformers_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOLONGRL_CACHE", str(tmp_path / "cache"))
    rows = [_row(f"t{i}", f"What is item {i}?") for i in range(3)]
    config = DataConfig.model_validate({
        "calibration": {"enabled": True, "small_policy": "tiny", "rollouts": 2, "max_new_tokens": 4, "keep_unsolved": True},
    })
    kept, dropped, report = refine(config, rows, get_counter("smollm2"), tmp_path)
    # A random tiny model never answers: every row is unsolved, kept as hard.
    assert [r["extra_info"]["difficulty"] for r in kept] == ["hard"] * 3
    assert all(r["extra_info"]["pass_rate_small"] == 0.0 for r in kept)
    assert report["difficulty"] == {"hard": 3} and dropped == {"calibration": 0}
