"""Paired before/after statistics of a held-out evaluation: did the policy learn?

Every held-out prompt is scored before and after training, so the question is answered per
prompt: the difference ``after - before`` of each prompt, its mean, and the standard error of
that mean (sample standard deviation of the differences / sqrt(n)). Pairing removes the
prompt-to-prompt spread in difficulty, which dominates unpaired standard errors.

A change counts when ``|z| = |mean difference| / SE`` exceeds :data:`Z_MOVED` (the "2 SE" of
issue 12). Results are given per task, pooled over all prompts, task-balanced (each task
weighs the same however many prompts it has) and per context length (the dataset's nominal
``target_tokens`` when every row has one, else buckets of prompt tokens).

Pure functions over the per-prompt rows :func:`golongrl.evaluation.policy.evaluate_policy`
writes (``before.jsonl`` / ``after-step-N.jsonl``); :func:`read_eval_rows` loads them.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: |z| beyond this is a change ("up" / "down"); within it, "flat".
Z_MOVED = 2.0
#: Issue 12's target for the main job: overall paired z beyond this (one-sided p < 0.005) ...
TARGET_OVERALL_Z = 2.58
#: ... with at least this many task types up beyond Z_MOVED, and none down.
TARGET_TASKS_UP = 3

#: Upper edges (tokens) of the context-length buckets; longer prompts fall in a last open bucket.
LENGTH_EDGES: tuple[int, ...] = (1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072)

# Differences of scores in [0, 1] whose spread is below this are float noise of equal values.
_ZERO_SE = 1e-12


@dataclass(frozen=True)
class PairedStats:
    """Before/after means of ``n`` paired prompts, the mean paired difference and its SE.

    ``se`` is NaN with fewer than two pairs (no spread to estimate). ``se == 0`` means every
    prompt moved by exactly the same amount: ``z`` is 0 if that amount is 0 ("all equal"), else
    ±inf ("all moved by the same amount").
    """

    n: int
    mean_before: float
    mean_after: float
    mean_diff: float
    se: float

    @property
    def z(self) -> float:
        if math.isnan(self.se) or math.isnan(self.mean_diff):
            return math.nan
        if self.se == 0:
            return 0.0 if self.mean_diff == 0 else math.copysign(math.inf, self.mean_diff)
        return self.mean_diff / self.se

    @property
    def verdict(self) -> str:
        """``up`` / ``down`` beyond :data:`Z_MOVED`, ``flat`` within it, ``n/a`` when z is undefined."""
        z = self.z
        if math.isnan(z):
            return "n/a"
        if abs(z) <= Z_MOVED:
            return "flat"
        return "up" if z > 0 else "down"

    @property
    def note(self) -> str | None:
        """Why z is degenerate, if it is."""
        if self.n < 2 or math.isnan(self.se):
            return "fewer than 2 paired prompts" if self.n < 2 else "a group has fewer than 2 paired prompts"
        if self.se == 0:
            return "all equal" if self.mean_diff == 0 else "all moved by the same amount"
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (non-finite numbers become null; ``note`` says why)."""
        def clean(v: float) -> float | None:
            return v if math.isfinite(v) else None

        return {"n": self.n, "mean_before": clean(self.mean_before), "mean_after": clean(self.mean_after),
                "mean_diff": clean(self.mean_diff), "se": clean(self.se), "z": clean(self.z),
                "verdict": self.verdict, "note": self.note}


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def paired_stats(before: Sequence[float], after: Sequence[float]) -> PairedStats:
    """Paired statistics of ``before[i]`` vs ``after[i]`` (same prompt ``i``); lengths must match."""
    if len(before) != len(after):
        raise ValueError(f"paired scores need equal lengths, got {len(before)} before and {len(after)} after")
    n = len(before)
    diffs = [a - b for b, a in zip(before, after)]
    mean_diff = _mean(diffs)
    if n < 2:
        se = math.nan
    else:
        var = sum((d - mean_diff) ** 2 for d in diffs) / (n - 1)
        se = math.sqrt(var / n)
        if se < _ZERO_SE:
            se = 0.0
            mean_diff = 0.0 if abs(mean_diff) < _ZERO_SE else mean_diff
    return PairedStats(n=n, mean_before=_mean(before), mean_after=_mean(after), mean_diff=mean_diff, se=se)


