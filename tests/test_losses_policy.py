"""Policy loss: clip and dual-clip boundaries, aggregation modes, IS weights, KL and entropy,
all against hand computations."""

from __future__ import annotations

import math

import pytest
import torch

from golongrl.losses import aggregate, kl_penalty, policy_loss, truncated_is_weights


def one_token(ratio: float, advantage: float, **kw):
    """Loss of a single token with the given ratio and advantage."""
    old = torch.zeros(1, 1, dtype=torch.float64)
    new = torch.full((1, 1), math.log(ratio), dtype=torch.float64, requires_grad=True)
    loss, metrics = policy_loss(new, old, torch.tensor([advantage], dtype=torch.float64), torch.ones(1, 1), **kw)
    return loss, metrics, new


@pytest.mark.parametrize(
    ("ratio", "advantage", "expected", "clip_key"),
    [
        (1.2, 1.0, -1.2, None),  # inside [0.8, 1.28]: plain -A * ratio
        (1.279, 1.0, -1.279, None),  # just inside the upper bound
        (1.281, 1.0, -1.28, "actor/pg_clipfrac_high"),  # just outside: clip-higher holds A > 0 at 1.28
        (0.5, 1.0, -0.5, None),  # positive A, low ratio: no lower clip
        (0.801, -1.0, 0.801, None),  # negative A just inside the lower bound
        (0.799, -1.0, 0.8, "actor/pg_clipfrac_low"),  # just outside: held at 1 - 0.2
        (2.99, -1.0, 2.99, None),  # negative A, ratio just below c: unclipped
        (3.01, -1.0, 3.0, "actor/pg_clipfrac_dual"),  # just above c: capped at c * |A|
        (4.0, -2.0, 6.0, "actor/pg_clipfrac_dual"),  # dual clip scales with |A|
    ],
)
def test_clip_boundaries(ratio, advantage, expected, clip_key):
    loss, metrics, _ = one_token(ratio, advantage)
    assert loss.item() == pytest.approx(expected)
    for key in ("actor/pg_clipfrac_high", "actor/pg_clipfrac_low", "actor/pg_clipfrac_dual"):
        assert metrics[key] == (1.0 if key == clip_key else 0.0)


def test_clipped_tokens_have_no_gradient_and_unclipped_ones_do():
    loss, _, new = one_token(1.5, 1.0)
    loss.backward()
    assert new.grad.item() == 0.0
    loss, _, new = one_token(1.1, 2.0)
    loss.backward()
    assert new.grad.item() == pytest.approx(-2.0 * 1.1)  # d(-A e^x)/dx
    loss, _, new = one_token(4.0, -1.0)
    loss.backward()
    assert new.grad.item() == 0.0  # dual-clipped


def test_dual_clip_can_be_disabled():
    loss, metrics, _ = one_token(4.0, -1.0, dual_clip_c=None)
    assert loss.item() == pytest.approx(4.0)
    assert metrics["actor/pg_clipfrac_dual"] == 0.0


VALUES = torch.tensor([[1.0, 2.0, float("nan")], [4.0, float("inf"), 7.0]])
MASK = torch.tensor([[1, 1, 0], [1, 0, 0]])


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("token-mean", 7 / 3), ("seq-mean-token-mean", (1.5 + 4) / 2), ("seq-mean-token-sum", (3 + 4) / 2),
     ("seq-mean-token-sum-norm", (3 + 4) / 2 / 3)],
)
def test_aggregation_modes_ignore_padding(mode, expected):
    assert aggregate(VALUES, MASK, mode).item() == pytest.approx(expected)


def test_aggregation_denominator_makes_micro_batches_sum_to_the_full_batch():
    full = aggregate(VALUES, MASK, "token-mean")
    parts = sum(aggregate(VALUES[i : i + 1], MASK[i : i + 1], "token-mean", denominator=3) for i in range(2))
    assert parts.item() == pytest.approx(full.item())


