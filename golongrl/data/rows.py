"""The GoLongRL/verl dataset row of a verified sample.

Shared by the rule-based track (:mod:`golongrl.data.pipeline`) and the LLM track
(:mod:`golongrl.data.llm`), which is why it lives in neither.
"""

from __future__ import annotations

from typing import Any

from golongrl.data.assembly import Context
from golongrl.construct import Sample
from golongrl.tasks import get_task

PROMPT_PREAMBLE = "Read the text below, then answer the question that follows it."


def make_row(sample: Sample, ctx: Context, *, split: str, uid: str, target: int, language: str = "en") -> dict[str, Any]:
    """The GoLongRL/verl row of a verified sample (``extra_info.index`` is set at write time)."""
    task = get_task(sample.task)
    instruction = sample.instruction or task.instruction
    content = f"{PROMPT_PREAMBLE}\n\n{ctx.text}\n\nQuestion: {sample.question}\n\n{instruction}"
    main = ctx.main.doc
    position = None if sample.answer_offset is None or sample.answer_offset < 0 else round(sample.answer_offset / max(1, len(ctx.text)), 4)
    return {
        "data_source": task.data_source,
        "prompt": [{"role": "user", "content": content}],
        "ability": task.ability,
        "reward_model": {"style": "rule", "ground_truth": sample.gold},
        "extra_info": {
            "reward_mode": sample.reward_mode,
            "lbp_task": sample.lbp_task,
            "question": sample.question,
            "instruction": instruction,
            "task_type": task.name,
            "split": split,
            "index": 0,
            "uid": uid,
            "construction": sample.construction,
            "language": language,
            "domain": main.domain,
            "doc_id": main.id,
            "context_tokens": ctx.tokens,
            "target_tokens": target,
            "answer_position": position,
            "sections": len(ctx.blocks),
            "candidates": list(sample.candidates or []),
            "provenance": [
                {
                    "id": b.doc.id,
                    "domain": b.doc.domain,
                    "role": b.role,
                    "package": b.doc.provenance.get("package", ""),
                    "version": b.doc.provenance.get("version", ""),
                    "license": b.doc.provenance.get("license", ""),
                }
                for b in ctx.blocks
            ],
            "difficulty": None,
            "pass_rate_small": None,
            "pass_rate_large": None,
            "shortcut_pass_rate": None,
        },
    }


__all__ = ["PROMPT_PREAMBLE", "make_row"]
