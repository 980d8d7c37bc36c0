"""``compute_score`` and ``score_batch``: scoring that never raises on a row or a response and
never runs past its per-sample time cap, on any thread and at any batch size.

Each sample takes one of three paths:

* a row whose labels or gold cannot be scored scores 0 with reason ``gold`` (one warning per
  kind of defect; ``golongrl data validate`` names the rows);
* a sample predicted to cost over a quarter of the cap goes to a killable worker process
  (:mod:`golongrl.rewards.guard`);
* everything else (nearly all samples: pure-Python metrics, linear in the text) is scored in
  the calling thread, with no inter-process traffic at all.  Math there (sympy can compute for
  minutes on a few characters) is screened where sympy would start: what is known to explode
  scores ``timeout`` at once; on the main thread the rest runs under a SIGALRM timer, except
  numbers too big for a timer to interrupt; those, and on any other thread (where no timer
  exists) all math that reaches sympy, move to a worker (plain numbers in hardened mode never
  reach it).

A large batch shares its cheap samples with the workers only once the calling thread has been
busy for :data:`SHARE_AFTER_S` (and starts workers for that only after
:data:`START_TO_SHARE_AFTER_S`; :func:`warm_pool` starts them ahead): batches that finish
sooner never pay for round trips, and long ones get every worker's help, largest samples first.
"""

from __future__ import annotations

import collections
import functools
import logging
import multiprocessing.connection
import os
import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from golongrl.rewards import guard
from golongrl.rewards.scoring import (
    MODES,
    REASON_ERROR,
    REASON_FORMAT,
    REASON_GOLD,
    REASON_PARSE,
    REASON_TIMEOUT,
    Prepared,
    ScoreOptions,
    make_options,
    prepare,
    score_prepared,
)
from golongrl.tasks import TASK_TYPES, resolve_task

_log = logging.getLogger("golongrl.rewards")

#: Default per-sample wall-clock cap of :func:`compute_score` and :func:`score_batch`.
DEFAULT_TIMEOUT_S = 10.0
#: Worst scoring cost per response character measured across tasks and modes at 4 MB
#: (Chinese summaries through jieba: 1.5 us; every other task under 0.1 us), with a margin
#: for slower CPUs.  Only used to keep samples that could approach the cap off this thread.
COST_PER_CHAR_S = {"summarization": 4e-6}
DEFAULT_COST_PER_CHAR_S = 5e-7
#: Predicted cost of one math sample (math_verify takes 1-5 ms on ordinary answers): sizes the
#: chunks of math samples sent to one worker.
MATH_COST_S = 0.01
#: A sample predicted to need more than this fraction of the cap runs in a worker.
IN_PROCESS_FRACTION = 0.25
#: How long the calling thread scores cheap samples alone before sharing them with workers.
SHARE_AFTER_S = 0.2
#: Workers that are not running yet are started to share cheap samples only once the calling
#: thread has been busy this long: a start costs 1-2 s of a CPU, more than it saves a shorter
#: batch (math and long samples that need a worker start one at once).
START_TO_SHARE_AFTER_S = 2.0
#: Samples travel to a worker in chunks of at most this many (a few per worker), or this many
#: characters; a chunk over the cap is retried one sample per call.
CHUNK_MAX_ITEMS = 64
CHUNK_MAX_CHARS = 1 << 20
_MATH_TASK = "numerical_reasoning"
_ESCALATE = guard.escalate_to_worker()  # holds no state of its own: one serves every sample


@dataclass(frozen=True)
class ScoreRequest:
    """One response to score, with its dataset row's labels.

    ``task``: the canonical task name when the caller already resolved the row (the trainer's
    prompts, whose labels ``golongrl data validate`` accepted, possibly through ``ability``);
    ``None`` resolves it from ``data_source`` and ``extra_info``.  A name that is no task
    scores 0 with reason ``gold``.
    """

    data_source: str
    solution_str: str
    ground_truth: Any
    extra_info: Mapping[str, Any] | None = None
    task: str | None = None


