"""The plugin where verl runs it: V1's _compute_advantage on a real local TransferQueue, and
verl's entry point starting golongrl's TaskRunner (stopped once it waits for GPUs)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("verl")
pytest.importorskip("transfer_queue")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from golongrl.advantages import compute_advantages, task_metrics  # noqa: E402
from verl_fixtures import ROW_KINDS, labelled_batch, write_train_parquet  # noqa: E402

pytestmark = pytest.mark.verl

REPO = Path(__file__).resolve().parents[1]
PARAMS = {"alpha": 0.8, "gamma": 1.0, "clamp": None, "eps": 1e-6, "std_floor": 0.0}


@pytest.fixture(scope="module")
def ray_address():
    """One local Ray instance for the module (starting Ray is the slow part). TransferQueue's
    actors reserve 2 logical CPUs; the entry-point test's TaskRunner needs one more."""
    import ray

    context = ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    yield context.address_info["address"]
    ray.shutdown()


@pytest.fixture(scope="module")
def transfer_queue(ray_address):
    """A TransferQueue on the module's Ray instance, as verl's V1 TaskRunner sets it up."""
    import transfer_queue as tq

    from golongrl.engines.verl import plugin

    tq.init(OmegaConf.create({"backend": {"SimpleStorage": {"num_data_storage_units": 1, "total_storage_size": 4096}}}))
    plugin.install()
    yield tq
    tq.close()


class _Trainer:
    """The attributes of verl's V1 PPOTrainer that _compute_advantage reads."""

    def __init__(self, estimator: str, n: int, max_reward_failure_fraction: float = 0.05) -> None:
        self.config = OmegaConf.create({
            "algorithm": {"adv_estimator": estimator, "use_kl_in_reward": False, "gamma": 1.0, "lam": 1.0,
                          "norm_adv_by_std_in_grpo": True, "rollout_correction": None,
                          "golongrl": {"estimator_params": PARAMS,
                                       "max_reward_failure_fraction": max_reward_failure_fraction}},
            "actor_rollout_ref": {"rollout": {"n": n}},
        })


def _put_rollouts(tq, batch, partition: str, reasons: dict[int, str] | None = None):
    """Rows shaped like verl's agent loop writes them: key {uid}_{session}_{output}, jagged
    response_mask / rm_scores, the dataset columns (data_source, extra_info) next to them,
    extra_fields with the reward manager's reward_extra_info, and a tag per row."""
    from verl.utils.tensordict_utils import list_of_dict_to_tensordict

    keys, rows, tags, seen = [], [], [], {}
    for i, uid in enumerate(batch["uid"]):
        length = int(batch["response_mask"][i].sum())
        session = seen.setdefault(uid, [0])
        keys.append(f"{uid}_{session[0]}_0")
        session[0] += 1
        reason = (reasons or {}).get(i, "")
        rows.append({
            "uid": uid,
            "prompts": torch.ones(3, dtype=torch.int64),
            "responses": torch.ones(length, dtype=torch.int64),
            "response_mask": torch.ones(length, dtype=torch.int64),
            "rm_scores": batch["token_level_rewards"][i, :length].clone(),
            "data_source": batch["data_source"][i],
            "extra_info": dict(batch["extra_info"][i]),
            "extra_fields": {"reward_extra_info": {"score": float(batch["scores"][i]), "golongrl_reason": reason}},
        })
        tags.append({"status": "success", "prompt_len": 3, "response_len": length, "seq_len": 3 + length})
    meta = tq.kv_batch_put(keys=keys, partition_id=partition, fields=list_of_dict_to_tensordict(rows), tags=tags)
    return meta, keys


def _advantages(tq, keys, partition):
    nested = tq.kv_batch_get(keys=keys, partition_id=partition, select_fields=["advantages"])["advantages"]
    return [row.clone() for row in nested.unbind(0)]


@pytest.mark.parametrize("name", ["tmn_reweight", "qwenlong_task_norm", "grpo"])
def test_v1_compute_advantage_through_transfer_queue_gives_golongrls_advantages(transfer_queue, name):
    from golongrl.engines.verl import plugin
    from verl.trainer.ppo.v1 import trainer_base

    batch = labelled_batch(seed=4)
    meta, keys = _put_rollouts(transfer_queue, batch, partition=f"train-{name}")
    metrics: dict = {}
    verl_name = plugin.verl_estimator_name(name)
    trainer_base.PPOTrainer._compute_advantage(_Trainer(verl_name, n=4), meta, metrics)
    expected, _ = compute_advantages(name, batch["scores"], batch["uid"], batch["tasks"], **PARAMS)
    for i, row in enumerate(_advantages(transfer_queue, keys, f"train-{name}")):
        assert torch.equal(row, expected[i].expand_as(row))
    assert {k: metrics[k] for k in task_metrics(batch["scores"], batch["uid"], batch["tasks"])} == pytest.approx(
        task_metrics(batch["scores"], batch["uid"], batch["tasks"])
    )
    assert "advantages/mean" in metrics


