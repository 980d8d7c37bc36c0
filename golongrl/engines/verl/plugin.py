"""golongrl's estimators, task labels and per-task metrics inside an unmodified verl 0.9.1.

verl hands a registered advantage estimator only ``token_level_rewards``, ``response_mask``,
``index`` (the prompt uid) and ``config`` (``config.algorithm``); the per-sample task label that
TMN, TMN-Reweight and the QwenLong estimators need never reaches it. GoLongRL forked verl to fix
that. This module fixes it from the outside, without touching verl's files:

* every golongrl estimator is registered in verl's registry (``core_algos.register_adv_est``)
  as a thin adapter over :func:`golongrl.advantages.compute_advantages`, so verl's own
  ``compute_advantage`` keeps making the call and both engines run one implementation;
* the labels travel next to that call in a context variable (:data:`_ACTIVE_CALL`), set by two
  wrappers around the points where verl still holds the rows:

  - legacy trainer: ``verl.trainer.ppo.ray_trainer.compute_advantage`` (a module global that
    ``RayPPOTrainer.fit`` looks up at call time); the batch still carries ``data_source`` and
    ``extra_info`` there;
  - V1 trainer (the default): ``PPOTrainer._compute_advantage``, which fetches only numeric
    fields from TransferQueue; the wrapper fetches ``data_source`` and ``extra_info`` for the
    same keys, in the same order, before delegating to the original method;

* the label is ``golongrl.tasks.resolve_task(data_source, extra_info)``, the very function the
  reward library dispatches on, so the estimator groups rows by the task that scored them;
* per-task metrics (``task_metrics/<task>/...``, the names the single-machine trainer logs) and
  the estimator's own metrics go into verl's step metrics: V1 through the ``metrics`` dict its
  ``_compute_advantage`` receives, legacy through a wrapper of ``ray_trainer.compute_data_metrics``;
* V1's synthetic padding rows (tagged ``is_padding``; they copy a real row's labels with reward
  0) are kept out of every estimator statistic and metric;
* reward failures (``golongrl_reason`` in ``reward_extra_info``: timeout/error/gold) are counted
  per step (``reward_failures/*``) and stop the run past
  ``algorithm.golongrl.max_reward_failure_fraction``;
* :func:`install` first checks every verl internal the above relies on
  (:func:`verl_seam_problems`) and refuses to run on a verl that differs.

Built-in estimators are untouched: the wrappers pass their calls straight through and only add
the per-task metrics. :func:`install` must run in the process that executes the trainer (verl's
Ray ``TaskRunner`` actor); :mod:`golongrl.engines.verl.main` does that through verl's
``run_ppo(config, task_runner_class=...)`` seam, and ``VERL_USE_EXTERNAL_MODULES=
golongrl.engines.verl.autoload`` does it for verl's stock entry point.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import inspect
import logging
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

import verl
from golongrl.advantages import ESTIMATORS, compute_advantages, task_metrics
from golongrl.tasks import UnknownTaskError, resolve_task
from verl.trainer.ppo import core_algos, ray_trainer

logger = logging.getLogger(__name__)

#: The verl release this plugin is written and tested against (pinned by the ``verl`` extra).
SUPPORTED_VERL_VERSION = "0.9.1"

#: ``algorithm.<CONFIG_KEY>.estimator_params`` holds the estimator's keyword parameters.
CONFIG_KEY = "golongrl"

#: Printed by :func:`install` (with the pid); the docs tell users to look for it in the log.
INSTALLED_MESSAGE = "golongrl verl plugin installed"

#: Prefix given to a golongrl estimator whose name verl already uses for its own (``grpo``).
COLLISION_PREFIX = "golongrl_"

#: What the V1 wrapper reads from TransferQueue, besides what verl's method reads itself: the
#: dataset columns the agent loop stores per rollout and its ``extra_fields`` (which carry the
#: reward manager's ``reward_extra_info``).
V1_LABEL_FIELDS = ("uid", "rm_scores", "data_source", "extra_info", "extra_fields")

#: ``reward_extra_info`` key with golongrl's reason for a score (set by GoLongRLRewardManager).
REASON_KEY = "golongrl_reason"
#: Reasons that mean "the reward could not be computed", as opposed to a policy's bad answer
#: (``format``, ``parse``), which is a legitimate 0.
REWARD_FAILURE_REASONS = ("timeout", "error", "gold")
#: Placeholder reason for a rollout scored without golongrl's manager (no reason recorded).
MISSING_REASON = "<none>"
#: Default of ``algorithm.golongrl.max_reward_failure_fraction``.
DEFAULT_MAX_REWARD_FAILURE_FRACTION = 0.05

_VERL_BUILTIN_ESTIMATORS: frozenset[str] = frozenset(
    {e.value for e in core_algos.AdvantageEstimator} | set(core_algos.ADV_ESTIMATOR_REGISTRY)
)


def verl_estimator_name(name: str) -> str:
    """The ``algorithm.adv_estimator`` value under which golongrl's estimator ``name`` runs in verl.

    Names verl does not use are kept (``tmn_reweight``); a name verl already uses for its own
    estimator gets :data:`COLLISION_PREFIX` (``grpo`` -> ``golongrl_grpo``) so verl's built-in
    stays exactly as it is.
    """
    if name not in ESTIMATORS:
        raise ValueError(f"unknown golongrl estimator {name!r}; choose one of {sorted(ESTIMATORS)}")
    return COLLISION_PREFIX + name if name in _VERL_BUILTIN_ESTIMATORS else name


#: verl name -> golongrl name, for every estimator in golongrl's registry (aliases included).
VERL_ESTIMATORS: dict[str, str] = {verl_estimator_name(name): name for name in ESTIMATORS}


def is_golongrl_estimator(adv_estimator: Any) -> bool:
    """Whether a verl ``adv_estimator`` value (string or verl enum) is one of golongrl's."""
    value = getattr(adv_estimator, "value", adv_estimator)
    return isinstance(value, str) and value in VERL_ESTIMATORS


