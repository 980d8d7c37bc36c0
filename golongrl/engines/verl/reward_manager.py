"""A verl reward manager that scores with golongrl's batch scorer (process pool, time cap).

Load it through verl's ``importlib`` manager source::

    reward.reward_manager.source=importlib
    reward.reward_manager.name=GoLongRLRewardManager
    reward.reward_manager.module.path=pkg://golongrl.engines.verl.reward_manager
    +reward.custom_reward_function.reward_kwargs.mode=faithful      # options below

verl's reward loop calls a manager's ``run_single`` once per rollout, concurrently (an asyncio
gather per worker). A pathological answer can make one metric (LCS, NDCG over thousands of
lines) run for seconds; scored in the worker's own process it stalls every rollout behind it.
This manager gathers the concurrent calls into micro-batches and hands each to
:func:`golongrl.rewards.score_batch`, which runs them in worker processes with a per-sample time
cap: a timed-out sample scores 0 with reason ``timeout`` instead of blocking the step.

Options (``reward.custom_reward_function.reward_kwargs``, shared with the per-sample entry
``pkg://golongrl.rewards`` / ``compute_score`` so switching between the two is one line): ``mode`` (``hardened``/``faithful``), ``timeout_s``
(per sample, default 10), ``workers`` (process-pool size, default: the reward library's
choice), ``max_batch`` (default 256), ``max_wait_s`` (how long a micro-batch waits to fill,
default 0.05) and any :class:`golongrl.rewards.ScoreOptions` field (``require_think``...). verl starts ``reward.num_workers`` reward workers, each with its own pool: keep
``num_workers * workers`` within the node's spare cores.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from omegaconf import DictConfig, OmegaConf

from golongrl import rewards
from verl import DataProto
from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase

#: reward_extra_info keys: the task type and why a sample scored as it did ("" = normal score).
#: Prefixed because verl's legacy trainer merges these keys into the batch next to the dataset's
#: own columns.
TASK_KEY = "golongrl_task"
REASON_KEY = "golongrl_reason"


@dataclass(frozen=True)
class RewardOptions:
    """Validated ``reward_kwargs`` for :class:`GoLongRLRewardManager`.

    ``score_options`` holds :class:`golongrl.rewards.ScoreOptions` fields (``require_think``,
    ``max_response_chars``, ...) given in the same ``reward_kwargs``.
    """

    mode: str = "hardened"
    timeout_s: float = 10.0
    workers: int | None = None
    max_batch: int = 256
    max_wait_s: float = 0.05
    score_options: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: Any) -> RewardOptions:
        """Read ``config.reward.custom_reward_function.reward_kwargs``; unknown keys raise ValueError."""
        section = config.reward.get("custom_reward_function") or {}
        raw = section.get("reward_kwargs", None) or {}
        if isinstance(raw, DictConfig):
            raw = OmegaConf.to_container(raw, resolve=True)
        own = set(cls.__dataclass_fields__) - {"score_options"}
        scorer = set(rewards.ScoreOptions.__dataclass_fields__)
        unknown = sorted(set(raw) - own - scorer)
        if unknown:
            raise ValueError(
                f"reward.custom_reward_function.reward_kwargs: unknown option(s) {unknown} for "
                f"GoLongRLRewardManager; known: {sorted(own | scorer)}"
            )
        options = cls(
            **{k: v for k, v in raw.items() if k in own},
            score_options={k: v for k, v in raw.items() if k in scorer},
        )
        if options.mode not in rewards.MODES:
            raise ValueError(f"reward_kwargs.mode must be one of {sorted(rewards.MODES)}, got {options.mode!r}")
        if options.timeout_s <= 0 or options.max_batch < 1 or options.max_wait_s < 0:
            raise ValueError(f"reward_kwargs out of range: {options}")
        return options


class MicroBatcher:
    """Gathers concurrent ``submit`` calls into one blocking batch call run in a thread.

    Written here because verl's reward loop hands out one coroutine per sample and no library
    batches plain asyncio calls (Ray Serve's ``@serve.batch`` needs a Serve deployment). A batch
    is flushed when ``max_batch`` requests are waiting or ``max_wait_s`` after its first request.
    An exception from the batch call is raised in every caller of that batch.
    """

    def __init__(self, score: Callable[[list[Any]], Sequence[Any]], max_batch: int, max_wait_s: float) -> None:
        self._score = score
        self._max_batch = max_batch
        self._max_wait_s = max_wait_s
        self._pending: list[tuple[Any, asyncio.Future[Any]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, request: Any) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((request, future))
        if len(self._pending) >= self._max_batch:
            self._flush(loop)
        elif self._timer is None:
            self._timer = loop.call_later(self._max_wait_s, self._flush, loop)
        return await future

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending = self._pending, []
        if batch:
            task = loop.create_task(self._run(loop, batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, loop: asyncio.AbstractEventLoop, batch: list[tuple[Any, asyncio.Future[Any]]]) -> None:
        try:
            results = await loop.run_in_executor(None, self._score, [request for request, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"batch scorer returned {len(results)} results for {len(batch)} requests")
        except Exception as err:  # noqa: BLE001 - handed to every waiting caller, which re-raises it
            for _, future in batch:
                if not future.done():
                    future.set_exception(err)
            return
        for (_, future), result in zip(batch, results):
            if not future.done():
                future.set_result(result)


def score_isolating_bad_rows(
    score: Callable[[list[Any]], list[rewards.ScoreResult]], requests: list[Any]
) -> list[rewards.ScoreResult]:
    """``score(requests)``; if it refuses the batch over a malformed row (a ``ValueError`` such as
    GroundTruthError), each request is scored alone and the bad ones score 0 with reason
    ``gold``, so one bad row costs its own rollout (counted in ``reward_failures/gold``), not the
    whole micro-batch's sessions."""
    try:
        return list(score(requests))
    except ValueError:
        pass
    results = []
    for request in requests:
        try:
            results.extend(score([request]))
        except ValueError:
            results.append(rewards.ScoreResult(0.0, UNKNOWN_TASK, "gold"))
    return results


#: Task reported for a row whose labels could not be read.
UNKNOWN_TASK = "unknown"


class GoLongRLRewardManager(RewardManagerBase):
    """verl reward-loop manager backed by :func:`golongrl.rewards.score_batch`.

    ``run_single`` returns verl's ``{"reward_score": float, "reward_extra_info": {...}}`` with
    ``score``, ``golongrl_task`` and ``golongrl_reason`` (``""``, ``format``, ``parse``,
    ``timeout``, ``error``, ``gold``) per rollout; the plugin counts the failures in the step
    metrics (``reward_failures/*``).
    """

    def __init__(
        self,
        config: DictConfig,
        tokenizer: Any,
        compute_score: Callable[..., Any] | None = None,
        reward_router_address: str | None = None,
        reward_model_tokenizer: Any = None,
    ) -> None:
        # compute_score (verl's default or custom per-sample function) is unused: this manager
        # scores through golongrl's batch scorer. The routing arguments serve reward models.
        super().__init__(config, tokenizer, compute_score)
        self.options = RewardOptions.from_config(config)
        score = functools.partial(
            rewards.score_batch,
            mode=self.options.mode,
            timeout_s=self.options.timeout_s,
            workers=self.options.workers,
            **self.options.score_options,
        )
        self.batcher = MicroBatcher(
            functools.partial(score_isolating_bad_rows, score),
            max_batch=self.options.max_batch,
            max_wait_s=self.options.max_wait_s,
        )

    async def run_single(self, data: DataProto) -> dict[str, Any]:
        item = data[len(data) - 1]  # multi-output agent loops are scored on their final output, as verl's naive manager does
        response_ids = item.batch["responses"]
        valid_length = int(item.batch["attention_mask"][-response_ids.shape[-1] :].sum())
        loop = asyncio.get_running_loop()
        solution = await loop.run_in_executor(
            None, lambda: self.tokenizer.decode(response_ids[:valid_length], skip_special_tokens=True)
        )
        extra_info: Mapping[str, Any] = item.non_tensor_batch.get("extra_info", None) or {}
        request = rewards.ScoreRequest(
            data_source=item.non_tensor_batch["data_source"],
            solution_str=solution,
            ground_truth=item.non_tensor_batch["reward_model"]["ground_truth"],
            extra_info=dict(extra_info),
        )
        result = await self.batcher.submit(request)
        info = {"score": float(result.score), TASK_KEY: result.task, REASON_KEY: result.reason or ""}
        return {"reward_score": float(result.score), "reward_extra_info": info}
