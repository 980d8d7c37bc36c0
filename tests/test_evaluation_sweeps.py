"""Length x depth sweeps: target lengths, determinism, scoring, and a tiny model end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from inference_fixtures import tiny_model_dir  # noqa: F401, F811 - pytest fixture
from typer.testing import CliRunner

from golongrl.cli import app
from golongrl.evaluation.sweeps import (
    LENGTH_TOLERANCE,
    SWEEP_TASKS,
    generate_sweep,
    generate_sweep_item,
    score_sweep,
)
from golongrl.evaluation.text import chat_token_count
from golongrl.inference import load_tokenizer


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer("smollm2")


@pytest.mark.parametrize("task", SWEEP_TASKS)
def test_items_hit_target_length_within_one_percent(task: str, tok) -> None:
    items = generate_sweep(task, tokenizer=tok, lengths=(2048, 12000), depths=(0.0, 0.5, 1.0), samples=1)
    assert len(items) == 6
    for item in items:
        target = int(item.groups["length"])
        measured = chat_token_count(item.messages, tok)
        assert measured == item.extra["n_tokens"]
        assert abs(measured - target) <= LENGTH_TOLERANCE * target, (item.id, measured)


def test_items_are_deterministic_and_seed_dependent(tok) -> None:
    a = generate_sweep_item("mrcr", 4096, 0.5, 2, tokenizer=tok, seed=0)
    b = generate_sweep_item("mrcr", 4096, 0.5, 2, tokenizer=tok, seed=0)
    c = generate_sweep_item("mrcr", 4096, 0.5, 2, tokenizer=tok, seed=1)
    assert a.messages == b.messages and a.gold == b.gold
    assert a.messages != c.messages


def test_needle_sits_at_the_requested_depth(tok) -> None:
    for depth in (0.0, 1.0):
        item = generate_sweep_item("retrieval", 8192, depth, 0, tokenizer=tok)
        content = item.messages[0]["content"]
        offset = content.index(f"Document [{item.gold}]")
        documents = content.count("Document [")
        before = content[:offset].count("Document [")
        assert before == (0 if depth == 0.0 else documents - 1)


def test_mrcr_sweep_structure(tok) -> None:
    item = generate_sweep_item("mrcr", 8192, 0.25, 2, tokenizer=tok)  # sample 2 -> 8 needles
    prefix = item.extra["random_string_to_prepend"]
    topic = item.messages[-1]["content"].split("about this question: ", 1)[1].rsplit(" Do not include", 1)[0]
    asked = [i for i, m in enumerate(item.messages) if m["role"] == "user" and m["content"].endswith(topic)]
    assert item.groups["needles"] == "8" and len(asked) == 8
    ordinal = int("".join(ch for ch in item.messages[-1]["content"].split(" to the ", 1)[1].split(" ", 1)[0] if ch.isdigit()))
    assert item.gold == prefix + item.messages[asked[ordinal - 1] + 1]["content"]


def test_sweep_scoring_rules(tok) -> None:
    retrieval = generate_sweep_item("retrieval", 2048, 0.5, 0, tokenizer=tok)
    ordering = generate_sweep_item("ordering", 2048, 0.5, 0, tokenizer=tok)
    mrcr = generate_sweep_item("mrcr", 2048, 0.5, 0, tokenizer=tok)
    right = [f"Therefore, the answer is [{retrieval.gold}]", "Therefore, the answer is " + ", ".join(ordering.gold), mrcr.gold]
    wrong = ["Therefore, the answer is [12345]", "Therefore, the answer is " + ", ".join(reversed(ordering.gold)), mrcr.gold[10:]]
    for task, item, good, bad in zip(SWEEP_TASKS, (retrieval, ordering, mrcr), right, wrong):
        assert score_sweep(task, [item], [good])[0].score == 1.0
        assert score_sweep(task, [item], [bad])[0].score == 0.0
    partial = "Therefore, the answer is " + ", ".join([ordering.gold[0], ordering.gold[2], ordering.gold[1], ordering.gold[3]])
    assert score_sweep("ordering", [ordering], [partial])[0].score == pytest.approx(5 / 6)


def test_tiny_model_end_to_end_sweep(tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = [
        "eval", str(tiny_model_dir), "--sweep", "retrieval,mrcr", "--lengths", "1K,2K", "--depths", "1",
        "--max-new-tokens", "4", "--out", str(out), "--no-published", "--tokenizer", "smollm2",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    for task in ("retrieval", "mrcr"):
        summary = json.loads((out / f"sweep-{task}.json").read_text())
        assert summary["n"] == 2 and 0.0 <= summary["overall"] <= 100.0
        assert set(summary["by_group"]["length"]) == {"1024", "2048"}
        for kind in ("heatmap", "curve"):
            png = out / f"sweep-{task}-{kind}.png"
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        rows = [json.loads(line) for line in (out / f"sweep-{task}.predictions.jsonl").read_text().splitlines()]
        assert all(abs(r["n_tokens"] - int(r["groups"]["length"])) <= 0.01 * int(r["groups"]["length"]) for r in rows)
    assert "### sweep-mrcr" in (out / "summary.md").read_text()
