"""Phase 4: 13-gram decontamination, the shortcut probe and two-stage difficulty calibration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import golongrl.inference
from golongrl.data.config import CalibrationConfig, DataConfig
from golongrl.data.decontam import build_index, decontaminate
from golongrl.data.refine import probe_threshold, refine, stage_one_label, stage_two_label
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


def _source(rows: list[dict]):
    return lambda: (json.loads(json.dumps(r)) for r in rows)


def test_two_stage_calibration_and_shortcut_probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [_row(f"r{i}", f"Question number {i}?") for i in range(5)]
    small = {"Question number 0?": 4, "Question number 1?": 2}  # easy, medium, rest unsolved
    large = {"Question number 2?": 3, "Question number 3?": 1}  # medium, hard, r4 discarded
    policies = {"small": _ScriptedPolicy(small, rows), "large": _ScriptedPolicy(large, rows),
                "blind": _ScriptedPolicy({"Question number 1?": 2}, rows)}
    monkeypatch.setattr(golongrl.inference, "make_backend", lambda spec, **kw: policies[spec])
    config = DataConfig.model_validate({
        "calibration": {"enabled": True, "small_policy": "small", "large_policy": "large", "rollouts": 4, "batch_size": 2},
        "shortcut_probe": {"enabled": True, "policy": "blind", "rollouts": 4, "margin": 0.1},
    })
    verdicts, report = refine(config, _source(rows), get_counter("smollm2"), tmp_path)
    kept = [r for r in rows if verdicts.keep(r)]
    labels = {r["extra_info"]["uid"]: verdicts.notes[r["extra_info"]["uid"]]["difficulty"] for r in kept}
    assert labels == {"r0": "easy", "r2": "medium", "r3": "hard"}
    assert verdicts.dropped() == {"calibration": 1, "shortcut": 1}
    # Exact match has a gold-independent baseline of 0, so a blind pass rate of 0.5 is a shortcut.
    probe = report["shortcut_probe"]
    assert max(probe["baselines"]["precise_retrieval"].values()) == 0.0
    assert probe["threshold"]["precise_retrieval"] == pytest.approx(0.1)
    assert report["difficulty"] == {"discard": 1, "easy": 1, "hard": 1, "medium": 1}
    assert verdicts.notes["r0"]["pass_rate_small"] == 1.0 and verdicts.notes["r1"]["shortcut_pass_rate"] == 0.5
    # Rerun: every pass rate comes from the logs in the work folder, no policy is asked again.
    calls = {k: p.calls for k, p in policies.items()}
    refine(config, _source(rows), get_counter("smollm2"), tmp_path)
    assert {k: p.calls for k, p in policies.items()} == calls


def test_probe_threshold_follows_each_metrics_blind_baseline(tmp_path: Path) -> None:
    """Multiple choice earns 0.25 blind: a context-free pass rate of 0.25 is no shortcut there,
    though it would be for exact match."""
    rows = []
    for i, letter in enumerate("ABCD"):
        row = _row(f"m{i}", f"Which option is right for item {i}?\n(A) w\n(B) x\n(C) y\n(D) z", answer=letter)
        row.update(data_source="selection", ability="evidence-grounded comprehension and reasoning")
        row["extra_info"].update(task_type="comprehension", candidates=["w", "x", "y", "z"])
        rows.append(row)
    config = DataConfig.model_validate({"shortcut_probe": {"enabled": True, "policy": "guess-a", "rollouts": 4}})

    class GuessA:
        name = "guess-a"

        def generate(self, requests, *, progress=False):
            return [Generation(texts=["The correct answer is (A)"] * r.sampling.n) for r in requests]

    verdicts, report = refine(config, _source(rows), get_counter("smollm2"), tmp_path, backends={"guess-a": GuessA()})
    assert report["shortcut_probe"]["threshold"]["comprehension"] == pytest.approx(0.25 + 0.1)
    assert verdicts.dropped() == {"shortcut": 1}  # only the row whose gold is A, answered 4/4
    assert not verdicts.keep(rows[0]) and all(verdicts.keep(r) for r in rows[1:])


class _FailsAfter:
    """Answers correctly, then raises on the ``limit``-th call (an endpoint that goes away)."""

    def __init__(self, rows: list[dict], limit: int) -> None:
        self.name = "flaky"
        self.answers = {r["extra_info"]["question"]: reference_response(r) for r in rows}
        self.limit, self.calls, self.asked = limit, 0, []

    def generate(self, requests, *, progress=False):
        self.calls += 1
        if self.calls >= self.limit:
            raise ConnectionError("endpoint went away")
        out = []
        for req in requests:
            question = req.messages[-1]["content"].split("Question: ", 1)[1].split("\n\n", 1)[0]
            self.asked.append(question)
            out.append(Generation(texts=[self.answers[question]] * req.sampling.n))
        return out


def test_calibration_streams_to_disk_and_resumes_after_a_crash(tmp_path: Path) -> None:
    rows = [_row(f"s{i}", f"Streamed question {i}?") for i in range(7)]
    config = DataConfig.model_validate({
        "calibration": {"enabled": True, "small_policy": "flaky", "rollouts": 1, "batch_size": 2, "keep_unsolved": True},
    })
    flaky = _FailsAfter(rows, limit=3)
    with pytest.raises(ConnectionError):
        refine(config, _source(rows), get_counter("smollm2"), tmp_path, backends={"flaky": flaky})
    logged = [json.loads(line) for line in (tmp_path / "calibration.jsonl").read_text().splitlines()]
    assert [item["uid"] for item in logged] == ["s0", "s1", "s2", "s3"]  # two batches survived the crash
    healthy = _FailsAfter(rows, limit=10**9)
    verdicts, report = refine(config, _source(rows), get_counter("smollm2"), tmp_path, backends={"flaky": healthy})
    assert healthy.asked == [f"Streamed question {i}?" for i in (4, 5, 6)]  # only what was missing
    assert report["difficulty"] == {"easy": 7} and all(verdicts.keep(r) for r in rows)


def test_probe_threshold_is_not_lifted_by_a_lucky_strategy_on_few_rows() -> None:
    # One multiple-choice row: the constant letter matching its gold scores 1.0.
    assert probe_threshold({"constant_A": 1.0, "constant_B": 0.0}, 1, "comprehension", 0.1) < 0.45
    assert probe_threshold({"constant_A": 0.26}, 10_000, "comprehension", 0.1) == pytest.approx(0.36, abs=1e-3)
    assert probe_threshold({"echo_question": 0.0}, 50, "precise_retrieval", 0.1) == pytest.approx(0.1)


def test_thinking_budget_adds_tokens_and_demands_a_closed_think_block(tmp_path: Path) -> None:
    rows = [_row("k0", "Budgeted question?")]
    seen = []

    class Thinker:
        name = "thinker"

        def generate(self, requests, *, progress=False):
            seen.extend(r.sampling.max_new_tokens for r in requests)
            # An answer without the closing tag: a response cut off mid-thought.
            return [Generation(texts=["<think>\nThe answer is Paris", "<think>\nok\n</think>\nParis"]) for _ in requests]

    config = DataConfig.model_validate({"calibration": {
        "enabled": True, "small_policy": "thinker", "rollouts": 2, "max_new_tokens": 32, "thinking_budget": 512,
        "keep_unsolved": True}})
    verdicts, _ = refine(config, _source(rows), get_counter("smollm2"), tmp_path, backends={"thinker": Thinker()})
    assert seen == [544]
    assert verdicts.notes["k0"]["pass_rate_small"] == 0.5


def test_calibration_through_an_openai_compatible_endpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from openai_stub_server import StubServer, last_user_message

    monkeypatch.setenv("GOLONGRL_CACHE", str(tmp_path / "cache"))
    rows = [_row(f"o{i}", f"Endpoint question {i}?") for i in range(3)]

    def reply(body: dict) -> str:
        return "Paris" if "question 1?" in last_user_message(body) else "London"

    with StubServer(reply=reply) as server:
        config = DataConfig.model_validate({"calibration": {
            "enabled": True, "small_policy": f"openai:{server.base_url}#small-model", "rollouts": 2,
            "keep_unsolved": True}})
        verdicts, report = refine(config, _source(rows), get_counter("smollm2"), tmp_path)
    assert report["difficulty"] == {"easy": 1, "hard": 2}
    assert verdicts.notes["o1"]["pass_rate_small"] == 1.0


def test_calibration_runs_through_a_local_transformers_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOLONGRL_CACHE", str(tmp_path / "cache"))
    rows = [_row(f"t{i}", f"What is item {i}?") for i in range(3)]
    config = DataConfig.model_validate({
        "calibration": {"enabled": True, "small_policy": "tiny", "rollouts": 2, "max_new_tokens": 4, "keep_unsolved": True},
    })
    verdicts, report = refine(config, _source(rows), get_counter("smollm2"), tmp_path)
    # A random tiny model never answers: every row is unsolved, kept as hard.
    assert [verdicts.notes[r["extra_info"]["uid"]]["difficulty"] for r in rows] == ["hard"] * 3
    assert all(verdicts.notes[r["extra_info"]["uid"]]["pass_rate_small"] == 0.0 for r in rows)
    assert report["difficulty"] == {"hard": 3} and verdicts.dropped() == {}
