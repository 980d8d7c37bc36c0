"""The task registry: every unit scores its own reference response, survives junk, labels are
resolved once (an ability-only row scores), and metric primitives stay below the tasks."""

from __future__ import annotations

import subprocess
import sys

import pytest

from golongrl.data.schema import validate_record
from golongrl.rewards import compute_score
from golongrl.rewards.scoring import ScoreOptions, prepare, score_prepared
from golongrl.tasks import TASK_TYPES, get_task
from rewards_fixtures import ROWS

JUNK = [
    "", " ", "\x00", "<think>", "</think>", "</think></think>", "[Answer]", "**[Answer]**", "\\boxed{",
    "\\boxed{" * 200, "{" * 500, "<answer>" * 50, "[" * 300 + "]" * 300, "1: " * 1000, "一二三。" * 500,
    "\u202e\u200b" * 100, "9" * 5000, "\n" * 10_000, "The correct answer is (" * 100,
]


@pytest.mark.parametrize("name", list(TASK_TYPES))
def test_reference_response_scores_one_in_hardened_mode(name: str) -> None:
    task, fields = get_task(name), ROWS[name]
    gold = task.parse_gold(fields["ground_truth"], fields["extra_info"], data_source=fields["data_source"])
    assert task.score(gold, task.reference_response(gold), "hardened", ScoreOptions()) == (1.0, None)
    assert task.instruction and task.answer_format and 0.0 <= task.chance < 1.0


@pytest.mark.parametrize("mode", ["hardened", "faithful"])
@pytest.mark.parametrize("name", list(TASK_TYPES))
def test_junk_scores_in_range_without_raising(name: str, mode: str) -> None:
    fields = ROWS[name]
    prepared = prepare(fields["data_source"], fields["ground_truth"], fields["extra_info"], mode)
    for junk in JUNK:
        for response in (junk, "<think>x</think>" + junk):
            value, reason = score_prepared(prepared, response, mode, ScoreOptions())
            assert 0.0 <= value <= 1.0 and value < 1.0, (junk[:20], reason)


@pytest.mark.parametrize("name", list(TASK_TYPES))
def test_baselines_are_built_without_the_gold(name: str) -> None:
    task = get_task(name)
    row = {"prompt": [{"role": "user", "content": "Some context.\n\nQuestion: q?"}],
           "extra_info": {"question": "q?"}}
    baselines = task.baselines(row)
    assert baselines and all(isinstance(v, str) for v in baselines.values())


def test_a_row_labelled_only_by_its_ability_scores() -> None:
    row = {
        "data_source": "some_new_source",
        "ability": "Precise Long-Range Information Retrieval",
        "prompt": [{"role": "user", "content": "ctx\n\nWhich word?"}],
        "reward_model": {"ground_truth": {"doc_ids": [], "golden_label": "make", "summary": ""}},
        "extra_info": {"question": "Which word?"},
    }
    valid = validate_record(row)
    assert valid["extra_info"]["task_type"] == "precise_retrieval"
    assert compute_score(valid["data_source"], "make", valid["reward_model"]["ground_truth"], valid["extra_info"]) == 1.0


def test_metric_primitives_import_without_the_tasks_or_the_scorer() -> None:
    code = ("import sys, golongrl.rewards.metrics, golongrl.rewards.text, golongrl.rewards.lcs; "
            "print(any(m.startswith('golongrl.tasks') or m == 'golongrl.rewards.scoring' for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
