"""`golongrl train --engine verl`: the CLI route into the verl launcher."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("verl")

from typer.testing import CliRunner  # noqa: E402

from golongrl.cli import app  # noqa: E402
from verl_fixtures import write_train_parquet  # noqa: E402

pytestmark = pytest.mark.verl

PRESET = Path(__file__).resolve().parents[1] / "configs" / "verl-qwen3-4b-tmn-reweight-16x8.yaml"


def test_dry_run_prints_the_verl_command_with_golongrls_estimator_and_output_dir(tmp_path):
    data = write_train_parquet(tmp_path / "train.parquet", 1024)
    result = CliRunner().invoke(
        app, ["train", "--engine", "verl", "--config", str(PRESET), "--output", str(tmp_path / "run"), "--dry-run",
              "--set", f"data.train_files=[{data}]", "--set", "data.eval_files=[]"]
    )
    assert result.exit_code == 0, result.output
    assert "-m golongrl.engines.verl.main" in result.output
    assert "algorithm.adv_estimator=tmn_reweight" in result.output
    assert "trainer.total_training_steps=20" in result.output  # 10 epochs x 1024 // 512
    assert str((tmp_path / "run").resolve()) in result.output


def test_dry_run_without_readable_data_names_the_key_to_set(tmp_path):
    result = CliRunner().invoke(
        app, ["train", "--engine", "verl", "--config", str(PRESET), "--output", str(tmp_path / "run"), "--dry-run"]
    )
    assert result.exit_code == 2
    assert "training.total_steps" in result.output and "data.train_files" in result.output


def test_unknown_engine_and_local_dry_run_are_refused(tmp_path):
    tiny = Path(__file__).resolve().parents[1] / "configs" / "tiny-test.yaml"
    bad = CliRunner().invoke(app, ["train", "--engine", "spark", "--config", str(tiny), "--output", str(tmp_path)])
    assert bad.exit_code == 2 and "--engine must be" in bad.output
    local = CliRunner().invoke(app, ["train", "--config", str(tiny), "--output", str(tmp_path), "--dry-run"])
    assert local.exit_code == 2 and "--engine verl only" in local.output


def test_a_bad_verl_key_names_the_file_and_key(tmp_path):
    result = CliRunner().invoke(
        app,
        ["train", "--engine", "verl", "--config", str(PRESET), "--output", str(tmp_path),
         "--set", "verl.no_such_key=1", "--dry-run"],
    )
    assert result.exit_code == 2
    assert "no_such_key" in result.output
