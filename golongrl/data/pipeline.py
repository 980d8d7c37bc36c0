"""``golongrl data build``: the four phases end to end, deterministic, resumable and streamed.

Phase 1 (corpus) loads, cleans and deduplicates documents and measures them in the target
tokenizer. Phase 2 (assignment) splits documents into train / held-out eval by a seeded hash
(so no document feeds both splits) and routes them to construction pools by metadata
(:data:`ROUTING`). Phase 3 (construction) builds each sample from its own seeded random stream
``seed/split/task/index``: a context of same-domain real documents (one section each, the
focus document at the requested depth), a construction from the task's module, verification
(:mod:`golongrl.data.verify`), and one appended line of ``<out>/.work/samples.jsonl``. Phase 4
(refinement: decontamination, shortcut probe, two-stage calibration) streams over that log,
and the splits are written from it in plan order.

Memory is bounded regardless of the row count: rows live on disk, and only their keys and
byte offsets (and per-row refinement results) are held. Resume: a rerun with the same config
skips every logged sample (a torn last line is cut off); because no sample's randomness
depends on another's, the final files are byte-identical to an uninterrupted build. With
``workers > 1`` samples are built in forked worker processes and logged in plan order.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from golongrl.construct import ConstructionError, ConstructionSpec, Env, parse_table
from golongrl.data.assembly import AssemblyError, Block, UnitCache, assemble_sections, doc_units
from golongrl.data.config import DataConfig
from golongrl.data.constructions import CONSTRUCTIONS, constructions_for
from golongrl.data.corpus import (
    CleaningRules,
    Document,
    Skipped,
    annotate_tokens,
    clean_corpus,
    ingest_folder,
    load_default_corpus,
)
from golongrl.data.io import atomic_output, dumps_record, read_records, write_records
from golongrl.data.rows import make_row
from golongrl.data.refine import RowSource, Verdicts, refine
from golongrl.data.schema import DataError
from golongrl.data.tokens import get_counter
from golongrl.data.verify import verify_row
from golongrl.tasks import TASK_TYPES

SPLITS: tuple[str, ...] = ("train", "eval")
WORK_DIR = ".work"

#: Phase 2 routing: which documents feed which task's constructions, by document kind.
ROUTING: dict[str, str] = {
    name: ", ".join(f"{c.name} ({'/'.join(sorted(c.kinds))}, {c.sections[0]}+ sections)"
                    for c in CONSTRUCTIONS.values() if c.task == name)
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


# --- the sample log --------------------------------------------------------------------------


class SampleLog:
    """Append-only JSONL of finished plan items ``{"key", "row", "failures"}``.

    Only each key's byte offset is kept in memory; :meth:`get` reads a row back from disk. Each
    line is flushed when written and fsynced at least once a second and on close, so a crash
    loses at most the last second of samples, which a resume rebuilds identically. On opening,
    a torn last line (a crash mid-write) is cut off.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offsets: dict[str, int] = {}
        path.parent.mkdir(parents=True, exist_ok=True)
        good = 0
        if path.exists():
            with path.open("rb") as handle:
                while True:
                    start = handle.tell()
                    line = handle.readline()
                    if not line:
                        break
                    try:
                        key = json.loads(line)["key"]
                    except (ValueError, KeyError, TypeError):
                        break  # the line being written when the build was killed
                    if not line.endswith(b"\n"):
                        break
                    self.offsets[key] = start
                    good = handle.tell()
            with path.open("r+b") as handle:
                handle.truncate(good)
        self._out = path.open("ab")
        self._reader = path.open("rb")
        self._synced = time.monotonic()

    def __contains__(self, key: str) -> bool:
        return key in self.offsets

    def add(self, key: str, row: dict[str, Any] | None, failures: list[str]) -> None:
        self.offsets[key] = self._out.tell()
        self._out.write((dumps_record({"key": key, "row": row, "failures": failures}) + "\n").encode("utf-8"))
        self._out.flush()
        if time.monotonic() - self._synced >= 1.0:
            os.fsync(self._out.fileno())
            self._synced = time.monotonic()

    def get(self, key: str) -> dict[str, Any]:
        self._reader.seek(self.offsets[key])
        return json.loads(self._reader.readline())

    def close(self) -> None:
        self._out.flush()
        os.fsync(self._out.fileno())
        self._out.close()
        self._reader.close()


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
    if doc.kind not in spec.kinds:
        return False
    units = doc_units(doc)
    if len(units) < MIN_UNITS[doc.kind]:
        return False
    if doc.kind != "table":
        return True
    # A table whose header and first row alone fill a section cannot be windowed, and one
    # without a column that identifies rows cannot be asked about.
    return len(units[0]) + len(units[1]) <= MAX_TABLE_HEAD_CHARS and parse_table(Block(doc, units, "main")) is not None


