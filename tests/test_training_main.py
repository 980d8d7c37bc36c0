"""`golongrl main --quick` on a tiny model: the run folder and report have the promised structure."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from typer.testing import CliRunner

from golongrl.cli import app

sys.path.insert(0, str(Path(__file__).parent))
from training_fixtures import REPO, write_dataset  # noqa: E402


def test_main_quick_writes_a_complete_report(tmp_path: Path) -> None:
    # Pre-built rows stand in for the default corpus build (over a minute on 2 cores; the data
    # pipeline's own tests cover it); everything after the build is the real main job.
    train = write_dataset(tmp_path / "train.jsonl", per_task=3)
    held_out = write_dataset(tmp_path / "eval.jsonl", per_task=2)
    run = tmp_path / "run"
    args = ["main", "--config", str(REPO / "configs" / "tiny-test.yaml"), "--output", str(run), "--quick",
            "--set", "data.build_config=null", "--set", f"data.train_files=[{train}]",
            "--set", f"data.eval_files=[{held_out}]", "--set", "rollout.max_new_tokens=8",
            "--set", "evaluation.max_new_tokens=8", "--set", "data.calibration_samples=2"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = (run / "report.md").read_text()
    for section in ("## Held-out reward per task", "## Training", "## Plots", "## Timings", "## Config"):
        assert section in report
    for task in ("precise_retrieval", "comprehension", "numerical_reasoning"):
        assert f"| {task} | 2 |" in report
    assert "Did not move" in report or "Moved beyond noise" in report
    for png in ("task_reward", "rate_adv", "rate_num", "diagnostics", "eval_before_after"):
        assert (run / "plots" / f"{png}.png").stat().st_size > 1000
        assert f"plots/{png}.png" in report
    timings = json.loads((run / "timings.json").read_text())
    assert {"eval_before_s", "train_s", "eval_after_s", "total_s"} <= set(timings)
    before = json.loads((run / "eval" / "before.json").read_text())
    assert set(before["per_task"]) == {"precise_retrieval", "comprehension", "numerical_reasoning"}
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    assert (run / "final" / "config.json").is_file()
    # The difficulty filter ran; a random model never scores, so it kept nothing and training
    # fell back to every row (the report says so).
    calibration = json.loads((run / "data" / "calibration.json").read_text())
    assert calibration["prompts"] == 9 and calibration["samples"] == 2
    assert "Difficulty filter:" in report

    # Rerunning resumes: nothing left to train, finished evaluations are reused.
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert json.loads((run / "eval" / "before.json").read_text()) == before


def test_readme_train_command_works_as_written(tmp_path: Path, monkeypatch) -> None:
    # README: `golongrl train --config configs/tiny-test.yaml --output runs/tiny`; the preset names
    # no data files, so the trainer builds the data its build_config describes into the run.
    monkeypatch.chdir(REPO)
    run = tmp_path / "tiny"
    result = CliRunner().invoke(app, ["train", "--config", "configs/tiny-test.yaml", "--output", str(run),
                                      "--set", "training.total_steps=1", "--set", "rollout.max_new_tokens=4"])
    assert result.exit_code == 0, result.output
    assert (run / "data" / "train.jsonl").is_file()
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1]


def test_unknown_estimator_fails_at_config_load_naming_the_key(tmp_path: Path) -> None:
    import pytest

    from golongrl.training.config import ConfigError, load_config

    bad = tmp_path / "typo.yaml"
    bad.write_text((REPO / "configs" / "tiny-test.yaml").read_text().replace("name: tmn_reweight", "name: tmn_rewieght"))
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    assert "algorithm.estimator" in str(err.value) and "tmn_rewieght" in str(err.value) and "tmn_reweight" in str(err.value)


def test_difficulty_filter_keeps_prompts_the_policy_solves_sometimes(tmp_path: Path, monkeypatch) -> None:
    import torch

    from golongrl.inference.models import load_causal_lm, load_tokenizer
    from golongrl.training.main_job import calibrate_training_rows
    from training_fixtures import tiny_config, use_fake_reward

    use_fake_reward(monkeypatch)  # graded scores in {0, .25, ..., 1} from the response text
    cfg = tiny_config(write_dataset(tmp_path / "train.jsonl", per_task=3), data={"calibration_samples": 3})
    tok, model = load_tokenizer("tiny:0"), load_causal_lm("tiny:0")
    torch.manual_seed(0)
    files = calibrate_training_rows(model, tok, cfg, tmp_path / "cal", log=lambda _: None)
    summary = json.loads((tmp_path / "cal" / "calibration.json").read_text())
    assert summary["prompts"] == 9 and sum(v["prompts"] for v in summary["per_task"].values()) == 9
    assert sum(v["kept"] + v["never"] + v["always"] for v in summary["per_task"].values()) == 9
    kept = [json.loads(line) for line in (tmp_path / "cal" / "calibrated-train.jsonl").read_text().splitlines()]
    assert len(kept) == summary["kept"] >= 1
    assert files == [str(tmp_path / "cal" / "calibrated-train.jsonl")]
    # A rerun reuses the calibration instead of sampling again.
    monkeypatch.setattr("golongrl.training.main_job.generate_rollouts", None)
    assert calibrate_training_rows(model, tok, cfg, tmp_path / "cal", log=lambda _: None) == files
