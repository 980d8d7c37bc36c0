"""Every benchmark end to end through `golongrl eval`: official-format files written here, the
model and the judge served by local stub servers, scores checked against hand-worked values."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from openai_stub_server import StubServer, last_user_message
from typer.testing import CliRunner

from golongrl.cli import app
from golongrl.evaluation.benchmarks import BenchmarkDataError, LoadOptions, get_benchmark

P = "Xy12Ab34Cd"

# (substring of the prompt, model reply): what the stub "model" answers.
MODEL_RULES = [
    ("What is the margin?", "<think>12.5 over 100</think>Therefore, the answer is 12.5%"),
    ("How many units?", "Therefore, the answer is 8"),
    ("Which colour is the sky?", "The text says blue.\nANSWER: B"),
    ("Which animal barks?", "ANSWER: A"),
    ("Who wrote Emma?", "Therefore, the answer is Jane Austen."),
    ("When was it published?", "Therefore, the answer is eighteen thirteen"),
    ("2nd poem about tapirs", P + "tapirs are round"),
    ("1st poem about owls", "owls at night"),
    ("total revenue", "Summing up, the answer is: 42 million"),
    ("how many schools", "the answer is: 9"),
    ("capital of France", "Therefore, the answer is Paris"),
    ("When did I move?", "You moved in May."),
    ("What is my cat called?", "I don't know."),
]
# What the stub "judge" answers (first matching substring wins; default [[NO]]).
JUDGE_RULES = [
    ("Answer 1: 1813\nAnswer 2: eighteen thirteen", "same year [[YES]]"),
    ("Answer 1: 42 million\nAnswer 2: 42", "equivalent [[YES]]"),
    ("Answer 1: Paris\nAnswer 2: Paris", "[[YES]]"),
    ("Model's Response: You moved in May.", "[[CORRECT]]"),
]


def _write_json(path: Path, rows: object) -> Path:
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    _write_json(
        root / "docmath.json",
        [
            {"question_id": "d1", "question": "What is the margin?", "paragraphs": ["Revenue 100.", "Profit 12.5."], "ground_truth": 12.5},
            {"question_id": "d2", "question": "How many units?", "paragraphs": ["Seven units."], "ground_truth": 7},
        ],
    )
    (root / "lbv2").mkdir()
    _write_json(
        root / "lbv2" / "data.json",
        [
            {"_id": "l1", "question": "Which colour is the sky?", "context": "The sky is blue.", "choice_A": "red", "choice_B": "blue", "choice_C": "green", "choice_D": "black", "answer": "B", "length": "short", "difficulty": "easy", "domain": "Single-Document QA"},
            {"_id": "l2", "question": "Which animal barks?", "context": "Dogs bark.", "choice_A": "cat", "choice_B": "cow", "choice_C": "dog", "choice_D": "owl", "answer": "C", "length": "long", "difficulty": "hard", "domain": "Single-Document QA"},
        ],
    )
    _write_jsonl(
        root / "frames.jsonl",
        [
            {"Prompt": "Who wrote Emma?", "Answer": "Jane Austen", "wiki_items": [{"title": "Emma", "text": "Emma is a novel by Jane Austen."}]},
            {"Prompt": "When was it published?", "Answer": "1813", "wiki_items": [{"title": "P&P", "text": "Published in 1813."}]},
        ],
    )
    tapir = [{"role": "user", "content": "write a poem about tapirs"}, {"role": "assistant", "content": "tapirs are round"}]
    _write_jsonl(
        root / "mrcr.jsonl",
        [
            {"id": "m1", "prompt": json.dumps(tapir + [{"role": "user", "content": f"Prepend {P} to the 2nd poem about tapirs."}]), "answer": P + "tapirs are round", "random_string_to_prepend": P, "n_needles": 2},
            {"id": "m2", "prompt": json.dumps(tapir + [{"role": "user", "content": f"Prepend {P} to the 1st poem about owls."}]), "answer": P + "owls at night", "random_string_to_prepend": P, "n_needles": 4},
        ],
    )
    _write_jsonl(
        root / "corpusqa.jsonl",
        [
            {"id": "financial_en_1", "prompt": [{"role": "user", "content": "docs... What is the total revenue?"}], "question": "What is the total revenue?", "answer": "42"},
            {"id": "education_en_7", "prompt": [{"role": "user", "content": "docs... how many schools?"}], "question": "how many schools?", "answer": "12"},
        ],
    )
    (root / "lbv1qa").mkdir()
    for subset in ("narrativeqa", "qasper", "hotpotqa", "2wikimqa", "musique"):
        _write_jsonl(
            root / "lbv1qa" / f"{subset}.jsonl",
            [{"_id": f"{subset}-1", "input": "What is the capital of France?" if subset != "musique" else "Who?", "context": "France's capital is Paris.", "answers": ["Paris", "paris city"]}],
        )
    _write_json(
        root / "longmemeval.json",
        [
            {"question_id": "q1", "question_type": "single-session-user", "question": "When did I move?", "answer": "May", "haystack_sessions": [[{"role": "user", "content": "I moved in May"}]], "haystack_dates": ["2023/05/01"]},
            {"question_id": "q2_abs", "question_type": "single-session-user", "question": "What is my cat called?", "answer": "not mentioned", "haystack_sessions": [[{"role": "user", "content": "hello"}]], "haystack_dates": ["2023/05/02"]},
        ],
    )
    return root


@pytest.fixture
def servers() -> Iterator[tuple[StubServer, StubServer]]:
    with StubServer(MODEL_RULES, default="no idea") as model, StubServer(JUDGE_RULES, default="[[NO]]") as judge:
        yield model, judge


def test_all_benchmarks_through_the_cli(data_dir: Path, servers: tuple[StubServer, StubServer], tmp_path: Path) -> None:
    model, judge = servers
    out = tmp_path / "out"
    args = [
        "eval", f"openai:{model.base_url}#policy", "--data-dir", str(data_dir), "--judge", f"openai:{judge.base_url}#judge",
        "--tokenizer", "smollm2", "--max-new-tokens", "64", "--out", str(out),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    expected = {
        "docmath": 50.0,  # rule hit on 12.5 %; 8 vs 7 fails rule and judge
        "lbv2": 50.0,
        "frames": 100.0,  # CEM on "Jane Austen", judge YES on 1813
        "mrcr": 50.0,  # prefix present and exact; missing prefix scores 0
        "corpusqa": 50.0,
        "lbv1qa": 80.0,  # macro mean over five subsets, musique's question gets [[NO]]
        "longmemeval": 50.0,
    }
    assert {k: round(v["overall"], 6) for k, v in summary.items()} == expected
    assert summary["docmath"]["components"] == {"rule_acc": 50.0, "judge_acc": 0.0}
    assert summary["lbv2"]["by_group"]["length"] == {"long": {"score": 0.0, "n": 1}, "short": {"score": 100.0, "n": 1}}
    assert summary["mrcr"]["by_group"]["needles"]["2"]["score"] == 100.0
    assert summary["longmemeval"]["by_group"]["ability"]["abstention"]["score"] == 0.0
    assert summary["corpusqa"]["by_group"]["domain"]["financial_en"]["score"] == 100.0
    table = (out / "summary.md").read_text()
    assert "| Model | Avg | DocMath | LBV2 | Frames | MRCR | CorpusQA | LBV1-QA |" in table
    assert f"| **openai:{model.base_url}#policy** (this run) | 63.3 | 50.0 | 50.0 | 100.0 | 50.0 | 50.0 | 80.0 |" in table
    rows = [json.loads(line) for line in (out / "docmath.predictions.jsonl").read_text().splitlines()]
    assert rows[0]["response"].startswith("<think>")  # raw text kept; scoring saw it stripped

    # A rerun is answered from the cache: no new model or judge requests.
    before = (model.request_count, judge.request_count)
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert (model.request_count, judge.request_count) == before


def test_rule_only_fallback_without_judge(data_dir: Path, servers: tuple[StubServer, StubServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model, _ = servers
    monkeypatch.delenv("JUDGE_BASE_URL", raising=False)
    out = tmp_path / "out"
    args = ["eval", f"openai:{model.base_url}#p", "-b", f"lbv1qa={data_dir / 'lbv1qa'}", "-b", f"corpusqa={data_dir / 'corpusqa.jsonl'}", "--out", str(out), "--max-new-tokens", "8"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert "corpusqa" not in summary  # judge-only benchmark skipped with a message
    assert summary["lbv1qa"]["overall"] == pytest.approx(80.0)  # token F1 stands in: "Paris" == "Paris"


def test_malformed_files_name_file_row_and_field(tmp_path: Path) -> None:
    bad = _write_jsonl(tmp_path / "mrcr.jsonl", [{"prompt": "[]", "answer": "x"}])
    with pytest.raises(BenchmarkDataError, match=r"mrcr.jsonl, row 1: missing field 'random_string_to_prepend'"):
        get_benchmark("mrcr").loader(bad, LoadOptions())
    broken = tmp_path / "data.json"
    broken.write_text("{not json")
    with pytest.raises(BenchmarkDataError, match="invalid JSON"):
        get_benchmark("lbv2").loader(broken, LoadOptions())
    with pytest.raises(BenchmarkDataError, match="none of"):
        get_benchmark("frames").loader(tmp_path, LoadOptions())
    with pytest.raises(KeyError, match="unknown benchmark"):
        get_benchmark("nope")


def test_truncation_applies_the_token_budget(data_dir: Path) -> None:
    from golongrl.inference import load_tokenizer

    tok = load_tokenizer("smollm2")
    items = get_benchmark("docmath").loader(data_dir / "docmath.json", LoadOptions(tokenizer=tok, max_input_tokens=20, limit=1))
    content = items[0].messages[0]["content"]
    assert len(items) == 1 and content.startswith("Please read") and content.endswith('(insert answer here)".')
    assert len(tok.encode(content, add_special_tokens=False)) <= 22
    with pytest.raises(BenchmarkDataError, match="needs the target tokenizer"):
        get_benchmark("docmath").loader(data_dir / "docmath.json", LoadOptions(max_input_tokens=20))


def test_routing_of_last_user_message() -> None:
    assert last_user_message({"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}]}]}) == "a"


def test_decontamination_report_per_benchmark(tmp_path: Path) -> None:
    from golongrl.evaluation.decontamination import decontamination_markdown, decontamination_report

    leaked = "According to the annual report, what was the percentage change in operating margin between the two years?"
    train = _write_jsonl(
        tmp_path / "train.jsonl",
        [
            {"extra_info": {"question": "Context aside: " + leaked}},
            {"extra_info": {"question": "Which chapter introduces the narrator's brother?"}},
        ],
    )
    report = decontamination_report({"docmath": [leaked, "short one"], "lbv2": ["Something entirely different about owls and the night sky over the hills of Wales."]}, train)
    assert report["docmath"]["removed"] == 1 and report["docmath"]["benchmark_items_hit"] == 1
    assert report["docmath"]["contamination_rate"] == 0.5
    assert report["lbv2"]["removed"] == 0
    assert "| docmath | 2 | 1 | 1 / 2 | 50.00 % |" in decontamination_markdown(report)


def test_interrupted_run_resumes_from_the_cache(data_dir: Path, tmp_path: Path) -> None:
    from openai_stub_server import StubReply

    out = tmp_path / "out"
    owls = lambda body: StubReply(status=500) if "owls" in last_user_message(body) else P + "tapirs are round"  # noqa: E731
    with StubServer(owls) as flaky:
        args = ["eval", f"openai:{flaky.base_url}#p", "-b", f"mrcr={data_dir / 'mrcr.jsonl'}", "--out", str(out), "--tokenizer", "smollm2", "--max-retries", "0"]
        first = CliRunner().invoke(app, args)
        assert first.exit_code == 1 and "rerun the same command" in first.output
    with StubServer("owls at night") as healthy:
        args[1] = f"openai:{healthy.base_url}#p"
        second = CliRunner().invoke(app, args)
        assert second.exit_code == 0, second.output
        assert healthy.request_count == 1  # only the failed item is sent again
    assert json.loads((out / "mrcr.json").read_text())["overall"] == 50.0


class _AnswerBackend:
    """Answers the training fixtures' rows: right for even ``i``, wrong for odd, as a rollout
    would (thinking block, then the answer)."""

    name = "answer-stub"

    def generate(self, requests, *, progress=False):  # noqa: ANN001, ANN201
        import re

        from golongrl.inference.base import Generation

        out = []
        for request in requests:
            text = request.messages[-1]["content"]
            i = int(re.search(r"Aurora-(\d+)", text).group(1))
            right = i % 2 == 0
            if "twice the crates" in text:
                answer = f"\\boxed{{{2 * (i + 7) if right else 1}}}"
            elif "(A) tea" in text:
                answer = f"The correct answer is ({'A' if right else 'C'})"
            else:
                answer = str(i + 7) if right else "no idea"
            out.append(Generation(texts=[f"<think>Reading the ledger.</think>\n{answer}"] * request.sampling.n))
        return out


def test_golongrl_benchmark_and_training_evaluation_score_alike(tmp_path: Path) -> None:
    # The `golongrl` benchmark and the trainer's held-out evaluation are one implementation
    # (golongrl.evaluation.policy): same rows, same responses -> same per-task reward.
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from training_fixtures import write_dataset

    from golongrl.data.io import read_valid_records
    from golongrl.evaluation.runner import RunSettings, run_benchmark
    from golongrl.inference.base import SamplingParams
    from golongrl.training.evaluate import evaluate_policy

    split = write_dataset(tmp_path / "eval.jsonl", per_task=4)
    sampling = SamplingParams(max_new_tokens=8)
    bench = get_benchmark("golongrl")
    items = bench.loader(split, LoadOptions())
    settings = RunSettings("answer-stub", sampling, None, None, None)
    summary = run_benchmark(bench, items, _AnswerBackend(), tmp_path / "out", judge=None, settings=settings)
    rows = [row for _, row in read_valid_records(split)]
    result = evaluate_policy(_AnswerBackend(), rows, sampling=sampling, workers=0)

    tasks = {"precise_retrieval", "comprehension", "numerical_reasoning"}
    assert set(result.per_task) == set(summary["by_group"]["task"]) == tasks
    for task in tasks:
        assert result.per_task[task] == pytest.approx(0.5)
        assert summary["by_group"]["task"][task] == {"score": pytest.approx(100 * result.per_task[task]), "n": 4}
    assert summary["overall"] == pytest.approx(100 * result.overall)