def test_aggregation_skips_empty_responses_in_sequence_means():
    mask = torch.tensor([[1, 1, 0], [0, 0, 0]])
    assert aggregate(VALUES, mask, "seq-mean-token-sum").item() == pytest.approx(3.0)


def test_policy_loss_aggregates_per_token_losses():
    # Two responses, ratios 1 everywhere: loss_t = -A_t.
    zeros = torch.zeros(2, 3)
    adv = torch.tensor([1.0, -2.0])
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    token_mean, _ = policy_loss(zeros, zeros, adv, mask, agg="token-mean")
    seq_mean, _ = policy_loss(zeros, zeros, adv, mask, agg="seq-mean-token-mean")
    seq_sum, _ = policy_loss(zeros, zeros, adv, mask, agg="seq-mean-token-sum")
    assert token_mean.item() == pytest.approx((-3 + 2) / 4)
    assert seq_mean.item() == pytest.approx((-1 + 2) / 2)
    assert seq_sum.item() == pytest.approx((-3 + 2) / 2)


def test_padding_garbage_never_reaches_loss_or_metrics():
    logprobs = torch.tensor([[-0.1, float("nan")]])
    old = torch.tensor([[-0.1, float("-inf")]])
    loss, metrics = policy_loss(logprobs, old, torch.tensor([1.0]), torch.tensor([[1, 0]]))
    assert loss.item() == pytest.approx(-1.0)
    assert all(math.isfinite(v) for v in metrics.values())


def test_truncated_is_weights_clip_and_veto():
    old = torch.log(torch.tensor([[0.9, 0.5, 0.1], [0.5, 0.5, 0.5]]))
    rollout = torch.log(torch.tensor([[0.3, 0.5, 0.9], [0.5, 0.5, 0.5]]))
    weights, metrics = truncated_is_weights(old, rollout, torch.ones(2, 3), (0.5, 5.0))
    torch.testing.assert_close(weights[0], torch.tensor([3.0, 1.0, 0.5]))
    assert metrics["actor/tis_clipfrac_low"] == pytest.approx(1 / 6)
    # A token with ratio 0.9 / 1e5 ... below the veto zeroes its whole response.
    rollout[1, 2] = math.log(0.99999)
    old[1, 2] = math.log(1e-5)
    weights, metrics = truncated_is_weights(old, rollout, torch.ones(2, 3), (0.5, 5.0), veto=1e-4)
    assert weights[1].tolist() == [0.0, 0.0, 0.0] and weights[0].sum() > 0
    assert metrics["actor/tis_veto_fraction"] == 0.5


def test_policy_loss_applies_is_weights_per_token():
    zeros = torch.zeros(1, 2)
    # old log-probs are 0, so the weights exp(old - rollout) are [0.5, 2.0].
    rollout = -torch.log(torch.tensor([[0.5, 2.0]]))
    loss, metrics = policy_loss(zeros, zeros, torch.tensor([1.0]), torch.ones(1, 2),
                                rollout_logprobs=rollout, tis_bounds=(0.5, 5.0))
    assert loss.item() == pytest.approx(-(0.5 + 2.0) / 2)
    assert "actor/tis_weight_mean" in metrics


def test_kl_estimators_match_formulas():
    logp = torch.tensor([[-1.0]])
    ref = torch.tensor([[-1.5]])
    d = 0.5
    assert kl_penalty(logp, ref, "k1").item() == pytest.approx(d)
    assert kl_penalty(logp, ref, "k2").item() == pytest.approx(d * d / 2)
    assert kl_penalty(logp, ref, "k3").item() == pytest.approx(math.exp(-d) - 1 + d)
    zeros = torch.zeros(1, 1)
    loss, metrics = policy_loss(logp, logp, torch.tensor([0.0]), torch.ones(1, 1), ref_logprobs=ref,
                                kl_coef=0.1, kl_type="k3")
    assert loss.item() == pytest.approx(0.1 * (math.exp(-d) - 1 + d))
    assert metrics["actor/kl_loss"] == pytest.approx(math.exp(-d) - 1 + d)
    entropy = torch.full((1, 1), 2.0)
    loss, metrics = policy_loss(zeros, zeros, torch.tensor([0.0]), torch.ones(1, 1), entropy=entropy,
                                entropy_coef=0.01)
    assert loss.item() == pytest.approx(-0.02) and metrics["actor/entropy"] == 2.0