def task_pools(docs: Sequence[Document]) -> dict[str, list[Document]]:
    """Per construction name, the documents that qualify (phase 2)."""
    return {name: [d for d in docs if qualifies(spec, d)] for name, spec in CONSTRUCTIONS.items()}


def collection(doc: Document) -> str:
    """The document's collection (``sotu``, ``kjv``, ``jargon`` ...): the id's first part."""
    return f"{doc.domain}/{doc.id.split('/', 1)[0]}"


# --- phase 3 ------------------------------------------------------------------------------------


def _position(config: DataConfig, index: int, count: int) -> float | None:
    setting = config.context.position
    if setting == "uniform":
        return (index + 0.5) / max(1, count)
    if setting is None:
        return None
    return float(setting)


@dataclass
class Builder:
    """Phase 3 for one corpus: builds any sample of the plan from its own random stream."""

    config: DataConfig
    cache: UnitCache
    pools: dict[str, dict[str, list[Document]]]

    @staticmethod
    def pick_main(pool: list[Document], rng: random.Random) -> Document:
        """A domain uniformly, then a document of it: a domain with many short documents
        (dialogues) must not crowd out one with a few long ones (legal)."""
        domain = rng.choice(sorted({d.domain for d in pool}))
        return rng.choice([d for d in pool if d.domain == domain])

    def sections(self, pool: list[Document], spec: ConstructionSpec, target: int, rng: random.Random,
                 position: float | None) -> tuple[list[Document], int]:
        """The documents of one context: the focus document and same-domain neighbours (its own
        collection first), enough to fill ``target`` tokens, focus at the requested depth."""
        lo, hi = spec.sections
        members: dict[str, int] = {}
        tokens: dict[str, int] = {}
        for d in pool:
            members[d.domain] = members.get(d.domain, 0) + 1
            tokens[d.domain] = tokens.get(d.domain, 0) + (d.tokens or 0)
        # Only domains that can fill the context with their own documents.
        pool = [d for d in pool if members[d.domain] >= lo and tokens[d.domain] >= target]
        if not pool:
            raise ConstructionError(f"no domain has {lo} qualifying documents holding {target} tokens")
        main = self.pick_main(pool, rng)
        same = [d for d in pool if d.id != main.id and collection(d) == collection(main)]
        near = [d for d in pool if d.id != main.id and d.domain == main.domain and collection(d) != collection(main)]
        rng.shuffle(same)
        rng.shuffle(near)
        wanted = min(hi, max(lo, round(target / spec.section_tokens)))
        chosen = [main]
        for doc in same + near:
            enough = sum(d.tokens or 0 for d in chosen) >= 1.2 * target
            if len(chosen) >= wanted and enough:
                break
            chosen.append(doc)
        if len(chosen) < lo:
            raise ConstructionError(f"only {len(chosen)} documents of domain {main.domain} for {lo} sections")
        neighbours = chosen[1:]
        rng.shuffle(neighbours)
        index = rng.randrange(len(chosen)) if position is None else round(position * (len(chosen) - 1))
        return neighbours[:index] + [main] + neighbours[index:], index

    def attempt(self, split: str, task: str, index: int, count: int, *,
                construction: str | None = None) -> tuple[dict[str, Any] | None, list[str]]:
        """Build one sample (only with ``construction`` when given); returns (row or None,
        failure reasons of the attempts)."""
        cfg = self.config
        rng = random.Random(f"{cfg.seed}/{split}/{task}/{index}")
        specs = [c for c in constructions_for(task)
                 if c.level in cfg.levels and self.pools[split][c.name] and construction in (None, c.name)]
        if not specs:
            return None, [f"no {split} document qualifies for any {task} construction of level(s) "
                          f"{', '.join(cfg.levels)}"]
        lengths = cfg.context.train_lengths if split == "train" else cfg.context.eval_lengths
        target = lengths[index % len(lengths)]
        position = _position(cfg, index, count)
        failures: list[str] = []
        for attempt in range(cfg.max_attempts):
            spec = specs[(index + attempt) % len(specs)]
            main = "?"
            try:
                docs, main_index = self.sections(self.pools[split][spec.name], spec, target, rng, position)
                main = docs[main_index].id
                ctx = assemble_sections(docs, target, self.cache, rng, main_index=main_index,
                                        tolerance=cfg.context.tolerance)
                language = "Chinese" if docs[main_index].language.startswith("zh") else "English"
                sample = spec.fn(ctx, Env(rng, position, language=language, slot=_slot(index, len(specs))))
            except (AssemblyError, ConstructionError) as exc:
                failures.append(f"{spec.name} on {main}: {exc}")
                continue
            uid = f"{split}-{task}-{index:05d}"
            row = make_row(sample, ctx, split=split, uid=uid, target=target, language=docs[main_index].language)
            problems = verify_row(row, ctx.text, sample.answer, sample.evidence, sample.checks)
            if problems:
                failures.append(f"{spec.name} on {main}: " + "; ".join(problems))
                continue
            return row, failures
        return None, failures