# --------------------------------------------------------------------------------------------
# task labels
# --------------------------------------------------------------------------------------------


def _as_list(values: Any) -> list[Any]:
    """numpy object arrays, tensordict NonTensorStacks and lists all become plain lists."""
    if hasattr(values, "tolist"):
        return list(values.tolist())
    return list(values)


def task_labels(data_sources: Sequence[Any], extra_infos: Sequence[Mapping[str, Any] | None]) -> list[str]:
    """One canonical task name per row, resolved exactly as the reward library resolves it.

    Raises:
        UnknownTaskError: naming the batch row, its ``data_source`` and ``extra_info.reward_mode``
            when a row maps to none of the nine task types.
    """
    if len(data_sources) != len(extra_infos):
        raise ValueError(f"{len(data_sources)} data_source values but {len(extra_infos)} extra_info values")
    labels = []
    for row, (data_source, extra_info) in enumerate(zip(data_sources, extra_infos)):
        try:
            labels.append(resolve_task(str(data_source), extra_info))
        except UnknownTaskError as err:
            mode = (extra_info or {}).get("reward_mode")
            raise UnknownTaskError(
                f"training batch row {row} (data_source={data_source!r}, extra_info.reward_mode={mode!r}): {err}"
            ) from None
    return labels


def labels_from_batch(non_tensor_batch: Mapping[str, Any]) -> list[str]:
    """Task labels of a legacy-trainer batch (``DataProto.non_tensor_batch``)."""
    missing = [key for key in ("data_source", "extra_info") if key not in non_tensor_batch]
    if missing:
        raise KeyError(
            f"the training batch lacks {missing}; golongrl's estimators need the dataset's data_source and "
            "extra_info columns (export the data with `golongrl data export --format verl`)"
        )
    return task_labels(_as_list(non_tensor_batch["data_source"]), _as_list(non_tensor_batch["extra_info"]))


# --------------------------------------------------------------------------------------------
# estimators
# --------------------------------------------------------------------------------------------


@dataclass
class _AdvantageCall:
    """What travels next to one verl ``compute_advantage`` call: labels in, metrics out."""

    task_ids: list[str] | None
    real_rows: np.ndarray | None = None  # bool per row; False = verl's synthetic padding
    metrics: dict[str, float] = field(default_factory=dict)


