"""golongrl configs -> verl 0.9.1 Hydra overrides: presets compose and validate, --dry-run is stable."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

pytest.importorskip("verl")

from golongrl.training.config import ConfigError  # noqa: E402

pytestmark = pytest.mark.verl

REPO = Path(__file__).resolve().parents[1]
PRESETS = sorted(p.name for p in (REPO / "configs").glob("*verl*.yaml"))


@pytest.fixture(scope="module")
def launcher():
    from golongrl.engines.verl import launcher

    return launcher


def _composed(launcher, name: str, overrides: list[str] | None = None):
    job = launcher.load_job(REPO / "configs" / name, overrides=overrides)
    return job, launcher.compose(launcher.build_overrides(job))


def test_four_presets_ship():
    assert len(PRESETS) == 4, PRESETS


@pytest.mark.parametrize("name", PRESETS)
def test_preset_composes_with_verls_config_and_passes_its_validation(launcher, name):
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config

    job, config = _composed(launcher, name)
    # Hydra rejects any key verl's schema lacks (the '+' keys are golongrl's own sections);
    # validate_config instantiates verl's typed actor config and checks batch divisibility.
    validate_config(config=config, use_reference_policy=need_reference_policy(config), use_critic=need_critic(config))
    assert config.trainer.nnodes * config.trainer.n_gpus_per_node == job.verl.nnodes * job.verl.gpus_per_node
    from golongrl.engines.verl import VERL_ESTIMATORS

    assert config.algorithm.adv_estimator in VERL_ESTIMATORS
    assert config.reward.reward_manager.name == "GoLongRLRewardManager"


def test_golongrl_faithful_4b_preset_is_the_reference_recipe(launcher):
    """Spec §6.3, checked on the config verl composes (not on our own override strings)."""
    _, c = _composed(launcher, "verl-qwen3-4b-tmn-reweight-16x8.yaml")
    actor, rollout, algo = c.actor_rollout_ref.actor, c.actor_rollout_ref.rollout, c.algorithm
    assert algo.adv_estimator == "tmn_reweight"
    assert algo.golongrl.estimator_params == {"alpha": 0.8, "gamma": 1.0, "clamp": None, "eps": 1e-6, "std_floor": 0.0}
    assert (actor.clip_ratio_low, actor.clip_ratio_high, actor.clip_ratio_c) == (0.2, 0.28, 3.0)
    assert actor.loss_agg_mode == "token-mean" and not actor.use_kl_loss and actor.entropy_coeff == 0
    assert (actor.ppo_mini_batch_size, actor.ppo_micro_batch_size_per_gpu, actor.ppo_epochs) == (128, 1, 1)
    assert (actor.optim.lr, actor.optim.lr_warmup_steps, actor.optim.weight_decay, actor.optim.clip_grad) == (
        2e-6, 5, 0.1, 1.0)
    assert (c.data.train_batch_size, rollout.n) == (128, 16)
    assert (c.data.max_prompt_length, c.data.max_response_length, rollout.max_model_len) == (163840, 16384, 180224)
    assert c.data.filter_overlong_prompts
    assert (rollout.temperature, rollout.top_p, rollout.top_k) == (1.0, 1.0, -1)
    assert algo.filter_groups.enable and algo.filter_groups.max_inflight_gen_batches == 4  # 512 / 128
    rc = algo.rollout_correction
    assert (rc.rollout_is, rc.rollout_is_threshold, rc.rollout_rs) == ("token", 5.0, "seq_max_k2")
    assert rc.rollout_rs_threshold == pytest.approx(0.5 * math.log(1e-4) ** 2, abs=1e-6)
    mg = actor.megatron
    assert (mg.tensor_model_parallel_size, mg.context_parallel_size, mg.pipeline_model_parallel_size) == (8, 8, 1)
    assert mg.param_offload and mg.optimizer_offload
    assert mg.override_transformer_config.recompute_granularity == "full"
    assert (rollout.name, rollout.tensor_model_parallel_size, rollout.gpu_memory_utilization) == ("sglang", 8, 0.6)
    assert c.reward.custom_reward_function.reward_kwargs.mode == "faithful"


def test_30b_preset_uses_golongrls_grpo_with_expert_parallelism(launcher):
    _, c = _composed(launcher, "verl-qwen3-30b-a3b-grpo-16x8.yaml")
    mg = c.actor_rollout_ref.actor.megatron
    assert c.algorithm.adv_estimator == "golongrl_grpo"
    assert (mg.tensor_model_parallel_size, mg.context_parallel_size, mg.expert_model_parallel_size,
            mg.expert_tensor_parallel_size) == (4, 8, 4, 1)
    assert mg.override_transformer_config.moe_router_dtype == "fp32"


def test_dry_run_is_stable_and_shows_command_and_resolved_config(launcher):
    job = launcher.load_job(REPO / "configs" / "verl-qwen3-4b-1x8.yaml")
    first, second = launcher.dry_run(job), launcher.dry_run(launcher.load_job(REPO / "configs" / "verl-qwen3-4b-1x8.yaml"))
    assert first == second
    assert "-m golongrl.engines.verl.main" in first
    for override in launcher.build_overrides(job):
        assert override in first or f"'{override}'" in first
    assert "adv_estimator: tmn_reweight" in first
    assert "ulysses_sequence_parallel_size: 8" in first


def test_overrides_reach_both_golongrl_and_verl_sections(launcher):
    _, c = _composed(launcher, "verl-qwen3-4b-1gpu.yaml",
                     ["rollout.n=4", "algorithm.estimator.name=qwenlong_l15", "verl.reward_manager=per_sample"])
    assert c.actor_rollout_ref.rollout.n == 4
    assert c.algorithm.adv_estimator == "qwenlong_l15"
    assert c.reward.custom_reward_function.path == "pkg://golongrl.rewards"
    assert c.reward.reward_manager.name == "naive"


def test_settings_verl_cannot_express_are_refused_with_file_and_key(launcher):
    path = REPO / "configs" / "verl-qwen3-4b-1gpu.yaml"
    with pytest.raises(ConfigError) as err:
        launcher.load_job(path, overrides=["algorithm.overlong.enabled=true", "algorithm.dynamic_sampling.tolerance=0.1"])
    assert f"{path}: algorithm.overlong" in str(err.value)
    assert f"{path}: algorithm.dynamic_sampling.tolerance" in str(err.value)


def test_bad_verl_section_names_file_and_key(launcher):
    path = REPO / "configs" / "verl-qwen3-4b-tmn-reweight-16x8.yaml"
    with pytest.raises(ConfigError, match=r"16x8.yaml: verl.<root>: Value error, 128 GPUs are not divisible by tensor\*pipeline\*context"):
        launcher.load_job(path, overrides=["verl.parallel.tensor=3"])
    with pytest.raises(ConfigError, match=r"verl.nnodes: Input should be greater than or equal to 1"):
        launcher.load_job(path, overrides=["verl.nnodes=0"])
    with pytest.raises(ConfigError, match=r"verl.gpu_count: Extra inputs are not permitted"):
        launcher.load_job(path, overrides=["verl.gpu_count=8"])


def test_legacy_trainer_needs_dynamic_sampling_off_and_then_composes(launcher):
    path = REPO / "configs" / "verl-qwen3-4b-1gpu.yaml"
    with pytest.raises(ConfigError, match="legacy trainer has no dynamic sampling"):
        launcher.load_job(path, overrides=["verl.use_v1=false"])
    _, config = _composed(launcher, "verl-qwen3-4b-1gpu.yaml",
                          ["verl.use_v1=false", "algorithm.dynamic_sampling.enabled=false"])
    assert config.trainer.use_v1 is False and config.algorithm.filter_groups.enable is False