def _slot(index: int, constructions: int) -> int:
    """The balancing slot of a sample: consecutive within each construction (which takes every
    ``constructions``-th index), offset between constructions, so gold letters and magnitudes
    cycle evenly both per construction and per task, also when one falls back to another."""
    return index // constructions + (index % constructions) * 2


_WORKER: Builder | None = None


def _work(item: tuple[str, str, int, int]) -> tuple[dict[str, Any] | None, list[str]]:
    assert _WORKER is not None
    return _WORKER.attempt(*item)


def _built(builder: Builder, todo: list[tuple[str, str, int, int]], workers: int) -> Iterator[tuple[dict[str, Any] | None, list[str]]]:
    """Results of ``todo`` in order; with ``workers > 1`` from forked processes that inherit
    the corpus and the token-count cache (no pickling of documents)."""
    global _WORKER
    if workers <= 1 or len(todo) < 2 * workers:
        for item in todo:
            yield builder.attempt(*item)
        return
    _WORKER = builder
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            yield from pool.imap(_work, todo, chunksize=4)
    finally:
        _WORKER = None


def _progress(enabled: bool) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TimeRemainingColumn(), TextColumn("{task.fields[note]}"), disable=not enabled, transient=False,
    )


def build_plan(config: DataConfig) -> list[tuple[str, str, int, int]]:
    """Every sample of the build as (split, task, index, count), in output order."""
    return [
        (split, task, i, n)
        for split in SPLITS
        for task in TASK_TYPES
        for n in [config.train_count(task) if split == "train" else config.eval_samples_per_task]
        for i in range(n)
    ]


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
        phase = bar.add_task("phase 1: corpus", total=3, note="")
        docs, skipped = load_documents(config)
        bar.advance(phase)
        counter = get_counter(config.tokenizer)
        annotate_tokens(docs, counter)
        bar.advance(phase)
        splits = split_documents(docs, config.eval_fraction, config.seed)
        pools = {s: task_pools(splits[s]) for s in SPLITS}
        bar.advance(phase)

        plan = build_plan(config)
        log = SampleLog(work / "samples.jsonl")
        builder = Builder(config, UnitCache(counter), pools)
        todo = [item for item in plan if _key(item) not in log]
        phase = bar.add_task("phase 2-3: construct + verify", total=len(plan), completed=len(plan) - len(todo), note="")
        started, made = time.monotonic(), 0
        try:
            if stop_after is not None:
                todo = todo[:stop_after]
            for item, (row, failures) in zip(todo, _built(builder, todo, config.workers)):
                log.add(_key(item), row, failures)
                made += 1
                bar.update(phase, advance=1, note=f"{made / max(1e-9, time.monotonic() - started):.1f} rows/s")
        finally:
            log.close()
        if stop_after is not None and len(log.offsets) < len(plan):
            return BuildResult(out, {}, {}, [], {}, [], len(docs))

        log = SampleLog(work / "samples.jsonl")
        try:
            if config.llm.enabled:
                from golongrl.data.llm import build_llm_samples

                phase = bar.add_task("phase 3: LLM-backed construction", total=1, note="")
                llm_rows, llm_failures = build_llm_samples(config, splits, builder.cache, work)
                write_records(work / "llm-rows.jsonl", llm_rows)
                write_records(work / "llm-failures.jsonl", llm_failures)
                bar.advance(phase)

            def rows() -> Iterator[dict[str, Any]]:
                """Every built row, rule-based in plan order then LLM-backed, read from disk."""
                for item in plan:
                    row = log.get(_key(item))["row"]
                    if row is not None:
                        yield row
                if config.llm.enabled:
                    yield from (r for _, r in read_records(work / "llm-rows.jsonl"))

            verdicts, refine_report = refine(config, rows, counter, work, bar)
            return _write_outputs(config, out, plan, log, rows, docs, skipped, verdicts, refine_report)
        finally:
            log.close()