@dataclass(frozen=True)
class ScoreResult:
    """``score`` in [0, 1], the ``task`` it was scored as (``"unknown"`` when the row's labels
    name none) and ``reason``, ``None`` for a normal score, else why it is 0:

    * ``format``: the response failed the think/length gate (or is not a string);
    * ``parse``: no answer could be extracted (no letter, no ``\\boxed{}``, invalid JSON...);
    * ``timeout``: scoring ran over the per-sample cap and was killed, or the math
      pre-screen rejected the answer as certain to (a huge power tower, factorial, nesting);
    * ``error``: the scorer failed (in faithful mode also where the reference itself raises);
    * ``gold``: the row cannot be scored: malformed or missing ground truth, or labels
      (``data_source``, ``extra_info.reward_mode``) that name no task.
    """

    score: float
    task: str
    reason: str | None = None


# The results nearly every sample gets (full marks, or zero with a reason), built once:
# ScoreResult is frozen, so one instance may stand in many lists.  Looked up by value (a -0.0
# score finds the 0.0 one); any other score is built per sample.
_COMMON_RESULTS: dict[tuple[str, str | None, float], ScoreResult] = {
    (task, reason, score): ScoreResult(score, task, reason)
    for task in TASK_TYPES
    for score, reason in [
        (1.0, None), (0.0, None), *((0.0, r) for r in (REASON_FORMAT, REASON_PARSE, REASON_TIMEOUT, REASON_ERROR))
    ]
}


def _result(task: str, score: Any, reason: str | None) -> ScoreResult:
    if type(score) is float or type(score) is int:  # hashable for sure: a scorer's own type may not be
        common = _COMMON_RESULTS.get((task, reason, score))
        if common is not None:
            return common
    return ScoreResult(float(score), task, reason)


_math_warm = False


def _warm_up_math() -> None:
    """math_verify's parser loads lazily (about a second): done once per process, before the
    first math sample's deadline starts."""
    global _math_warm
    if not _math_warm:
        math_row = prepare("math_longcot_math_verify", {"golden_label": "1/2"}, {}, "hardened")
        score_prepared(math_row, "\\boxed{0.5}", "hardened", ScoreOptions())
        _math_warm = True


def _warm_up() -> None:
    """Run once in each new worker: math_verify's parser and jieba's dictionary load lazily
    and would otherwise be charged to the first sample's deadline."""
    _warm_up_math()
    chinese_summary = prepare(
        "longbench_pro",
        {"doc_ids": ["我们今天去公园散步。"], "summary": "Chinese"},
        {"reward_mode": "T4.1 Global-Coverage Constrained Summary"},
        "hardened",
    )
    score_prepared(chinese_summary, "[Answer] 我们今天去公园。", "hardened", ScoreOptions())


_POOL_PRELOAD = ("golongrl.rewards.batch",)


def _pool() -> guard.WorkerPool:
    return guard.default_pool(_POOL_PRELOAD, _warm_up)


def warm_pool(workers: int | None = None) -> None:
    """Start ``workers`` scoring workers (``None``: one per CPU) and wait until they are ready,
    so the first batch that needs or shares work finds them warm instead of waiting 1-2 s (a
    batch starts workers to share cheap samples only after :data:`START_TO_SHARE_AFTER_S`).

    Raises:
        guard.WorkerUnavailable: no worker can start here.
    """
    _pool().warm(max(1, _cpu_count() if workers is None else workers))


@functools.cache
def _cpu_count() -> int:
    return os.cpu_count() or 1  # reads sysfs on Linux: 10-20 us, too much for every call


def close_pool() -> None:
    """Stop the idle scoring workers (new ones start on the next call that needs one)."""
    guard.close_default_pool()


