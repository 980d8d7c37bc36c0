"""The training config: presets load, bad input fails naming file and key, overrides and --quick."""

from __future__ import annotations

from pathlib import Path

import pytest

from golongrl.training.config import ConfigError, TrainConfig, load_config, parse_overrides

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["cpu-demo.yaml", "tiny-test.yaml", "golongrl-faithful.yaml"])
def test_every_preset_validates(name: str) -> None:
    cfg = load_config(REPO / "configs" / name)
    assert isinstance(cfg, TrainConfig)


def test_faithful_preset_matches_the_reference_recipe() -> None:
    """Spec §6.3, 4B TMN-Reweight column."""
    cfg = load_config(REPO / "configs" / "golongrl-faithful.yaml")
    a = cfg.algorithm
    assert (a.estimator.name, a.estimator.alpha, a.estimator.gamma, a.estimator.clamp) == ("tmn_reweight", 0.8, 1.0, None)
    assert (a.clip_low, a.clip_high, a.dual_clip_c, a.loss_agg) == (0.2, 0.28, 3.0, "token-mean")
    assert not a.kl.enabled and a.entropy_coef == 0.0 and not a.overlong.enabled
    assert a.dynamic_sampling.enabled and a.dynamic_sampling.max_gen_batches == 32
    assert a.rollout_is.enabled and a.rollout_is.bounds == (0.5, 5.0) and a.rollout_is.veto_threshold == 1e-4
    assert (cfg.batch.prompts_per_step, cfg.batch.generation_prompts, cfg.batch.mini_batch_prompts) == (128, 512, 128)
    assert (cfg.rollout.n, cfg.rollout.temperature, cfg.rollout.top_p) == (16, 1.0, 1.0)
    assert (cfg.rollout.max_prompt_tokens, cfg.rollout.max_new_tokens) == (163840, 16384)
    o = cfg.optimizer
    assert (o.lr, o.warmup_steps, o.schedule, o.weight_decay, o.grad_clip, o.betas) == (2e-6, 5, "constant", 0.1, 1.0, (0.9, 0.999))
    assert (cfg.checkpoint.every_steps, cfg.training.epochs, cfg.reward.mode) == (5, 10, "faithful")


def test_unknown_key_names_the_file_and_dotted_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("algorithm:\n  estimator:\n    alpah: 0.5\n")
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    assert str(bad) in str(err.value) and "algorithm.estimator.alpah" in str(err.value)


def test_out_of_range_values_are_reported_together(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("rollout:\n  n: 0\n  top_p: 1.5\n")
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    assert "rollout.n" in str(err.value) and "rollout.top_p" in str(err.value)


def test_batch_sizes_must_divide(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("batch:\n  prompts_per_step: 6\n  mini_batch_prompts: 4\n")
    with pytest.raises(ConfigError, match="multiple of"):
        load_config(bad)


def test_invalid_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml")


def test_overrides_and_quick_section(tmp_path: Path) -> None:
    assert parse_overrides(["rollout.n=4", "model.lora.enabled=true"]) == {"rollout": {"n": 4}, "model": {"lora": {"enabled": True}}}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_overrides(["rollout.n"])
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  train_files: [train.jsonl]\ntraining:\n  total_steps: 10\nquick:\n  training: {total_steps: 2}\n")
    cfg = load_config(path, overrides=["rollout.n=3"], quick=True)
    assert cfg.training.total_steps == 2 and cfg.rollout.n == 3
    assert cfg.data.train_files == [str(tmp_path / "train.jsonl")]  # relative to the config file
    plain = tmp_path / "plain.yaml"
    plain.write_text("training:\n  total_steps: 10\n")
    with pytest.raises(ConfigError, match="quick"):
        load_config(plain, quick=True)


def test_estimator_params_reach_the_registry_unchanged() -> None:
    from golongrl.advantages import estimator_parameters

    cfg = load_config(REPO / "configs" / "golongrl-faithful.yaml")
    params = cfg.algorithm.estimator.params()
    assert set(params) <= set(estimator_parameters(cfg.algorithm.estimator.name))
    assert params["std_floor"] == 0.0 and params["zero_tol"] == 0.0
