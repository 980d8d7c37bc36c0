"""``golongrl data import``: the published GoLongRL dataset, checked and ready for training.

Reads the Kwai-Klear/GoLongRL files a user downloaded (parquet or JSONL, a file or a folder of
them) in the reference row schema (``data_source``, ``prompt``, ``ability``,
``reward_model.ground_truth{doc_ids, golden_label, summary}``, ``extra_info{reward_mode,
question}``; spec §2.1), and

* validates every row with :func:`golongrl.data.schema.validate_record`: by default the first
  bad row stops the import with its file, row and field; with ``on_error="skip"`` bad rows are
  left out and listed, with that same message, in ``skipped.jsonl``;
* maps each row's labels to one of the nine task types (:func:`golongrl.tasks.resolve_task`) and
  records the name in ``extra_info.task_type`` (the original ``reward_mode`` is kept, so the
  reference's TMN grouping stays reproducible);
* measures each prompt in the target tokenizer's tokens (``extra_info.prompt_tokens``);
* writes ``<out>/<split>.jsonl`` for the local trainer and ``<out>/<split>.parquet`` for verl
  (one ground-truth shape per row: parquet columns have one type), plus ``report.json`` with
  counts by task, data_source, reward_mode and length bucket.

Parquet readers hand list fields back as numpy arrays (pandas, ``datasets``) and the reference
reward manager accepts a list ground truth (its last element is the gold): both are normalised
before validation, so those files import as they are.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from golongrl.data.io import JSONL_SUFFIXES, PARQUET_SUFFIXES, atomic_output, read_records, write_records
from golongrl.data.schema import DataError, prompt_text, validate_record
from golongrl.tasks import TASK_TYPES, resolve_task

#: Upper edges (tokens) of the length buckets in the report; the last bucket is open.
LENGTH_BUCKETS: tuple[int, ...] = (8_192, 32_768, 65_536, 131_072, 163_840)
#: Rows tokenised per batch / written per parquet batch: bounds memory on 100K-token prompts.
_BATCH_ROWS = 64
_PARQUET_BATCH_ROWS = 256


@dataclass
class ImportResult:
    """What an import read, kept and wrote."""

    rows_read: int = 0
    rows_written: int = 0
    skipped: list[dict[str, Any]] = field(default_factory=list)
    per_task: Counter[str] = field(default_factory=Counter)
    per_data_source: Counter[str] = field(default_factory=Counter)
    per_reward_mode: Counter[str] = field(default_factory=Counter)
    per_length_bucket: dict[str, Counter[str]] = field(default_factory=dict)
    lengths: dict[str, list[int]] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        """The JSON-serialisable summary written to ``report.json``."""
        import numpy as np

        per_task_lengths = {
            task: {"rows": len(v), "median": int(np.median(v)), "p90": int(np.percentile(v, 90)),
                   "max": int(max(v)), "mean": round(float(np.mean(v)), 1)}
            for task, v in self.lengths.items() if v
        }
        return {
            "rows_read": self.rows_read,
            "rows_written": self.rows_written,
            "rows_skipped": len(self.skipped),
            "per_task": {t: self.per_task[t] for t in TASK_TYPES if self.per_task[t]},
            "per_data_source": dict(sorted(self.per_data_source.items())),
            "per_reward_mode": dict(sorted(self.per_reward_mode.items())),
            "per_length_bucket": {t: dict(c) for t, c in self.per_length_bucket.items()},
            "prompt_tokens": per_task_lengths,
            "files": self.files,
        }


def bucket_name(tokens: int) -> str:
    """The report's length bucket of a prompt of ``tokens`` tokens (``<=32K``, ``>160K`` ...)."""
    for edge in LENGTH_BUCKETS:
        if tokens <= edge:
            return f"<={edge // 1024}K"
    return f">{LENGTH_BUCKETS[-1] // 1024}K"


