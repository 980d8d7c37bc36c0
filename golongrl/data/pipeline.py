"""``golongrl data build``: the four phases end to end, deterministic and resumable.

Phase 1 (corpus) loads, cleans and deduplicates documents and measures them in the target
tokenizer. Phase 2 (assignment) splits documents into train / held-out eval by a seeded hash
(so no document feeds both splits) and routes them to the nine task pools by metadata
(:data:`ROUTING`). Phase 3 (construction) builds each sample from its own seeded random stream
``seed/split/task/index``, verifies it (:mod:`golongrl.data.verify`) and appends it to a
checkpoint; LLM-backed samples follow when configured. Phase 4 (refinement) decontaminates,
runs the shortcut probe and the two-stage difficulty calibration, then writes the splits.

Resume: every finished sample (or its recorded failure) is one fsynced line of
``<out>/.work/samples.jsonl``; probe and calibration results go to their own logs. A rerun
with the same config skips what is logged, and because no sample's randomness depends on any
other, the final files are byte-identical to an uninterrupted build. Final files are written
atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from golongrl.data.assembly import AssemblyError, UnitCache, assemble_context, doc_units
from golongrl.data.config import DataConfig
from golongrl.data.constructions import (
    CONSTRUCTIONS,
    ConstructionError,
    ConstructionSpec,
    Env,
    Sample,
)
from golongrl.data.corpus import (
    CleaningRules,
    Document,
    Skipped,
    annotate_tokens,
    clean_corpus,
    ingest_folder,
    load_default_corpus,
)
from golongrl.data.io import AppendLog, atomic_output, write_records
from golongrl.data.rows import make_row
from golongrl.data.schema import DataError
from golongrl.data.tokens import get_counter
from golongrl.data.verify import verify_row
from golongrl.tasks import TASK_TYPES

SPLITS: tuple[str, ...] = ("train", "eval")
WORK_DIR = ".work"

#: Phase 2 routing: which documents feed which task, by metadata. A document qualifies for a
#: construction when its kind is accepted, it has enough units, and (for summarisation) it
#: carries its own description. Tables go to extraction, numerical reasoning, lookup,
#: ranking and key listing; dialogues to speaker matching, cloze, ordering and term tasks;
#: prose (literature, speeches, manuals, legal text) to retrieval, cloze, counting, ranking,
#: ordering and multi-document source matching.
ROUTING: dict[str, str] = {
    name: ", ".join(
        f"{c.name} ({'/'.join(sorted(c.kinds))}{', multi-document' if c.multi_document else ''}"
        f"{', own description' if c.needs_summary else ''})"
        for c in CONSTRUCTIONS.values()
        if c.task == name
    )
    for name in TASK_TYPES
}
MIN_UNITS = {"prose": 6, "dialogue": 12, "table": 6}
MAX_TABLE_HEAD_CHARS = 600


@dataclass
class BuildResult:
    """What a build produced (also written to ``report.json``)."""

    output_dir: Path
    counts: dict[str, dict[str, int]]
    failures: dict[str, int]
    skipped_documents: list[dict[str, str]]
    dropped: dict[str, int]
    files: list[str]
    documents: int = 0
    report: dict[str, Any] = field(default_factory=dict)


# --- phase 1 + 2 --------------------------------------------------------------------------------


def load_documents(config: DataConfig) -> tuple[list[Document], list[Skipped]]:
    """Phase 1: the configured corpus, cleaned and deduplicated, in a fixed order."""
    docs = load_default_corpus(config.corpus.default_domains, max_dialogues=config.corpus.max_dialogues)
    skipped: list[Skipped] = []
    for folder in config.corpus.folders:
        found, bad = ingest_folder(folder)
        docs.extend(found)
        skipped.extend(bad)
    rules = CleaningRules(min_words=config.corpus.min_words, max_line_chars=config.corpus.max_line_chars)
    kept, dropped = clean_corpus(docs, rules, near_threshold=config.corpus.near_duplicate_threshold)
    if not kept:
        raise DataError("no usable document in the configured corpus")
    return kept, skipped + dropped


def _hash_unit(text: str) -> float:
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:12], 16) / float(1 << 48)


def split_documents(docs: Sequence[Document], eval_fraction: float, seed: int) -> dict[str, list[Document]]:
    """Hold out ``eval_fraction`` of each domain's documents (at least one when the domain has
    two or more) by a seeded hash of the id; the rest is train."""
    by_domain: dict[str, list[Document]] = {}
    for doc in docs:
        by_domain.setdefault(doc.domain, []).append(doc)
    held: set[str] = set()
    for members in by_domain.values():
        ranked = sorted(members, key=lambda d: (_hash_unit(f"{seed}:{d.id}"), d.id))
        n = round(len(members) * eval_fraction)
        if eval_fraction > 0 and len(members) >= 2:
            n = max(1, n)
        held.update(d.id for d in ranked[:n])
    return {
        "train": [d for d in docs if d.id not in held],
        "eval": [d for d in docs if d.id in held],
    }


def qualifies(spec: ConstructionSpec, doc: Document) -> bool:
    """Phase 2 criterion for one construction and one document."""
    if doc.kind not in spec.kinds or (spec.needs_summary and not doc.summary):
        return False
    units = doc_units(doc)
    if len(units) < MIN_UNITS[doc.kind]:
        return False
    # A table whose header and first row alone fill a short context cannot be windowed.
    return doc.kind != "table" or len(units[0]) + len(units[1]) <= MAX_TABLE_HEAD_CHARS


def task_pools(docs: Sequence[Document]) -> dict[str, list[Document]]:
    """Per construction name, the documents that qualify (phase 2)."""
    return {name: [d for d in docs if qualifies(spec, d)] for name, spec in CONSTRUCTIONS.items()}


# --- phase 3 ------------------------------------------------------------------------------------


def _position(config: DataConfig, index: int, count: int) -> float | None:
    setting = config.context.position
    if setting == "uniform":
        return (index + 0.5) / max(1, count)
    if setting is None:
        return None
    return float(setting)


@dataclass
class _Builder:
    config: DataConfig
    splits: dict[str, list[Document]]
    cache: UnitCache
    pools: dict[str, dict[str, list[Document]]]

    def distractors(self, split: str, main: Document, rng: random.Random, prose_only: bool) -> list[Document]:
        others = [d for d in self.splits[split] if d.id != main.id and (d.kind == "prose" or not prose_only)]
        rng.shuffle(others)
        return others

    @staticmethod
    def pick_main(pool: list[Document], rng: random.Random) -> Document:
        """A domain uniformly, then a document of it: a domain with many short documents
        (dialogues) must not crowd out one with a few long ones (legal)."""
        domain = rng.choice(sorted({d.domain for d in pool}))
        return rng.choice([d for d in pool if d.domain == domain])

    def attempt(self, split: str, task: str, index: int, count: int) -> tuple[dict[str, Any] | None, list[str]]:
        """Build one sample; returns (row or None, failure reasons of the attempts)."""
        cfg = self.config
        rng = random.Random(f"{cfg.seed}/{split}/{task}/{index}")
        specs = [c for c in CONSTRUCTIONS.values() if c.task == task and self.pools[split][c.name]]
        if not specs:
            return None, [f"no {split} document qualifies for any {task} construction"]
        lengths = cfg.context.train_lengths if split == "train" else cfg.context.eval_lengths
        target = lengths[index % len(lengths)]
        position = _position(cfg, index, count)
        failures: list[str] = []
        for attempt in range(cfg.max_attempts):
            spec = specs[(index + attempt) % len(specs)]
            main = self.pick_main(self.pools[split][spec.name], rng)
            share = cfg.context.multi_document_share if spec.multi_document else cfg.context.main_share
            distractors = self.distractors(split, main, rng, spec.multi_document)
            try:
                ctx = assemble_context(
                    main, distractors, target, self.cache, rng,
                    position=rng.random() if position is None else position,
                    main_share=share, tolerance=cfg.context.tolerance,
                )
                in_context = {b.doc.id for b in ctx.blocks}
                language = "Chinese" if main.language.startswith("zh") else "English"
                env = Env(rng, position, [d for d in distractors if d.id not in in_context], language)
                sample = spec.fn(ctx, env)
            except (AssemblyError, ConstructionError) as exc:
                failures.append(f"{spec.name} on {main.id}: {exc}")
                continue
            uid = f"{split}-{task}-{index:05d}"
            row = make_row(sample, ctx, split=split, uid=uid, target=target, language=main.language)
            problems = verify_row(row, ctx.text, sample.answer, sample.evidence, sample.checks)
            if problems:
                failures.append(f"{spec.name} on {main.id}: " + "; ".join(problems))
                continue
            return row, failures
        return None, failures


def _progress(enabled: bool) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        disable=not enabled, transient=False,
    )


def build_dataset(
    config: DataConfig,
    output_dir: str | os.PathLike[str],
    *,
    progress: bool = False,
    stop_after: int | None = None,
) -> BuildResult:
    """Build the dataset described by ``config`` into ``output_dir``.

    Writes ``train.{jsonl,parquet}``, ``eval.{jsonl,parquet}`` (per ``config.formats``),
    ``documents.jsonl`` (per-document metadata and provenance), ``failures.jsonl`` and
    ``report.json``. ``stop_after`` stops after that many newly built samples without writing
    the final files (used to test resume); a later call continues.
    """
    out = Path(output_dir)
    work = out / WORK_DIR
    work.mkdir(parents=True, exist_ok=True)
    stamp = work / "config.json"
    fingerprint = config.fingerprint()
    if stamp.exists() and json.loads(stamp.read_text(encoding="utf-8")).get("fingerprint") != fingerprint:
        raise DataError(
            f"{out} holds a build from a different config; use a new output folder or delete {work}",
            source=out,
        )
    with atomic_output(stamp, "w") as handle:
        handle.write(json.dumps({"fingerprint": fingerprint, "config": config.model_dump(mode="json")}, sort_keys=True))

    with _progress(progress) as bar:
        phase = bar.add_task("phase 1: corpus", total=3)
        docs, skipped = load_documents(config)
        bar.advance(phase)
        counter = get_counter(config.tokenizer)
        annotate_tokens(docs, counter)
        bar.advance(phase)
        cache = UnitCache(counter)
        splits = split_documents(docs, config.eval_fraction, config.seed)
        pools = {s: task_pools(splits[s]) for s in SPLITS}
        bar.advance(phase)

        plan = [
            (split, task, i, n)
            for split in SPLITS
            for task in TASK_TYPES
            for n in [config.train_count(task) if split == "train" else config.eval_samples_per_task]
            for i in range(n)
        ]
        checkpoint = AppendLog(work / "samples.jsonl")
        builder = _Builder(config, splits, cache, pools)
        phase = bar.add_task("phase 2-3: construct + verify", total=len(plan))
        built = 0
        try:
            for split, task, i, n in plan:
                key = f"{split}/{task}/{i}"
                if key not in checkpoint.items:
                    if stop_after is not None and built >= stop_after:
                        return BuildResult(out, {}, {}, [], {}, [], len(docs))
                    row, failures = builder.attempt(split, task, i, n)
                    checkpoint.add(key, row=row, failures=failures)
                    built += 1
                bar.advance(phase)
        finally:
            checkpoint.close()
        items = [checkpoint.items[f"{s}/{t}/{i}"] for s, t, i, _ in plan]
        rows = [it["row"] for it in items if it.get("row") is not None]
        failures = [
            {"key": it["key"], "reason": reason, "built": it.get("row") is not None}
            for it in items
            for reason in it.get("failures", [])
        ]

        if config.llm.enabled:
            from golongrl.data.llm import build_llm_samples

            phase = bar.add_task("phase 3: LLM-backed construction", total=1)
            llm_rows, llm_failures = build_llm_samples(config, splits, cache, work)
            rows.extend(llm_rows)
            failures.extend(llm_failures)
            bar.advance(phase)

        from golongrl.data.refine import refine

        phase = bar.add_task("phase 4: refine", total=1)
        rows, dropped, refine_report = refine(config, rows, counter, work)
        bar.advance(phase)

    return _write_outputs(config, out, rows, docs, skipped, failures, dropped, refine_report)


def _write_outputs(
    config: DataConfig,
    out: Path,
    rows: list[dict[str, Any]],
    docs: list[Document],
    skipped: list[Skipped],
    failures: list[dict[str, Any]],
    dropped: dict[str, int],
    refine_report: dict[str, Any],
) -> BuildResult:
    files: list[str] = []
    counts: dict[str, dict[str, int]] = {}
    for split in SPLITS:
        split_rows = [r for r in rows if r["extra_info"]["split"] == split]
        for index, row in enumerate(split_rows):
            row["extra_info"]["index"] = index
        counts[split] = {t: sum(r["extra_info"]["task_type"] == t for r in split_rows) for t in TASK_TYPES}
        for fmt in config.formats:
            path = out / f"{split}.{fmt}"
            write_records(path, split_rows)
            files.append(path.name)
    write_records(out / "documents.jsonl", [d.metadata() for d in docs])
    write_records(out / "failures.jsonl", failures)
    files += ["documents.jsonl", "failures.jsonl", "report.json"]
    failure_counts: dict[str, int] = {}
    for item in failures:
        name = item["reason"].split(" on ", 1)[0]
        failure_counts[name] = failure_counts.get(name, 0) + 1
    skipped_docs = [{"source": s.source, "reason": s.reason} for s in skipped]
    report = {
        "config_fingerprint": config.fingerprint(),
        "documents": len(docs),
        "documents_by_domain": _tally(d.domain for d in docs),
        "skipped_documents": skipped_docs,
        "counts": counts,
        "construction_failures": dict(sorted(failure_counts.items())),
        "dropped": dropped,
        "refinement": refine_report,
        "routing": ROUTING,
    }
    with atomic_output(out / "report.json", "w") as handle:
        handle.write(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return BuildResult(out, counts, failure_counts, skipped_docs, dropped, files, len(docs), report)


def _tally(values: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return dict(sorted(out.items()))


__all__ = [
    "BuildResult",
    "ROUTING",
    "SPLITS",
    "build_dataset",
    "load_documents",
    "qualifies",
    "split_documents",
    "task_pools",
]
