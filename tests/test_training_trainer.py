"""The single-machine trainer on a tiny random Llama: full steps, the advantages that reach the
loss, gradient accumulation, over-long and malformed data, and resume after SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from golongrl.advantages import compute_advantages
from golongrl.data.schema import DataError, record_task
from golongrl.training import trainer as trainer_mod
from golongrl.training.checkpoint import list_checkpoints
from golongrl.training.tracking import read_metrics
from golongrl.training.trainer import Trainer

sys.path.insert(0, str(Path(__file__).parent))
from training_fixtures import REPO, tiny_config, use_fake_reward, write_dataset  # noqa: E402


@pytest.fixture
def train_file(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "train.jsonl")


def test_two_full_steps_with_the_real_reward_library(train_file: Path, tmp_path: Path) -> None:
    # A random model scores 0 everywhere, so dynamic sampling would keep nothing; with it off
    # every group goes through the whole update (zero advantages, real forward/backward/step).
    cfg = tiny_config(train_file, training={"total_steps": 2}, checkpoint={"every_steps": 1, "export_final": True},
                      algorithm={"dynamic_sampling": {"enabled": False}})
    run = tmp_path / "run"
    history = Trainer(cfg, run).train()
    assert [h["step"] for h in history] == [1, 2]
    rows = read_metrics(run / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2]
    for row in rows:
        assert row["rollout/kept_groups"] >= 1
        assert any(k.startswith("task_metrics/") and k.endswith("/rate_adv") for k in row)
        assert "actor/pg_loss" in row and "actor/grad_norm" in row
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == ["step-000001", "step-000002"]
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert (run / "final" / "config.json").is_file()


def test_a_step_without_informative_groups_logs_but_does_not_update(train_file: Path, tmp_path: Path) -> None:
    cfg = tiny_config(train_file, training={"total_steps": 1}, checkpoint={"export_final": False})
    t = Trainer(cfg, tmp_path / "run")
    before = [p.detach().clone() for p in t.model.parameters()]
    (row,) = t.train()
    assert row["rollout/kept_groups"] == 0 and row["dynamic_sampling/cap_hit"] == 1.0
    assert row["actor/updated"] == 0.0 and row["rollout/gen_batches"] == 2
    assert all(torch.equal(a, b) for a, b in zip(before, t.model.parameters()))


def test_advantages_reaching_the_loss_are_golongrl_advantages_per_task(
        train_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_fake_reward(monkeypatch)
    seen: list[torch.Tensor] = []
    real_loss = trainer_mod.policy_loss

    def recording_loss(logprobs, old, advantages, mask, **kw):
        seen.append(advantages.detach().clone())
        return real_loss(logprobs, old, advantages, mask, **kw)

    monkeypatch.setattr(trainer_mod, "policy_loss", recording_loss)
    cfg = tiny_config(train_file, batch={"micro_batch_size": 3})
    t = Trainer(cfg, tmp_path / "run")
    batch = t.collect()
    t.update(batch)
    ro = batch.rollouts
    # Recompute independently from what the batch holds: rewards, group ids, each row's task.
    labels = [record_task(p.record) for p in ro.prompts]
    assert len(set(labels)) > 1, "the batch should mix tasks for this check to mean anything"
    expected, _ = compute_advantages("tmn_reweight", torch.tensor(ro.scores), ro.group_ids, labels,
                                     alpha=0.8, gamma=1.0)
    got = torch.cat(seen)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected.to(got.dtype))
    assert got.abs().sum() > 0
    # Task labels matter: pooling every sample into one task gives different advantages.
    pooled, _ = compute_advantages("tmn_reweight", torch.tensor(ro.scores), ro.group_ids,
                                   ["all"] * len(labels), alpha=0.8, gamma=1.0)
    assert not torch.allclose(pooled.to(got.dtype), got)


def _capture_gradients(trainer: Trainer) -> list[torch.Tensor]:
    """Replace the optimizer step with a recorder of the (clipped) accumulated gradient."""
    seen: list[torch.Tensor] = []
    params = [p for p in trainer.model.parameters() if p.requires_grad]

    def record(*_args, **_kwargs) -> None:
        seen.append(torch.cat([p.grad.detach().flatten() for p in params if p.grad is not None]))

    trainer.optimizer.step = record  # type: ignore[method-assign]
    return seen


@pytest.mark.parametrize("loss_agg", ["token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"])
def test_gradient_accumulation_matches_one_big_micro_batch(
        loss_agg: str, train_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The claim is about gradients, so gradients are compared, relative to their norm: Adam
    # would amplify float32 summation-order noise wherever |g| is near its eps.
    use_fake_reward(monkeypatch)
    cfg = tiny_config(train_file, algorithm={"loss_agg": loss_agg})
    whole, accumulated = Trainer(cfg, tmp_path / "a"), Trainer(cfg.model_copy(deep=True), tmp_path / "b")
    batch = whole.collect()
    whole.cfg.batch.micro_batch_size = len(batch.rollouts)
    accumulated.cfg.batch.micro_batch_size = 1
    grads_whole, grads_accumulated = _capture_gradients(whole), _capture_gradients(accumulated)
    whole.update(batch)
    accumulated.update(batch)
    assert len(grads_whole) == len(grads_accumulated) >= 1
    for a, b in zip(grads_whole, grads_accumulated):
        assert a.norm() > 0
        assert float((a - b).norm() / a.norm()) < 1e-4


def test_a_non_finite_loss_skips_the_update_and_is_logged(
        train_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_fake_reward(monkeypatch)
    real_loss = trainer_mod.policy_loss

    def poisoned_loss(*args, **kw):
        loss, metrics = real_loss(*args, **kw)
        return loss * float("nan"), metrics

    monkeypatch.setattr(trainer_mod, "policy_loss", poisoned_loss)
    t = Trainer(tiny_config(train_file), tmp_path / "run")
    before = [p.detach().clone() for p in t.model.parameters()]
    batch = t.collect()
    assert len(batch.rollouts) > 0
    metrics = t.update(batch)
    assert metrics["actor/skipped_nonfinite"] == 1.0 and metrics["actor/updated"] == 0.0
    assert all(torch.equal(a, b) for a, b in zip(before, t.model.parameters()))
    monkeypatch.setattr(trainer_mod, "policy_loss", real_loss)
    metrics = t.update(batch)  # the optimizer state was not poisoned: the next update is finite
    assert metrics["actor/skipped_nonfinite"] == 0.0
    assert all(torch.isfinite(p).all() for p in t.model.parameters())


def test_shared_prompt_forward_equals_the_per_sequence_forward() -> None:
    """Prefix sharing (one prompt pass per group, cache repeated) changes cost, not results:
    log-probs and gradients match the plain forward, which matches the sampling log-probs."""
    from golongrl.inference.models import load_causal_lm, load_tokenizer
    from golongrl.training.config import RolloutConfig

    tok, model = load_tokenizer("tiny:0"), load_causal_lm("tiny:0")
    prompts = [trainer_mod.Prompt(i, {}, trainer_mod.encode_prompt(tok, [{"role": "user", "content": "ship " * (5 * i + 1)}], None),
                                  "t", "t") for i in range(3)]
    torch.manual_seed(0)
    ro = trainer_mod.generate_rollouts(model, tok, prompts, RolloutConfig(n=3, max_new_tokens=6), micro_batch=6)
    assert ro.group_ids == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    model.train()
    batch = trainer_mod.pack([p.input_ids for p in ro.prompts], ro.response_ids, tok.pad_token_id)
    full, _ = trainer_mod.response_logprobs(model, batch, 1.0)
    shared, _ = trainer_mod.grouped_logprobs(model, [p.input_ids for p in prompts], ro.response_ids, 3, 1.0, tok.pad_token_id)
    mask = batch["response_mask"]
    torch.testing.assert_close(shared * mask, full * mask, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(trainer_mod.padded(ro.rollout_logprobs, mask.shape[1]) * mask, full.detach() * mask,
                               atol=1e-5, rtol=1e-5)
    params = [p for p in model.parameters() if p.requires_grad]
    grad_full = torch.cat([g.flatten() for g in torch.autograd.grad((full * mask).sum(), params)])
    grad_shared = torch.cat([g.flatten() for g in torch.autograd.grad((shared * mask).sum(), params)])
    assert float((grad_full - grad_shared).norm() / grad_full.norm()) < 1e-4


@pytest.mark.parametrize("model_cfg", [{"lora": {"enabled": True, "r": 4}}, {"freeze_lower_layers": 1}],
                         ids=["lora", "freeze-lower-layers"])
def test_partial_training_moves_only_trainable_weights_and_exports(
        model_cfg: dict, train_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from safetensors.torch import load_file

    use_fake_reward(monkeypatch)
    cfg = tiny_config(train_file, model=model_cfg, training={"total_steps": 1}, checkpoint={"export_final": True})
    t = Trainer(cfg, tmp_path / "run")
    frozen = {n: p.detach().clone() for n, p in t.model.named_parameters() if not p.requires_grad}
    trainable = {n: p.detach().clone() for n, p in t.model.named_parameters() if p.requires_grad}
    t.train()
    assert frozen and trainable
    assert all(torch.equal(p, frozen[n]) for n, p in t.model.named_parameters() if n in frozen)
    assert any(not torch.equal(p, trainable[n]) for n, p in t.model.named_parameters() if n in trainable)
    saved = load_file(str(tmp_path / "run" / "checkpoints" / "step-000001" / "policy.safetensors"))
    assert set(saved) == set(trainable)
    assert (tmp_path / "run" / "final" / "config.json").is_file()
    resumed = Trainer(cfg.model_copy(deep=True), tmp_path / "run")
    assert resumed.resume() == 1
    for n, p in resumed.model.named_parameters():
        if n in trainable:
            torch.testing.assert_close(p, dict(t.model.named_parameters())[n])


@pytest.mark.parametrize("model_cfg", [{"lora": {"enabled": True, "r": 4}}, {"freeze_lower_layers": 1}],
                         ids=["lora", "freeze-lower-layers"])
def test_a_bf16_sampling_copy_generates_the_rollouts_and_follows_every_update(
        model_cfg: dict, train_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_fake_reward(monkeypatch)
    cfg = tiny_config(train_file, model=model_cfg, rollout={"dtype": "bfloat16"}, training={"total_steps": 2},
                      checkpoint={"every_steps": 1, "export_final": False})
    t = Trainer(cfg, tmp_path / "run")
    assert t.sampler is not t.model and next(t.model.parameters()).dtype == torch.float32
    assert {p.dtype for p in t.sampler.parameters()} == {torch.bfloat16}
    assert not any(p.requires_grad for p in t.sampler.parameters())
    sampled_by = []
    real = trainer_mod.generate_rollouts
    monkeypatch.setattr(trainer_mod, "generate_rollouts",
                        lambda model, *a, **k: sampled_by.append(model) or real(model, *a, **k))
    start = {n: p.detach().clone() for n, p in t.model.named_parameters() if p.requires_grad}
    rows = t.train()
    assert sampled_by and all(m is t.sampler for m in sampled_by)
    assert any(r["actor/updated"] == 1.0 for r in rows)
    policy, copy_ = dict(t.model.named_parameters()), dict(t.sampler.named_parameters())
    assert any(not torch.equal(policy[n], start[n]) for n in start)
    # Every weight of the copy is the policy's, rounded to bf16: trainable ones after the updates too.
    for name, param in policy.items():
        assert torch.equal(copy_[name], param.detach().to(torch.bfloat16)), name
    resumed = Trainer(cfg.model_copy(deep=True), tmp_path / "run")
    assert resumed.resume() == 2
    for name, param in dict(resumed.sampler.named_parameters()).items():
        assert torch.equal(param, copy_[name]), name


def test_without_a_rollout_dtype_the_policy_samples_itself(train_file: Path, tmp_path: Path) -> None:
    t = Trainer(tiny_config(train_file, training={"total_steps": 1}), tmp_path / "run")
    assert t.sampler is t.model
    assert trainer_mod.sampling_copy(t.model, "float32") is t.model


def test_overlong_prompts_are_dropped_and_counted(tmp_path: Path) -> None:
    from golongrl.inference.models import load_tokenizer

    short = write_dataset(tmp_path / "short.jsonl", per_task=2, filler=1)
    long_ = write_dataset(tmp_path / "long.jsonl", per_task=1, filler=40)
    cfg = tiny_config(short, rollout={"max_prompt_tokens": 300})
    cfg.data.train_files = [str(short), str(long_)]
    prompts, dropped = trainer_mod.load_prompts(cfg.data.train_files, load_tokenizer("tiny:0"), cfg)
    assert len(prompts) == 6
    assert dropped == {"precise_retrieval": 1, "comprehension": 1, "numerical_reasoning": 1}
    assert all(len(p.input_ids) <= 300 for p in prompts)


def test_malformed_row_fails_before_training_naming_row_and_field(train_file: Path, tmp_path: Path) -> None:
    lines = train_file.read_text().splitlines()
    row = json.loads(lines[4])
    del row["reward_model"]["ground_truth"]
    lines[4] = json.dumps(row)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as err:
        Trainer(tiny_config(bad), tmp_path / "run")
    assert "row 5" in str(err.value) and "reward_model.ground_truth" in str(err.value)
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def _comparable(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in rows]


def test_resume_after_sigkill_reproduces_the_metrics(
        train_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # One intra-op thread in all three runs (reference, killed subprocess, resume): the claim is
    # bit-identical metrics, and a multi-threaded CPU reduction need not split work the same way
    # in a fresh subprocess as in a pytest process that has run other tests.
    cfg = tiny_config(train_file, training={"total_steps": 2, "num_threads": 1},
                      checkpoint={"every_steps": 1, "export_final": False})
    use_fake_reward(monkeypatch)
    threads = torch.get_num_threads()
    try:
        _resume_after_sigkill(cfg, tmp_path)
    finally:
        torch.set_num_threads(threads)


def _resume_after_sigkill(cfg, tmp_path: Path) -> None:
    reference = Trainer(cfg.model_copy(deep=True), tmp_path / "ref").train()
    cfg_json = tmp_path / "cfg.json"
    cfg_json.write_text(json.dumps(cfg.to_dict()))
    script = str(Path(__file__).with_name("training_fixtures.py"))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, script, str(cfg_json), str(killed), "5.0"], env=env)
    deadline = time.time() + 120
    while time.time() < deadline and not list_checkpoints(killed / "checkpoints") and proc.poll() is None:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert len(read_metrics(killed / "metrics.jsonl")) == 1  # killed after step 1's checkpoint
    Trainer(cfg.model_copy(deep=True), killed).train()  # the restart, resuming from the last checkpoint
    resumed = read_metrics(killed / "metrics.jsonl")
    assert [r["step"] for r in resumed] == [1, 2]
    assert _comparable(resumed) == _comparable(reference)
