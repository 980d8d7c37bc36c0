"""Batch scoring across a reusable process pool with a hard per-sample time cap.

A plain ``concurrent.futures`` pool cannot stop a worker stuck in C code (a sympy big-integer
power, a pathological regex), so the pool is pebble's ``ProcessPool``, which terminates and
replaces a worker whose task exceeds its timeout.  The pool is created once per process and
reused: the trainer calls :func:`score_batch` every step with a few dozen samples, and
spawning workers each time would cost more than scoring.

Samples travel in chunks (a few per worker) to keep the per-task overhead low; a chunk gets
the per-sample cap as its own deadline, and when it misses it each of its samples is rescored
alone under the same cap, so a stuck sample is reported as ``timeout`` without taking its
neighbours with it.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from pebble import ProcessExpired, ProcessPool

from golongrl.rewards.ground_truth import GroundTruthError
from golongrl.rewards.scoring import (
    REASON_ERROR,
    REASON_TIMEOUT,
    Prepared,
    ScoreOptions,
    make_options,
    prepare,
    score_prepared,
)


@dataclass(frozen=True)
class ScoreRequest:
    """One response to score, with its dataset row's labels."""

    data_source: str
    solution_str: str
    ground_truth: Any
    extra_info: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class ScoreResult:
    """``score`` in [0, 1]; ``reason`` is ``None`` for a normal score, else why it is 0:
    ``format`` (think/length gate), ``parse`` (no answer extractable), ``timeout`` (over the
    per-sample cap), ``error`` (the scorer failed; in faithful mode also where the reference
    itself raises)."""

    score: float
    task: str
    reason: str | None = None


#: Batches this small with no math sample are scored in-process: the pool round trip would
#: dominate, and only math_verify (sympy) can get stuck.
SERIAL_MAX_ITEMS = 4
#: Chunks stay well under the cap: at most this many samples or characters each.
CHUNK_MAX_ITEMS = 64
CHUNK_MAX_CHARS = 1 << 20

_pool: ProcessPool | None = None
_pool_workers = 0
_pool_lock = threading.Lock()


def _as_request(item: ScoreRequest | Mapping[str, Any], index: int) -> ScoreRequest:
    if isinstance(item, ScoreRequest):
        return item
    if isinstance(item, Mapping):
        missing = [k for k in ("data_source", "solution_str", "ground_truth") if k not in item]
        if missing:
            raise GroundTruthError(f"item {index}: missing key(s) {', '.join(missing)}")
        return ScoreRequest(
            item["data_source"], item["solution_str"], item["ground_truth"], item.get("extra_info")
        )
    raise TypeError(f"item {index}: expected ScoreRequest or mapping, got {type(item).__name__}")


def _score_chunk(
    chunk: Sequence[tuple[Prepared, str]], mode: str, opts: ScoreOptions
) -> list[tuple[float, str | None]]:
    return [score_prepared(p, s, mode, opts) for p, s in chunk]


def _get_pool(workers: int) -> ProcessPool:
    global _pool, _pool_workers
    with _pool_lock:
        if _pool is not None and (_pool_workers != workers or not _pool.active):
            _pool.stop()
            _pool.join()
            _pool = None
        if _pool is None:
            # forkserver: workers never inherit a trainer's threads or CUDA state, and after a
            # timeout kill a replacement forks from the preloaded server in milliseconds.
            if "forkserver" in multiprocessing.get_all_start_methods():
                ctx = multiprocessing.get_context("forkserver")
                ctx.set_forkserver_preload(["golongrl.rewards.scoring", "math_verify"])
            else:  # Windows
                ctx = multiprocessing.get_context("spawn")
            _pool = ProcessPool(max_workers=workers, context=ctx)
            _pool_workers = workers
        return _pool


def close_pool() -> None:
    """Stop the shared worker pool (it is restarted on the next pooled call)."""
    global _pool
    with _pool_lock:
        if _pool is not None:
            _pool.stop()
            _pool.join()
            _pool = None


atexit.register(close_pool)