def to_plain(value: Any) -> Any:
    """``value`` with numpy arrays and scalars (as pandas/``datasets`` give for parquet list
    columns) turned into Python lists and scalars, recursively."""
    if isinstance(value, Mapping):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    tolist = getattr(value, "tolist", None)
    if callable(tolist) and type(value).__module__ == "numpy":
        return to_plain(tolist())
    return value


def dataset_files(path: str | Path) -> list[Path]:
    """``path`` itself, or every ``.parquet``/``.jsonl`` file under the folder ``path``, sorted."""
    path = Path(path)
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")
                       and p.suffix.lower() in JSONL_SUFFIXES | PARQUET_SUFFIXES)
        if not found:
            raise DataError("folder holds no .parquet or .jsonl files", source=path)
        return found
    if not path.exists():
        raise DataError("no such file or folder", source=path)
    return [path]


def canonical_row(record: Mapping[str, Any], *, source: Path, row: int, split: str) -> dict[str, Any]:
    """One validated row in golongrl's canonical form.

    ``ground_truth`` becomes the ``{doc_ids, golden_label, summary}`` dict (a bare math gold
    string becomes its ``golden_label``); ``extra_info`` gains ``task_type``, ``split`` and the
    ``import_source`` (file and row) and keeps every field it had.
    """
    rec = validate_record(to_plain(record), source=source, row=row)
    info = dict(rec["extra_info"])
    task = resolve_task(rec["data_source"], info, rec.get("ability"))
    gt = rec["reward_model"]["ground_truth"]
    if not isinstance(gt, Mapping):
        gt = {"golden_label": str(gt)}
    gt = {"doc_ids": [str(x) for x in gt.get("doc_ids") or []],
          "golden_label": str(gt.get("golden_label") if gt.get("golden_label") is not None else ""),
          "summary": str(gt.get("summary") or "")}
    info.update(task_type=task, split=str(info.get("split") or split),
                import_source={"file": source.name, "row": row})
    if not isinstance(info.get("question"), str):
        info["question"] = ""
    return {
        "data_source": rec["data_source"],
        "prompt": [{"role": m["role"], "content": m["content"]} for m in rec["prompt"]],
        "ability": str(rec.get("ability") or TASK_TYPES[task].ability),
        "reward_model": {"style": str(rec["reward_model"].get("style") or "rule"), "ground_truth": gt},
        "extra_info": info,
    }


def _rows(files: Sequence[Path], split: str, on_error: str, result: ImportResult) -> Iterator[dict[str, Any]]:
    for path in files:
        result.files.append(str(path))
        records = read_records(path)
        while True:
            try:
                number, record = next(records)
            except StopIteration:
                break
            except DataError as exc:  # an unreadable line or file: nothing after it can be read
                if on_error != "skip":
                    raise
                result.skipped.append({"file": str(path), "row": exc.row, "field": exc.field, "reason": str(exc)})
                break
            result.rows_read += 1
            try:
                yield canonical_row(record, source=path, row=number, split=split)
            except DataError as exc:
                if on_error != "skip":
                    raise
                result.skipped.append({"file": str(path), "row": number, "field": exc.field, "reason": str(exc)})


def _measured(rows: Iterable[dict[str, Any]], counter: Any, result: ImportResult) -> Iterator[dict[str, Any]]:
    batch: list[dict[str, Any]] = []

    def flush() -> Iterator[dict[str, Any]]:
        for row, n in zip(batch, counter.count_many([prompt_text(r) for r in batch])):
            info = row["extra_info"]
            info["prompt_tokens"] = n
            task = info["task_type"]
            result.per_task[task] += 1
            result.per_data_source[row["data_source"]] += 1
            result.per_reward_mode[str(info.get("reward_mode") or "-")] += 1
            result.per_length_bucket.setdefault(task, Counter())[bucket_name(n)] += 1
            result.lengths.setdefault(task, []).append(n)
            yield row
        batch.clear()

    for row in rows:
        batch.append(row)
        if len(batch) >= _BATCH_ROWS:
            yield from flush()
    yield from flush()