def test_approx_kl_and_ratio_diagnostics():
    old = torch.tensor([[-1.0, -2.0]])
    new = torch.tensor([[-1.1, -1.9]])
    _, metrics = policy_loss(new, old, torch.tensor([0.5]), torch.ones(1, 2))
    assert metrics["actor/ppo_kl"] == pytest.approx(0.0, abs=1e-7)
    assert metrics["actor/ratio_mean"] == pytest.approx((math.exp(-0.1) + math.exp(0.1)) / 2)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"old_logprobs": torch.zeros(2, 2)}, "old_logprobs"),
        ({"advantages": torch.zeros(3)}, "advantages"),
        ({"clip_low": 1.0}, "clip_low"),
        ({"clip_high": -0.1}, "clip_high"),
        ({"dual_clip_c": 1.0}, "dual_clip_c"),
        ({"agg": "sum"}, "agg"),
        ({"kl_coef": 0.1}, "ref_logprobs"),
        ({"entropy_coef": 0.1}, "entropy"),
        ({"tis_bounds": (0.5, 5.0)}, "rollout_logprobs"),
        ({"ref_logprobs": torch.zeros(1, 3), "kl_type": "k4"}, "kl_type"),
        ({"agg_denominator": 0.0}, "agg_denominator"),
    ],
)
def test_bad_arguments_are_named(kwargs, needle):
    call = {"logprobs": torch.zeros(1, 3), "old_logprobs": torch.zeros(1, 3), "advantages": torch.zeros(1),
            "response_mask": torch.ones(1, 3)}
    call.update(kwargs)
    with pytest.raises(ValueError, match=needle):
        policy_loss(call.pop("logprobs"), call.pop("old_logprobs"), call.pop("advantages"), call.pop("response_mask"),
                    **call)


def test_seq_mean_token_sum_norm_divides_by_a_constant_length():
    # Two micro-batches of different widths: with a constant normaliser they sum to the whole.
    values = torch.tensor([[1.0, 2.0, 3.0, 4.0], [5.0, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 0, 0, 0]])
    whole = aggregate(values, mask, "seq-mean-token-sum-norm", norm_length=16)
    assert whole.item() == pytest.approx((10 + 5) / 2 / 16)
    parts = (aggregate(values[:1], mask[:1], "seq-mean-token-sum-norm", denominator=2, norm_length=16)
             + aggregate(values[1:, :1], mask[1:, :1], "seq-mean-token-sum-norm", denominator=2, norm_length=16))
    assert parts.item() == pytest.approx(whole.item())


def test_vetoed_responses_leave_the_token_mean_denominator():
    # Response 1 has a token whose IS ratio is below the veto: it is removed from the mask (verl),
    # so the token mean is response 0's alone, not diluted by response 1's tokens.
    zeros = torch.zeros(2, 2)
    rollout = torch.tensor([[0.0, 0.0], [0.0, math.log(1e6)]])
    loss, metrics = policy_loss(zeros, zeros, torch.tensor([1.0, 1.0]), torch.ones(2, 2), rollout_logprobs=rollout,
                                tis_bounds=(0.5, 5.0), tis_veto=1e-4)
    assert loss.item() == pytest.approx(-1.0)
    assert metrics["actor/agg_count"] == 2.0 and metrics["actor/tis_veto_fraction"] == 0.5


def test_k3_kl_is_clamped_like_verl():
    logp = torch.tensor([[-7.0, -1.0]])
    ref = torch.tensor([[-1.0, -1.2]])
    kl = kl_penalty(logp, ref, "k3")
    assert kl[0, 0].item() == 10.0  # e^6 - 1 - 6 = 396 unclamped
    assert kl[0, 1].item() == pytest.approx(math.exp(-0.2) - 1 + 0.2)
