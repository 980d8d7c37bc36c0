"""``golongrl data export --format verl``: a parquet file verl's RL dataset loader reads as-is.

verl's ``RLHFDataset`` reads parquet through ``datasets``, expects ``prompt`` as a list of
``{role, content}`` messages and (with ``filter_overlong_prompts``) drops rows whose
chat-templated prompt exceeds ``data.max_prompt_length`` tokens. This export applies the same
filter with the same tokenizer up front, so the count the user sees is the count verl trains
on, and writes canonical rows (ground truth as a dict, extra_info as a struct).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from golongrl.data.io import read_records, write_records
from golongrl.data.schema import validate_record


@dataclass(frozen=True)
class ExportResult:
    written: int
    dropped_overlong: int
    max_prompt_tokens: int


def templated_lengths(rows: list[dict[str, Any]], tokenizer_spec: str) -> list[int]:
    """Prompt lengths after the tokenizer's chat template with the generation prompt, which is
    what verl measures."""
    from golongrl.inference.models import load_tokenizer

    tok = load_tokenizer(tokenizer_spec)
    texts = [tok.apply_chat_template(r["prompt"], add_generation_prompt=True, tokenize=False) for r in rows]
    backend = tok.backend_tokenizer
    return [len(e.ids) for e in backend.encode_batch(texts, add_special_tokens=False)]


def _canonical(row: dict[str, Any]) -> dict[str, Any]:
    """One ground-truth shape for every row (a bare math gold string becomes
    ``{"golden_label": ...}``), because a parquet column has one type."""
    gt = row["reward_model"]["ground_truth"]
    if not isinstance(gt, dict):
        gt = {"golden_label": str(gt)}
    gt = {"doc_ids": list(gt.get("doc_ids") or []), "golden_label": str(gt.get("golden_label") or ""),
          "summary": str(gt.get("summary") or "")}
    return {**row, "reward_model": {**row["reward_model"], "style": row["reward_model"].get("style") or "rule",
                                    "ground_truth": gt}}


def export_verl(
    source: str | Path, output: str | Path, *, tokenizer: str = "smollm2", max_prompt_length: int | None = None
) -> ExportResult:
    """Validate ``source`` (JSONL/parquet), drop overlong prompts, write verl parquet."""
    rows = [_canonical(validate_record(r, source=source, row=n)) for n, r in read_records(source)]
    lengths = templated_lengths(rows, tokenizer) if rows else []
    kept = [r for r, n in zip(rows, lengths) if max_prompt_length is None or n <= max_prompt_length]
    output = Path(output)
    if output.suffix != ".parquet":
        output = output.with_suffix(".parquet")
    write_records(output, kept)
    return ExportResult(len(kept), len(rows) - len(kept), max(lengths, default=0))


__all__ = ["ExportResult", "export_verl", "templated_lengths"]
