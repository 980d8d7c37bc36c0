"""Outcome-reward advantage estimators that see the task label, plus dynamic sampling and
per-task monitoring.

Every estimator maps one scalar score per rollout to one advantage per rollout, given the
rollout's prompt group (``group_ids``, the prompt uid) and task (``task_ids``, the task type).
The reference (GoLongRL's verl fork) had to hard-code the task label into verl's trainer; here
it is an ordinary input, so the single-machine trainer and the verl plugin call the same code.

Estimators (``ESTIMATORS`` registry, extend with :func:`register_estimator`):

=====================  ======================  =================================================
name                   centre                  scale (divisor)
=====================  ======================  =================================================
``grpo``               group mean              group unbiased std
``dr_grpo``            group mean              none
``qwenlong_task_norm`` task mean (rollouts)    task unbiased std over rollouts (GoLongRL's code)
``qwenlong_l15``       group mean              task unbiased std over rollouts (QwenLong-L1.5)
``tmn``                group mean              sqrt(mean over the task's prompts of group var)
``tmn_reweight``       as ``tmn``              ``tmn`` times difficulty weights
=====================  ======================  =================================================

Reference conventions reproduced exactly (GoLongRL ``core_algos.py``):

* A group of one rollout has centre 0 and variance 1 (``grpo``, ``dr_grpo``, ``qwenlong_l15``,
  ``tmn``), i.e. its advantage is ``r / (1 + eps)`` under ``grpo`` and the group contributes
  variance 1 to the TMN task scale.
* ``qwenlong_task_norm``: a task with a single rollout has scale 1 (its centred value is 0).
  ``qwenlong_l15`` follows QwenLong-L1.5's published code: such a task has scale 0.
* ``tmn_reweight``: the task mean of prompt means uses the zeroed means of one-rollout groups,
  whose smoothed baseline is the task mean itself.

Numerical safety for continuous rewards (F1, ROUGE-L, NDCG differ in the last decimals when the
answers are nearly the same). Two guards, both on by default, both off reproduces the
reference bit for bit (``zero_tol=0, std_floor=0``):

* ``zero_tol`` (default 1e-6): a group (for ``qwenlong_task_norm``: a task) whose rewards span
  at most ``zero_tol`` (max - min) is treated as constant: its deviations are set to exactly 0.
  Equality tests miss such groups, and dividing their float residue by a residue std turns
  rounding noise into full-size advantages.
* ``std_floor`` (default 1e-3): every std used as a divisor is raised to at least
  ``std_floor`` before ``eps`` is added. Rewards live in [0, 1]; a spread below 0.1 % of that
  range is measurement noise, so such groups get proportionally small advantages instead of the
  unit-size ones per-group normalisation would give them. It also bounds QwenLong-L1.5's
  single-rollout-task case (scale 0, advantage ``r / eps`` = 1e6 in the reference) to ``r/1e-3``.

All statistics are computed in float64 with two-pass variances (the reference uses the
one-pass ``E[x^2] - E[x]^2`` in float32, whose cancellation is the residue problem above); the
advantages come back in the dtype and on the device of ``scores``.
"""

from __future__ import annotations

import functools
import inspect
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Iterable, Mapping, Protocol, Sequence

import numpy as np
import pandas as pd
import torch

__all__ = [
    "ESTIMATORS",
    "BackfillController",
    "GroupedScores",
    "compute_advantages",
    "TASK_METRIC_NAMES",
    "dynamic_sampling_mask",
    "estimator_parameters",
    "group_scores",
    "register_estimator",
    "task_metrics",
    "tmn_task_scale",
]

Labels = Sequence[Hashable] | np.ndarray | torch.Tensor


class EstimatorFn(Protocol):
    """An advantage estimator: float64 statistics in, float64 advantages [N] and metrics out."""

    def __call__(self, batch: GroupedScores, **params: Any) -> tuple[torch.Tensor, dict[str, float]]: ...


#: Registry of advantage estimators by name. Add entries with :func:`register_estimator`.
ESTIMATORS: dict[str, EstimatorFn] = {}


def register_estimator(name: str, *aliases: str) -> Callable[[EstimatorFn], EstimatorFn]:
    """Register an estimator under ``name`` (and optional aliases).

    The function receives a :class:`GroupedScores` (labels factorised once, float64 group
    statistics precomputed) and keyword parameters, and returns ``(advantages, metrics)`` with
    ``advantages`` a float64 tensor [N]. Registering a different function under a taken name
    raises ``ValueError``.
    """

    def decorator(fn: EstimatorFn) -> EstimatorFn:
        for key in (name, *aliases):
            if key in ESTIMATORS and ESTIMATORS[key] is not fn:
                raise ValueError(f"estimator {key!r} is already registered to {ESTIMATORS[key]!r}")
            ESTIMATORS[key] = fn
        return fn

    return decorator