def balanced_stats(groups: Mapping[str, PairedStats]) -> PairedStats:
    """Task-balanced overall: the mean of the groups' means and mean differences, with
    ``SE = sqrt(sum of the groups' SE^2) / number of groups`` (independent groups). ``n`` is
    the total number of pairs; SE is NaN when any group has fewer than two pairs."""
    stats = [s for s in groups.values() if s.n > 0]
    if not stats:
        return PairedStats(n=0, mean_before=math.nan, mean_after=math.nan, mean_diff=math.nan, se=math.nan)
    k = len(stats)
    se = math.sqrt(sum(s.se ** 2 for s in stats)) / k
    return PairedStats(n=sum(s.n for s in stats), mean_before=_mean([s.mean_before for s in stats]),
                       mean_after=_mean([s.mean_after for s in stats]),
                       mean_diff=_mean([s.mean_diff for s in stats]), se=se)


def prompt_key(row: Mapping[str, Any], *, by_id: bool = True) -> str:
    """The identity of an evaluated prompt: its ``prompt_id`` (a content hash), or with
    ``by_id=False`` or without one ``<task>#<index>`` (rows of older evaluations)."""
    if by_id and row.get("prompt_id"):
        return str(row["prompt_id"])
    return f"{row.get('task')}#{row.get('index')}"


def _tokens(row: Mapping[str, Any], key: str) -> int | None:
    value = row.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def prompt_length(row: Mapping[str, Any]) -> int | None:
    """Tokens of the prompt as the model saw it (``prompt_tokens``), else the dataset's
    ``context_tokens``; None when the row has neither."""
    tokens = _tokens(row, "prompt_tokens")
    return tokens if tokens is not None else _tokens(row, "context_tokens")


def _k(tokens: int) -> str:
    return f"{tokens // 1024}K" if tokens % 1024 == 0 else str(tokens)


def length_bucket(tokens: int | None) -> str:
    """``≤1K``, ``1K-2K``, ``2K-4K``, ... (upper edge inclusive), ``>128K``; ``unknown`` for None."""
    if tokens is None:
        return "unknown"
    lower = 0
    for edge in LENGTH_EDGES:
        if tokens <= edge:
            return f"≤{_k(edge)}" if lower == 0 else f"{_k(lower)}-{_k(edge)}"
        lower = edge
    return f">{_k(LENGTH_EDGES[-1])}"


def _bucket_order(label: str) -> int:
    labels = [length_bucket(e) for e in LENGTH_EDGES] + [f">{_k(LENGTH_EDGES[-1])}", "unknown"]
    return labels.index(label)


@dataclass(frozen=True)
class Pair:
    """One prompt scored in both evaluations."""

    key: str
    task: str
    before: float
    after: float
    target_tokens: int | None
    """The dataset's nominal context length (``extra_info.target_tokens``), if it has one."""
    prompt_tokens: int | None
    """:func:`prompt_length` of the prompt."""


@dataclass
class PairedAnalysis:
    """Paired before/after per task, overall (pooled and task-balanced) and per context length."""

    per_task: dict[str, PairedStats]
    pooled: PairedStats
    balanced: PairedStats
    by_length: dict[str, PairedStats]
    """Per context length, shortest first: the dataset's nominal lengths when every pair has one
    (``length_basis == "target"``), else power-of-two buckets of prompt tokens (``"prompt"``)."""
    length_basis: str = "prompt"
    length_tokens: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Smallest and largest prompt tokens in each length group (groups with known lengths)."""
    unpaired_before: int = 0
    unpaired_after: int = 0
    pairs: list[Pair] = field(default_factory=list)

    @property
    def tasks_up(self) -> list[str]:
        return [t for t, s in self.per_task.items() if s.verdict == "up"]

    @property
    def tasks_down(self) -> list[str]:
        return [t for t, s in self.per_task.items() if s.verdict == "down"]

    @property
    def target_met(self) -> bool:
        """Issue 12's target: pooled z > 2.58, >= 3 tasks up beyond 2 SE, none down."""
        z = self.pooled.z
        return (not math.isnan(z) and z > TARGET_OVERALL_Z and len(self.tasks_up) >= TARGET_TASKS_UP
                and not self.tasks_down)

    def outcome(self) -> str:
        """One line: the measured outcome against the target, met or not."""
        up, down = self.tasks_up, self.tasks_down
        return (f"**Target {'met' if self.target_met else 'not met'}** (overall paired z > {TARGET_OVERALL_Z}, "
                f">= {TARGET_TASKS_UP} task types up beyond {Z_MOVED:g} SE, none down): overall paired z = "
                f"{fmt_z(self.pooled.z)} (mean change {fmt_signed(self.pooled.mean_diff)} over {self.pooled.n} "
                f"prompts; task-balanced z = {fmt_z(self.balanced.z)}); "
                f"{len(up)} of {len(self.per_task)} task types up{' (' + ', '.join(up) + ')' if up else ''}, "
                f"{len(down)} down{' (' + ', '.join(down) + ')' if down else ''}.")

    def to_dict(self) -> dict[str, Any]:
        return {"z_moved": Z_MOVED, "target": {"overall_z": TARGET_OVERALL_Z, "tasks_up": TARGET_TASKS_UP,
                                               "met": self.target_met},
                "pooled": self.pooled.to_dict(), "balanced": self.balanced.to_dict(),
                "per_task": {t: s.to_dict() for t, s in self.per_task.items()},
                "length_basis": self.length_basis,
                "by_length": {b: {**s.to_dict(), "prompt_tokens": list(self.length_tokens.get(b, ()))}
                              for b, s in self.by_length.items()},
                "tasks_up": self.tasks_up, "tasks_down": self.tasks_down,
                "unpaired": {"before": self.unpaired_before, "after": self.unpaired_after}}


