"""``golongrl audit``: gold-independent strategies against a real (tiny) build, JSON and PNG
outputs, flagging, and the context-free probe."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from golongrl.audit import audit_rows, report, rows_of
from golongrl.cli import app
from golongrl.data.config import load_config
from golongrl.data.pipeline import build_dataset
from golongrl.inference import Generation
from golongrl.tasks import TASK_TYPES

REPO = Path(__file__).resolve().parents[1]

#: Strategies no hardened metric may pay on any data (they carry no information at all).
ALWAYS_ZERO = {"echo_question", "every_letter", "several_boxes", "empty_table"}


@pytest.fixture(scope="module")
def tiny_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("audit-build")
    build_dataset(load_config(REPO / "configs" / "data-tiny.yaml"), out)
    return out


def test_cli_writes_json_and_png_and_exit_status_follows_the_flags(tiny_build: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["audit", str(tiny_build), "--output", str(tmp_path)])
    data = json.loads((tmp_path / "audit.json").read_text())
    assert (tmp_path / "audit.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result.exit_code == (0 if data["passed"] else 1), result.output
    assert set(data["tasks"]) == set(TASK_TYPES)
    for name, task in data["tasks"].items():
        assert task["gold"] == pytest.approx(1.0), name
        assert "another_row_gold" in task["strategies"] or task["rows"] == 1
        assert name in result.output
    assert not list(tmp_path.glob(".*.tmp"))


def test_hardened_pays_no_information_free_strategy(tiny_build: Path) -> None:
    audits = audit_rows(rows_of(tiny_build))
    for name, audit in audits.items():
        assert audit.gold == pytest.approx(1.0)
        for strategy, (mean, _) in audit.strategies.items():
            if strategy in ALWAYS_ZERO or strategy.startswith("constant_label"):
                assert mean == 0.0, (name, strategy)


def _row(question: str, items: list[str], candidates: list[str]) -> dict[str, Any]:
    return {
        "data_source": "longbench_pro",
        "prompt": [{"role": "user", "content": f"context\n\nQuestion: {question}"}],
        "ability": "high-recall exhaustive retrieval and verification",
        "reward_model": {"ground_truth": {"doc_ids": items, "golden_label": "", "summary": "English"}},
        "extra_info": {"reward_mode": "T5.1 Full-Sentence Citation Alignment", "question": question,
                       "task_type": "exhaustive_retrieval", "candidates": candidates},
    }


GOLDS = [["a", "b"], ["c", "d"], ["a", "c"], ["b", "d"]]
ROWS = [_row(f"Which of these occur? q{i}", gold, ["a", "b", "c", "d"]) for i, gold in enumerate(GOLDS)]


def test_faithful_mode_is_flagged_for_listing_every_candidate() -> None:
    faithful = audit_rows(ROWS, mode="faithful")["exhaustive_retrieval"]
    assert faithful.strategies["all_candidates_in_order"][0] == pytest.approx(2 / 3)
    assert "all_candidates_in_order" in faithful.flagged
    hardened = audit_rows(ROWS)["exhaustive_retrieval"]
    assert hardened.strategies["all_candidates_in_order"][0] == 0.0
    assert hardened.flagged == []
    summary = report({"exhaustive_retrieval": faithful}, data="x", mode="faithful", gate=0.3)
    assert summary["passed"] is False and "all_candidates_in_order" in summary["flagged"]["exhaustive_retrieval"]


class _Echo:
    """A backend that knows every answer without reading the context (a leaked benchmark)."""

    name = "echo"

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def generate(self, requests: Any, *, progress: bool = False) -> list[Generation]:
        self.prompts += [r.messages[-1]["content"] for r in requests]
        return [Generation(texts=["[Answer]\n" + "\n".join(gold)]) for gold in GOLDS]


def test_context_free_probe_asks_the_question_alone_and_is_scored() -> None:
    backend = _Echo()
    audit = audit_rows(ROWS, backend=backend)["exhaustive_retrieval"]
    assert audit.strategies["context_free_probe"] == (1.0, 4)
    assert "context_free_probe" in audit.flagged
    assert all("context" not in p and p.startswith("Which of these occur?") for p in backend.prompts)
    assert all(TASK_TYPES["exhaustive_retrieval"].instruction in p for p in backend.prompts)


def test_bad_data_path_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["audit", str(tmp_path)])
    assert result.exit_code == 2 and "no dataset split" in result.output