def _score_many(
    chunk: list[tuple[Prepared, Any]], mode: str, opts: ScoreOptions
) -> list[tuple[float, str | None]]:
    return [score_prepared(p, s, mode, opts) for p, s in chunk]


# ---------------------------------------------------------------------------------------------
# Rows
# ---------------------------------------------------------------------------------------------

_warned_kinds: set[str] = set()
_warned_lock = threading.Lock()


class _Row(NamedTuple):
    """A mapping item's fields (a ScoreRequest's, at a fifth of a frozen dataclass's cost)."""

    data_source: Any
    solution_str: Any
    ground_truth: Any
    extra_info: Any
    task: Any


def _as_request(item: ScoreRequest | Mapping[str, Any], index: int) -> ScoreRequest | _Row:
    if isinstance(item, ScoreRequest):
        return item
    if type(item) is dict or isinstance(item, Mapping):  # dict first: the ABC check costs more
        # A missing field is a defect of the row: it scores 0 with reason ``gold``.
        return _Row(item.get("data_source"), item.get("solution_str"), item.get("ground_truth"),
                    item.get("extra_info"), item.get("task"))
    raise TypeError(f"item {index}: expected ScoreRequest or mapping, got {type(item).__name__}")


def _task_name(req: ScoreRequest | _Row) -> str:
    if isinstance(req.task, str) and req.task in TASK_TYPES:
        return req.task
    try:
        return resolve_task(req.data_source, req.extra_info)
    except Exception:  # noqa: BLE001 - labels that name no task, of any type
        return "unknown"


def _warn_bad_row(exc: Exception, task: str, where: str) -> None:
    kind = f"{task}: {type(exc).__name__}: {re.sub(r'[0-9]+', 'N', str(exc))[:200]}"
    with _warned_lock:
        if kind in _warned_kinds:
            return
        _warned_kinds.add(kind)
    _log.warning(
        "golongrl.rewards: %s scores 0 (reason 'gold'): %s. Rows with this defect are not "
        "reported again; `golongrl data validate` lists them.", where, exc,
    )


def _prepare_or_reject(req: ScoreRequest | _Row, mode: str, index: int | None) -> Prepared | ScoreResult:
    try:
        if not isinstance(req.data_source, str):
            raise ValueError(
                f"data_source must be a string, got {type(req.data_source).__name__} "
                f"{req.data_source!r:.40}"
            )
        if req.task is not None and req.task not in TASK_TYPES:
            raise ValueError(f"task {req.task!r:.60} is not one of the task types")
        return prepare(req.data_source, req.ground_truth, req.extra_info, mode, task=req.task)
    except Exception as exc:  # noqa: BLE001 - a bad row must not stop a training step
        task = _task_name(req)
        _warn_bad_row(exc, task, "a row" if index is None else f"item {index}")
        return ScoreResult(0.0, task, REASON_GOLD)


# ---------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------


def _predicted_cost_s(p: Prepared, solution: Any) -> float:
    if p.task == _MATH_TASK:
        return MATH_COST_S
    size = len(solution) if isinstance(solution, str) else 0
    return size * COST_PER_CHAR_S.get(p.task, DEFAULT_COST_PER_CHAR_S)


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    *,
    mode: str = "hardened",
    timeout_s: float = DEFAULT_TIMEOUT_S,
    **kwargs: Any,
) -> float:
    """Score one response in [0, 1]; the signature of verl's ``custom_reward_function``.

    Never raises on a row or a response and returns within about ``timeout_s`` from any
    thread (see :func:`score_batch`, which it calls with one item).

    Args:
        data_source, ground_truth, extra_info: a GoLongRL / golongrl dataset row's fields.
        solution_str: the decoded response (untrusted; any string).
        mode: ``"hardened"`` (default, for training) or ``"faithful"`` (reproduces GoLongRL).
        timeout_s: wall-clock cap for this call's scoring.
        **kwargs: :class:`ScoreOptions` fields; other names (verl passes its own) are ignored.

    Raises:
        ValueError: unknown ``mode`` (a configuration error, not a data one).
    """
    request = ScoreRequest(data_source, solution_str, ground_truth, extra_info)
    return score_batch([request], mode=mode, timeout_s=timeout_s, **kwargs)[0].score


