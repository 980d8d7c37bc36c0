"""Shared helpers for the verl plugin tests: labelled rows, responses and verl batches."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

LBP_F1_MODE = "T5.1 Full-Sentence Citation Alignment"
LBP_SUMMARY_MODE = "T4.2 Query-Focused Summary"


def _gt(**fields: Any) -> dict[str, Any]:
    return {"doc_ids": [], "golden_label": "", "summary": "English", **fields}


#: (data_source, extra_info, ground_truth, a response) per task; resolve_task gives the comment.
ROW_KINDS: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    ("EM", {"reward_mode": "EM"}, _gt(golden_label="Paris"), "<think>a</think>Paris"),  # precise_retrieval
    ("selection", {"reward_mode": "selection"}, _gt(golden_label="B"),
     "<think>a</think>The correct answer is (B)"),  # comprehension
    ("longbench_pro", {"reward_mode": LBP_F1_MODE}, _gt(doc_ids=["[1]", "[2]"]),
     "<think>a</think>[Answer]\n[1]\n[3]"),  # exhaustive_retrieval
    ("longbench_pro", {"reward_mode": LBP_SUMMARY_MODE}, _gt(doc_ids=["the quick brown fox"]),
     "<think>a</think>[Answer]\nthe quick brown fox jumps"),  # summarization
]
EXPECTED_TASKS = ["precise_retrieval", "comprehension", "exhaustive_retrieval", "summarization"]


def labelled_batch(groups_per_kind: int = 2, group_size: int = 4, seed: int = 0) -> dict[str, Any]:
    """A batch as verl's legacy trainer holds it at advantage time.

    ``groups_per_kind`` prompts of every row kind, ``group_size`` rollouts each, graded random
    scores on the last valid token of responses of random length (so the response mask matters).
    Returns numpy/tensor columns: scores [B], token_level_rewards [B, T], response_mask [B, T],
    uid, data_source, extra_info (object arrays) and the expected task per row.
    """
    rng = np.random.default_rng(seed)
    uid, data_source, extra_info, tasks = [], [], [], []
    for g in range(groups_per_kind * len(ROW_KINDS)):
        kind = g % len(ROW_KINDS)
        for _ in range(group_size):
            uid.append(f"prompt-{g}")
            data_source.append(ROW_KINDS[kind][0])
            extra_info.append({**ROW_KINDS[kind][1], "index": g})
            tasks.append(EXPECTED_TASKS[kind])
    n, width = len(uid), 6
    lengths = torch.as_tensor(rng.integers(1, width + 1, size=n))
    mask = (torch.arange(width)[None, :] < lengths[:, None]).float()
    scores = torch.as_tensor(rng.choice([0.0, 0.25, 0.5, 1.0], size=n), dtype=torch.float32)
    rewards = torch.zeros(n, width)
    rewards[torch.arange(n), lengths - 1] = scores
    return {
        "scores": scores,
        "token_level_rewards": rewards,
        "response_mask": mask,
        "uid": np.array(uid, dtype=object),
        "data_source": np.array(data_source, dtype=object),
        "extra_info": np.array(extra_info, dtype=object),
        "tasks": tasks,
    }


def legacy_dataproto(batch: dict[str, Any], *, with_metric_fields: bool = False) -> Any:
    """verl ``DataProto`` of :func:`labelled_batch` (plus the fields compute_data_metrics reads)."""
    from verl.protocol import DataProto

    tensors = {"token_level_rewards": batch["token_level_rewards"].clone(), "response_mask": batch["response_mask"].clone()}
    if with_metric_fields:
        n, width = batch["response_mask"].shape
        tensors["token_level_scores"] = batch["token_level_rewards"].clone()
        tensors["prompts"] = torch.ones(n, 3, dtype=torch.long)
        tensors["responses"] = torch.ones(n, width, dtype=torch.long)
        tensors["attention_mask"] = torch.cat([torch.ones(n, 3), batch["response_mask"]], dim=1).long()
    non_tensors = {key: batch[key].copy() for key in ("uid", "data_source", "extra_info")}
    return DataProto.from_dict(tensors=tensors, non_tensors=non_tensors)


def verl_hydra_config(overrides: list[str]) -> Any:
    """verl's composed ``ppo_trainer`` config with ``overrides`` (through golongrl's launcher)."""
    from golongrl.engines.verl.launcher import compose

    return compose(overrides)


def dataset_rows(count: int) -> list[dict[str, Any]]:
    """``count`` valid golongrl/verl dataset rows cycling through :data:`ROW_KINDS`."""
    rows = []
    for i in range(count):
        data_source, extra_info, ground_truth, _ = ROW_KINDS[i % len(ROW_KINDS)]
        rows.append({"data_source": data_source, "prompt": [{"role": "user", "content": f"question {i}"}],
                     "ability": "qa", "reward_model": {"style": "rule", "ground_truth": ground_truth},
                     "extra_info": {**extra_info, "index": i}})
    return rows


def write_train_parquet(path: Any, count: int) -> str:
    """A parquet of :func:`dataset_rows` at ``path``; returns the path as a string."""
    from golongrl.data.io import write_records

    write_records(path, dataset_rows(count))
    return str(path)
