"""golongrl's rewards loaded the way verl 0.9.1 loads them, and golongrl data read by verl's loader."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

pytest.importorskip("verl")

import torch  # noqa: E402

from golongrl import rewards  # noqa: E402
from verl_fixtures import EXPECTED_TASKS, ROW_KINDS, verl_hydra_config  # noqa: E402

pytestmark = pytest.mark.verl


class CharTokenizer:
    """Decodes ids as characters: enough for a reward manager, which only decodes responses."""

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        return "".join(chr(int(i)) for i in ids)


def _sample(kind: int, pad: int = 2):
    """One rollout as verl's agent loop hands it to a reward worker (prompt, padded response)."""
    from verl.protocol import DataProto

    data_source, extra_info, ground_truth, response = ROW_KINDS[kind]
    ids = [ord(c) for c in response]
    responses = torch.tensor([ids + [0] * pad])
    attention = torch.tensor([[1, 1] + [1] * len(ids) + [0] * pad])
    return DataProto.from_dict(
        tensors={"prompts": torch.tensor([[7, 7]]), "responses": responses, "attention_mask": attention},
        non_tensors={"data_source": np.array([data_source], dtype=object),
                     "reward_model": np.array([{"ground_truth": ground_truth}], dtype=object),
                     "extra_info": np.array([dict(extra_info)], dtype=object),
                     "uid": np.array([f"u{kind}"], dtype=object)},
    )


def _expected(mode: str) -> list[float]:
    return [rewards.compute_score(ds, resp, gt, ei, mode=mode) for ds, ei, gt, resp in ROW_KINDS]


def _score_all(manager, samples):
    """Concurrent run_single calls on the manager's own event loop, as a verl reward worker makes them."""

    async def gather():
        return await asyncio.gather(*(manager.run_single(s) for s in samples))

    return manager.loop.run_until_complete(gather())


@pytest.mark.parametrize("mode", ["faithful", "hardened"])
def test_reward_function_through_verls_naive_manager(mode):
    from verl.trainer.ppo.reward import load_reward_manager

    config = verl_hydra_config([
        "reward.custom_reward_function.path=pkg://golongrl.rewards",
        "reward.custom_reward_function.name=compute_score",
        f"+reward.custom_reward_function.reward_kwargs.mode={mode}",
    ])
    manager = load_reward_manager(config, CharTokenizer())
    assert type(manager).__name__ == "NaiveRewardManager"
    outputs = (_score_all(manager, [_sample(k) for k in range(len(ROW_KINDS))]))
    assert [o["reward_score"] for o in outputs] == _expected(mode)
    assert [o["reward_extra_info"]["acc"] for o in outputs] == _expected(mode)


def test_batched_manager_through_verls_importlib_source_scores_in_micro_batches():
    from golongrl.engines.verl.launcher import REWARD_MANAGER_CLASS, REWARD_MANAGER_PATH
    from verl.trainer.ppo.reward import load_reward_manager

    config = verl_hydra_config([
        "reward.reward_manager.source=importlib",
        f"reward.reward_manager.name={REWARD_MANAGER_CLASS}",
        f"reward.reward_manager.module.path={REWARD_MANAGER_PATH}",
        "+reward.custom_reward_function.reward_kwargs.mode=faithful",
        "+reward.custom_reward_function.reward_kwargs.workers=0",
        "+reward.custom_reward_function.reward_kwargs.max_batch=3",
        "+reward.custom_reward_function.reward_kwargs.require_think=true",
    ])
    manager = load_reward_manager(config, CharTokenizer())
    assert type(manager).__name__ == REWARD_MANAGER_CLASS
    assert manager.options.score_options == {"require_think": True}
    batch_sizes: list[int] = []
    score = manager.batcher._score

    def counting(items):
        batch_sizes.append(len(items))
        return score(items)

    manager.batcher._score = counting
    samples = [_sample(k % len(ROW_KINDS)) for k in range(8)]
    outputs = (_score_all(manager, samples))
    assert sorted(batch_sizes) == [2, 3, 3]  # 8 concurrent rollouts -> full batches of 3, then the rest
    expected = _expected("faithful")
    assert [o["reward_score"] for o in outputs] == [expected[k % len(ROW_KINDS)] for k in range(8)]
    info = outputs[0]["reward_extra_info"]
    assert info["golongrl_task"] == "precise_retrieval" and info["golongrl_reason"] == ""


