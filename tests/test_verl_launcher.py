"""golongrl configs -> verl 0.9.1 Hydra overrides: presets compose and validate, --dry-run is stable."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

pytest.importorskip("verl")

from golongrl.training.config import ConfigError  # noqa: E402
from verl_fixtures import write_train_parquet  # noqa: E402

pytestmark = pytest.mark.verl

REPO = Path(__file__).resolve().parents[1]
PRESETS = sorted(p.name for p in (REPO / "configs").glob("*verl*.yaml"))
TRAIN_ROWS = 1024


@pytest.fixture(scope="module")
def launcher():
    from golongrl.engines.verl import launcher

    return launcher


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> list[str]:
    """Overrides pointing a preset at a real parquet of TRAIN_ROWS rows (the presets' own
    ../data paths do not exist in the repository)."""
    path = write_train_parquet(tmp_path_factory.mktemp("verl-data") / "train.parquet", TRAIN_ROWS)
    return [f"data.train_files=[{path}]", "data.eval_files=[]"]


def _composed(launcher, name: str, overrides: list[str] | None = None, data: list[str] | None = None):
    job = launcher.load_job(REPO / "configs" / name, overrides=[*(data or []), *(overrides or [])])
    return job, launcher.compose(launcher.build_overrides(job))


def test_four_presets_ship():
    assert len(PRESETS) == 4, PRESETS


@pytest.mark.parametrize("name", PRESETS)
def test_preset_composes_with_verls_config_and_passes_its_validation(launcher, name, data):
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config

    job, config = _composed(launcher, name, data=data)
    # Hydra rejects any key verl's schema lacks (the '+' keys are golongrl's own sections);
    # validate_config instantiates verl's typed actor config and checks batch divisibility.
    validate_config(config=config, use_reference_policy=need_reference_policy(config), use_critic=need_critic(config))
    assert config.trainer.nnodes * config.trainer.n_gpus_per_node == job.verl.nnodes * job.verl.gpus_per_node
    from golongrl.engines.verl import VERL_ESTIMATORS

    assert config.algorithm.adv_estimator in VERL_ESTIMATORS
    assert config.reward.reward_manager.name == "GoLongRLRewardManager"


def test_golongrl_faithful_4b_preset_is_the_reference_recipe(launcher, data):
    """Spec §6.3, checked on the config verl composes (not on our own override strings)."""
    _, c = _composed(launcher, "verl-qwen3-4b-tmn-reweight-16x8.yaml", data=data)
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


def test_30b_preset_uses_golongrls_grpo_with_expert_parallelism(launcher, data):
    _, c = _composed(launcher, "verl-qwen3-30b-a3b-grpo-16x8.yaml", data=data)
    mg = c.actor_rollout_ref.actor.megatron
    assert c.algorithm.adv_estimator == "golongrl_grpo"
    assert (mg.tensor_model_parallel_size, mg.context_parallel_size, mg.expert_model_parallel_size,
            mg.expert_tensor_parallel_size) == (4, 8, 4, 1)
    assert mg.override_transformer_config.moe_router_dtype == "fp32"


def test_dry_run_is_stable_and_shows_command_and_resolved_config(launcher, data):
    job = launcher.load_job(REPO / "configs" / "verl-qwen3-4b-1x8.yaml", overrides=data)
    first = launcher.dry_run(job)
    second = launcher.dry_run(launcher.load_job(REPO / "configs" / "verl-qwen3-4b-1x8.yaml", overrides=data))
    assert first == second
    assert "-m golongrl.engines.verl.main" in first
    for override in launcher.build_overrides(job):
        assert override in first or f"'{override}'" in first
    assert "adv_estimator: tmn_reweight" in first
    assert "ulysses_sequence_parallel_size: 8" in first


def test_overrides_reach_both_golongrl_and_verl_sections(launcher, data):
    _, c = _composed(launcher, "verl-qwen3-4b-1gpu.yaml",
                     ["rollout.n=4", "algorithm.estimator.name=qwenlong_l15", "verl.reward_manager=per_sample"], data)
    assert c.actor_rollout_ref.rollout.n == 4
    assert c.algorithm.adv_estimator == "qwenlong_l15"
    assert c.reward.custom_reward_function.path == "pkg://golongrl.rewards"
    assert c.reward.reward_manager.name == "naive"


def test_settings_verl_cannot_express_are_refused_with_file_and_key(launcher):
    path = REPO / "configs" / "verl-qwen3-4b-1gpu.yaml"
    with pytest.raises(ConfigError) as err:
        launcher.load_job(path, overrides=["algorithm.overlong.enabled=true", "algorithm.dynamic_sampling.tolerance=0.1",
                                           "algorithm.task_key=reward_mode"])
    assert f"{path}: algorithm.overlong" in str(err.value)
    assert f"{path}: algorithm.task_key" in str(err.value)
    assert f"{path}: algorithm.dynamic_sampling.tolerance" in str(err.value)


def test_bad_verl_section_names_file_and_key(launcher):
    path = REPO / "configs" / "verl-qwen3-4b-tmn-reweight-16x8.yaml"
    with pytest.raises(ConfigError, match=r"16x8.yaml: verl.<root>: Value error, 128 GPUs are not divisible by tensor\*pipeline\*context"):
        launcher.load_job(path, overrides=["verl.parallel.tensor=3"])
    with pytest.raises(ConfigError, match=r"verl.nnodes: Input should be greater than or equal to 1"):
        launcher.load_job(path, overrides=["verl.nnodes=0"])
    with pytest.raises(ConfigError, match=r"verl.gpu_count: Extra inputs are not permitted"):
        launcher.load_job(path, overrides=["verl.gpu_count=8"])


def test_legacy_trainer_needs_dynamic_sampling_off_and_then_composes(launcher, data):
    path = REPO / "configs" / "verl-qwen3-4b-1gpu.yaml"
    with pytest.raises(ConfigError, match="legacy trainer has no dynamic sampling"):
        launcher.load_job(path, overrides=["verl.use_v1=false"])
    _, config = _composed(launcher, "verl-qwen3-4b-1gpu.yaml",
                          ["verl.use_v1=false", "algorithm.dynamic_sampling.enabled=false",
                           "batch.generation_prompts=16"], data)
    with pytest.raises(ConfigError, match=r"1gpu.yaml: batch.generation_prompts: without dynamic sampling"):
        launcher.load_job(path, overrides=["algorithm.dynamic_sampling.enabled=false"])
    assert config.trainer.use_v1 is False and config.algorithm.filter_groups.enable is False


def test_run_length_is_the_recipes_generation_batch_count_not_verls_prompt_count(launcher, tmp_path):
    """22,965 rows, 512-prompt generation batches, 10 epochs: at most 44 steps per epoch, 440 in
    all (spec §6.2), set as trainer.total_training_steps; verl's own count, rows // 128 per
    epoch, would run 1,790 steps."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "golongrl.parquet"
    pq.write_table(pa.table({"data_source": ["EM"] * 22_965}), path)  # only the row count is read here
    job, c = _composed(launcher, "verl-qwen3-4b-tmn-reweight-16x8.yaml", data=[f"data.train_files=[{path}]"])
    assert c.trainer.total_training_steps == 440
    assert c.trainer.total_epochs * (22_965 // c.data.train_batch_size) == 1_790  # what verl would do
    assert launcher.planned_steps(job) == 440
    explicit = launcher.load_job(REPO / "configs" / "verl-qwen3-4b-tmn-reweight-16x8.yaml",
                                 overrides=[f"data.train_files=[{path}]", "training.total_steps=7"])
    assert launcher.planned_steps(explicit) == 7


def test_legacy_and_no_dynamic_sampling_count_steps_per_trained_batch(launcher, data):
    _, c = _composed(launcher, "verl-qwen3-4b-1gpu.yaml",
                     ["verl.use_v1=false", "algorithm.dynamic_sampling.enabled=false", "batch.generation_prompts=16",
                      "training.epochs=2"], data)
    assert c.trainer.total_training_steps == 2 * (TRAIN_ROWS // c.data.train_batch_size)


def test_unreadable_train_files_are_refused_naming_the_key_to_set(launcher, tmp_path):
    job = launcher.load_job(REPO / "configs" / "verl-qwen3-4b-1x8.yaml",
                            overrides=[f"data.train_files=[{tmp_path / 'missing.parquet'}]"])
    with pytest.raises(ConfigError, match=r"1x8.yaml: training.total_steps: .* set training.total_steps"):
        launcher.build_overrides(job)


def test_prefill_and_prefix_cache_reach_sglang_in_its_own_keys(launcher, data):
    job, c = _composed(launcher, "verl-qwen3-4b-1x8.yaml", ["verl.rollout.max_num_batched_tokens=4096"], data)
    sglang = c.actor_rollout_ref.rollout.engine_kwargs.sglang
    assert (sglang.chunked_prefill_size, sglang.disable_radix_cache) == (4096, False)
    overrides = launcher.build_overrides(job)
    for key in ("max_num_batched_tokens", "enable_chunked_prefill", "enable_prefix_caching", "data.truncation"):
        assert not any(o.startswith(f"actor_rollout_ref.rollout.{key}=") or o.startswith(f"{key}=") for o in overrides)
    _, v = _composed(launcher, "verl-qwen3-4b-1x8.yaml",
                     ["verl.rollout.name=vllm", "verl.rollout.max_num_batched_tokens=4096",
                      "verl.rollout.prefix_caching=false"], data)
    rollout = v.actor_rollout_ref.rollout
    assert (rollout.max_num_batched_tokens, rollout.enable_chunked_prefill, rollout.enable_prefix_caching) == (
        4096, True, False)
    assert "chunked_prefill_size" not in (rollout.engine_kwargs.get("vllm") or {})


def test_engine_kwargs_may_not_shadow_the_prefill_settings(launcher, data):
    job = launcher.load_job(REPO / "configs" / "verl-qwen3-4b-1x8.yaml",
                            overrides=[*data, "verl.rollout.engine_kwargs={chunked_prefill_size: 1}"])
    with pytest.raises(ConfigError, match=r"1x8.yaml: verl.rollout.engine_kwargs.chunked_prefill_size"):
        launcher.build_overrides(job)


def test_metrics_jsonl_and_tensorboard_land_in_the_run_folder(launcher, data, tmp_path):
    run = tmp_path / "run"
    _, c = _composed(launcher, "verl-qwen3-4b-tmn-reweight-16x8.yaml", [f"verl.output_dir={run}"], data)
    assert list(c.trainer.logger) == ["console", "tensorboard", "file"]
    env = c.ray_kwargs.ray_init.runtime_env.env_vars
    assert (env.TENSORBOARD_DIR, env.VERL_FILE_LOGGER_PATH) == (str(run / "tensorboard"), str(run / "metrics.jsonl"))
    assert c.trainer.default_local_dir == str(run)


def test_model_paths_become_absolute_or_stay_hub_ids(launcher, data, tmp_path):
    (tmp_path / "models" / "policy").mkdir(parents=True)
    config = tmp_path / "job.yaml"
    config.write_text((REPO / "configs" / "verl-qwen3-4b-1gpu.yaml").read_text())
    job = launcher.load_job(config, overrides=[*data, "model.name_or_path=models/policy"])
    assert job.train.model.name_or_path == str((tmp_path / "models" / "policy").resolve())
    assert launcher.load_job(config, overrides=data).train.model.name_or_path == "Qwen/Qwen3-4B-Thinking-2507"
    with pytest.raises(ConfigError, match=r"job.yaml: model.name_or_path: 'ckpt/run/final' is neither"):
        launcher.load_job(config, overrides=[*data, "model.name_or_path=ckpt/run/final"])


def test_thinking_model_in_hardened_mode_must_say_whether_unfinished_thinking_pays(launcher, data):
    path = REPO / "configs" / "verl-qwen3-4b-1x8.yaml"
    with pytest.raises(ConfigError, match=r"1x8.yaml: verl.reward_options.require_think"):
        launcher.load_job(path, overrides=[*data, "verl.reward_options={}"])
    _, c = _composed(launcher, "verl-qwen3-4b-1x8.yaml", data=data)
    kwargs = c.reward.custom_reward_function.reward_kwargs
    assert (kwargs.mode, kwargs.require_think, kwargs.timeout_s) == ("hardened", True, 10.0)
    assert c.algorithm.golongrl.max_reward_failure_fraction == 0.05
    _, per_sample = _composed(launcher, "verl-qwen3-4b-1x8.yaml", ["verl.reward_manager=per_sample"], data)
    assert per_sample.reward.custom_reward_function.reward_kwargs.timeout_s == 10.0  # the cap reaches compute_score
    with pytest.raises(ConfigError, match=r"verl.reward_options: Value error, unknown \['no_such_option'\]"):
        launcher.load_job(path, overrides=[*data, "verl.reward_options={no_such_option: 1}"])


def test_every_preset_gates_unfinished_thinking():
    import yaml

    for name in PRESETS:
        preset = yaml.safe_load((REPO / "configs" / name).read_text())
        assert preset["verl"]["reward_options"]["require_think"] is True, name


def test_bad_rows_are_rejected_at_launch_before_verl_starts(launcher, tmp_path, monkeypatch):
    from golongrl.data.io import write_records
    from verl_fixtures import dataset_rows

    rows = dataset_rows(8)
    del rows[5]["reward_model"]["ground_truth"]
    path = tmp_path / "train.parquet"
    write_records(path, rows)
    job = launcher.load_job(REPO / "configs" / "verl-qwen3-4b-1gpu.yaml",
                            overrides=[f"data.train_files=[{path}]", "data.eval_files=[]"])
    monkeypatch.setattr(launcher.subprocess, "run", lambda *a, **k: pytest.fail("verl started on bad data"))
    with pytest.raises(ConfigError) as err:
        launcher.launch(job)
    message = str(err.value)
    assert f"{path}: row 6:" in message and "reward_model.ground_truth" in message  # rows count from 1