def _batches(jsonl: Path, keys: list[str] | None = None) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    with jsonl.open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            if keys is not None:  # one struct type needs every row to carry every field
                row["extra_info"] = {k: row["extra_info"].get(k) for k in keys}
            batch.append(row)
            if len(batch) >= _PARQUET_BATCH_ROWS:
                yield batch
                batch = []
    if batch:
        yield batch


def write_parquet_streaming(jsonl: Path, output: Path) -> int:
    """Write the rows of ``jsonl`` as one parquet file, a batch at a time (the published rows
    carry prompts of up to 160K tokens: 23K of them do not fit in memory at once).

    The schema is the union over all batches (``extra_info`` keys differ between published
    rows; a key a row lacks is null there), found in a first pass that keeps only schemas."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    keys: dict[str, None] = {}
    for batch in _batches(jsonl):
        for row in batch:
            keys.update(dict.fromkeys(row["extra_info"]))
    names = list(keys)
    schemas = [pa.Table.from_pylist(batch).schema for batch in _batches(jsonl, names)]
    if not schemas:
        with atomic_output(output, "wb") as handle:
            pq.write_table(pa.table({}), handle)
        return 0
    schema = pa.unify_schemas(schemas, promote_options="permissive")
    count = 0
    with atomic_output(output, "wb") as handle, pq.ParquetWriter(handle, schema, compression="zstd") as writer:
        for batch in _batches(jsonl, names):
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            count += len(batch)
    return count


def import_dataset(
    path: str | Path,
    output: str | Path,
    *,
    split: str = "train",
    on_error: str = "raise",
    tokenizer: str = "smollm2",
    max_prompt_tokens: int | None = None,
    on_row: Callable[[], None] | None = None,
) -> ImportResult:
    """Import the published GoLongRL file(s) at ``path`` into ``output`` (see module docstring).

    ``on_error`` is ``"raise"`` (the first bad row raises :class:`DataError` naming file, row
    and field; nothing is written) or ``"skip"``. Rows whose prompt is longer than
    ``max_prompt_tokens`` (the reference trains on <= 163,840) are skipped with that reason.
    ``on_row`` is called once per row read (progress display). JSONL is streamed to disk; the
    parquet is written from it at the end, one file, atomically.
    """
    from golongrl.data.tokens import get_counter

    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    out = Path(output)
    result = ImportResult()
    counter = get_counter(tokenizer)

    def kept(rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for row in rows:
            if on_row is not None:
                on_row()
            n = row["extra_info"]["prompt_tokens"]
            if max_prompt_tokens is not None and n > max_prompt_tokens:
                src = row["extra_info"]["import_source"]
                result.skipped.append({"file": src["file"], "row": src["row"], "field": "prompt",
                                       "reason": f"prompt has {n} tokens (> {max_prompt_tokens})"})
                continue
            yield row

    jsonl = out / f"{split}.jsonl"
    files = dataset_files(path)
    result.rows_written = write_records(jsonl, kept(_measured(_rows(files, split, on_error, result), counter, result)))
    # The parquet is made from the JSONL just written, so both exports hold the same rows.
    write_parquet_streaming(jsonl, out / f"{split}.parquet")
    with atomic_output(out / "skipped.jsonl", "w") as handle:
        handle.write("".join(json.dumps(s, ensure_ascii=False) + "\n" for s in result.skipped))
    with atomic_output(out / "report.json", "w") as handle:
        json.dump(result.report(), handle, indent=2, ensure_ascii=False)
        handle.write("\n")
    return result


__all__ = ["ImportResult", "LENGTH_BUCKETS", "bucket_name", "canonical_row", "dataset_files", "import_dataset", "to_plain", "write_parquet_streaming"]
