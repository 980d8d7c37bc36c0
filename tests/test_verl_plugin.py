"""The verl plugin's estimators and label path through verl's own (legacy) compute_advantage."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("verl")
pytest.importorskip("transfer_queue")

import torch  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from golongrl.advantages import ESTIMATORS, compute_advantages, task_metrics  # noqa: E402
from golongrl.rewards import score_batch  # noqa: E402
from golongrl.tasks import UnknownTaskError  # noqa: E402
from verl_fixtures import ROW_KINDS, labelled_batch, legacy_dataproto  # noqa: E402

pytestmark = pytest.mark.verl

PARAMS = {"alpha": 0.8, "gamma": 1.0, "clamp": None, "eps": 1e-6, "std_floor": 0.0}


@pytest.fixture(scope="module")
def verl_modules():
    """verl's modules with the plugin installed, and a snapshot of verl's own registry before it."""
    from verl.trainer.ppo import core_algos, ray_trainer

    builtins = dict(core_algos.ADV_ESTIMATOR_REGISTRY)
    from golongrl.engines.verl import plugin

    plugin.install()
    plugin.install()  # idempotent: a second call changes nothing and raises nothing
    return core_algos, ray_trainer, plugin, builtins


def _algo_config(estimator: str):
    return OmegaConf.create({"adv_estimator": estimator, "golongrl": {"estimator_params": PARAMS}})


def test_every_golongrl_estimator_is_registered_and_verl_builtins_are_kept(verl_modules):
    core_algos, ray_trainer, plugin, builtins = verl_modules
    for name in ESTIMATORS:
        assert plugin.verl_estimator_name(name) in core_algos.ADV_ESTIMATOR_REGISTRY
    assert plugin.verl_estimator_name("grpo") == "golongrl_grpo"  # verl's grpo stays verl's
    assert plugin.verl_estimator_name("tmn_reweight") == "tmn_reweight"
    for name, fn in builtins.items():
        assert core_algos.ADV_ESTIMATOR_REGISTRY[name] is fn
    assert plugin.is_installed()
    plugin.check_verl_seams()


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_legacy_compute_advantage_gives_exactly_golongrls_advantages(verl_modules, name):
    _, ray_trainer, plugin, _ = verl_modules
    batch = labelled_batch()
    verl_name = plugin.verl_estimator_name(name)
    out = ray_trainer.compute_advantage(legacy_dataproto(batch), adv_estimator=verl_name, config=_algo_config(verl_name))
    expected, _ = compute_advantages(name, batch["scores"], batch["uid"], batch["tasks"], **PARAMS)
    expected_tokens = expected.unsqueeze(-1) * batch["response_mask"]
    assert torch.equal(out.batch["advantages"], expected_tokens)
    assert torch.equal(out.batch["returns"], expected_tokens)


@pytest.mark.parametrize("builtin", ["grpo", "rloo", "reinforce_plus_plus", "grpo_passk"])
def test_builtin_estimators_compute_what_they_computed_before_install(verl_modules, builtin):
    _, ray_trainer, _, _ = verl_modules
    batch = labelled_batch(seed=3)
    config = OmegaConf.create({"adv_estimator": builtin, "gamma": 1.0})
    original = ray_trainer.compute_advantage.golongrl_wrapped
    before = original(legacy_dataproto(batch), adv_estimator=builtin, config=config)
    after = ray_trainer.compute_advantage(legacy_dataproto(batch), adv_estimator=builtin, config=config)
    assert torch.equal(before.batch["advantages"], after.batch["advantages"])


def test_legacy_step_metrics_carry_per_task_and_estimator_metrics(verl_modules):
    _, ray_trainer, _, _ = verl_modules
    batch = labelled_batch(seed=1)
    data = legacy_dataproto(batch, with_metric_fields=True)
    data = ray_trainer.compute_advantage(data, adv_estimator="tmn_reweight", config=_algo_config("tmn_reweight"))
    metrics = ray_trainer.compute_data_metrics(batch=data, use_critic=False)
    expected = task_metrics(batch["scores"], batch["uid"], batch["tasks"])
    assert {k: metrics[k] for k in expected} == pytest.approx(expected)
    assert "task_metrics/summarization/rate_adv" in metrics
    assert "difficulty/mean_pass_rate" in metrics  # tmn_reweight's own metric reached verl's dict
    assert "critic/score/mean" in metrics  # verl's metrics are still there
    again = ray_trainer.compute_data_metrics(batch=data, use_critic=False)
    assert "difficulty/mean_pass_rate" not in again  # handed over once per advantage call


def test_task_label_is_the_reward_librarys_task(verl_modules):
    _, _, plugin, _ = verl_modules
    labels = plugin.task_labels([k[0] for k in ROW_KINDS], [k[1] for k in ROW_KINDS])
    results = score_batch(
        [{"data_source": ds, "solution_str": resp, "ground_truth": gt, "extra_info": ei} for ds, ei, gt, resp in ROW_KINDS],
        workers=0,
    )
    assert labels == [r.task for r in results]


def test_unlabelled_rows_fail_golongrl_estimators_naming_the_row(verl_modules):
    _, ray_trainer, _, _ = verl_modules
    batch = labelled_batch()
    batch["data_source"][5] = "mystery_source"
    with pytest.raises(UnknownTaskError, match=r"row 5 .*mystery_source"):
        ray_trainer.compute_advantage(legacy_dataproto(batch), adv_estimator="tmn", config=_algo_config("tmn"))


def test_builtin_estimator_on_foreign_data_runs_without_task_metrics(verl_modules):
    _, ray_trainer, _, _ = verl_modules
    batch = labelled_batch()
    batch["data_source"][:] = "gsm8k"
    data = ray_trainer.compute_advantage(
        legacy_dataproto(batch, with_metric_fields=True), adv_estimator="grpo", config=_algo_config("grpo")
    )
    metrics = ray_trainer.compute_data_metrics(batch=data, use_critic=False)
    assert not [k for k in metrics if k.startswith("task_metrics/")]
    assert "critic/advantages/mean" in metrics


def test_estimator_called_outside_the_label_path_explains_how_to_install(verl_modules):
    core_algos, _, _, _ = verl_modules
    batch = labelled_batch()
    estimator = core_algos.get_adv_estimator_fn("tmn_reweight")
    with pytest.raises(RuntimeError, match="VERL_USE_EXTERNAL_MODULES=golongrl.engines.verl.autoload"):
        estimator(
            token_level_rewards=batch["token_level_rewards"],
            response_mask=batch["response_mask"],
            index=batch["uid"],
            config=_algo_config("tmn_reweight"),
        )


def test_estimator_params_reach_golongrl(verl_modules):
    _, ray_trainer, _, _ = verl_modules
    batch = labelled_batch(seed=2)
    outs = []
    for alpha in (0.2, 0.9):
        config = OmegaConf.create({"golongrl": {"estimator_params": {**PARAMS, "alpha": alpha}}})
        outs.append(
            ray_trainer.compute_advantage(legacy_dataproto(batch), adv_estimator="tmn_reweight", config=config)
            .batch["advantages"]
        )
        expected, _ = compute_advantages("tmn_reweight", batch["scores"], batch["uid"], batch["tasks"], **PARAMS | {"alpha": alpha})
        assert torch.equal(outs[-1], expected.unsqueeze(-1) * batch["response_mask"])
    assert not torch.equal(outs[0], outs[1])
    assert np.isfinite(outs[0].numpy()).all()


def test_legacy_trainer_entry_uses_verls_legacy_task_runner():
    from golongrl.engines.verl.main import GoLongRLTaskRunnerV1, task_runner_class
    from verl.trainer.main_ppo import TaskRunnerV1
    from verl.trainer.main_ppo_v0 import TaskRunner as TaskRunnerV0

    assert issubclass(task_runner_class(False).__ray_actor_class__, TaskRunnerV0.__ray_actor_class__)
    assert task_runner_class(True).__ray_actor_class__ is GoLongRLTaskRunnerV1
    assert issubclass(GoLongRLTaskRunnerV1, TaskRunnerV1.__ray_actor_class__)


def test_verl_0_9_1_passes_every_seam_check(verl_modules):
    _, _, plugin, _ = verl_modules
    assert plugin.verl_seam_problems() == []


def _dropping_rows(data, batch_keys, adv_estimator, **kwargs):
    from verl.trainer.ppo.v1 import utils as v1_utils

    return v1_utils.compute_advantage(data.select_idxs([0]), adv_estimator=adv_estimator, config=None)


@pytest.mark.parametrize("seam", ["padding tag", "row selection", "key format", "signature"])
def test_install_fails_loudly_when_a_verl_seam_changes(verl_modules, monkeypatch, seam):
    """A verl upgrade that changes what the plugin relies on stops install() with the seam named."""
    _, ray_trainer, plugin, _ = verl_modules
    from verl.trainer.ppo import padding_utils
    from verl.trainer.ppo.v1 import agent_loop_tq
    from verl.trainer.ppo.v1 import utils as v1_utils

    if seam == "padding tag":
        original = padding_utils.construct_minimal_padding_template

        def untagged(source_td, source_tag, eos_token_id):
            sample, tag = original(source_td, source_tag, eos_token_id)
            tag.pop("is_padding")
            return sample, tag

        monkeypatch.setattr(padding_utils, "construct_minimal_padding_template", untagged)
        expected = "no longer tagged is_padding=True"
    elif seam == "row selection":
        monkeypatch.setattr(v1_utils, "compute_advantage_for_multi_trajectories", _dropping_rows)
        expected = "no longer hands a non-GRPO estimator every row in order"
    elif seam == "key format":
        real_source = plugin._source
        monkeypatch.setattr(plugin, "_source", lambda obj: real_source(obj).replace(
            'f"{uid}_{session_id}_{i}"', 'f"{uid}:{session_id}:{i}"') if obj is agent_loop_tq else real_source(obj))
        expected = "TransferQueue key format {uid}_{session}_{output} not found"
    else:
        def compute_advantage(data, adv_estimator, config=None):  # a reshaped verl function, not golongrl's wrapper
            return data

        monkeypatch.setattr(ray_trainer, "compute_advantage", compute_advantage)
        expected = "ray_trainer.compute_advantage takes ['data', 'adv_estimator', 'config']"
    assert any(expected in problem for problem in plugin.verl_seam_problems())
    with pytest.raises(RuntimeError, match="golongrl's verl plugin was written for verl 0.9.1") as err:
        plugin.install()
    assert expected in str(err.value)


def test_legacy_step_metrics_count_reward_failures_and_stop_past_the_threshold(verl_modules):
    """The legacy trainer merges reward_extra_info (golongrl_reason) into the batch."""
    _, ray_trainer, _, _ = verl_modules
    batch = labelled_batch(seed=2)
    data = legacy_dataproto(batch, with_metric_fields=True)
    reasons = [""] * len(batch["uid"])
    reasons[3], reasons[5], reasons[6] = "timeout", "gold", "parse"
    data.non_tensor_batch["golongrl_reason"] = np.array(reasons, dtype=object)
    config = OmegaConf.create({"adv_estimator": "tmn", "golongrl": {"estimator_params": {},
                                                                    "max_reward_failure_fraction": 0.1}})
    data = ray_trainer.compute_advantage(data, adv_estimator="tmn", config=config)
    metrics = ray_trainer.compute_data_metrics(batch=data, use_critic=False)
    assert (metrics["reward_failures/timeout"], metrics["reward_failures/gold"]) == (1.0, 1.0)
    assert metrics["reward_failures/fraction"] == pytest.approx(2 / len(reasons))
    strict = OmegaConf.create({"adv_estimator": "tmn", "golongrl": {"estimator_params": {},
                                                                    "max_reward_failure_fraction": 0.0}})
    data = ray_trainer.compute_advantage(data, adv_estimator="tmn", config=strict)
    with pytest.raises(RuntimeError, match="2 of 32 rollouts in this step could not be scored"):
        ray_trainer.compute_data_metrics(batch=data, use_critic=False)
