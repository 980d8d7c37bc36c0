"""Hostile configs, checkpoints and leftovers (issue 14 items 2, 3, 6, 12 and parts of 10).

Pure config and checkpoint code: no model is trained here (the CLI file runs the trainer)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import torch
from training_fixtures import tiny_config, write_dataset

from golongrl.data.io import atomic_output, remove_orphans
from golongrl.safe_yaml import YamlLimitError, load_yaml
from golongrl.training.checkpoint import TrainingState, check_resume_config, list_checkpoints, save_checkpoint
from golongrl.training.config import ConfigError, config_from_dict, load_config, parse_overrides, resume_settings

BOMB = "\n".join(
    ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    + [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
)


def _write(tmp_path: Path, text: str | bytes, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


@pytest.mark.parametrize(
    ("yaml_text", "key", "message"),
    [
        ("optimizer: {lr: .inf}", "optimizer.lr", "finite"),
        ("optimizer: {lr: .nan}", "optimizer.lr", "finite"),
        ("optimizer: {lr: 1.0e+300}", "optimizer.lr", "less than or equal to 1"),
        ("reward: {timeout_s: .inf}", "reward.timeout_s", "finite"),
        ("training: {total_steps: true}", "training.total_steps", "valid integer"),
        ("rollout: {n: false}", "rollout.n", "valid integer"),
        ("rollout: {temperature: true}", "rollout.temperature", "valid number"),
        ("training: {time_budget_s: .inf}", "training.time_budget_s", "finite"),
        ("training: {seed: -1}", "training.seed", "greater than or equal to 0"),
        ("optimizer: {betas: [0.9, 1.5]}", "optimizer", r"betas must lie in \[0, 1\)"),
        ("algorithm: {rollout_is: {bounds: [0.5, .inf]}}", "algorithm.rollout_is.bounds.1", "finite"),
        ("model: {device: gpu7}", "model.device", "pattern"),
    ],
)
def test_numbers_are_finite_typed_and_in_range(tmp_path: Path, yaml_text: str, key: str, message: str) -> None:
    with pytest.raises(ConfigError, match=rf"c\.yaml: {key.replace('.', '[.]')}.*{message}"):
        load_config(_write(tmp_path, yaml_text))


@pytest.mark.parametrize("where", ["quick:\n  data:\n    build_overrides: {bomb: *a9}", "data:\n  build_overrides: {bomb: *a9}"])
def test_anchor_bomb_is_refused_before_anything_expands(tmp_path: Path, where: str) -> None:
    # 9**10 nodes once expanded; the limit check walks each shared node once.
    with pytest.raises(ConfigError, match="expands to more than 100000 nodes"):
        load_config(_write(tmp_path, BOMB + "\n" + where))


def test_small_anchors_still_work() -> None:
    assert load_yaml("base: &b {n: 4}\nrollout: *b") == {"base": {"n": 4}, "rollout": {"n": 4}}
    with pytest.raises(YamlLimitError, match="nested too deeply"):
        load_yaml("[" * 20_000 + "]" * 20_000)


def test_bad_utf8_and_folder_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"c\.yaml: not UTF-8 text \(byte 9\)"):
        load_config(_write(tmp_path, b"rollout: \xff\xfe"))
    with pytest.raises(ConfigError, match="is a folder"):
        load_config(tmp_path)


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["rollout.n=["], r"override 'rollout.n=\[': invalid YAML"),
        (["rollout=1", "rollout.n=2"], "override 'rollout.n=2' conflicts with the earlier override rollout="),
        (["rollout.n=2", "rollout=1"], "override 'rollout=1' replaces the section"),
        (["rollout..n=2"], "expected KEY=VALUE"),
        ([f"quick={{x: {'[' * 3000}"], "override 'quick=.*nested too deeply|invalid YAML"),
    ],
)
def test_bad_overrides_name_the_override(items: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_overrides(items)


def _checkpoint(root: Path, cfg, *, weight: float = 0.5) -> Path:  # noqa: ANN001 - TrainConfig
    model = torch.nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.fill_(weight)
    state = TrainingState(step=1, optimizer={}, scheduler={}, data={}, rng={})
    return save_checkpoint(root, model, state, {"config": resume_settings(cfg)}, keep_last=3)


def test_resume_refuses_a_changed_config_naming_the_keys(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "train.jsonl", per_task=1)
    cfg = tiny_config(data)
    _checkpoint(tmp_path / "ckpt", cfg)
    check_resume_config(tmp_path / "ckpt", cfg)  # same settings: fine
    # Logging, evaluation and checkpoint cadence may change between a run and its resume.
    check_resume_config(tmp_path / "ckpt", tiny_config(data, logging={"progress": True}, evaluation={"n": 3}))
    changed = tiny_config(data, model={"name_or_path": "tiny:1"}, optimizer={"lr": 0.5}, rollout={"n": 2})
    with pytest.raises(ConfigError, match=r"different settings \(model\.name_or_path, optimizer\.lr, rollout\.n\)"
                                          r".*--allow-config-change"):
        check_resume_config(tmp_path / "ckpt", changed)
    allowed = tiny_config(data, model={"name_or_path": "tiny:1"}, checkpoint={"allow_config_change": True})
    check_resume_config(tmp_path / "ckpt", allowed)


def test_non_finite_weights_are_never_checkpointed(tmp_path: Path) -> None:
    cfg = tiny_config(write_dataset(tmp_path / "train.jsonl", per_task=1))
    with pytest.raises(FloatingPointError, match="hold inf/NaN.*Lower optimizer.lr"):
        _checkpoint(tmp_path / "ckpt", cfg, weight=float("inf"))
    assert list_checkpoints(tmp_path / "ckpt") == []


def test_killed_writes_leave_nothing_the_next_save_keeps(tmp_path: Path) -> None:
    cfg = tiny_config(write_dataset(tmp_path / "train.jsonl", per_task=1))
    root = tmp_path / "ckpt"
    root.mkdir()
    stale = Path(tempfile.mkdtemp(prefix=".step-000007.", dir=root))  # what SIGKILL mid-save leaves
    (stale / "policy.safetensors").write_bytes(b"\0" * 1000)
    _checkpoint(root, cfg)
    assert sorted(p.name for p in root.iterdir()) == ["step-000001"]


def test_remove_orphans_takes_only_temp_leftovers(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        with atomic_output(tmp_path / "results.json", "w") as handle:
            handle.write("{")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []  # a failed write cleans up after itself
    tempfile.mkstemp(prefix=".results.json.", suffix=".tmp", dir=tmp_path)  # as left by SIGKILL
    tempfile.mkdtemp(prefix=".final.", dir=tmp_path)
    keep = [tmp_path / ".keep", tmp_path / "results.json", tmp_path / ".final.notrandom"]
    for path in keep:
        path.write_text("x")
    removed = remove_orphans(tmp_path)
    assert len(removed) == 2 and sorted(tmp_path.iterdir()) == sorted(keep)


def test_config_from_dict_rejects_a_bool_seed() -> None:
    with pytest.raises(ConfigError, match="training.seed: Input should be a valid integer"):
        config_from_dict({"training": {"seed": True}})


def test_resumed_sampled_evaluation_is_identical(tmp_path: Path) -> None:
    """Item 5: a run interrupted after some prompts, resumed from its cache, samples exactly what
    an uninterrupted run samples (temperature 1, top-p 0.9, two samples per prompt)."""
    from golongrl.inference import GenerationRequest, SamplingParams, chat
    from golongrl.inference.transformers_backend import TransformersBackend

    sampling = SamplingParams(max_new_tokens=6, temperature=1.0, top_p=0.9, n=2, seed=3)
    requests = [GenerationRequest(chat(f"Name ship number {i} of the harbour ledger."), sampling) for i in range(6)]
    full = TransformersBackend("tiny:0", batch_size=4, device="cpu").generate(requests)
    cache = tmp_path / "cache.sqlite"
    interrupted = TransformersBackend("tiny:0", batch_size=4, device="cpu", cache=cache)
    interrupted.generate(requests[1:5:2])  # the killed run finished two prompts
    resumed = TransformersBackend("tiny:0", batch_size=4, device="cpu", cache=cache).generate(requests)
    assert [g.cached for g in resumed] == [False, True, False, True, False, False]
    assert [g.texts for g in resumed] == [g.texts for g in full]
    assert len({t for g in full for t in g.texts}) > 1  # it did sample


def test_per_sample_sampler_draws_from_the_tempered_nucleus() -> None:
    from golongrl.inference.transformers_backend import sampling_logprobs, seeded_draw

    logits = torch.tensor([2.0, 1.0, 0.0, -3.0])
    rows = 4000
    generators = [torch.Generator().manual_seed(seed) for seed in range(rows)]
    picks = seeded_draw(sampling_logprobs(logits.expand(rows, 4), temperature=2.0, top_p=0.9), generators)
    freq = torch.bincount(picks, minlength=4).double() / rows
    probs = (logits / 2.0).softmax(-1).double()
    # Tempered probabilities 0.49, 0.29, 0.18, 0.04: only the first three together reach 0.9,
    # so the nucleus cuts the fourth and renormalises the rest.
    nucleus = torch.cat([probs[:3] / probs[:3].sum(), torch.zeros(1, dtype=torch.float64)])
    assert freq[3] == 0
    assert torch.allclose(freq, nucleus, atol=4 * (0.25 / rows) ** 0.5)  # four binomial std errors
