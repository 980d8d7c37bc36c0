"""Evaluation harness speed: HTTP backend throughput and 1M-token sweep item generation.

1. Throughput of :class:`OpenAICompatibleBackend` against the local stub server
   (``tests/openai_stub_server.py``), which answers every request after a fixed latency
   (default 50 ms, a stand-in for a server that decodes many requests at once, like vLLM):
   requests/s at concurrency 1, 8 and 64, each with its ratio to the serial run, and the
   backend's own overhead with zero latency. The ideal ratio is the concurrency.
2. Time to build one sweep item of 1M (2**20) target-tokenizer tokens for each sweep task,
   cold (first item: corpus/dialogue tokenisation included) and warm (a second item, other
   depth), and each item's distance to the target length.

    .venv/bin/python benchmarks/eval.py                 # everything
    .venv/bin/python benchmarks/eval.py --skip-sweep    # HTTP only
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def http_throughput(latency_s: float, requests_per_level: int, levels: tuple[int, ...]) -> None:
    import httpx
    from openai_stub_server import serve_in_subprocess

    from golongrl.inference import GenerationRequest, SamplingParams, chat, make_backend

    def run(base_url: str, concurrency: int, n: int) -> float:
        backend = make_backend(f"openai:{base_url}#bench", concurrency=concurrency, max_retries=0)
        requests = [GenerationRequest(chat(f"request {i}"), SamplingParams(max_new_tokens=32)) for i in range(n)]
        backend.generate(requests[: min(n, concurrency)])  # warm the connection pool
        start = time.perf_counter()
        backend.generate(requests)
        return n / (time.perf_counter() - start)

    print(f"HTTP backend vs local stub server in its own process ({latency_s * 1000:.0f} ms per request)")
    print(f"{'concurrency':>11} {'requests':>9} {'req/s':>9} {'x serial':>9} {'max in flight':>14}")
    base_url, process = serve_in_subprocess("ok", delay_s=latency_s)
    try:
        serial = None
        for level in levels:
            n = requests_per_level if level > 1 else max(16, requests_per_level // 8)
            rate = run(base_url, level, n)
            serial = serial or rate
            stats = httpx.get(f"{base_url}/stats").json()
            print(f"{level:>11} {n:>9} {rate:>9.1f} {rate / serial:>9.2f} {stats['max_in_flight']:>14}")
    finally:
        process.terminate()
    base_url, process = serve_in_subprocess("ok")
    try:
        overhead = run(base_url, 1, 300)
    finally:
        process.terminate()
    print(f"zero-latency serial: {overhead:.0f} req/s ({1000 / overhead:.2f} ms backend+server overhead per request)")


def sweep_items(length: int) -> None:
    from golongrl.evaluation.sweeps import SWEEP_TASKS, generate_sweep_item
    from golongrl.inference import load_tokenizer

    tok = load_tokenizer("smollm2")
    print(f"\nSweep item of {length:,} tokens (SmolLM2 tokenizer)")
    print(f"{'task':>10} {'cold s':>8} {'warm s':>8} {'tokens':>10} {'off target':>11}")
    for task in SWEEP_TASKS:
        start = time.perf_counter()
        item = generate_sweep_item(task, length, 0.5, 0, tokenizer=tok)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        warm_item = generate_sweep_item(task, length, 0.25, 1, tokenizer=tok)
        warm = time.perf_counter() - start
        worst = max(abs(i.extra["n_tokens"] - length) for i in (item, warm_item))
        print(f"{task:>10} {cold:>8.1f} {warm:>8.1f} {item.extra['n_tokens']:>10,} {100 * worst / length:>10.3f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--requests", type=int, default=512, help="requests per concurrency level (serial: 1/8 of it)")
    parser.add_argument("--length", type=int, default=1 << 20)
    parser.add_argument("--skip-sweep", action="store_true")
    args = parser.parse_args()
    http_throughput(args.latency_ms / 1000, args.requests, (1, 8, 64))
    if not args.skip_sweep:
        sweep_items(args.length)


if __name__ == "__main__":
    main()
