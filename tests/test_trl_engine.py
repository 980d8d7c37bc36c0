"""golongrl on TRL 1.16.0: the preset maps onto GRPOConfig, golongrl's reward scores the
completions, and the advantages TRL's loss consumes are golongrl's (3 CPU steps, tiny model)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("trl")

import torch  # noqa: E402

from golongrl.advantages import compute_advantages  # noqa: E402
from golongrl.rewards import compute_score  # noqa: E402
from golongrl.training.config import ConfigError  # noqa: E402
from training_fixtures import fake_score_batch, write_dataset  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PRESET = REPO / "configs" / "trl-qwen3-4b-1gpu.yaml"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    from golongrl.inference.models import make_tiny_causal_lm

    return make_tiny_causal_lm(tmp_path_factory.mktemp("trl-model") / "tiny")


def _cpu_overrides(model: Path, data: Path, estimator: str = "tmn_reweight") -> list[str]:
    """The shipped preset shrunk to the CPU: tiny model, 2 prompts x 4 rollouts per step, 3 steps."""
    return [
        f"model.name_or_path={model}", "model.dtype=float32", "model.gradient_checkpointing=false",
        "model.lora.enabled=false", f"data.train_files=[{data}]", "rollout.n=4", "rollout.max_new_tokens=8",
        "batch.prompts_per_step=2", "batch.generation_prompts=2", "batch.mini_batch_prompts=2",
        "batch.micro_batch_size=4", "training.total_steps=3", "checkpoint.every_steps=0",
        "algorithm.rollout_is.enabled=false", f"algorithm.estimator.name={estimator}",
        "trl.use_vllm=false", "trl.bf16=false", "trl.use_cpu=true", "trl.reward_options={require_think: false}",
        "logging.tensorboard=false", "logging.progress=false",
    ]


def test_preset_maps_every_key_onto_grpo_config(tmp_path):
    from golongrl.engines.trl import launcher

    job = launcher.load_job(PRESET, overrides=["trl.use_cpu=true"])  # bf16 without a GPU needs use_cpu
    args = launcher.grpo_config(job, tmp_path)
    assert (args.num_generations, args.max_completion_length, args.temperature) == (8, 4096, 1.0)
    assert (args.epsilon, args.epsilon_high, args.delta, args.loss_type) == (0.2, 0.28, 3.0, "dapo")
    assert (args.beta, args.num_iterations, args.learning_rate, args.weight_decay) == (0.0, 1, 1e-5, 0.1)
    # one optimizer step = 16 prompts x 8 rollouts, one sequence per forward pass
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps, args.steps_per_generation) == (1, 128, 128)
    assert args.use_vllm and args.vllm_importance_sampling_mode == "token_truncate"
    assert (args.vllm_importance_sampling_clip_min, args.vllm_importance_sampling_clip_max) == (0.5, 5.0)
    assert launcher.lora_config(job).r == 64
    assert job.trl.reward_options == {"require_think": True}


@pytest.mark.parametrize(("override", "key"), [
    ("algorithm.dynamic_sampling.enabled=true", "algorithm.dynamic_sampling"),
    ("algorithm.rollout_is.veto_threshold=1.0e-4", "algorithm.rollout_is.veto_threshold"),
    ("trl.use_vllm=false", "algorithm.rollout_is"),
    ("algorithm.loss_agg=seq-mean-token-sum", "algorithm.loss_agg"),
    ("trl.reward_options={}", "trl.reward_options.require_think"),
    ("batch.generation_prompts=32", "batch.generation_prompts"),
    ("training.time_budget_s=60", "training.time_budget_s"),
])
def test_settings_trl_cannot_run_are_refused_with_file_and_key(override, key):
    from golongrl.engines.trl import launcher

    with pytest.raises(ConfigError, match=rf"trl-qwen3-4b-1gpu.yaml: {key}"):
        launcher.load_job(PRESET, overrides=[override])


def test_golongrl_reward_scores_trl_completions_like_compute_score():
    from golongrl.engines.trl import GoLongRLReward
    from training_fixtures import make_row

    rows = [make_row("precise_retrieval", 3), make_row("comprehension", 4)]
    encoded = [json.dumps({k: r[k] for k in ("data_source", "reward_model", "extra_info")}) for r in rows]
    responses = ["<think>count</think>10", "<think>x</think>The correct answer is (B)"]
    logged: dict[str, float] = {}
    reward = GoLongRLReward(mode="hardened", timeout_s=5.0, workers=0, require_think=True)
    scores = reward(prompts=[r["prompt"] for r in rows], completions=[[{"role": "assistant", "content": t}]
                                                                       for t in responses],
                    golongrl_row=encoded, log_metric=lambda name, value: logged.__setitem__(name, value))
    expected = [compute_score(r["data_source"], t, r["reward_model"]["ground_truth"], r["extra_info"],
                              mode="hardened", require_think=True) for r, t in zip(rows, responses)]
    assert scores == expected and scores[0] == 1.0
    assert logged == {"reward_failures/timeout": 0.0, "reward_failures/error": 0.0, "reward_failures/gold": 0.0}


def test_three_cpu_steps_train_on_golongrls_advantages(tmp_path, tiny_model, monkeypatch):
    """End to end through `golongrl train --engine trl`'s launcher. A random tiny model scores 0
    under the real rewards, so the scorer is swapped for a graded deterministic one (the real
    scorer is checked above): the advantages then have spread and TMN-Reweight differs from
    TRL's own baseline."""
    import golongrl.engines.trl.trainer as trl_trainer
    from golongrl.engines.trl import launcher

    monkeypatch.setattr(trl_trainer, "score_batch", fake_score_batch)
    data = write_dataset(tmp_path / "train.jsonl", per_task=4)
    job = launcher.load_job(PRESET, overrides=_cpu_overrides(tiny_model, data))
    trainer = launcher.build_trainer(job, tmp_path / "run")

    batches, loss_advantages = [], []
    generate = trainer._generate_and_score_completions
    compute_loss = trainer._compute_loss

    def recording_generate(inputs):
        out = generate(inputs)
        batches.append({"rewards": trainer._gathered_rewards.sum(dim=1).clone(),
                        "labels": [row["golongrl_label"] for row in inputs],
                        "golongrl": trainer.last_advantages.clone()})
        return out

    def recording_loss(model, inputs):
        loss_advantages.append(inputs["advantages"].detach().clone())
        return compute_loss(model, inputs)

    trainer._generate_and_score_completions = recording_generate
    trainer._compute_loss = recording_loss
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        trainer.train()

    # one generation batch per step, consumed in 2 accumulation slices of 4 completions
    assert trainer.state.global_step == 3 and len(batches) == 3 and len(loss_advantages) == 6
    moved = 0
    for batch, used in zip(batches, (torch.cat(loss_advantages[i:i + 2]) for i in range(0, 6, 2))):
        groups = np.arange(len(batch["rewards"])) // 4
        expected, _ = compute_advantages("tmn_reweight", batch["rewards"], groups, batch["labels"],
                                         **job.train.algorithm.estimator.params())
        assert torch.allclose(batch["golongrl"], expected, rtol=1e-6, atol=1e-7)
        # TRL shuffles a generation batch before slicing it into steps: compare as multisets
        assert torch.allclose(used.sort().values, expected.sort().values, rtol=1e-6, atol=1e-7)
        trl_own = batch["rewards"] - batch["rewards"].view(-1, 4).mean(dim=1).repeat_interleave(4)
        moved += int(not torch.allclose(expected, trl_own, atol=1e-6))
    assert moved > 0, "every batch had TRL's own advantages; the check would not see a missing replacement"
    logged = trainer.state.log_history[0]
    assert any(key.startswith("task_metrics/") for key in logged)
    assert "reward_failures/timeout" in logged
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) >= 3 and json.loads(lines[0])["step"] == 1


def test_cli_routes_engine_trl_into_the_trl_launcher(tmp_path):
    from typer.testing import CliRunner

    from golongrl.cli import app

    result = CliRunner().invoke(app, ["train", "--engine", "trl", "--config", str(PRESET), "--output",
                                      str(tmp_path / "run"), "--set", "algorithm.dynamic_sampling.enabled=true"])
    assert result.exit_code == 2
    assert "trl-qwen3-4b-1gpu.yaml: algorithm.dynamic_sampling: TRL generates a fixed generation batch" in result.output