def _chunks(indices: Sequence[int], sizes: Sequence[int], n_chunks: int) -> list[list[int]]:
    target = max(1, min(CHUNK_MAX_ITEMS, -(-len(indices) // n_chunks)))
    out: list[list[int]] = []
    current: list[int] = []
    chars = 0
    for i in indices:
        if current and (len(current) >= target or chars + sizes[i] > CHUNK_MAX_CHARS):
            out.append(current)
            current, chars = [], 0
        current.append(i)
        chars += sizes[i]
    if current:
        out.append(current)
    return out


def score_batch(
    items: Iterable[ScoreRequest | Mapping[str, Any]],
    *,
    mode: str = "hardened",
    timeout_s: float = 10.0,
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
            ``timeout`` and its worker process is replaced.
        workers: pool size; ``None`` = all CPUs, ``0`` = score in this process (no hard cap:
            only math_verify's own SIGALRM timeouts, on the main thread).  Daemonic processes,
            which may not start children, always score in-process.
        progress: show a rich progress bar.
        **options: :class:`ScoreOptions` fields.

    Raises:
        GroundTruthError / UnknownTaskError: on a malformed record (message names the item);
        never on model output.
    """
    requests = [_as_request(item, i) for i, item in enumerate(items)]
    opts = make_options(**options)
    prepared: list[Prepared] = []
    for i, req in enumerate(requests):
        try:
            prepared.append(prepare(req.data_source, req.ground_truth, req.extra_info, mode))
        except ValueError as exc:
            raise type(exc)(f"item {i}: {exc}") from None
    solutions = [r.solution_str for r in requests]
    n_workers = (os.cpu_count() or 1) if workers is None else workers
    # A daemonic process (e.g. a DataLoader worker) may not start children.
    serial = n_workers <= 0 or multiprocessing.current_process().daemon or (
        len(requests) <= SERIAL_MAX_ITEMS
        and all(p.task != "numerical_reasoning" for p in prepared)
    )
    if serial:
        raw = [score_prepared(p, s, mode, opts) for p, s in zip(prepared, solutions)]
    else:
        raw = _score_pooled(prepared, solutions, mode, opts, timeout_s, n_workers, progress)
    return [ScoreResult(float(s), p.task, r) for (s, r), p in zip(raw, prepared)]


def _score_pooled(
    prepared: list[Prepared],
    solutions: list[str],
    mode: str,
    opts: ScoreOptions,
    timeout_s: float,
    n_workers: int,
    progress: bool,
) -> list[tuple[float, str | None]]:
    pool = _get_pool(n_workers)
    sizes = [len(s) if isinstance(s, str) else 0 for s in solutions]
    # Largest first, so one long sample does not trail at the end of the batch.
    order = sorted(range(len(prepared)), key=sizes.__getitem__, reverse=True)
    chunks = _chunks(order, sizes, n_chunks=4 * n_workers)
    futures = [
        pool.schedule(
            _score_chunk,
            args=([(prepared[i], solutions[i]) for i in chunk], mode, opts),
            timeout=timeout_s,
        )
        for chunk in chunks
    ]
    results: list[tuple[float, str | None] | None] = [None] * len(prepared)
    retry: list[int] = []
    with _progress(progress, len(prepared)) as advance:
        for chunk, future in zip(chunks, futures):
            try:
                for i, res in zip(chunk, future.result()):
                    results[i] = res
                advance(len(chunk))
            except (FutureTimeout, ProcessExpired) as exc:
                if len(chunk) > 1:
                    retry.extend(chunk)  # find the culprit: rescore each sample alone
                else:
                    timed_out = isinstance(exc, FutureTimeout)
                    _set(results, chunk, REASON_TIMEOUT if timed_out else REASON_ERROR)
                    advance(1)
            except Exception:  # noqa: BLE001 - a broken worker must not lose the batch
                _set(results, chunk, REASON_ERROR)
                advance(len(chunk))
        singles = [
            (i, pool.schedule(_score_chunk, args=([(prepared[i], solutions[i])], mode, opts),
                              timeout=timeout_s))
            for i in retry
        ]
        for i, future in singles:
            try:
                results[i] = future.result()[0]
            except FutureTimeout:
                results[i] = (0.0, REASON_TIMEOUT)
            except Exception:  # noqa: BLE001 - e.g. ProcessExpired: the worker died
                results[i] = (0.0, REASON_ERROR)
            advance(1)
    return [r if r is not None else (0.0, REASON_ERROR) for r in results]


def _set(results: list[Any], chunk: Sequence[int], reason: str) -> None:
    for i in chunk:
        results[i] = (0.0, reason)


class _progress:
    """A rich progress bar when asked for, else a no-op ``advance``."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled, self.total = enabled, total
        self._bar: Any = None

    def __enter__(self):  # type: ignore[no-untyped-def]
        if not self.enabled:
            return lambda n: None
        from rich.progress import Progress

        self._bar = Progress(transient=True)
        self._bar.__enter__()
        task = self._bar.add_task("scoring", total=self.total)
        return lambda n: self._bar.advance(task, n)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