def test_batched_manager_rejects_unknown_options():
    from golongrl.engines.verl.reward_manager import RewardOptions

    config = verl_hydra_config(["+reward.custom_reward_function.reward_kwargs.timeout=3"])
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['timeout'\]"):
        RewardOptions.from_config(config)


def test_micro_batcher_hands_a_failure_to_every_caller_of_the_batch():
    from golongrl.engines.verl.reward_manager import MicroBatcher

    def broken(items):
        raise RuntimeError(f"scorer failed on {len(items)} items")

    async def run():
        batcher = MicroBatcher(broken, max_batch=10, max_wait_s=0.01)
        return await asyncio.gather(*(batcher.submit(i) for i in range(4)), return_exceptions=True)

    results = asyncio.run(run())
    assert all(isinstance(r, RuntimeError) and "4 items" in str(r) for r in results)


def test_verls_rl_dataset_reads_golongrl_parquet_and_keeps_the_label_columns(tmp_path):
    from golongrl.data.io import write_records
    from golongrl.engines.verl.plugin import task_labels
    from golongrl.inference.models import load_tokenizer
    from verl.utils.dataset.rl_dataset import RLHFDataset

    rows = [{"data_source": ds, "prompt": [{"role": "user", "content": f"Read the document. Question {i}?"}],
             "ability": "long-context", "reward_model": {"style": "rule", "ground_truth": gt},
             "extra_info": {**ei, "index": i, "split": "train"}}
            for i, (ds, ei, gt, _) in enumerate(ROW_KINDS)]
    path = tmp_path / "train.parquet"
    write_records(path, rows)
    config = verl_hydra_config([f"data.train_files=[{path}]", "data.max_prompt_length=4096",
                                "data.filter_overlong_prompts=true", "data.filter_overlong_prompts_workers=1"]).data
    dataset = RLHFDataset(data_files=[str(path)], tokenizer=load_tokenizer("smollm2"), config=config)
    assert len(dataset) == len(rows)
    items = [dataset[i] for i in range(len(dataset))]
    assert [item["reward_model"]["ground_truth"] for item in items] == [r["reward_model"]["ground_truth"] for r in rows]
    assert task_labels([it["data_source"] for it in items], [it["extra_info"] for it in items]) == EXPECTED_TASKS


def test_batched_manager_scores_a_malformed_row_zero_with_reason_gold_and_the_rest_normally():
    from golongrl.engines.verl.launcher import REWARD_MANAGER_CLASS, REWARD_MANAGER_PATH
    from verl.trainer.ppo.reward import load_reward_manager

    config = verl_hydra_config([
        "reward.reward_manager.source=importlib",
        f"reward.reward_manager.name={REWARD_MANAGER_CLASS}",
        f"reward.reward_manager.module.path={REWARD_MANAGER_PATH}",
        "+reward.custom_reward_function.reward_kwargs.mode=faithful",
        "+reward.custom_reward_function.reward_kwargs.workers=0",
    ])
    manager = load_reward_manager(config, CharTokenizer())
    samples = [_sample(k) for k in range(len(ROW_KINDS))]
    samples[1].non_tensor_batch["reward_model"][0] = {"ground_truth": None}  # no gold at all
    outputs = _score_all(manager, samples)
    expected = _expected("faithful")
    assert outputs[1]["reward_score"] == 0.0 and outputs[1]["reward_extra_info"]["golongrl_reason"] == "gold"
    assert [o["reward_score"] for i, o in enumerate(outputs) if i != 1] == [e for i, e in enumerate(expected) if i != 1]
