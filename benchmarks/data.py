"""Data-pipeline speed: the default build, a large build at 32K tokens, one 1M-token context,
length measurement.

    .venv/bin/python benchmarks/data.py \
        [--scale-rows 20000] [--scale-tokens 32768] [--workers 2] [--target 1048576] [--skip-build]

0. Scale: ``--scale-rows`` rows at ``--scale-tokens`` tokens, no LLM, ``--workers`` forked
   builders: rows/s and peak RSS (the parent and the largest worker), against the same build
   of a quarter of the rows, so that memory bounded regardless of row count shows as a ratio
   near 1 (targets: >= 20 rows/s on 2 cores, peak RSS < 2 GB).

Each scenario runs in its own child process so its peak memory (max RSS, and the growth over
the RSS before the measured step) is its own. Side by side, in the same child:

1. ``golongrl data build`` with configs/data-default.yaml (cold, into a fresh folder), then the
   same command rerun on the finished folder (resume: everything comes from the checkpoint).
2. Assembling one context of ``--target`` tokens (golongrl: cached per-unit counts, one exact
   verification pass split at block boundaries) against the obvious way (concatenate the
   documents, encode everything in one call, cut the token list, decode).
3. Length measurement throughput in tokens/s: golongrl's batched Rust counting against the
   transformers tokenizer call on the same texts.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def scenario_build() -> dict:
    from golongrl.data.config import load_config
    from golongrl.data.pipeline import build_dataset

    config = load_config(REPO / "configs" / "data-default.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        before = _rss_mb()
        t0 = time.perf_counter()
        result = build_dataset(config, Path(tmp) / "out")
        cold = time.perf_counter() - t0
        peak = _rss_mb()
        t0 = time.perf_counter()
        build_dataset(config, Path(tmp) / "out")
        resumed = time.perf_counter() - t0
    rows = sum(sum(c.values()) for c in result.counts.values())
    return {"cold_s": cold, "resumed_s": resumed, "rows": rows, "peak_mb": peak, "growth_mb": peak - before}


def scenario_scale(rows: int, tokens: int, workers: int) -> dict:
    from golongrl.data.config import DataConfig
    from golongrl.data.pipeline import build_dataset

    per_task = max(1, rows // 9)
    config = DataConfig.model_validate({
        "samples_per_task": per_task, "eval_samples_per_task": 0, "formats": ["jsonl"], "workers": workers,
        "context": {"train_lengths": [tokens], "eval_lengths": [tokens]},
    })
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = build_dataset(config, Path(tmp) / "out")
        seconds = time.perf_counter() - t0
        size_mb = (Path(tmp) / "out" / "train.jsonl").stat().st_size / 2**20
    built = sum(sum(c.values()) for c in result.counts.values())
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"rows": built, "seconds": seconds, "rows_s": built / seconds, "peak_mb": _rss_mb(),
            "worker_peak_mb": children, "output_mb": size_mb}


def scenario_context(target: int, naive: bool) -> dict:
    from golongrl.data.assembly import UnitCache, assemble_context
    from golongrl.data.corpus import load_default_corpus
    from golongrl.data.tokens import get_counter

    docs = load_default_corpus(("literature", "government", "technical", "legal", "tables"))
    counter = get_counter("smollm2")
    counter.count("warm up")
    rng = random.Random(0)
    pool = docs * (1 + 2 * target // 1_800_000)  # the shipped corpus holds ~1.8M tokens
    before = _rss_mb()
    t0 = time.perf_counter()
    if naive:
        tok = counter._tok
        text = "\n\n".join(f"# {d.title}\n\n{d.text}" for d in pool)
        ids = tok.encode(text, add_special_tokens=False).ids[:target]
        out = tok.decode(ids)
        tokens = len(ids)
        del text, ids, out
    else:
        ctx = assemble_context(pool[0], pool[1:], target, UnitCache(counter), rng, position=0.5)
        tokens = ctx.tokens
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "tokens": tokens, "peak_mb": _rss_mb(), "growth_mb": _rss_mb() - before}


def scenario_measure() -> dict:
    from golongrl.data.corpus import load_default_corpus
    from golongrl.text import split_paragraphs
    from golongrl.data.tokens import get_counter
    from golongrl.inference.models import load_tokenizer

    docs = load_default_corpus(("literature", "government"))
    texts = [p for d in docs for p in split_paragraphs(d.text)]
    counter = get_counter("smollm2")
    hf = load_tokenizer("smollm2")
    counter.count_many(texts[:100])
    hf(texts[:100], add_special_tokens=False)
    t0 = time.perf_counter()
    total = sum(counter.count_many(texts))
    ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    hf_total = sum(len(ids) for ids in hf(texts, add_special_tokens=False)["input_ids"])
    theirs = time.perf_counter() - t0
    assert hf_total == total, (hf_total, total)
    return {"tokens": total, "ours_tok_s": total / ours, "hf_tok_s": total / theirs, "texts": len(texts)}


def _child(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", type=int, default=1_048_576)
    parser.add_argument("--scale-rows", type=int, default=20_000)
    parser.add_argument("--scale-tokens", type=int, default=32_768)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-build", action="store_true")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name = args.child[0]
        if name == "build":
            result = scenario_build()
        elif name == "scale":
            result = scenario_scale(int(args.child[1]), int(args.child[2]), int(args.child[3]))
        elif name == "context":
            result = scenario_context(int(args.child[1]), args.child[2] == "naive")
        else:
            result = scenario_measure()
        print(json.dumps(result))
        return

    from rich.console import Console
    from rich.table import Table

    console = Console(width=160)
    table = Table(title="golongrl data pipeline (2 cores)")
    for col in ("scenario", "golongrl", "baseline", "ratio", "peak RSS / growth"):
        table.add_column(col)
    if args.scale_rows:
        quarter = _child(["scale", str(args.scale_rows // 4), str(args.scale_tokens), str(args.workers)])
        full = _child(["scale", str(args.scale_rows), str(args.scale_tokens), str(args.workers)])
        table.add_row(
            f"{full['rows']:,} rows at {args.scale_tokens:,} tokens ({args.workers} workers)",
            f"{full['rows_s']:.1f} rows/s ({full['seconds']:.0f} s, {full['output_mb']:.0f} MB)",
            f"{quarter['rows']:,} rows: {quarter['rows_s']:.1f} rows/s",
            f"RSS x{max(full['peak_mb'], full['worker_peak_mb']) / max(quarter['peak_mb'], quarter['worker_peak_mb']):.2f} "
            "for 4x rows",
            f"{full['peak_mb']:.0f} MB parent, {full['worker_peak_mb']:.0f} MB largest worker",
        )
    if not args.skip_build:
        b = _child(["build"])
        table.add_row(f"default build ({b['rows']} rows)", f"{b['cold_s']:.1f} s cold", f"{b['resumed_s']:.1f} s resumed",
                      f"{b['cold_s'] / b['resumed_s']:.1f}x", f"{b['peak_mb']:.0f} MB / +{b['growth_mb']:.0f} MB")
    ours = _child(["context", str(args.target), "ours"])
    naive = _child(["context", str(args.target), "naive"])
    table.add_row(
        f"{args.target:,}-token context", f"{ours['seconds']:.2f} s ({ours['tokens']:,} tok)",
        f"{naive['seconds']:.2f} s encode-all", f"{naive['seconds'] / ours['seconds']:.1f}x faster",
        f"{ours['peak_mb']:.0f} MB / +{ours['growth_mb']:.0f} MB (baseline +{naive['growth_mb']:.0f} MB)",
    )
    m = _child(["measure"])
    table.add_row(f"length measurement ({m['texts']:,} paragraphs)", f"{m['ours_tok_s'] / 1e6:.2f} M tok/s",
                  f"{m['hf_tok_s'] / 1e6:.2f} M tok/s transformers", f"{m['ours_tok_s'] / m['hf_tok_s']:.1f}x", "-")
    console.print(table)
    console.print("targets: >= 20 rows/s at 32K tokens and peak RSS < 2 GB; 1M-token context under 10 s and 2 GB "
                  "on 2 cores")


if __name__ == "__main__":
    main()