# --------------------------------------------------------------------------------------------
# input handling: validation and label factorisation (done once per batch)
# --------------------------------------------------------------------------------------------


def _as_scores(scores: torch.Tensor | np.ndarray | Sequence[float], name: str = "scores") -> torch.Tensor:
    tensor = scores if isinstance(scores, torch.Tensor) else torch.as_tensor(np.asarray(scores, dtype=np.float64))
    if tensor.dim() != 1:
        raise ValueError(f"{name} must be a 1-D sequence of floats, got shape {tuple(tensor.shape)}")
    if tensor.is_complex() or tensor.dtype == torch.bool:
        raise ValueError(f"{name} must hold real numbers, got dtype {tensor.dtype}")
    # Statistics run on the CPU: label codes come from pandas/numpy there, and a batch of
    # scores is small next to what a device transfer costs.
    values = tensor.detach().to(device="cpu", dtype=torch.float64)
    bad = ~torch.isfinite(values)
    if bool(bad.any()):
        first = int(torch.nonzero(bad)[0, 0])
        raise ValueError(
            f"{name} contains {int(bad.sum())} non-finite value(s) (NaN or inf); first at index "
            f"{first}: {values[first].item()!r}. Score failures must be mapped to a number first."
        )
    return values


def _factorize(labels: Labels, name: str, n: int) -> tuple[torch.Tensor, list[Hashable]]:
    """Map N hashable labels to codes 0..U-1 (first-appearance order) and the U unique labels.

    A hash-based factorisation (pandas) keeps 1M uid strings well under 100 ms; sorting them
    with ``np.unique`` on object arrays costs about a second.
    """
    if isinstance(labels, torch.Tensor):
        if labels.dim() != 1 or labels.numel() != n:
            raise ValueError(f"{name} must hold one label per score ({n}), got shape {tuple(labels.shape)}")
        uniques, codes = torch.unique(labels.detach().cpu(), sorted=True, return_inverse=True)
        # Renumber by first appearance so codes mean the same whatever the label container.
        first = _scatter_reduce(torch.arange(n), codes, uniques.numel(), "amin")
        order = torch.argsort(first)
        renumber = torch.empty_like(order)
        renumber[order] = torch.arange(order.numel())
        return renumber[codes], uniques[order].tolist()
    if isinstance(labels, (str, bytes)):
        raise ValueError(f"{name} must be a sequence of labels, not a single {type(labels).__name__}")
    if isinstance(labels, np.ndarray) and labels.ndim == 1:
        array = labels
    else:
        try:
            count = len(labels)
        except TypeError as exc:
            raise ValueError(f"{name} must be a sequence of labels, got {type(labels).__name__}") from exc
        if count != n:
            raise ValueError(f"{name} has {count} labels but scores has {n} values; they must match")
        array = np.fromiter(labels, dtype=object, count=count)
    if len(array) != n:
        raise ValueError(f"{name} has {len(array)} labels but scores has {n} values; they must match")
    try:
        codes, uniques = pd.factorize(array, use_na_sentinel=False)
    except TypeError as exc:
        raise ValueError(f"{name} must hold hashable labels: {exc}") from exc
    return torch.from_numpy(np.asarray(codes, dtype=np.int64)), list(uniques)


def _scatter_sum(values: torch.Tensor, index: torch.Tensor, size: int) -> torch.Tensor:
    return torch.zeros(size, dtype=values.dtype).index_add_(0, index, values)


def _scatter_reduce(values: torch.Tensor, index: torch.Tensor, size: int, reduce: str) -> torch.Tensor:
    return torch.zeros(size, dtype=values.dtype).scatter_reduce_(0, index, values, reduce, include_self=False)


