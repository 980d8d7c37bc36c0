"""The multitask simulation: determinism, the share effect it exists to show, and the CLI."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from golongrl.cli import app
from golongrl.simulation import SimulationConfig, run_simulation, simulation_tables

TINY = {"seeds": (0,), "steps": 20, "num_prompts": 120, "prompts_per_step": 16, "generation_prompts": 24,
        "eval_every": 10}


@pytest.fixture(scope="module")
def result():
    return run_simulation(SimulationConfig(estimators=("grpo", "tmn", "dr_grpo"), **TINY))


def test_every_estimator_starts_from_the_same_policy(result):
    starts = {e: result.curves[e]["precise_retrieval"][0] for e in result.config.estimators}
    assert len(set(starts.values())) == 1
    assert result.curves["grpo"]["step"] == [0, 10, 20]


def test_normalised_estimators_learn_and_beat_unnormalised_on_the_rouge_like_task(result):
    for estimator in ("grpo", "tmn"):
        assert result.final[estimator]["headroom"][0] > 0
        assert result.final[estimator]["summarization"][0] > result.final["dr_grpo"]["summarization"][0]


def test_tmn_gives_each_task_about_its_share_of_prompts_and_dr_grpo_starves_rouge(result):
    tmn, dr = result.shares["tmn"], result.shares["dr_grpo"]
    for task in result.tasks:
        assert tmn["adv_share"][task] == pytest.approx(tmn["rate_num"][task], abs=0.02)
    assert dr["grad_share"]["summarization"] < 0.25 * dr["rate_num"]["summarization"]
    assert sum(tmn["grad_share"].values()) == pytest.approx(1.0)


def test_tables_render_for_every_estimator(result):
    summary, shares = simulation_tables(result)
    assert summary.row_count == 3 and shares.row_count == len(result.tasks)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="steps"):
        SimulationConfig(steps=0)
    with pytest.raises(ValueError, match="hard_fraction"):
        SimulationConfig(hard_fraction=2.0)


def test_simulate_command_writes_json_and_plots(tmp_path):
    runner = CliRunner()
    out = runner.invoke(app, ["simulate", "--out-dir", str(tmp_path), "--estimators", "tmn_reweight",
                              "--seeds", "1", "--steps", "3", "--grad-clip", "0.5"])
    assert out.exit_code == 0, out.output
    data = json.loads((tmp_path / "simulate-clip0.5.json").read_text())
    assert data["config"]["grad_clip"] == 0.5 and "tmn_reweight" in data["final"]
    for suffix in ("curves", "shares"):
        assert (tmp_path / f"simulate-clip0.5-{suffix}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_simulate_command_names_unknown_estimators(tmp_path):
    out = CliRunner().invoke(app, ["simulate", "--out-dir", str(tmp_path), "--estimators", "grpo,nope"])
    assert out.exit_code != 0
    assert "nope" in out.output