def _real_rows(seed: int, drop_last: int = 1) -> dict:
    """labelled_batch with 8 prompts x 3 rollouts, minus the last ``drop_last`` rows: 23 rows,
    which verl pads to 32 (a multiple of lcm(dp, mini-batch x n) in a real run)."""
    batch = labelled_batch(groups_per_kind=2, group_size=3, seed=seed)
    n = len(batch["uid"]) - drop_last
    return {key: value[:n] for key, value in batch.items()}


@pytest.mark.parametrize("name", ["tmn", "tmn_reweight", "qwenlong_task_norm", "qwenlong_l15", "grpo", "dr_grpo"])
def test_v1_padding_rows_change_no_real_advantage_and_no_task_metric(transfer_queue, name):
    """verl's own padding (padding_utils.upsample_batch_to_divisible_size, as _balance_batch
    calls it): 23 real rows + 9 padding rows that copy row 0's data_source/extra_info with
    reward 0. The real rows get exactly the advantages golongrl computes on them alone."""
    from golongrl.engines.verl import plugin
    from verl.trainer.ppo.padding_utils import upsample_batch_to_divisible_size
    from verl.trainer.ppo.v1 import trainer_base

    batch = _real_rows(seed=7)
    partition = f"pad-{name}"
    meta, keys = _put_rollouts(transfer_queue, batch, partition)
    padded = upsample_batch_to_divisible_size(meta, 32, eos_token_id=0)
    assert len(padded) == 32 and sum(bool(t.get("is_padding")) for t in padded.tags) == 9
    metrics: dict = {}
    trainer_base.PPOTrainer._compute_advantage(_Trainer(plugin.verl_estimator_name(name), n=3), padded, metrics)

    expected, _ = compute_advantages(name, batch["scores"], batch["uid"], batch["tasks"], **PARAMS)
    rows = _advantages(transfer_queue, padded.keys, partition)
    for i in range(23):
        assert torch.allclose(rows[i], expected[i].expand_as(rows[i]), rtol=1e-6, atol=1e-6 * expected.abs().max())
    assert all(not row.any() for row in rows[23:])
    real_metrics = task_metrics(batch["scores"], batch["uid"], batch["tasks"])
    assert {k: metrics[k] for k in real_metrics} == pytest.approx(real_metrics)
    first_task = batch["tasks"][0]
    assert metrics[f"task_metrics/{first_task}/num_rollouts"] == batch["tasks"].count(first_task)

    # what the padding would have done had it entered the task statistics
    pad_scores = torch.cat([batch["scores"], torch.zeros(9)])
    pad_uids = np.concatenate([batch["uid"], np.array(["pad"] * 9, dtype=object)])
    naive, _ = compute_advantages(name, pad_scores, pad_uids, batch["tasks"] + [first_task] * 9, **PARAMS)
    moved = int((~torch.isclose(naive[:23], expected, rtol=1e-6, atol=1e-9)).sum())
    if name in ("tmn", "tmn_reweight", "qwenlong_task_norm", "qwenlong_l15"):
        assert moved > 0  # task-level estimators are sensitive to padding: the check above means something
    else:
        assert moved == 0  # per-group estimators never were


def test_v1_reward_failures_are_counted_on_real_rows_and_stop_the_run_past_the_threshold(transfer_queue):
    from golongrl.engines.verl import plugin
    from verl.trainer.ppo.padding_utils import upsample_batch_to_divisible_size
    from verl.trainer.ppo.v1 import trainer_base

    batch = _real_rows(seed=8)
    reasons = {0: "timeout", 7: "error", 9: "format"}  # row 0 is the padding template: copies must not count
    meta, _ = _put_rollouts(transfer_queue, batch, "failures-ok", reasons)
    padded = upsample_batch_to_divisible_size(meta, 32, eos_token_id=0)
    metrics: dict = {}
    trainer_base.PPOTrainer._compute_advantage(_Trainer("tmn", n=3, max_reward_failure_fraction=0.5), padded, metrics)
    assert (metrics["reward_failures/timeout"], metrics["reward_failures/error"], metrics["reward_failures/gold"]) == (
        1.0, 1.0, 0.0)
    assert metrics["reward_failures/fraction"] == pytest.approx(2 / 23)

    meta, _ = _put_rollouts(transfer_queue, batch, "failures-stop", reasons)
    with pytest.raises(RuntimeError, match=r"2 of 23 rollouts .*golongrl.max_reward_failure_fraction=0.05"):
        trainer_base.PPOTrainer._compute_advantage(_Trainer("tmn", n=3), meta, {})


def test_v1_builtin_grpo_is_unchanged_and_still_gets_task_metrics(transfer_queue):
    from verl.trainer.ppo.v1 import trainer_base

    batch = labelled_batch(seed=5)
    trainer = _Trainer("grpo", n=4)
    meta_a, keys_a = _put_rollouts(transfer_queue, batch, partition="plain")
    trainer_base.PPOTrainer._compute_advantage.golongrl_wrapped(trainer, meta_a, {})
    meta_b, keys_b = _put_rollouts(transfer_queue, batch, partition="patched")
    metrics: dict = {}
    trainer_base.PPOTrainer._compute_advantage(trainer, meta_b, metrics)
    for a, b in zip(_advantages(transfer_queue, keys_a, "plain"), _advantages(transfer_queue, keys_b, "patched")):
        assert torch.equal(a, b)
    assert "task_metrics/comprehension/mean_reward" in metrics


def test_v1_refuses_multi_output_sessions_for_golongrl_estimators(transfer_queue):
    from verl.trainer.ppo.v1 import trainer_base
    from verl.utils.tensordict_utils import list_of_dict_to_tensordict

    ds, extra_info, _, _ = ROW_KINDS[0]
    rows = [{"uid": "u", "response_mask": torch.ones(2, dtype=torch.int64), "rm_scores": torch.tensor([0.0, 1.0]),
             "data_source": ds, "extra_info": extra_info} for _ in range(2)]
    meta = transfer_queue.kv_batch_put(keys=["u_0_0", "u_0_1"], partition_id="multi",
                                       fields=list_of_dict_to_tensordict(rows))
    with pytest.raises(ValueError, match="multi-output agent loops"):
        trainer_base.PPOTrainer._compute_advantage(_Trainer("tmn", n=1), meta, {})


def _wait_for_line(proc: subprocess.Popen, needles: tuple[str, ...], timeout_s: float) -> tuple[bool, list[str]]:
    """Read the run's output until a line holds every needle, the process ends or time runs out."""
    lines: list[str] = []
    found = threading.Event()

    def pump() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.append(line)
            if all(needle in line for needle in needles):
                found.set()

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not found.is_set() and proc.poll() is None:
        time.sleep(0.2)
    return found.is_set(), lines


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the run's process group (driver and the Ray client it started), then SIGKILL."""
    for sig, wait_s in ((signal.SIGTERM, 30), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def test_entry_point_installs_the_plugin_inside_verls_task_runner(tmp_path, ray_address):
    """`golongrl train --engine verl`'s command on CPU: verl validates the config, starts Ray and
    golongrl's TaskRunner actor, which reports the plugin installed in its own process; without
    GPUs the run then waits for cluster resources it cannot get, so it is stopped there.

    The driver also gets VERL_USE_EXTERNAL_MODULES=golongrl.engines.verl.autoload, the route for
    verl's stock entry point: verl/__init__ must then install the plugin in the driver too."""
    from golongrl.engines.verl import launcher
    from golongrl.engines.verl.plugin import INSTALLED_MESSAGE
    from golongrl.inference.models import make_tiny_causal_lm

    model = make_tiny_causal_lm(tmp_path / "model")
    write_train_parquet(tmp_path / "train.parquet", 64)  # two 32-prompt generation batches
    job = launcher.load_job(REPO / "configs" / "verl-qwen3-4b-1gpu.yaml", overrides=[
        f"model.name_or_path={model}", f"data.train_files=[{tmp_path / 'train.parquet'}]", "data.eval_files=[]",
        f"verl.output_dir={tmp_path / 'ckpt'}",
    ])
    # the driver joins the module's Ray instance (verl's run_ppo calls ray.init(), which honours RAY_ADDRESS)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "RAY_DEDUP_LOGS": "0", "RAY_ADDRESS": ray_address,
           "VERL_USE_EXTERNAL_MODULES": "golongrl.engines.verl.autoload"}
    proc = subprocess.Popen(launcher.build_command(job), cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        found, lines = _wait_for_line(proc, ("GoLongRLTaskRunnerV1", INSTALLED_MESSAGE), timeout_s=120)
    finally:
        _stop_group(proc)
    output = "".join(lines)
    assert found, f"plugin never reported from the TaskRunner; output tail:\n{output[-3000:]}"
    assert "All configuration checks passed" in output
    runner_lines = [line for line in lines if INSTALLED_MESSAGE in line and "GoLongRLTaskRunnerV1" in line]
    assert runner_lines and f"pid={proc.pid}:" not in runner_lines[0]
    assert any(line.startswith(f"{INSTALLED_MESSAGE} in pid={proc.pid}:") for line in lines)  # the autoload hook
