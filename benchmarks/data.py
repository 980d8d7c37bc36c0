"""Data-pipeline speed: the default build, one 1M-token context, length measurement.

    nice -n 10 .venv/bin/python benchmarks/data.py [--target 1048576] [--skip-build]

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
    parser.add_argument("--skip-build", action="store_true")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name = args.child[0]
        if name == "build":
            result = scenario_build()
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
    console.print("targets: 1M-token context under 10 s and 2 GB on 2 cores")


if __name__ == "__main__":
    main()
