"""Helpers for the per-task tests: score one response against one row, in either mode."""

from __future__ import annotations

from typing import Any

from golongrl.rewards.scoring import ScoreOptions, prepare, score_prepared


def row(data_source: str, *, items: list[str] | None = None, label: str = "",
        question: str | None = None, candidates: list[str] | None = None,
        reward_mode: str | None = None, task_type: str | None = None) -> dict[str, Any]:
    """Fields of a dataset row (minus the prompt) for :func:`score`."""
    extra: dict[str, Any] = {}
    if question is not None:
        extra["question"] = question
    if candidates is not None:
        extra["candidates"] = candidates
    if reward_mode is not None:
        extra["reward_mode"] = reward_mode
    if task_type is not None:
        extra["task_type"] = task_type
    gt = {"doc_ids": items or [], "golden_label": label, "summary": "English"}
    return {"data_source": data_source, "ground_truth": gt, "extra_info": extra}


def score(fields: dict[str, Any], response: str, mode: str = "hardened", **options: Any) -> float:
    return scored(fields, response, mode, **options)[0]


def scored(fields: dict[str, Any], response: str, mode: str = "hardened",
           **options: Any) -> tuple[float, str | None]:
    prepared = prepare(fields["data_source"], fields["ground_truth"], fields["extra_info"], mode)
    return score_prepared(prepared, response, mode, ScoreOptions(**options))
