"""One RL training step: golongrl's trainer vs TRL's GRPOTrainer, same model, batch and lengths.

Both run in this process on the same random-init Llama (SmolLM2 tokenizer), the same prompts,
the same number of rollouts per prompt, the same response length cap and the same reward (the
golongrl reward library: its batch scorer for golongrl, ``compute_score`` per completion for
TRL, which is how a TRL user would plug it in). One optimizer step per training step on both
sides; KL off; dynamic sampling off (a random model's rewards are all equal, which would make
golongrl generate extra batches and time something TRL does not do).

Prints seconds per step (median over the timed steps, after one warm-up step), the ratio
TRL / golongrl (> 1 means golongrl is faster) and the peak resident-memory growth during each
trainer's steps (sampled from /proc every 5 ms).

    nice -n 10 .venv/bin/python benchmarks/train_step.py [--steps 3] [--sizes tiny,small]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import torch

SIZES = {  # name: make_tiny_causal_lm overrides
    "tiny": {},
    "small": {"hidden_size": 256, "intermediate_size": 768, "num_hidden_layers": 4, "num_attention_heads": 4,
              "num_key_value_heads": 2},
}


class PeakRSS:
    """Peak resident set size growth (MiB) over a block, sampled by a background thread."""

    def __init__(self) -> None:
        self.page = os.sysconf("SC_PAGE_SIZE")

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self.page

    def __enter__(self) -> PeakRSS:
        self.base = self.peak = self._rss()
        self._stop = threading.Event()

        def sample() -> None:
            while not self._stop.is_set():
                self.peak = max(self.peak, self._rss())
                time.sleep(0.005)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.mib = (self.peak - self.base) / 2**20


def make_rows(num: int, filler_words: int) -> list[dict]:
    base = ("The harbour office logged every ship that entered the bay, its cargo and the name of its "
            "captain, and the clerks copied the ledger twice a week. ").split()
    rows = []
    for i in range(num):
        context = " ".join(base[j % len(base)] for j in range(filler_words))
        question = f"How many crates did the ship Aurora-{i} carry?"
        rows.append({
            "data_source": "EM",
            "prompt": [{"role": "user", "content": f"{context} On day {i} Aurora-{i} carried {i + 7} crates.\n\n{question}"}],
            "ability": "precise long-range information retrieval",
            "reward_model": {"style": "rule", "ground_truth": {"doc_ids": [str(i + 7)], "golden_label": str(i + 7), "summary": ""}},
            "extra_info": {"question": question, "task_type": "precise_retrieval", "split": "train", "index": i},
        })
    return rows


def golongrl_steps(model_dir: Path, data: Path, args: argparse.Namespace, work: Path) -> tuple[list[float], float]:
    from golongrl.inference.models import load_causal_lm
    from golongrl.training.config import config_from_dict
    from golongrl.training.trainer import Trainer

    prompts_per_step = args.batch // args.n
    cfg = config_from_dict({
        "model": {"name_or_path": str(model_dir), "device": "cpu"},
        "data": {"train_files": [str(data)]},
        "rollout": {"n": args.n, "max_new_tokens": args.new_tokens, "max_prompt_tokens": 100000},
        "algorithm": {"dynamic_sampling": {"enabled": False}},
        "optimizer": {"lr": 1e-5, "warmup_steps": 0},
        "batch": {"prompts_per_step": prompts_per_step, "generation_prompts": prompts_per_step,
                  "mini_batch_prompts": prompts_per_step, "micro_batch_size": args.batch,
                  "generation_micro_batch": args.batch},
        "training": {"total_steps": args.steps + 1, "seed": 0},
        "logging": {"tensorboard": False, "jsonl": False, "progress": False},
        "checkpoint": {"every_steps": 0, "export_final": False, "resume": False},
        "reward": {"workers": 1},
    })
    trainer = Trainer(cfg, work / "golongrl", model=load_causal_lm(str(model_dir), dtype="float32"))
    times = []
    with PeakRSS() as mem:
        for _ in range(args.steps + 1):
            t = time.perf_counter()
            trainer.train_step()
            times.append(time.perf_counter() - t)
    return times[1:], mem.mib


def trl_steps(model_dir: Path, rows: list[dict], args: argparse.Namespace, work: Path) -> tuple[list[float], float]:
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from golongrl.inference.models import load_causal_lm, load_tokenizer
    from golongrl.rewards import compute_score

    ds = Dataset.from_list([{"prompt": r["prompt"], "data_source": r["data_source"],
                             "ground_truth": r["reward_model"]["ground_truth"], "extra_info": r["extra_info"]} for r in rows])

    def reward(completions, data_source, ground_truth, extra_info, **_):
        return [compute_score(s, c[0]["content"] if isinstance(c, list) else c, g, e)
                for c, s, g, e in zip(completions, data_source, ground_truth, extra_info)]

    class Timer(TrainerCallback):
        times: list[float] = []

        def on_step_begin(self, *a, **k):
            self.t = time.perf_counter()

        def on_step_end(self, *a, **k):
            self.times.append(time.perf_counter() - self.t)

    timer = Timer()
    cfg = GRPOConfig(output_dir=str(work / "trl"), per_device_train_batch_size=args.batch, num_generations=args.n,
                     max_completion_length=args.new_tokens, max_steps=args.steps + 1, learning_rate=1e-5,
                     logging_steps=10_000, disable_tqdm=True, report_to="none", use_cpu=True, bf16=False, save_strategy="no", beta=0.0,
                     dataloader_num_workers=0, seed=0, temperature=1.0, top_p=1.0)
    trainer = GRPOTrainer(model=load_causal_lm(str(model_dir), dtype="float32"), processing_class=load_tokenizer(str(model_dir)),
                          reward_funcs=reward, args=cfg, train_dataset=ds, callbacks=[timer])
    with PeakRSS() as mem:
        trainer.train()
    return timer.times[1:], mem.mib


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=3, help="timed steps per trainer (after one warm-up step)")
    ap.add_argument("--sizes", default="tiny,small", help=f"comma-separated model sizes from {sorted(SIZES)}")
    ap.add_argument("--batch", type=int, default=16, help="completions per step")
    ap.add_argument("--n", type=int, default=4, help="rollouts per prompt")
    ap.add_argument("--prompt-words", type=int, default=300, help="filler words per prompt (~1.3 tokens each)")
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from golongrl.data.io import write_records
    from golongrl.inference.models import make_tiny_causal_lm

    print(f"batch {args.batch} completions = {args.batch // args.n} prompts x {args.n} rollouts, "
          f"~{int(args.prompt_words * 1.3)} prompt tokens, {args.new_tokens} new tokens, {args.threads} threads")
    print(f"{'model':6s} {'params':>8s} {'golongrl s/step':>16s} {'TRL s/step':>11s} {'TRL/golongrl':>13s} "
          f"{'golongrl peak MiB':>18s} {'TRL peak MiB':>13s}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows = make_rows(args.batch // args.n * (args.steps + 2), args.prompt_words)
        data = write_records(work / "train.jsonl", rows) and work / "train.jsonl"
        for size in args.sizes.split(","):
            model_dir = make_tiny_causal_lm(work / f"model-{size}", seed=0, **SIZES[size])
            from golongrl.inference.models import load_causal_lm

            params = sum(p.numel() for p in load_causal_lm(str(model_dir)).parameters()) / 1e6
            g_times, g_mem = golongrl_steps(model_dir, data, args, work)
            t_times, t_mem = trl_steps(model_dir, rows, args, work)
            g, t = statistics.median(g_times), statistics.median(t_times)
            print(f"{size:6s} {params:7.1f}M {g:16.3f} {t:11.3f} {t / g:12.2f}x {g_mem:18.0f} {t_mem:13.0f}", flush=True)


if __name__ == "__main__":
    main()