def _key(item: tuple[str, str, int, int]) -> str:
    split, task, i, _ = item
    return f"{split}/{task}/{i}"


def _write_outputs(
    config: DataConfig,
    out: Path,
    plan: list[tuple[str, str, int, int]],
    log: SampleLog,
    rows: RowSource,
    docs: list[Document],
    skipped: list[Skipped],
    verdicts: Verdicts,
    refine_report: dict[str, Any],
) -> BuildResult:
    """Stream the kept rows of each split to its files; failures and the report beside them."""
    files: list[str] = []
    counts: dict[str, dict[str, int]] = {s: {t: 0 for t in TASK_TYPES} for s in SPLITS}
    for split in SPLITS:
        def kept(split: str = split) -> Iterator[dict[str, Any]]:
            index = 0
            for row in rows():
                info = row["extra_info"]
                if info["split"] != split or not verdicts.keep(row):
                    continue
                verdicts.annotate(row)
                info["index"] = index
                index += 1
                yield row

        jsonl = out / f"{split}.jsonl"
        with atomic_output(jsonl, "w") as handle:
            for row in kept():
                handle.write(dumps_record(row) + "\n")
                counts[split][row["extra_info"]["task_type"]] += 1
        if "jsonl" in config.formats:
            files.append(jsonl.name)
        if "parquet" in config.formats:
            _jsonl_to_parquet(jsonl, out / f"{split}.parquet")
            files.append(f"{split}.parquet")
        if "jsonl" not in config.formats:
            jsonl.unlink()
    failure_counts: dict[str, int] = {}
    with atomic_output(out / "failures.jsonl", "w") as handle:
        for item in plan:
            entry = log.get(_key(item))
            for reason in entry.get("failures", []):
                handle.write(dumps_record({"key": entry["key"], "reason": reason, "built": entry["row"] is not None}) + "\n")
                name = reason.split(" on ", 1)[0]
                failure_counts[name] = failure_counts.get(name, 0) + 1
        llm_failures = out / WORK_DIR / "llm-failures.jsonl"
        if config.llm.enabled and llm_failures.exists():
            for _, item in read_records(llm_failures):
                handle.write(dumps_record(item) + "\n")
                name = item["reason"].split(" on ", 1)[0]
                failure_counts[name] = failure_counts.get(name, 0) + 1
    write_records(out / "documents.jsonl", [d.metadata() for d in docs])
    files += ["documents.jsonl", "failures.jsonl", "report.json"]
    skipped_docs = [{"source": s.source, "reason": s.reason} for s in skipped]
    report = {
        "config_fingerprint": config.fingerprint(),
        "documents": len(docs),
        "documents_by_domain": _tally(d.domain for d in docs),
        "skipped_documents": skipped_docs,
        "counts": counts,
        "construction_failures": dict(sorted(failure_counts.items())),
        "dropped": verdicts.dropped(),
        "refinement": refine_report,
        "routing": ROUTING,
    }
    with atomic_output(out / "report.json", "w") as handle:
        handle.write(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return BuildResult(out, counts, failure_counts, skipped_docs, verdicts.dropped(), files, len(docs), report)


def _jsonl_to_parquet(source: Path, target: Path, batch: int = 512) -> None:
    """Convert a JSONL split to parquet in batches (bounded memory): one pass unifies the
    batches' schemas (a field that is null in one batch and a number in another), a second
    writes them cast to that schema."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def batches() -> Iterator[list[dict[str, Any]]]:
        chunk: list[dict[str, Any]] = []
        with source.open(encoding="utf-8") as handle:
            for line in handle:
                chunk.append(json.loads(line))
                if len(chunk) >= batch:
                    yield chunk
                    chunk = []
        if chunk:
            yield chunk

    try:
        schemas = [pa.Table.from_pylist(chunk).schema for chunk in batches()]
        if not schemas:
            write_records(target, [])
            return
        schema = pa.unify_schemas(schemas, promote_options="permissive")
        with atomic_output(target, "wb") as handle, pq.ParquetWriter(handle, schema, compression="zstd") as writer:
            for chunk in batches():
                writer.write_table(pa.Table.from_pylist(chunk).cast(schema))
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise DataError(f"rows do not share one parquet schema ({exc})", source=target) from None


def _tally(values: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return dict(sorted(out.items()))


__all__ = [
    "BuildResult",
    "Builder",
    "ROUTING",
    "SPLITS",
    "SampleLog",
    "build_dataset",
    "build_plan",
    "collection",
    "load_documents",
    "qualifies",
    "split_documents",
    "task_pools",
]