@dataclass(frozen=True)
class GroupedScores:
    """A batch of scores with its labels factorised and float64 group statistics precomputed.

    Attributes (N rollouts, G groups, K tasks):
        scores: float64 [N].
        group_index: long [N] in 0..G-1; task_index: long [N] in 0..K-1.
        group_task: long [G], the task of each group (a group never spans two tasks).
        group_size: float64 [G]; group_mean: float64 [G] (plain mean, no single-rollout convention).
        group_var: float64 [G], unbiased variance (0 for single-rollout groups).
        group_pop_std: float64 [G], population std (numpy's default, what the reference logs).
        group_spread: float64 [G], max - min.
        tasks: the K task labels (as given), groups: the G group labels.
    """

    scores: torch.Tensor
    group_index: torch.Tensor
    task_index: torch.Tensor
    group_task: torch.Tensor
    group_size: torch.Tensor
    group_mean: torch.Tensor
    group_var: torch.Tensor
    group_pop_std: torch.Tensor
    group_spread: torch.Tensor
    tasks: list[Hashable] = field(repr=False)
    groups: list[Hashable] = field(repr=False)

    @property
    def num_groups(self) -> int:
        return len(self.groups)

    @property
    def num_tasks(self) -> int:
        return len(self.tasks)

    @property
    def single(self) -> torch.Tensor:
        """Bool [G]: groups of exactly one rollout."""
        return self.group_size <= 1

    def task_of(self, per_task: torch.Tensor) -> torch.Tensor:
        """Broadcast a per-task tensor [K] to rollouts [N]."""
        return per_task[self.task_index]

    def group_of(self, per_group: torch.Tensor) -> torch.Tensor:
        """Broadcast a per-group tensor [G] to rollouts [N]."""
        return per_group[self.group_index]


def group_scores(scores: torch.Tensor | np.ndarray | Sequence[float], group_ids: Labels, task_ids: Labels) -> GroupedScores:
    """Validate inputs and compute the per-group statistics every estimator shares.

    Raises ``ValueError`` naming the argument for non-1-D or non-finite ``scores``, label
    sequences of the wrong length, and a group whose rollouts carry different task labels.
    """
    values = _as_scores(scores)
    n = values.numel()
    gidx, groups = _factorize(group_ids, "group_ids", n)
    tidx, tasks = _factorize(task_ids, "task_ids", n)
    g = len(groups)
    group_task = _scatter_reduce(tidx, gidx, g, "amin")
    mixed = group_task[gidx] != tidx
    if bool(mixed.any()):
        where = int(torch.nonzero(mixed)[0, 0])
        raise ValueError(
            f"task_ids: group {groups[int(gidx[where])]!r} has rollouts from more than one task "
            f"({tasks[int(group_task[gidx[where]])]!r} and {tasks[int(tidx[where])]!r}); every rollout of a "
            "prompt must carry the prompt's task"
        )
    size = _scatter_sum(torch.ones(n, dtype=torch.float64), gidx, g)
    mean = _scatter_sum(values, gidx, g) / size.clamp_min(1.0)
    ss = _scatter_sum((values - mean[gidx]) ** 2, gidx, g)
    var = torch.where(size > 1, ss / (size - 1).clamp_min(1.0), torch.zeros_like(ss))
    pop_std = torch.sqrt(ss / size.clamp_min(1.0))
    spread = _scatter_reduce(values, gidx, g, "amax") - _scatter_reduce(values, gidx, g, "amin")
    return GroupedScores(values, gidx, tidx, group_task, size, mean, var, pop_std, spread, tasks, groups)


# --------------------------------------------------------------------------------------------
# shared pieces of the estimators
# --------------------------------------------------------------------------------------------


