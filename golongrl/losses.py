"""Engine-free PPO policy loss as GoLongRL trains with it: clip-higher, dual-clip, loss
aggregation modes, token-level truncated importance sampling, optional KL and entropy terms.

All tensors are [B, T] (B responses, T response tokens) with ``response_mask`` marking the real
tokens; advantages may also be [B] (one per response, broadcast over its tokens). Values at
masked positions are never read, so padding may hold anything (even NaN).
"""

from __future__ import annotations

import math
import torch

__all__ = ["AGGREGATIONS", "KL_TYPES", "aggregate", "kl_penalty", "policy_loss", "truncated_is_weights"]

#: Loss aggregation modes (verl's names).
AGGREGATIONS: tuple[str, ...] = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm")
#: KL estimators: k1 = log-ratio, k2/mse = half squared log-ratio, k3/low_var_kl = Schulman's
#: unbiased non-negative estimator, abs = |log-ratio|.
KL_TYPES: tuple[str, ...] = ("k1", "k2", "k3", "low_var_kl", "abs", "mse")

# Log-ratios are clamped before exp so a stale or corrupted log-prob cannot overflow; e^20 is
# far beyond any clip bound, so clamping never changes a clipped loss.
_MAX_LOG_RATIO = 20.0
# verl clamps the per-token k3 (low_var_kl) estimate to [-10, 10]: one token whose log-ratio is
# far off (e^6 = 403 at -6) must not dominate the KL term.
_MAX_K3 = 10.0


def aggregate(
    values: torch.Tensor,
    mask: torch.Tensor,
    mode: str = "token-mean",
    *,
    denominator: float | None = None,
    norm_length: int | None = None,
) -> torch.Tensor:
    """Reduce a per-token matrix [B, T] to a scalar.

    * ``token-mean``: sum over all real tokens / number of real tokens (long answers weigh more;
      GoLongRL's choice).
    * ``seq-mean-token-mean``: mean over responses of each response's token mean.
    * ``seq-mean-token-sum``: mean over responses of each response's token sum.
    * ``seq-mean-token-sum-norm``: ``seq-mean-token-sum`` divided by the constant
      ``norm_length`` (Dr. GRPO's; verl uses the maximum response length). It must not depend on
      the batch: dividing by each micro-batch's longest response would weigh micro-batches
      differently. Without ``norm_length`` the width T of ``values`` is used.

    Responses without real tokens are left out of the sequence means. ``denominator`` replaces
    the token count (token-mean) or the response count (seq-* modes), so that micro-batches of
    one mini-batch, each divided by the mini-batch total, sum to the mini-batch loss.
    """
    if mode not in AGGREGATIONS:
        raise ValueError(f"agg must be one of {list(AGGREGATIONS)}, got {mode!r}")
    if denominator is not None and not (math.isfinite(denominator) and denominator > 0):
        raise ValueError(f"agg_denominator must be a finite number > 0, got {denominator!r}")
    m = mask.to(values.dtype)
    masked = torch.where(mask.bool(), values, torch.zeros_like(values))
    if mode == "token-mean":
        count = m.sum().clamp_min(1.0) if denominator is None else denominator
        return masked.sum() / count
    tokens = m.sum(-1)
    per_seq = masked.sum(-1)
    if mode == "seq-mean-token-mean":
        per_seq = per_seq / tokens.clamp_min(1.0)
    present = (tokens > 0).to(values.dtype)
    count = present.sum().clamp_min(1.0) if denominator is None else denominator
    loss = (per_seq * present).sum() / count
    if mode == "seq-mean-token-sum-norm":
        if norm_length is not None and not norm_length >= 1:
            raise ValueError(f"norm_length must be >= 1, got {norm_length!r}")
        loss = loss / (norm_length if norm_length is not None else max(values.shape[-1], 1))
    return loss


def kl_penalty(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, kl_type: str = "k3") -> torch.Tensor:
    """Per-token KL(pi || pi_ref) estimate from sampled-token log-probs, shape of the inputs."""
    if kl_type not in KL_TYPES:
        raise ValueError(f"kl_type must be one of {list(KL_TYPES)}, got {kl_type!r}")
    log_ratio = (logprobs - ref_logprobs).clamp(-_MAX_LOG_RATIO, _MAX_LOG_RATIO)
    if kl_type == "k1":
        return log_ratio
    if kl_type == "abs":
        return log_ratio.abs()
    if kl_type in ("k2", "mse"):
        return 0.5 * log_ratio.square()
    # k3: E_pi[r - 1 - log r] with r = pi_ref / pi; non-negative and low variance.
    return (torch.expm1(-log_ratio) + log_ratio).clamp(-_MAX_K3, _MAX_K3)


def truncated_is_weights(
    old_logprobs: torch.Tensor,
    rollout_logprobs: torch.Tensor,
    response_mask: torch.Tensor,
    bounds: tuple[float, float] = (0.5, 5.0),
    veto: float | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Token-level importance weights pi_train / pi_rollout clipped to ``bounds`` (detached).

    The rollout engine (vLLM/SGLang) and the training engine assign slightly different
    probabilities to the same tokens; weighting each token by the clipped ratio corrects the
    off-policy gap without letting one token dominate. ``veto`` (the reference's 1e-4): a
    response with any token ratio below it gets weight 0 on every token, as such a token means
    the two engines disagree catastrophically about the response.
    """
    low, high = bounds
    if not (0 < low <= high and math.isfinite(high)):
        raise ValueError(f"tis_bounds must be (low, high) with 0 < low <= high < inf, got {bounds!r}")
    if veto is not None and not (math.isfinite(veto) and veto >= 0):
        raise ValueError(f"tis_veto must be a finite number >= 0, got {veto!r}")
    real = response_mask.bool()
    log_ratio = torch.where(real, old_logprobs - rollout_logprobs, torch.zeros_like(old_logprobs)).detach()
    ratio = log_ratio.clamp(-_MAX_LOG_RATIO, _MAX_LOG_RATIO).exp()
    weights = ratio.clamp(low, high)
    count = real.sum().clamp_min(1)
    metrics = {
        "actor/tis_ratio_mean": float((ratio * real).sum() / count),
        "actor/tis_clipfrac_low": float(((ratio < low) & real).sum() / count),
        "actor/tis_clipfrac_high": float(((ratio > high) & real).sum() / count),
    }
    if veto is not None:
        vetoed = ((ratio < veto) & real).any(dim=-1, keepdim=True)
        weights = torch.where(vetoed, torch.zeros_like(weights), weights)
        metrics["actor/tis_veto_fraction"] = float(vetoed.float().mean()) if vetoed.numel() else 0.0
    metrics["actor/tis_weight_mean"] = float((weights * real).sum() / count)
    return weights, metrics


def policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.28,
    dual_clip_c: float | None = 3.0,
    agg: str = "token-mean",
    rollout_logprobs: torch.Tensor | None = None,
    tis_bounds: tuple[float, float] | None = None,
    tis_veto: float | None = None,
    ref_logprobs: torch.Tensor | None = None,
    kl_coef: float = 0.0,
    kl_type: str = "k3",
    entropy: torch.Tensor | None = None,
    entropy_coef: float = 0.0,
    agg_denominator: float | None = None,
    norm_length: int | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Clipped PPO surrogate with GoLongRL's options; returns ``(loss, diagnostics)``.

    Per token, with ratio ``rho = exp(logprobs - old_logprobs)`` and advantage ``A``:

    * ``l = max(-A rho, -A clip(rho, 1 - clip_low, 1 + clip_high))`` (clip-higher: the upper
      bound 1.28 leaves low-probability tokens room to grow, the lower 0.8 is standard PPO);
    * for ``A < 0``: ``l = min(l, -A c)`` (dual clip, ``c = dual_clip_c`` > 1): a token whose ratio
      exploded can cost at most ``c |A|``; ``None`` disables it;
    * times the truncated IS weight when ``rollout_logprobs`` and ``tis_bounds`` are given
      (see :func:`truncated_is_weights`); responses vetoed there leave the loss entirely (as in
      verl, they are removed from the mask, so from every term and from every denominator);
    * aggregated with ``agg`` (see :func:`aggregate`), plus ``kl_coef * agg(KL(pi||ref))`` and
      minus ``entropy_coef * agg(entropy)`` (``entropy``: per-token entropies [B, T]).

    Diagnostics (plain floats, over real tokens): ``actor/pg_loss``, ``actor/pg_clipfrac_high``
    (A > 0 tokens held at 1 + clip_high), ``actor/pg_clipfrac_low`` (A < 0 tokens held at
    1 - clip_low), ``actor/pg_clipfrac_dual`` (A < 0 tokens capped by c), ``actor/pg_clipfrac``
    (high + low), ``actor/ppo_kl`` (mean of old - new log-prob), ``actor/ratio_mean``,
    ``actor/ratio_max``, and ``actor/kl_loss``, ``actor/entropy``, ``actor/tis_*`` when used;
    ``actor/agg_count`` is what the aggregation divides by without ``agg_denominator``: real,
    not vetoed tokens (token-mean) or responses (sequence modes). ``norm_length`` is the constant
    of ``seq-mean-token-sum-norm`` (see :func:`aggregate`).
    """
    if logprobs.dim() != 2:
        raise ValueError(f"logprobs must be [B, T], got shape {tuple(logprobs.shape)}")
    shape = logprobs.shape
    for name, tensor in (("old_logprobs", old_logprobs), ("response_mask", response_mask),
                         ("rollout_logprobs", rollout_logprobs), ("ref_logprobs", ref_logprobs),
                         ("entropy", entropy)):
        if tensor is not None and tensor.shape != shape:
            raise ValueError(f"{name} has shape {tuple(tensor.shape)} but logprobs has {tuple(shape)}")
    if advantages.shape == shape[:1]:
        advantages = advantages.unsqueeze(-1).expand(shape)
    elif advantages.shape != shape:
        raise ValueError(f"advantages must be [B] or [B, T] = {tuple(shape)}, got {tuple(advantages.shape)}")
    if not 0 <= clip_low < 1:
        raise ValueError(f"clip_low must be in [0, 1), got {clip_low!r}")
    if not clip_high >= 0:
        raise ValueError(f"clip_high must be >= 0, got {clip_high!r}")
    if dual_clip_c is not None and not dual_clip_c > 1:
        raise ValueError(f"dual_clip_c must be > 1 (or None to disable), got {dual_clip_c!r}")
    if agg not in AGGREGATIONS:
        raise ValueError(f"agg must be one of {list(AGGREGATIONS)}, got {agg!r}")
    if kl_coef and ref_logprobs is None:
        raise ValueError("ref_logprobs is required when kl_coef != 0")
    if entropy_coef and entropy is None:
        raise ValueError("entropy is required when entropy_coef != 0")
    if tis_bounds is not None and rollout_logprobs is None:
        raise ValueError("rollout_logprobs is required when tis_bounds is set")

    real = response_mask.bool()
    zeros = torch.zeros_like(logprobs)
    # Read nothing at padded positions: garbage there must not reach the loss as NaN * 0.
    logprobs = torch.where(real, logprobs, zeros)
    old = torch.where(real, old_logprobs.detach(), zeros)
    adv = torch.where(real, advantages.detach().to(logprobs.dtype), zeros)

    log_ratio = (logprobs - old).clamp(-_MAX_LOG_RATIO, _MAX_LOG_RATIO)
    ratio = log_ratio.exp()
    unclipped = -adv * ratio
    clipped = -adv * ratio.clamp(1.0 - clip_low, 1.0 + clip_high)
    loss_mat = torch.maximum(unclipped, clipped)
    negative = adv < 0
    if dual_clip_c is not None:
        cap = -adv * dual_clip_c
        dual = negative & (loss_mat > cap)
        loss_mat = torch.where(negative, torch.minimum(loss_mat, cap), loss_mat)
    else:
        dual = torch.zeros_like(real)

    metrics: dict[str, float] = {}
    if rollout_logprobs is not None and tis_bounds is not None:
        weights, tis_metrics = truncated_is_weights(old, rollout_logprobs, real, tis_bounds, tis_veto)
        loss_mat = loss_mat * weights
        metrics.update(tis_metrics)
        kept = real & (weights > 0)  # weights are clamped to >= low > 0 except where vetoed
    else:
        kept = real
    agg_kw = {"denominator": agg_denominator, "norm_length": norm_length}
    loss = aggregate(loss_mat, kept, agg, **agg_kw)
    metrics["actor/agg_count"] = float(kept.sum() if agg == "token-mean" else kept.any(dim=-1).sum())
    count = real.sum().clamp_min(1)
    high = (adv > 0) & (ratio > 1.0 + clip_high) & real
    low = negative & (ratio < 1.0 - clip_low) & real
    metrics.update({
        "actor/pg_loss": float(loss.detach()),
        "actor/pg_clipfrac_high": float(high.sum() / count),
        "actor/pg_clipfrac_low": float(low.sum() / count),
        "actor/pg_clipfrac": float((high | low).sum() / count),
        "actor/pg_clipfrac_dual": float((dual & real).sum() / count),
        "actor/ppo_kl": float((-log_ratio.detach() * real).sum() / count),
        "actor/ratio_mean": float((ratio.detach() * real).sum() / count),
        "actor/ratio_max": float(torch.where(real, ratio.detach(), zeros).max()) if real.any() else 1.0,
    })
    if ref_logprobs is not None:
        kl = kl_penalty(logprobs, torch.where(real, ref_logprobs.detach(), zeros), kl_type)
        kl_value = aggregate(kl, kept, agg, **agg_kw)
        metrics["actor/kl_loss"] = float(kl_value.detach())
        if kl_coef:
            loss = loss + kl_coef * kl_value
    if entropy is not None:
        entropy_value = aggregate(torch.where(real, entropy, zeros), kept, agg, **agg_kw)
        metrics["actor/entropy"] = float(entropy_value.detach())
        if entropy_coef:
            loss = loss - entropy_coef * entropy_value
    return loss, metrics
