"""One long-context RL step on one GPU: a random-init Qwen3-0.6B-shaped model (config only, no
download) in bf16 with SDPA attention and gradient checkpointing, at 8K / 32K / 128K prompt tokens
x n = 8 rollouts sharing one prefill.

For each prompt length, prints tokens/s of the rollout (prefill once per prompt, KV-cached decode
of ``--response-tokens`` per rollout, one log-prob per token) and of the update (one forward and
backward through the trainer's ``grouped_logprobs``: the prompt once, its cache repeated for the
n responses), peak GPU memory, and MFU = model FLOPs / (seconds x the GPU's bf16 dense peak).

    .venv/bin/python benchmarks/gpu_step.py [--prompts 8192,32768,131072] [--n 8] [--peak-tflops 989]

Without a CUDA device it says so and exits 0 (nothing to measure on a CPU).
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

QWEN3_0_6B = dict(vocab_size=151936, hidden_size=1024, intermediate_size=3072, num_hidden_layers=28,
                  num_attention_heads=16, num_key_value_heads=8, head_dim=128, max_position_embeddings=131072,
                  rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True)


def flops_per_token(cfg, context: int) -> float:
    """Forward FLOPs per token: 2 x non-embedding weights + causal attention over ``context``."""
    attn_dim = cfg.num_attention_heads * cfg.head_dim
    kv_dim = cfg.num_key_value_heads * cfg.head_dim
    per_layer = cfg.hidden_size * (2 * attn_dim + 2 * kv_dim) + 3 * cfg.hidden_size * cfg.intermediate_size
    return 2 * cfg.num_hidden_layers * per_layer + 2 * cfg.num_hidden_layers * context * attn_dim


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prompts", default="8192,32768,131072")
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--response-tokens", type=int, default=256)
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="bf16 dense peak of the GPU (H100/H200: 989)")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: gpu_step.py measures a GPU step and was not run")
        return
    from transformers import Qwen3Config, Qwen3ForCausalLM

    from golongrl.inference.transformers_backend import sample_responses
    from golongrl.training.trainer import grouped_logprobs

    torch.manual_seed(0)
    cfg = Qwen3Config(**QWEN3_0_6B, attn_implementation="sdpa")
    model = Qwen3ForCausalLM(cfg).to(device="cuda", dtype=torch.bfloat16)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    peak = args.peak_tflops * 1e12
    print(f"{torch.cuda.get_device_name()}: Qwen3-0.6B shape, bf16, sdpa, gradient checkpointing, n={args.n}, "
          f"{args.response_tokens} response tokens")
    print(f"{'prompt':>7} | {'rollout tok/s':>13} {'MFU':>6} | {'update tok/s':>12} {'MFU':>6} | {'peak GiB':>8}")
    for length in (int(x) for x in args.prompts.split(",")):
        torch.cuda.reset_peak_memory_stats()
        prompt = torch.randint(100, cfg.vocab_size, (length,)).tolist()
        try:
            torch.cuda.synchronize()
            start = time.perf_counter()
            model.eval()
            sampled = sample_responses(model, [prompt], n=args.n, max_new_tokens=args.response_tokens, eos_ids=[-1],
                                       pad_id=0, temperature=1.0)
            torch.cuda.synchronize()
            rollout_s = time.perf_counter() - start
            rollout_flops = (length + args.n * args.response_tokens) * flops_per_token(cfg, length)
            model.train()
            start = time.perf_counter()
            logprobs, _ = grouped_logprobs(model, [prompt], sampled.tokens, args.n, 1.0, 0)
            logprobs.sum().backward()
            torch.cuda.synchronize()
            update_s = time.perf_counter() - start
            model.zero_grad(set_to_none=True)
            # forward + backward = 3x forward, plus one recomputed forward under checkpointing
            update_flops = 4 * rollout_flops
        except torch.cuda.OutOfMemoryError:
            print(f"{length:>7} | out of memory ({torch.cuda.max_memory_allocated() / 2**30:.1f} GiB peak)")
            torch.cuda.empty_cache()
            continue
        tokens = length + args.n * args.response_tokens
        print(f"{length:>7} | {tokens / rollout_s:>13.0f} {rollout_flops / rollout_s / peak:>6.1%} | "
              f"{tokens / update_s:>12.0f} {update_flops / update_s / peak:>6.1%} | "
              f"{torch.cuda.max_memory_allocated() / 2**30:>8.1f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