# A context variable rather than an attribute smuggled onto verl's config object: verl passes
# ``config`` on unchanged today, but nothing promises that, while a context variable is
# invisible to verl and scoped to the thread that runs the trainer step.
_ACTIVE_CALL: contextvars.ContextVar[_AdvantageCall | None] = contextvars.ContextVar(
    "golongrl_verl_advantage_call", default=None
)


@contextlib.contextmanager
def _active(call: _AdvantageCall) -> Iterator[_AdvantageCall]:
    token = _ACTIVE_CALL.set(call)
    try:
        yield call
    finally:
        _ACTIVE_CALL.reset(token)


def estimator_params(config: Any) -> dict[str, Any]:
    """``algorithm.golongrl.estimator_params`` as a plain dict (empty when absent)."""
    if config is None:
        return {}
    section = config.get(CONFIG_KEY, None)
    if section is None:
        return {}
    params = section.get("estimator_params", None) or {}
    if isinstance(params, DictConfig):
        params = OmegaConf.to_container(params, resolve=True)
    return dict(params)


def _make_verl_estimator(name: str) -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    def estimator(
        token_level_rewards: torch.Tensor,
        response_mask: torch.Tensor,
        index: np.ndarray | None = None,
        config: Any = None,
        **unused_verl_kwargs: Any,  # verl adds e.g. reward_baselines for ReMax-style batches
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """verl estimator signature: [B, T] rewards and mask -> ([B, T] advantages, [B, T] returns)."""
        call = _ACTIVE_CALL.get()
        if call is None or call.task_ids is None:
            raise RuntimeError(
                f"golongrl estimator {name!r} was called without task labels. Launch verl through "
                "`golongrl train --engine verl` / `python -m golongrl.engines.verl.main`, or set "
                "VERL_USE_EXTERNAL_MODULES=golongrl.engines.verl.autoload, so golongrl.engines.verl.install() "
                "runs in verl's TaskRunner process."
            )
        if index is None:
            raise ValueError(f"golongrl estimator {name!r} needs the prompt uid (non_tensor_batch['uid'])")
        if len(call.task_ids) != token_level_rewards.shape[0]:
            raise ValueError(
                f"{len(call.task_ids)} task labels for {token_level_rewards.shape[0]} rows; the label fetch and "
                "verl's batch are out of step"
            )
        scores = token_level_rewards.sum(dim=-1)
        real = np.ones(len(call.task_ids), dtype=bool) if call.real_rows is None else call.real_rows
        # Padding rows (V1 pads to a multiple of lcm(dp, mini-batch)) copy a real row's task
        # label with reward 0; they must not enter any task statistic, so the estimator sees
        # the real rows only and padding gets advantage 0 (its response mask is 0 anyway).
        keep = torch.as_tensor(real)
        advantages = torch.zeros_like(scores)
        real_advantages, metrics = compute_advantages(
            name, scores[keep], group_ids=np.asarray(index, dtype=object)[real],
            task_ids=[t for t, r in zip(call.task_ids, real) if r], **estimator_params(config)
        )
        advantages[keep] = real_advantages.to(advantages.dtype)
        call.metrics.update(metrics)
        token_advantages = advantages.to(token_level_rewards.dtype).unsqueeze(-1) * response_mask
        return token_advantages, token_advantages

    estimator.__name__ = f"golongrl_{name}_advantage"
    estimator.__qualname__ = estimator.__name__
    return estimator


# Built once per process so that a second install() re-registers the very same functions
# (verl's register_adv_est refuses a different function under a taken name).
_VERL_ESTIMATOR_FNS: dict[str, Callable[..., tuple[torch.Tensor, torch.Tensor]]] = {
    verl_name: _make_verl_estimator(name) for verl_name, name in VERL_ESTIMATORS.items()
}


# --------------------------------------------------------------------------------------------
# per-task metrics
# --------------------------------------------------------------------------------------------


class _MetricsState:
    """Hand-over from the legacy compute_advantage wrapper to the metrics wrapper (same thread)."""

    def __init__(self) -> None:
        self.local = threading.local()
        self.warned_unlabelled = False
        self.max_failure_fraction = DEFAULT_MAX_REWARD_FAILURE_FRACTION

    def put_estimator_metrics(self, metrics: dict[str, float]) -> None:
        self.local.estimator_metrics = metrics

    def pop_estimator_metrics(self) -> dict[str, float]:
        metrics = getattr(self.local, "estimator_metrics", {})
        self.local.estimator_metrics = {}
        return metrics


_STATE = _MetricsState()


def _labels_or_none(resolve: Callable[[], list[str]]) -> list[str] | None:
    """Labels for metrics under a built-in estimator: rows golongrl cannot label skip the metrics
    (with one warning) instead of failing a run that never asked for golongrl's estimators."""
    try:
        return resolve()
    except (UnknownTaskError, KeyError) as err:
        if not _STATE.warned_unlabelled:
            logger.warning("golongrl per-task metrics are off for this run: %s", err)
            _STATE.warned_unlabelled = True
        return None


def _task_metrics_for(
    scores: torch.Tensor, uids: Sequence[Any], labels: list[str] | None, real: np.ndarray | None = None
) -> dict[str, float]:
    """Per-task metrics over the real rows (``real`` False marks verl's padding rows)."""
    if labels is None or len(labels) == 0:
        return {}
    keep = np.ones(len(labels), dtype=bool) if real is None else np.asarray(real, dtype=bool)
    if not keep.any():
        return {}
    return task_metrics(scores[torch.as_tensor(keep)], np.asarray(uids, dtype=object)[keep],
                        [label for label, k in zip(labels, keep) if k])


def reward_failure_metrics(reasons: Sequence[Any], max_fraction: float) -> dict[str, float]:
    """Step metrics ``reward_failures/<reason>`` (counts) and ``reward_failures/fraction``.

    ``reasons`` holds one entry per real rollout: golongrl's reason string, ``""``/None for a
    normal score, or :data:`MISSING_REASON` when the rollout carries none (per-sample reward
    function). Raises RuntimeError when the failed share exceeds ``max_fraction``: a run whose
    rewards cannot be computed would otherwise keep training on zeros.
    """
    counted = [r for r in reasons if r != MISSING_REASON]
    if not counted:
        return {}
    metrics = {f"reward_failures/{reason}": float(sum(r == reason for r in counted)) for reason in REWARD_FAILURE_REASONS}
    failed = sum(metrics.values())
    metrics["reward_failures/fraction"] = failed / len(counted)
    if metrics["reward_failures/fraction"] > max_fraction:
        detail = ", ".join(f"{k.split('/')[1]}={int(v)}" for k, v in metrics.items() if k != "reward_failures/fraction" and v)
        raise RuntimeError(
            f"golongrl: {int(failed)} of {len(counted)} rollouts in this step could not be scored ({detail}), more than "
            f"algorithm.{CONFIG_KEY}.max_reward_failure_fraction={max_fraction}; see the reward workers' logs"
        )
    return metrics


def _reason_of(extra_fields: Any) -> Any:
    extra_fields = getattr(extra_fields, "data", extra_fields)  # a tensordict NonTensorData when iterated
    info = extra_fields.get("reward_extra_info", None) if isinstance(extra_fields, Mapping) else None
    if not isinstance(info, Mapping) or REASON_KEY not in info:
        return MISSING_REASON
    return info[REASON_KEY]


def _max_failure_fraction(algorithm_config: Any) -> float:
    section = algorithm_config.get(CONFIG_KEY, None) if algorithm_config is not None else None
    value = section.get("max_reward_failure_fraction", None) if section is not None else None
    return DEFAULT_MAX_REWARD_FAILURE_FRACTION if value is None else float(value)


# --------------------------------------------------------------------------------------------
# wrappers around verl
# --------------------------------------------------------------------------------------------


def _wrap_legacy_compute_advantage(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def compute_advantage(data: Any, adv_estimator: Any, *args: Any, **kwargs: Any) -> Any:
        # Inside a V1 call the labels are already set; other estimators need nothing from us.
        if kwargs.get("config") is not None:  # config.algorithm: the legacy metrics wrapper reads the threshold
            _STATE.max_failure_fraction = _max_failure_fraction(kwargs["config"])
        if _ACTIVE_CALL.get() is not None or not is_golongrl_estimator(adv_estimator):
            return original(data, adv_estimator, *args, **kwargs)
        with _active(_AdvantageCall(task_ids=labels_from_batch(data.non_tensor_batch))) as call:
            result = original(data, adv_estimator, *args, **kwargs)
        _STATE.put_estimator_metrics(call.metrics)
        return result

    compute_advantage.golongrl_wrapped = original  # type: ignore[attr-defined]
    return compute_advantage


def _wrap_legacy_compute_data_metrics(original: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    @functools.wraps(original)
    def compute_data_metrics(batch: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        metrics = original(batch, *args, **kwargs)
        metrics.update(_STATE.pop_estimator_metrics())
        if "token_level_scores" in batch.batch.keys() and "uid" in batch.non_tensor_batch:
            labels = _labels_or_none(lambda: labels_from_batch(batch.non_tensor_batch))
            scores = batch.batch["token_level_scores"].sum(dim=-1)
            metrics.update(_task_metrics_for(scores, _as_list(batch.non_tensor_batch["uid"]), labels))
        if REASON_KEY in batch.non_tensor_batch:  # reward_extra_info, merged into the batch by the legacy trainer
            metrics.update(reward_failure_metrics(_as_list(batch.non_tensor_batch[REASON_KEY]), _STATE.max_failure_fraction))
        return metrics

    compute_data_metrics.golongrl_wrapped = original  # type: ignore[attr-defined]
    return compute_data_metrics


def _check_single_output_sessions(keys: Sequence[str]) -> None:
    """V1 keys are ``{uid}_{session}_{output}``. verl's V1 trainer hands a non-GRPO estimator every
    output of a multi-output agent loop, which would count a session several times in its group;
    golongrl's estimators are defined for one output per rollout, so refuse loudly."""
    extra = [key for key in keys if not key.endswith("_0")]
    if extra:
        raise ValueError(
            f"golongrl estimators expect one output per rollout session, but {len(extra)} TransferQueue keys "
            f"belong to multi-output agent loops (e.g. {extra[0]!r}); use a single-turn agent loop"
        )


def _wrap_v1_compute_advantage(original: Callable[..., Any]) -> Callable[..., Any]:
    import transfer_queue as tq

    @functools.wraps(original)
    def _compute_advantage(self: Any, batch: Any, metrics: dict[str, Any]) -> Any:
        ours = is_golongrl_estimator(self.config.algorithm.adv_estimator)
        rows = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=list(V1_LABEL_FIELDS))
        uids = _as_list(rows["uid"])
        data_sources, extra_infos = _as_list(rows["data_source"]), _as_list(rows["extra_info"])
        scores = rows.select("rm_scores").to_padded_tensor()["rm_scores"].sum(dim=-1)
        # verl's _balance_batch appends synthetic rows tagged is_padding (padding_utils.py)
        real = np.array([not tag.get("is_padding", False) for tag in batch.tags], dtype=bool)
        if ours:
            _check_single_output_sessions([key for key, r in zip(batch.keys, real) if r])
            labels: list[str] | None = task_labels(data_sources, extra_infos)
        else:
            labels = _labels_or_none(lambda: task_labels(data_sources, extra_infos))
        reasons = [_reason_of(extra) for extra, r in zip(_as_list(rows["extra_fields"]), real) if r]
        metrics.update(reward_failure_metrics(reasons, _max_failure_fraction(self.config.algorithm)))
        with _active(_AdvantageCall(task_ids=labels if ours else None, real_rows=real)) as call:
            result = original(self, batch, metrics)
        metrics.update(call.metrics)
        metrics.update(_task_metrics_for(scores, uids, labels, real))
        return result

    _compute_advantage.golongrl_wrapped = original  # type: ignore[attr-defined]
    return _compute_advantage


def _is_wrapped(fn: Any) -> bool:
    return hasattr(fn, "golongrl_wrapped")


def _source(obj: Any) -> str:
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        return ""


def _params(fn: Any) -> list[str]:
    return list(inspect.signature(getattr(fn, "golongrl_wrapped", fn)).parameters)


def verl_seam_problems() -> list[str]:
    """What differs, in the installed verl, from the verl 0.9.1 internals the plugin relies on.

    Checked by behaviour where verl's code can run without a cluster, by signature or by the
    lines of verl's source the plugin depends on otherwise:

    * ``ray_trainer.compute_advantage(data, adv_estimator, ...)`` and
      ``PPOTrainer._compute_advantage(self, batch, metrics)`` (the two wrapped entry points);
    * V1 row selection: a non-GRPO estimator gets every row of the batch in ``batch.keys``
      order (``compute_advantage_for_multi_trajectories``, run here with a recording stand-in);
    * TransferQueue rows: keys ``{uid}_{session}_{output}`` holding the dataset columns
      (``field.update(kwargs)``) and ``extra_fields.reward_extra_info``; ``KVBatchMeta.tags``;
    * padding: ``_balance_batch`` pads with ``upsample_batch_to_divisible_size``, whose rows carry
      ``is_padding=True`` in their tag and zero rewards (its template builder is run here).
    """
    problems: list[str] = []
    expected = ["data", "adv_estimator", "gamma", "lam", "num_repeat", "norm_adv_by_std_in_grpo", "config"]
    if _params(ray_trainer.compute_advantage) != expected:
        problems.append(f"ray_trainer.compute_advantage takes {_params(ray_trainer.compute_advantage)}, expected {expected}")
    try:
        import transfer_queue
        from transfer_queue.metadata import KVBatchMeta

        from verl.trainer.ppo import padding_utils
        from verl.trainer.ppo.v1 import agent_loop_tq, trainer_base
        from verl.trainer.ppo.v1 import utils as v1_utils
    except ImportError as err:
        return problems + [f"verl's V1 trainer cannot be imported ({err}); install TransferQueue==0.1.11"]
    del transfer_queue
    method = getattr(trainer_base.PPOTrainer, "_compute_advantage", None)
    if method is None or _params(method) != ["self", "batch", "metrics"]:
        problems.append("PPOTrainer._compute_advantage(self, batch, metrics) is missing or changed")
    else:
        body = _source(getattr(method, "golongrl_wrapped", method))
        if "compute_advantage_for_multi_trajectories(" not in body or "batch_keys=batch.keys" not in body:
            problems.append("PPOTrainer._compute_advantage no longer computes advantages over batch.keys")
    problems += _v1_row_selection_problems(v1_utils)
    if {f.name for f in dataclasses.fields(KVBatchMeta)} < {"keys", "tags", "partition_id"}:
        problems.append("TransferQueue's KVBatchMeta lost keys/tags/partition_id")
    loop = _source(agent_loop_tq)
    for needle, what in (('f"{uid}_{session_id}_{i}"', "TransferQueue key format {uid}_{session}_{output}"),
                         ("field.update(kwargs)", "dataset columns (data_source, extra_info) stored per rollout"),
                         ('["reward_extra_info"]', "reward_extra_info inside extra_fields")):
        if needle not in loop:
            problems.append(f"verl's agent loop changed: {what} not found")
    if "upsample_batch_to_divisible_size(" not in _source(trainer_base.PPOTrainer._balance_batch):
        problems.append("PPOTrainer._balance_batch no longer pads with upsample_batch_to_divisible_size")
    problems += _padding_problems(padding_utils)
    return problems


def _v1_row_selection_problems(v1_utils: Any) -> list[str]:
    seen: dict[str, Any] = {}

    def record(data: Any, adv_estimator: Any, **kwargs: Any) -> Any:
        seen["uids"] = list(data.non_tensor_batch["uid"])
        return data

    from verl.protocol import DataProto

    data = DataProto.from_dict(
        tensors={"token_level_rewards": torch.zeros(3, 2), "response_mask": torch.ones(3, 2)},
        non_tensors={"uid": np.array(["b", "a", "b"], dtype=object)},
    )
    original = v1_utils.compute_advantage
    v1_utils.compute_advantage = record
    try:
        v1_utils.compute_advantage_for_multi_trajectories(
            data, batch_keys=["b_0_0", "a_0_0", "b_1_0"], adv_estimator=next(iter(VERL_ESTIMATORS)), config=None
        )
    except Exception as err:  # noqa: BLE001 - any failure is a changed seam
        return [f"compute_advantage_for_multi_trajectories failed on a plain batch ({type(err).__name__}: {err})"]
    finally:
        v1_utils.compute_advantage = original
    if seen.get("uids") != ["b", "a", "b"]:
        return ["compute_advantage_for_multi_trajectories no longer hands a non-GRPO estimator every row in order"]
    return []


def _padding_problems(padding_utils: Any) -> list[str]:
    if _params(padding_utils.upsample_batch_to_divisible_size) != ["batch", "batch_multiple", "eos_token_id"]:
        return ["padding_utils.upsample_batch_to_divisible_size(batch, batch_multiple, eos_token_id) changed"]
    if '_{local_idx}_0"' not in _source(padding_utils.upsample_batch_to_divisible_size):
        return ["padding rows no longer use keys {pad_uid}_{i}_0"]
    source = {"uid": "u", "response_mask": torch.ones(2, dtype=torch.int64), "rm_scores": torch.ones(2),
              "prompts": torch.ones(3, dtype=torch.int64), "responses": torch.ones(2, dtype=torch.int64)}
    try:
        sample, tag = padding_utils.construct_minimal_padding_template(source, {"seq_len": 5}, 0)
    except Exception as err:  # noqa: BLE001
        return [f"padding_utils.construct_minimal_padding_template failed ({type(err).__name__}: {err})"]
    if tag.get("is_padding") is not True:
        return ["padding rows are no longer tagged is_padding=True"]
    if bool(sample["rm_scores"].any()) or bool(sample["response_mask"].any()):
        return ["padding rows no longer have zero rm_scores and response_mask"]
    return []


def check_verl_seams() -> None:
    """Raise RuntimeError listing every :func:`verl_seam_problems` entry (none on verl 0.9.1)."""
    problems = verl_seam_problems()
    if problems:
        raise RuntimeError(
            f"golongrl's verl plugin was written for verl {SUPPORTED_VERL_VERSION}; verl {verl.__version__} differs:\n- "
            + "\n- ".join(problems) + f"\ninstall verl=={SUPPORTED_VERL_VERSION}"
        )


def install(*, announce: bool = False) -> list[str]:
    """Register golongrl's estimators in verl and install the label/metrics wrappers. Idempotent.

    Must run in the process that runs verl's trainer (the Ray TaskRunner actor). Returns the
    registered verl estimator names. ``announce`` prints :data:`INSTALLED_MESSAGE` with the pid
    so the log shows where the plugin is active.
    """
    if verl.__version__ != SUPPORTED_VERL_VERSION:
        logger.warning(
            "golongrl's verl plugin is tested with verl %s, found %s", SUPPORTED_VERL_VERSION, verl.__version__
        )
    check_verl_seams()
    for verl_name, fn in _VERL_ESTIMATOR_FNS.items():
        core_algos.register_adv_est(verl_name)(fn)
    if not _is_wrapped(ray_trainer.compute_advantage):
        ray_trainer.compute_advantage = _wrap_legacy_compute_advantage(ray_trainer.compute_advantage)
    if not _is_wrapped(ray_trainer.compute_data_metrics):
        ray_trainer.compute_data_metrics = _wrap_legacy_compute_data_metrics(ray_trainer.compute_data_metrics)
    from verl.trainer.ppo.v1 import trainer_base

    if not _is_wrapped(trainer_base.PPOTrainer._compute_advantage):
        trainer_base.PPOTrainer._compute_advantage = _wrap_v1_compute_advantage(trainer_base.PPOTrainer._compute_advantage)
    names = sorted(_VERL_ESTIMATOR_FNS)
    if announce:
        print(f"{INSTALLED_MESSAGE} in pid={os.getpid()}: estimators {', '.join(names)}", flush=True)
    return names


def is_installed() -> bool:
    """Whether :func:`install` has run in this process."""
    from verl.trainer.ppo.v1 import trainer_base

    return (
        _is_wrapped(ray_trainer.compute_advantage)
        and _is_wrapped(ray_trainer.compute_data_metrics)
        and _is_wrapped(trainer_base.PPOTrainer._compute_advantage)
        and all(core_algos.ADV_ESTIMATOR_REGISTRY.get(n) is fn for n, fn in _VERL_ESTIMATOR_FNS.items())
    )