def score_batch(
    items: Iterable[ScoreRequest | Mapping[str, Any]],
    *,
    mode: str = "hardened",
    timeout_s: float = DEFAULT_TIMEOUT_S,
    workers: int | None = None,
    progress: bool = False,
    **options: Any,
) -> list[ScoreResult]:
    """Score many responses; results come back in input order.

    Args:
        items: :class:`ScoreRequest` objects or mappings with ``data_source``,
            ``solution_str``, ``ground_truth`` and optional ``extra_info``.
        mode: ``"hardened"`` or ``"faithful"``.
        timeout_s: per-sample wall-clock cap; a sample over it scores 0 with reason
            ``timeout`` and its worker process is replaced.  Worker startup (1-2 s, once) and
            waiting for a busy worker are not charged to it.
        workers: most worker processes this call uses; ``None`` = one per CPU, ``0`` = score
            everything in this process (math capped by the pre-screen and, on the main
            thread, the SIGALRM timer; not at all elsewhere).
        progress: show a rich progress bar.
        **options: :class:`ScoreOptions` fields.

    Raises:
        ValueError: unknown ``mode``.  TypeError: an item that is neither a request nor a
        mapping.  Never on a row's content or on model output.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    opts = make_options(**options)
    solutions, results, prepared = _prepare_all(items if isinstance(items, list) else list(items), mode)
    if prepared:
        n_workers = _cpu_count() if workers is None else max(0, workers)
        run = _BatchRun(solutions, prepared, results, mode, opts, timeout_s, n_workers)
        if progress:
            with _progress(len(results)) as advance:
                advance(len(results) - len(prepared))
                run.score(advance)
        else:
            run.score(_no_progress)
    return [r if r is not None else ScoreResult(0.0, "unknown", REASON_ERROR) for r in results]


def _no_progress(n: int) -> None:
    pass


def _prepare_all(
    items: list[ScoreRequest | Mapping[str, Any]], mode: str
) -> tuple[list[Any], list[ScoreResult | None], dict[int, Prepared]]:
    """Each item's response, its result where the row cannot be scored (else ``None``), and
    the :class:`Prepared` of the others by index, in one pass.

    A GRPO group's responses share their prompt's row (verl and the trainer pass the same
    ground-truth object to each), so a row is parsed once per ground truth (an object by
    identity, a string by value) and labels: the parse costs as much as scoring a short
    answer.  The cache lives for this call only, while every ground truth it keys on is held
    by ``items`` (no id is reused) and no row changes; the next call parses afresh.
    """
    solutions: list[Any] = []
    results: list[ScoreResult | None] = [None] * len(items)
    prepared: dict[int, Prepared] = {}
    several = len(items) > 1
    parsed: dict[Any, tuple[ScoreRequest | _Row, Prepared | ScoreResult]] = {}
    for i, item in enumerate(items):
        req = _as_request(item, i)
        solutions.append(req.solution_str)
        gt = req.ground_truth
        key = gt if type(gt) is str else id(gt)
        hit = parsed.get(key)
        if hit is not None and _same_labels(hit[0], req):
            outcome = hit[1]
        else:
            outcome = _prepare_or_reject(req, mode, i if several else None)
            parsed[key] = (req, outcome)
        if type(outcome) is ScoreResult:
            results[i] = outcome
        else:
            prepared[i] = outcome  # type: ignore[assignment]
    return solutions, results, prepared


def _same_labels(a: ScoreRequest | _Row, b: ScoreRequest | _Row) -> bool:
    """Whether ``b``'s row parses as ``a``'s, given the same ground truth: the other fields
    ``prepare`` reads are equal (a comparison that cannot decide, as on numpy arrays, says no)."""
    try:
        return bool(
            a.data_source == b.data_source
            and a.task == b.task
            and (a.extra_info is b.extra_info or a.extra_info == b.extra_info)
        )
    except Exception:  # noqa: BLE001 - any odd label type: parse it again
        return False


class _BatchRun:
    """One batch, scored by the calling thread with workers alongside (no extra threads).

    ``guarded`` samples must run in a worker; ``cheap`` ones sit in a deque ordered by
    predicted cost: this thread scores from the cheap end and, between samples, collects the
    workers' replies, kills those past their deadline and hands out more work; after
    :data:`SHARE_AFTER_S` idle workers also take chunks from the costly end.
    """

    def __init__(
        self,
        solutions: list[Any],
        prepared: dict[int, Prepared],
        results: list[ScoreResult | None],
        mode: str,
        opts: ScoreOptions,
        timeout_s: float,
        n_workers: int,
    ) -> None:
        self.solutions = solutions
        self.prepared, self.results = prepared, results
        self.mode, self.opts, self.timeout_s, self.n_workers = mode, opts, timeout_s, n_workers
        self.guarded: collections.deque[int] = collections.deque()
        self.alone: collections.deque[int] = collections.deque()  # retried one per call
        self.in_process = n_workers <= 0  # also set when no worker can start here
        self.costs = costs = {}
        cheap: list[int] = []
        has_math = False
        guard_above = float("inf") if self.in_process else IN_PROCESS_FRACTION * timeout_s
        for i, p in prepared.items():  # one pass: a verl micro-batch pays this per call
            has_math = has_math or p.task == _MATH_TASK
            costs[i] = cost = _predicted_cost_s(p, solutions[i])
            if cost > guard_above:
                self.guarded.append(i)
            else:
                cheap.append(i)
        # Math is scored in this thread: under the SIGALRM timer where there is one (the main
        # thread), moved to a worker the moment it needs sympy where none can cap it
        # (math_verify_score decides, raising guard.NeedsWorker).
        self.timed = has_math and guard.alarm_available()
        if self.timed:
            _warm_up_math()
        # Off the main thread math goes first, so what needs a worker is collected at once.
        math_first = not self.timed and not self.in_process
        if len(cheap) > 1:
            cheap.sort(key=costs.__getitem__)
        if math_first:
            cheap.sort(key=lambda i: prepared[i].task != _MATH_TASK)  # stable: costs order kept
        self.cheap = collections.deque(cheap)
        self.busy: dict[guard.Worker, tuple[list[int], float]] = {}  # worker -> (chunk, deadline)
        self.starting: dict[guard.Worker, float] = {}  # worker -> when we took it

    def _set(self, i: int, score: float, reason: str | None) -> None:
        self.results[i] = _result(self.prepared[i].task, score, reason)

    def _score_here(self, chunk: list[int]) -> None:
        done = 0
        for i in chunk:
            p, solution = self.prepared[i], self.solutions[i]
            if p.task != _MATH_TASK:
                self._set(i, *score_prepared(p, solution, self.mode, self.opts))
            else:
                self._score_math_here(i)
                continue
            done += 1
        self.advance(done)

    def _score_math_here(self, i: int) -> None:
        try:
            score, reason = self._score_math(self.prepared[i], self.solutions[i])
        except guard.NeedsWorker:
            self.guarded.append(i)
            return
        self.results[i] = _result(_MATH_TASK, score, reason)
        self.advance(1)

    def _score_math(self, p: Prepared, solution: Any) -> tuple[float, str | None]:
        if not self.timed:
            return self._math_call(p, solution)
        try:  # lazy: the timer is armed only once sympy runs (math_verify_score's limits)
            return guard.call_with_alarm(self.timeout_s, self._math_call, p, solution, lazy=True)
        except guard.DeadlineExceeded:
            return 0.0, REASON_TIMEOUT

    def _math_call(self, p: Prepared, solution: Any) -> tuple[float, str | None]:
        if self.in_process:  # no worker: the pre-screen (and the timer, if any) caps it
            return score_prepared(p, solution, self.mode, self.opts)
        with _ESCALATE:
            return score_prepared(p, solution, self.mode, self.opts)

    def score(self, advance: Any) -> None:
        self.advance = advance
        now = time.monotonic()
        self.share_at, self.start_to_share_at = now + SHARE_AFTER_S, now + START_TO_SHARE_AFTER_S
        self.look_for_idle_at = now  # when to ask the pool for an idle worker to share with
        try:
            if not self.timed:  # collect the math that needs a worker, to send it in chunks
                while self.cheap and self.prepared[self.cheap[0]].task == _MATH_TASK:
                    self._score_math_here(self.cheap.popleft())
            if self.guarded:  # else no worker is wanted before share_at
                self._hire()
            cheap, prepared, solutions, results = self.cheap, self.prepared, self.solutions, self.results
            mode, opts = self.mode, self.opts
            while cheap:
                i = cheap.popleft()
                p = prepared[i]
                if p.task == _MATH_TASK:
                    self._score_math_here(i)
                else:  # the common case, inlined: a few microseconds per sample matter here
                    score, reason = score_prepared(p, solutions[i], mode, opts)
                    results[i] = _result(p.task, score, reason)
                    advance(1)
                if self.busy or self.starting or self.guarded or self.alone or time.monotonic() >= self.share_at:
                    self._service(wait=False)
            while self.guarded or self.alone or self.busy:  # a worker still starting is not waited for
                self._service(wait=True)
        finally:
            for worker in list(self.busy):
                worker.kill()
                self._let_go(worker)
            for worker in list(self.starting):
                self._let_go(worker)  # still warming up: the pool keeps it

    def _wants_workers(self) -> bool:
        if self.in_process:
            return False
        sharing = time.monotonic() >= self.share_at and len(self.cheap) > 1
        return bool(self.guarded or self.alone) or sharing

    def _hire(self) -> None:
        """Take workers from the pool while there is work for them (blocking only when
        guarded samples wait and no worker is ours)."""
        while self._wants_workers() and len(self.busy) + len(self.starting) < self.n_workers:
            alone = not self.busy and not self.starting
            needed = bool(self.guarded or self.alone)
            now = time.monotonic()
            start = needed or now >= self.start_to_share_at
            if not start and now < self.look_for_idle_at:
                break
            try:
                worker = _pool().acquire(self.n_workers, block=alone and needed, start=start)
            except guard.WorkerUnavailable:
                self._give_up_on_workers()
                return
            if worker is None:
                self.look_for_idle_at = now + 0.05
                break
            self.starting[worker] = time.monotonic()
        self._start_ready()

    def _give_up_on_workers(self) -> None:
        self.in_process = True
        pending = [*self.alone, *self.guarded]
        self.alone.clear()
        self.guarded.clear()
        self._score_here(pending)

    def _start_ready(self) -> None:
        """Feed the workers that became ready; a worker that died or hangs while starting
        means none can start here: score in-process from now on."""
        now = time.monotonic()
        for worker, since in list(self.starting.items()):
            if worker.is_ready():
                del self.starting[worker]
                self._feed(worker)
            elif worker.process.poll() is not None or now - since > guard.STARTUP_TIMEOUT_S:
                worker.kill()
                _pool().mark_unavailable(guard.WorkerUnavailable(
                    f"a scoring worker failed to start (exit code {worker.process.returncode})"
                ))
                self._let_go(worker)
                self._give_up_on_workers()

    def _let_go(self, worker: guard.Worker) -> None:
        self.busy.pop(worker, None)
        self.starting.pop(worker, None)
        _pool().release(worker)

    def _feed(self, worker: guard.Worker) -> None:
        """Give ``worker`` its next chunk, or hand it back when there is none."""
        while True:
            if self.alone:
                chunk = [self.alone.popleft()]
            elif self.guarded:
                chunk = self._take_chunk(self.guarded, self.guarded.popleft, 0)
            elif time.monotonic() >= self.share_at and len(self.cheap) > 1:
                chunk = self._take_chunk(self.cheap, self.cheap.pop, -1)
            else:
                _pool().release(worker)
                return
            pairs = [(self.prepared[i], self.solutions[i]) for i in chunk]
            try:
                worker.submit(_score_many, (pairs, self.mode, self.opts), self.timeout_s)
            except guard.WorkerFailed as exc:
                _log.debug("cannot score in a worker: %s", exc)
                self._score_failed(chunk)
                if not worker.alive:
                    _pool().release(worker)
                    return
                continue
            self.busy[worker] = (chunk, time.monotonic() + self.timeout_s)
            return

    def _score_failed(self, chunk: list[int]) -> None:
        for i in chunk:
            self._set(i, 0.0, REASON_ERROR)
        self.advance(len(chunk))

    def _service(self, *, wait: bool) -> None:
        """Collect replies, kill overdue workers, start ready ones, hire more."""
        conns = {w.conn: w for w in [*self.busy, *self.starting]}
        timeout = 0.0
        if wait and conns:
            now = time.monotonic()
            deadlines = [d for _, d in self.busy.values()]
            deadlines += [since + guard.STARTUP_TIMEOUT_S for since in self.starting.values()]
            timeout = max(0.0, min(deadlines) - now)
        for conn in multiprocessing.connection.wait(list(conns), timeout) if conns else ():
            worker = conns[conn]
            if worker in self.starting:
                continue  # ready, or died: _start_ready below tells which
            chunk, _ = self.busy.pop(worker)
            try:
                raw = worker.reply()
            except guard.WorkerFailed as exc:
                _log.debug("scoring in a worker failed: %s", exc)
                self._score_failed(chunk)
            else:
                for i, (score, reason) in zip(chunk, raw):
                    self._set(i, score, reason)
                self.advance(len(chunk))
            if worker.alive:
                self._feed(worker)
            else:
                _pool().release(worker)
        now = time.monotonic()
        for worker, (chunk, deadline) in list(self.busy.items()):
            if now < deadline:
                continue
            worker.kill()
            self._let_go(worker)
            if len(chunk) > 1:  # find the slow one: its neighbours keep their scores
                self.alone.extend(chunk)
            else:
                self._set(chunk[0], 0.0, REASON_TIMEOUT)
                self.advance(1)
        self._start_ready()
        self._hire()

    def _take_chunk(self, queue: collections.deque[int], take: Any, end: int) -> list[int]:
        """Samples from ``queue[end]`` onwards, as many as fit the chunk limits: a few per
        worker, and together predicted well under the cap (so a slow CPU is no timeout)."""
        most = max(1, min(CHUNK_MAX_ITEMS, -(-len(queue) // (2 * self.n_workers))))
        chunk: list[int] = []
        cost = chars = 0.0
        while queue:
            i = queue[end]
            size = len(self.solutions[i]) if isinstance(self.solutions[i], str) else 0
            if chunk and (
                len(chunk) >= most
                or chars + size > CHUNK_MAX_CHARS
                or cost + self.costs[i] > IN_PROCESS_FRACTION * self.timeout_s
            ):
                break
            chunk.append(take())
            cost += self.costs[i]
            chars += size
        return chunk


class _progress:
    """A rich progress bar; ``__enter__`` returns its ``advance``."""

    def __init__(self, total: int) -> None:
        self.total = total
        self._bar: Any = None

    def __enter__(self):  # type: ignore[no-untyped-def]
        from rich.progress import Progress

        self._bar = Progress(transient=True)
        self._bar.__enter__()
        task = self._bar.add_task("scoring", total=self.total)
        return lambda n: self._bar.advance(task, n)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