def _group(pairs: Sequence[Pair], label_of: Any, order: Any = None) -> dict[str, PairedStats]:
    groups: dict[str, list[Pair]] = defaultdict(list)
    for pair in pairs:
        groups[label_of(pair)].append(pair)
    return {label: paired_stats([p.before for p in groups[label]], [p.after for p in groups[label]])
            for label in sorted(groups, key=order)}


def analyse(before_rows: Sequence[Mapping[str, Any]], after_rows: Sequence[Mapping[str, Any]]) -> PairedAnalysis:
    """Pair the per-prompt rows of two evaluations by :func:`prompt_key` and compute every
    statistic. Prompts present in only one evaluation are counted, not paired. A key repeated
    within one evaluation is an error (pairing would be ambiguous). When either evaluation
    predates ``prompt_id`` (a run resumed across versions), both are keyed by task and index."""
    by_id = all(row.get("prompt_id") for row in [*before_rows, *after_rows])

    def by_key(rows: Sequence[Mapping[str, Any]], label: str) -> dict[str, Mapping[str, Any]]:
        out: dict[str, Mapping[str, Any]] = {}
        for number, row in enumerate(rows, 1):
            key = prompt_key(row, by_id=by_id)
            if key in out:
                raise ValueError(f"{label} evaluation row {number}: prompt {key!r} appears twice; "
                                 "pairing needs one row per prompt")
            out[key] = row
        return out

    def first(*values: int | None) -> int | None:
        return next((v for v in values if v is not None), None)

    before, after = by_key(before_rows, "before"), by_key(after_rows, "after")
    pairs = [Pair(key=key, task=str(b.get("task")), before=float(b["score"]), after=float(after[key]["score"]),
                  target_tokens=first(_tokens(b, "target_tokens"), _tokens(after[key], "target_tokens")),
                  prompt_tokens=first(prompt_length(b), prompt_length(after[key])))
             for key, b in before.items() if key in after]
    per_task = _group(pairs, lambda p: p.task)
    if pairs and all(p.target_tokens is not None for p in pairs):
        basis, label_of = "target", lambda p: _k(p.target_tokens)
        order = {_k(p.target_tokens): p.target_tokens for p in pairs}.__getitem__
    else:
        basis, label_of, order = "prompt", lambda p: length_bucket(p.prompt_tokens), _bucket_order
    by_length = _group(pairs, label_of, order)
    ranges: dict[str, tuple[int, int]] = {}
    for pair in pairs:
        if pair.prompt_tokens is not None:
            lo, hi = ranges.get(label_of(pair), (pair.prompt_tokens, pair.prompt_tokens))
            ranges[label_of(pair)] = (min(lo, pair.prompt_tokens), max(hi, pair.prompt_tokens))
    return PairedAnalysis(per_task=per_task, pooled=paired_stats([p.before for p in pairs], [p.after for p in pairs]),
                          balanced=balanced_stats(per_task), by_length=by_length, length_basis=basis,
                          length_tokens=ranges, unpaired_before=len(before) - len(pairs),
                          unpaired_after=len(after) - len(pairs), pairs=pairs)


def read_eval_rows(path: str | Path) -> list[dict[str, Any]]:
    """The per-prompt rows of an evaluation's JSONL file (one JSON object per line)."""
    rows = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}, line {number}: not JSON ({err.msg})") from err
    return rows


def fmt_z(z: float) -> str:
    if math.isnan(z):
        return "n/a"
    if math.isinf(z):
        return "+∞" if z > 0 else "−∞"
    return f"{z:+.2f}"


def fmt_signed(v: float) -> str:
    return "n/a" if math.isnan(v) else f"{v:+.3f}"


__all__ = ["LENGTH_EDGES", "TARGET_OVERALL_Z", "TARGET_TASKS_UP", "Z_MOVED", "Pair", "PairedAnalysis", "PairedStats",
           "analyse", "balanced_stats", "fmt_signed", "fmt_z", "length_bucket", "paired_stats", "prompt_key",
           "prompt_length", "read_eval_rows"]