def _group_centred(batch: GroupedScores, zero_tol: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Group centres [G] (0 for single-rollout groups) and deviations [N].

    Deviations of groups spanning at most ``zero_tol`` are exactly 0 (single-rollout groups keep
    ``r - 0``, the reference convention).
    """
    centre = torch.where(batch.single, torch.zeros_like(batch.group_mean), batch.group_mean)
    constant = (~batch.single) & (batch.group_spread <= zero_tol)
    deviation = batch.scores - batch.group_of(centre)
    return centre, torch.where(batch.group_of(constant), torch.zeros_like(deviation), deviation)


def _task_rollout_stats(batch: GroupedScores) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Task mean, unbiased variance, spread and rollout count [K], over all rollouts of each task."""
    k = batch.num_tasks
    count = _scatter_sum(torch.ones_like(batch.scores), batch.task_index, k)
    mean = _scatter_sum(batch.scores, batch.task_index, k) / count.clamp_min(1.0)
    ss = _scatter_sum((batch.scores - mean[batch.task_index]) ** 2, batch.task_index, k)
    var = torch.where(count > 1, ss / (count - 1).clamp_min(1.0), torch.zeros_like(ss))
    spread = _scatter_reduce(batch.scores, batch.task_index, k, "amax") - _scatter_reduce(
        batch.scores, batch.task_index, k, "amin"
    )
    return mean, var, spread, count


def _tmn_group_var(batch: GroupedScores, zero_tol: float) -> torch.Tensor:
    """Per-group variance entering the TMN scale: 1 for single rollouts, 0 for constant groups."""
    var = torch.where(batch.group_spread <= zero_tol, torch.zeros_like(batch.group_var), batch.group_var)
    return torch.where(batch.single, torch.ones_like(var), var)


def tmn_task_scale(batch: GroupedScores, zero_tol: float = 0.0) -> torch.Tensor:
    """TMN scale S_k [K] = sqrt(mean over the task's prompts of their unbiased group variance)."""
    k = batch.num_tasks
    prompts = _scatter_sum(torch.ones_like(batch.group_var), batch.group_task, k).clamp_min(1.0)
    return torch.sqrt(_scatter_sum(_tmn_group_var(batch, zero_tol), batch.group_task, k) / prompts)


def _divide(deviation: torch.Tensor, std: torch.Tensor, std_floor: float, eps: float) -> tuple[torch.Tensor, float]:
    """``deviation / (max(std, std_floor) + eps)`` and the fraction of divisors the floor raised."""
    floored = std < std_floor
    fraction = float(floored.double().mean()) if std.numel() else 0.0
    # A zero deviation stays zero even over a zero divisor (constant groups when eps = 0).
    ratio = deviation / (torch.clamp_min(std, std_floor) + eps)
    return torch.where(deviation == 0, torch.zeros_like(ratio), ratio), fraction


def _check_tolerances(eps: float, std_floor: float, zero_tol: float, divides: bool = True) -> None:
    for pname, value in (("eps", eps), ("std_floor", std_floor), ("zero_tol", zero_tol)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise ValueError(f"{pname} must be a finite number >= 0, got {value!r}")
    if divides and eps == 0 and std_floor == 0:
        raise ValueError("eps and std_floor must not both be 0: a zero std would divide by zero")


# --------------------------------------------------------------------------------------------
# estimators
# --------------------------------------------------------------------------------------------


@register_estimator("grpo")
def grpo(
    batch: GroupedScores, *, eps: float = 1e-6, std_floor: float = 1e-3, zero_tol: float = 1e-6
) -> tuple[torch.Tensor, dict[str, float]]:
    """GRPO: ``(r - mean_u) / (std_u + eps)`` with the group's unbiased std.

    One-rollout groups: mean 0, std 1 (reference). Invariant to a per-group affine map
    ``r -> a r + b`` (a > 0) as long as the std stays above ``std_floor``.
    """
    _check_tolerances(eps, std_floor, zero_tol)
    _, deviation = _group_centred(batch, zero_tol)
    std = torch.where(batch.single, torch.ones_like(batch.group_var), batch.group_var.sqrt())
    adv, floored = _divide(deviation, batch.group_of(std), std_floor, eps)
    return adv, {"advantages/floored_fraction": floored}


@register_estimator("dr_grpo")
def dr_grpo(batch: GroupedScores, *, zero_tol: float = 1e-6) -> tuple[torch.Tensor, dict[str, float]]:
    """Dr. GRPO: ``r - mean_u`` (no std division); one-rollout groups keep ``r``."""
    _check_tolerances(0.0, 0.0, zero_tol, divides=False)
    _, deviation = _group_centred(batch, zero_tol)
    return deviation, {}


@register_estimator("qwenlong_task_norm", "qwenlong_grpo")
def qwenlong_task_norm(
    batch: GroupedScores, *, eps: float = 1e-6, std_floor: float = 1e-3, zero_tol: float = 1e-6
) -> tuple[torch.Tensor, dict[str, float]]:
    """The ``qwenlong_grpo`` baseline as GoLongRL's code has it: ``(r - mean_k) / (std_k + eps)``.

    Both centre and scale are over all rollouts of the task in the batch, so the advantage's
    sign mixes prompt difficulty in (a failed rollout of an easy prompt can score above the task
    mean). Differs from :func:`qwenlong_l15`, QwenLong-L1.5's published variant, which keeps the
    group mean as the centre. A task with one rollout gets scale 1 (and advantage 0); a task
    spanning at most ``zero_tol`` gets advantage 0.
    """
    _check_tolerances(eps, std_floor, zero_tol)
    mean, var, spread, count = _task_rollout_stats(batch)
    std = torch.where(count <= 1, torch.ones_like(var), var.sqrt())
    deviation = batch.scores - batch.task_of(mean)
    deviation = torch.where(batch.task_of(spread <= zero_tol), torch.zeros_like(deviation), deviation)
    adv, floored = _divide(deviation, batch.task_of(std), std_floor, eps)
    return adv, {"advantages/floored_fraction": floored}


@register_estimator("qwenlong_l15")
def qwenlong_l15(
    batch: GroupedScores, *, eps: float = 1e-6, std_floor: float = 1e-3, zero_tol: float = 1e-6
) -> tuple[torch.Tensor, dict[str, float]]:
    """QwenLong-L1.5's published task norm: ``(r - mean_u) / (std_k + eps)``.

    Group-mean centre (one-rollout groups: 0), task-level unbiased std over all the task's
    rollouts as the scale. A task with one rollout has std 0 in the published code (kept here;
    ``std_floor`` bounds it). Contrast :func:`qwenlong_task_norm`, which also centres on the task.
    """
    _check_tolerances(eps, std_floor, zero_tol)
    _, deviation = _group_centred(batch, zero_tol)
    _, var, _, _ = _task_rollout_stats(batch)
    adv, floored = _divide(deviation, batch.task_of(var.sqrt()), std_floor, eps)
    return adv, {"advantages/floored_fraction": floored}


def _tmn(
    batch: GroupedScores, eps: float, std_floor: float, zero_tol: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, float]]:
    _check_tolerances(eps, std_floor, zero_tol)
    centre, deviation = _group_centred(batch, zero_tol)
    scale = tmn_task_scale(batch, zero_tol)
    adv, floored = _divide(deviation, batch.task_of(scale), std_floor, eps)
    return adv, centre, deviation, {"advantages/floored_fraction": floored}


@register_estimator("tmn", "tmn_grpo")
def tmn(
    batch: GroupedScores, *, eps: float = 1e-6, std_floor: float = 1e-3, zero_tol: float = 1e-6
) -> tuple[torch.Tensor, dict[str, float]]:
    """Task-level Mean Normalisation: ``(r - mean_u) / (S_k + eps)``.

    ``S_k = sqrt(mean_{u in k} s_u^2)`` with ``s_u^2`` the unbiased variance of prompt u
    (one-rollout prompts: centre 0, variance 1). The prompt baseline stays (as in GRPO) but the
    scale is the task's RMS within-prompt std, so tasks with different reward scales contribute
    comparably while prompts inside a task keep their relative spread: low-variance (near-solved
    or near-impossible) prompts are not inflated by ``1/s_u``. Multiplying one task's rewards by
    ``c > 0`` leaves every advantage unchanged (up to ``eps`` and ``std_floor``).
    """
    adv, _, _, metrics = _tmn(batch, eps, std_floor, zero_tol)
    return adv, metrics


@register_estimator("tmn_reweight")
def tmn_reweight(
    batch: GroupedScores,
    *,
    alpha: float = 0.8,
    gamma: float = 1.0,
    clamp: tuple[float, float] | None = None,
    eps: float = 1e-6,
    std_floor: float = 1e-3,
    zero_tol: float = 1e-6,
) -> tuple[torch.Tensor, dict[str, float]]:
    """TMN times GoLongRL's difficulty weights (``tmn_grpo`` with ``difficulty_reweight=True``).

    1. ``m_k`` = mean over the task's prompts of the prompt means (one-rollout prompts count 0).
    2. Smoothed baseline ``b_u = alpha * mean_u + (1 - alpha) * m_k`` (one-rollout prompts: m_k).
    3. Pass rate ``p_u`` = fraction of the prompt's rollouts with ``r > b_u`` (strict).
    4. Rollouts above the *raw* prompt mean get ``exp(gamma * (0.5 - p_u))``, the others
       ``exp(gamma * (p_u - 0.5))``: the informative minority outcome is amplified (rare
       successes on hard prompts, rare failures on easy ones).
    5. ``clamp=(low, high)`` optionally bounds the weights; the reference clamps nothing
       (with gamma = 1 the weights lie in [0.607, 1.649]).

    ``alpha`` defaults to 0.8 (GoLongRL's TMN script; its function default is 0.5).
    Metrics: ``difficulty/mean_pass_rate`` (mean of p_u over prompts) and
    ``difficulty/mean_weight``.
    """
    if not (isinstance(alpha, (int, float)) and 0.0 <= alpha <= 1.0):
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    if not (isinstance(gamma, (int, float)) and math.isfinite(gamma)):
        raise ValueError(f"gamma must be a finite number, got {gamma!r}")
    if clamp is not None:
        low, high = clamp
        if not (0 < low <= high and math.isfinite(high)):
            raise ValueError(f"clamp must be (low, high) with 0 < low <= high < inf, got {clamp!r}")
    adv, centre, deviation, metrics = _tmn(batch, eps, std_floor, zero_tol)
    k = batch.num_tasks
    prompts = _scatter_sum(torch.ones_like(centre), batch.group_task, k).clamp_min(1.0)
    task_mean = _scatter_sum(centre, batch.group_task, k) / prompts
    task_mean_u = task_mean[batch.group_task]
    smoothed = torch.where(batch.single, task_mean_u, alpha * centre + (1.0 - alpha) * task_mean_u)
    passed = (batch.scores > batch.group_of(smoothed)).to(torch.float64)
    pass_rate = _scatter_sum(passed, batch.group_index, batch.num_groups) / batch.group_size.clamp_min(1.0)
    positive_weight = torch.exp(gamma * (0.5 - pass_rate))
    negative_weight = torch.exp(gamma * (pass_rate - 0.5))
    weight = torch.where(deviation > 0, batch.group_of(positive_weight), batch.group_of(negative_weight))
    if clamp is not None:
        weight = weight.clamp(clamp[0], clamp[1])
    metrics["difficulty/mean_pass_rate"] = float(pass_rate.mean()) if pass_rate.numel() else 0.0
    metrics["difficulty/mean_weight"] = float(weight.mean()) if weight.numel() else 0.0
    return adv * weight, metrics


# --------------------------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _parameters(fn: EstimatorFn) -> frozenset[str]:
    return frozenset({
        p.name
        for p in inspect.signature(fn).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    })


def compute_advantages(
    estimator: str,
    scores: torch.Tensor | np.ndarray | Sequence[float],
    group_ids: Labels,
    task_ids: Labels,
    **params: Any,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Advantages [N] for N rollouts under the named estimator, and a flat metrics dict.

    Args:
        estimator: a key of :data:`ESTIMATORS` (``grpo``, ``dr_grpo``, ``qwenlong_task_norm``,
            ``qwenlong_l15``, ``tmn``, ``tmn_reweight``; aliases ``qwenlong_grpo``, ``tmn_grpo``).
        scores: float [N], one scalar reward per rollout (tensor, array or sequence); must be
            finite.
        group_ids: N hashable labels, the rollout's prompt (uid).
        task_ids: N hashable labels, the rollout's task type; constant within a group.
        **params: estimator keyword parameters (``eps``, ``std_floor``, ``zero_tol``, ``alpha``,
            ``gamma``, ``clamp``). Parameters that only other registered estimators take are
            ignored, so one config section can drive any estimator; a name no estimator takes
            raises ``ValueError``.

    Returns:
        ``advantages`` in the dtype (float32 for non-float input) and on the device of
        ``scores``, and metrics: ``advantages/{mean,abs_max,zero_fraction}``,
        ``advantages/floored_fraction`` (share of rollouts whose divisor ``std_floor`` raised)
        and ``difficulty/{mean_pass_rate,mean_weight}`` for ``tmn_reweight``.
        An empty batch gives an empty tensor and no NaN anywhere.
    """
    if not isinstance(estimator, str) or estimator not in ESTIMATORS:
        raise ValueError(f"estimator {estimator!r} is not registered; choose one of {sorted(ESTIMATORS)}")
    fn = ESTIMATORS[estimator]
    accepted = _parameters(fn)
    known = set().union(*(_parameters(other) for other in ESTIMATORS.values()))
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(
            f"unknown estimator parameter(s) {unknown} for estimator {estimator!r}; it accepts {sorted(accepted)}"
        )
    batch = group_scores(scores, group_ids, task_ids)
    advantages, metrics = fn(batch, **{k: v for k, v in params.items() if k in accepted})
    if advantages.numel():
        metrics["advantages/mean"] = float(advantages.mean())
        metrics["advantages/abs_max"] = float(advantages.abs().max())
        metrics["advantages/zero_fraction"] = float((advantages == 0).double().mean())
    if isinstance(scores, torch.Tensor) and scores.is_floating_point():
        return advantages.to(dtype=scores.dtype, device=scores.device), metrics
    return advantages.to(torch.float32), metrics


# --------------------------------------------------------------------------------------------
# per-task monitoring
# --------------------------------------------------------------------------------------------

#: Names under ``task_metrics/<task>/``; stable, the trainer and the verl plugin log them as-is.
TASK_METRIC_NAMES: tuple[str, ...] = (
    "mean_reward",
    "std_reward",
    "mean_std_reward",
    "rate_adv",
    "rate_num",
    "num_queries",
    "num_rollouts",
    "sqrt_mean_var",
)


def task_metrics(
    scores: torch.Tensor | np.ndarray | Sequence[float],
    group_ids: Labels,
    task_ids: Labels,
    *,
    all_tasks: Iterable[Hashable] = (),
) -> dict[str, float]:
    """GoLongRL's per-task monitoring, keys ``task_metrics/<task>/<name>``.

    Per task k (task labels rendered with ``str``):

    * ``mean_reward``: mean over the task's rollouts; ``std_reward``: their population std.
    * ``mean_std_reward``: mean over the task's prompts of the population within-prompt std.
    * ``rate_adv``: ``sum_{u in k} std_u / sum_all std_u`` (population stds), the task's share of
      the proxy gradient norm (0 when no prompt in the batch has spread). GoLongRL's README calls
      it the fraction of positive-advantage samples; the code computes this share.
    * ``rate_num``: the task's share of prompts; ``num_queries``, ``num_rollouts``: counts.
    * ``sqrt_mean_var``: ``sqrt(mean_u unbiased var_u)``, exactly the TMN scale S_k (one-rollout
      prompts count variance 1, as in TMN).

    Tasks in ``all_tasks`` that the batch lacks are reported with zeros so logged series stay
    continuous. Plain floats, never NaN.
    """
    batch = group_scores(scores, group_ids, task_ids)
    k = batch.num_tasks
    mean, var, _, rollouts = _task_rollout_stats(batch)
    pop_std = torch.sqrt(torch.where(rollouts > 0, var * (rollouts - 1).clamp_min(0.0) / rollouts.clamp_min(1.0), var))
    queries = _scatter_sum(torch.ones_like(batch.group_mean), batch.group_task, k)
    std_sum = _scatter_sum(batch.group_pop_std, batch.group_task, k)
    total_std = float(std_sum.sum())
    rate_adv = std_sum / total_std if total_std > 0 else torch.zeros_like(std_sum)
    rate_num = queries / max(float(queries.sum()), 1.0)
    scale = tmn_task_scale(batch)
    columns = {
        "mean_reward": mean,
        "std_reward": pop_std,
        "mean_std_reward": std_sum / queries.clamp_min(1.0),
        "rate_adv": rate_adv,
        "rate_num": rate_num,
        "num_queries": queries,
        "num_rollouts": rollouts,
        "sqrt_mean_var": scale,
    }
    out: dict[str, float] = {}
    for name in (str(t) for t in all_tasks):
        out.update({f"task_metrics/{name}/{metric}": 0.0 for metric in TASK_METRIC_NAMES})
    for index, task in enumerate(batch.tasks):
        for metric in TASK_METRIC_NAMES:
            out[f"task_metrics/{task}/{metric}"] = float(columns[metric][index])
    return out


# --------------------------------------------------------------------------------------------
# dynamic sampling
# --------------------------------------------------------------------------------------------


def _keep_groups(
    scores: torch.Tensor | np.ndarray | Sequence[float],
    group_ids: Labels,
    metric: str,
    accuracy: torch.Tensor | np.ndarray | Sequence[float] | None,
    tol: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Bool [G] groups to keep and the codes [N] mapping rollouts to groups."""
    if metric not in ("score", "acc"):
        raise ValueError(f"metric must be 'score' or 'acc', got {metric!r}")
    if not (isinstance(tol, (int, float)) and math.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol must be a finite number >= 0, got {tol!r}")
    values = _as_scores(scores)
    if metric == "acc":
        if accuracy is None:
            raise ValueError("accuracy is required when metric='acc'")
        acc = accuracy if isinstance(accuracy, torch.Tensor) else torch.as_tensor(np.asarray(accuracy, dtype=np.float64))
        acc = acc.detach().to(torch.float64).cpu()
        if acc.shape != values.shape:
            raise ValueError(f"accuracy has shape {tuple(acc.shape)} but scores has {tuple(values.shape)}")
        if bool(torch.isinf(acc).any()):
            raise ValueError("accuracy contains inf; use NaN for rows without a binary accuracy")
        values = torch.where(torch.isnan(acc), values, acc)
    n = values.numel()
    gidx, groups = _factorize(group_ids, "group_ids", n)
    g = len(groups)
    size = _scatter_sum(torch.ones(n, dtype=torch.float64), gidx, g)
    mean = _scatter_sum(values, gidx, g) / size.clamp_min(1.0)
    pop_std = torch.sqrt(_scatter_sum((values - mean[gidx]) ** 2, gidx, g) / size.clamp_min(1.0))
    return (pop_std > tol) | (size <= 1), gidx


def dynamic_sampling_mask(
    scores: torch.Tensor | np.ndarray | Sequence[float],
    group_ids: Labels,
    *,
    metric: str = "score",
    accuracy: torch.Tensor | np.ndarray | Sequence[float] | None = None,
    tol: float = 1e-6,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Bool mask [N] keeping the rollouts of groups whose spread exceeds ``tol``.

    A group is kept when the population std of its filter values is strictly greater than
    ``tol`` (the reference uses ``tol = 0``, i.e. exact equality, which lets F1/ROUGE groups
    differing in the 7th decimal through). One-rollout groups are always kept (reference).

    ``metric="score"`` filters on ``scores``. ``metric="acc"`` filters on ``accuracy`` (a binary
    correctness per rollout, e.g. exact match, next to a shaped or graded score); rows whose
    accuracy is NaN, i.e. tasks without a binary accuracy, fall back to their score. This is what
    keeps all-fail groups with a shaped score out of the batch.

    Returns the mask and ``dynamic_sampling/{kept_groups,dropped_groups,kept_fraction}``.
    """
    keep_group, gidx = _keep_groups(scores, group_ids, metric, accuracy, tol)
    g = keep_group.numel()
    kept = int(keep_group.sum())
    return keep_group[gidx], {
        "dynamic_sampling/kept_groups": float(kept),
        "dynamic_sampling/dropped_groups": float(g - kept),
        "dynamic_sampling/kept_fraction": kept / g if g else 0.0,
    }


@dataclass
class BackfillController:
    """DAPO-style backfill: keep generating until ``target_groups`` informative groups are kept.

    The trainer loop::

        controller = BackfillController(target_groups=128, max_gen_batches=32)
        while controller.need_more:
            rollouts = generate(next_prompts())
            keep = controller.add(scores, group_ids, accuracy=acc)   # bool [n] for this batch
            kept.extend(r for r, k in zip(rollouts, keep) if k)
        metrics.update(controller.metrics())   # reason: target reached or cap hit

    ``add`` filters with :func:`dynamic_sampling_mask` and also truncates: once the target is
    met, surplus groups (later in first-appearance order) are masked out, as the reference
    discards them. Hitting ``max_gen_batches`` first never raises (the reference raises): the
    step trains on what it has and :meth:`metrics` reports ``dynamic_sampling/cap_hit = 1``.
    """

    target_groups: int
    max_gen_batches: int = 32
    tol: float = 1e-6
    metric: str = "score"
    kept_groups: int = 0
    gen_batches: int = 0
    seen_groups: int = 0

    def __post_init__(self) -> None:
        if self.target_groups < 1:
            raise ValueError(f"target_groups must be >= 1, got {self.target_groups}")
        if self.max_gen_batches < 1:
            raise ValueError(f"max_gen_batches must be >= 1, got {self.max_gen_batches}")
        if self.metric not in ("score", "acc"):
            raise ValueError(f"metric must be 'score' or 'acc', got {self.metric!r}")

    @property
    def target_reached(self) -> bool:
        return self.kept_groups >= self.target_groups

    @property
    def cap_hit(self) -> bool:
        return not self.target_reached and self.gen_batches >= self.max_gen_batches

    @property
    def need_more(self) -> bool:
        """True while neither the target nor the generation-batch cap is reached."""
        return not self.target_reached and not self.cap_hit

    @property
    def reason(self) -> str:
        """``target_reached``, ``cap_hit`` or ``in_progress``."""
        if self.target_reached:
            return "target_reached"
        return "cap_hit" if self.cap_hit else "in_progress"

    def add(
        self,
        scores: torch.Tensor | np.ndarray | Sequence[float],
        group_ids: Labels,
        *,
        accuracy: torch.Tensor | np.ndarray | Sequence[float] | None = None,
    ) -> torch.Tensor:
        """Account one generation batch; return the bool mask [n] of its rollouts to keep."""
        if not self.need_more:
            raise RuntimeError(f"BackfillController.add called after the step finished ({self.reason})")
        keep_group, gidx = _keep_groups(scores, group_ids, self.metric, accuracy, self.tol)
        self.gen_batches += 1
        self.seen_groups += keep_group.numel()
        # Codes follow first appearance, so a cumulative count over codes is the reference's
        # "first groups win" truncation order.
        rank = torch.cumsum(keep_group.long(), 0)
        keep_group &= rank <= self.target_groups - self.kept_groups
        self.kept_groups += int(keep_group.sum())
        return keep_group[gidx]

    def metrics(self) -> dict[str, float]:
        """``dynamic_sampling/*`` for the step: kept and seen groups, batches, cap hit."""
        return {
            "dynamic_sampling/kept_groups": float(self.kept_groups),
            "dynamic_sampling/target_groups": float(self.target_groups),
            "dynamic_sampling/seen_groups": float(self.seen_groups),
            "dynamic_sampling/gen_batches": float(self.gen_batches),
            "dynamic_sampling/cap_hit": float(self.cap_hit),
        }


def estimator_parameters(name: str) -> Mapping[str, Any]:
    """Keyword parameters and defaults the named estimator accepts (for configs and docs)."""
    if name not in ESTIMATORS:
        raise ValueError(f"estimator {name!r} is not registered; choose one of {sorted(ESTIMATORS)}")
    return {
        p.name: p.default
        for p in inspect.signature(ESTIMATORS[name]).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }
