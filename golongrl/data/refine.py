"""Phase 4: decontamination, the shortcut probe and two-stage difficulty calibration, streamed.

Pass rate of a row under a policy = mean hardened reward of ``rollouts`` sampled responses
(:func:`golongrl.rewards.compute_score`). Policies are any backend spec
(:func:`golongrl.inference.make_backend`): a local model folder, ``smollm2``, ``tiny``, or an
OpenAI-compatible endpoint ``openai:<base_url>#<model>`` (vLLM, SGLang) for the paper's
two-stage filter: a small policy first, then a larger model on what the small one left
unsolved. Rows go to the backend in batches; every row's result is appended to its log under
``<out>/.work/`` as soon as its batch returns, so a crash loses at most one batch and a rerun
resumes where the logs end.

Shortcut probe: the question is asked without its context. A row is dropped when its pass
rate exceeds its task's *gold-independent baseline* (the best mean reward of the lazy
strategies of ``Task.baselines`` over the build's rows of that task, as ``golongrl audit``
reports it, shrunk toward the task's chance on few rows) by more than
``shortcut_probe.margin``. A fixed cut-off would ignore that a blind
answer already earns ~0.5 pairwise accuracy but 0 exact match.

Difficulty rule (spec §4; thresholds in :class:`~golongrl.data.config.CalibrationConfig`):
stage 1 labels easy / medium / unsolved; stage 2 (a large policy) resolves the unsolved into
medium / hard / discard. ``thinking_budget`` adds tokens for a ``<think>`` block and then
demands it be closed (a response cut off mid-thought scores 0).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from golongrl.data.config import CalibrationConfig, DataConfig
from golongrl.data.io import AppendLog

RowSource = Callable[[], Iterator[dict[str, Any]]]


def question_only(row: dict[str, Any]) -> list[dict[str, str]]:
    """The prompt without its context: what the shortcut probe asks."""
    from golongrl.tasks import get_task

    info = row["extra_info"]
    instruction = info.get("instruction") or get_task(info["task_type"]).instruction
    return [{"role": "user", "content": f"Question: {info['question']}\n\n{instruction}"}]


def full_prompt(row: dict[str, Any]) -> list[dict[str, str]]:
    return [dict(m) for m in row["prompt"]]


def lazy_responses(row: dict[str, Any]) -> dict[str, str]:
    """Gold-independent responses to ``row`` by strategy name (the task's ``baselines``, the
    strategies ``golongrl audit`` scores), built from its question and ``extra_info`` alone."""
    from golongrl.tasks import get_task

    return dict(get_task(row["extra_info"]["task_type"]).baselines(row))


def baseline_means(rows: Iterable[dict[str, Any]]) -> tuple[dict[str, dict[str, float]], dict[str, int]]:
    """Per task, the mean hardened reward of each lazy strategy over ``rows``, and the number
    of rows of each task."""
    from golongrl.rewards import compute_score

    sums: dict[str, dict[str, float]] = {}
    counts: dict[str, int] = {}
    for row in rows:
        task = row["extra_info"]["task_type"]
        counts[task] = counts.get(task, 0) + 1
        per = sums.setdefault(task, {})
        for name, text in lazy_responses(row).items():
            score = compute_score(row["data_source"], text, row["reward_model"]["ground_truth"], row["extra_info"])
            per[name] = per.get(name, 0.0) + score
    return {t: {n: v / counts[t] for n, v in sorted(per.items())} for t, per in sums.items()}, counts


#: Pseudo-rows at the task's chance level that the best lazy strategy's mean is shrunk with: on
#: a handful of rows the best of several strategies is lucky (one multiple-choice row makes
#: some constant letter score 1.0), which would put the cut-off out of reach.
PRIOR_ROWS = 20


def probe_threshold(means: dict[str, float], rows: int, task: str, margin: float) -> float:
    """The shortcut probe's cut-off for ``task``: its best lazy strategy's mean reward, shrunk
    toward the task's chance level by :data:`PRIOR_ROWS`, never below chance, plus ``margin``."""
    from golongrl.tasks import get_task

    chance = float(get_task(task).chance)
    best = max(means.values(), default=0.0)
    shrunk = (best * rows + chance * PRIOR_ROWS) / (rows + PRIOR_ROWS)
    return max(chance, shrunk) + margin


@dataclass
class Verdicts:
    """Per-row refinement results held in memory (uids and numbers only, never rows)."""

    drops: dict[str, str] = field(default_factory=dict)  # uid -> reason
    notes: dict[str, dict[str, Any]] = field(default_factory=dict)  # uid -> extra_info updates

    def keep(self, row: dict[str, Any]) -> bool:
        return row["extra_info"]["uid"] not in self.drops

    def annotate(self, row: dict[str, Any]) -> None:
        row["extra_info"].update(self.notes.get(row["extra_info"]["uid"], {}))

    def note(self, uid: str, **values: Any) -> None:
        self.notes.setdefault(uid, {}).update(values)

    def dropped(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for reason in self.drops.values():
            out[reason] = out.get(reason, 0) + 1
        return dict(sorted(out.items()))


def stage_one_label(rate: float, cfg: CalibrationConfig) -> str:
    if rate >= cfg.easy_min:
        return "easy"
    return "medium" if rate >= cfg.medium_min else "unsolved"


def stage_two_label(rate: float, cfg: CalibrationConfig) -> str:
    if rate >= cfg.large_medium_min:
        return "medium"
    return "hard" if rate > cfg.large_hard_min else "discard"


def _batched(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@dataclass
class RolloutSpec:
    """One policy's rollout settings for a stage."""

    stage: str
    policy: str
    rollouts: int
    temperature: float
    max_new_tokens: int
    thinking_budget: int = 0
    batch_size: int = 16


def stream_pass_rates(
    spec: RolloutSpec,
    rows: Iterable[dict[str, Any]],
    messages: Callable[[dict[str, Any]], list[dict[str, str]]],
    log_path: Path,
    *,
    seed: int,
    total: int | None = None,
    bar: Any = None,
    backend: Any = None,
) -> dict[str, float]:
    """Pass rate per row uid under ``spec``; every result is appended to ``log_path`` as its
    batch returns, and rows already in the log are not rolled out again. ``backend`` overrides
    ``make_backend(spec.policy)`` (tests pass a scripted one)."""
    from golongrl.inference import GenerationRequest, SamplingParams
    from golongrl.rewards import compute_score

    sampling = SamplingParams(
        max_new_tokens=spec.max_new_tokens + spec.thinking_budget, temperature=spec.temperature,
        n=spec.rollouts, seed=seed, enable_thinking=True if spec.thinking_budget else None,
    )
    options = {"require_think": True} if spec.thinking_budget else {}
    rates: dict[str, float] = {}
    task_id = bar.add_task(f"{spec.stage}: {spec.policy}", total=total, note="") if bar is not None else None
    started, done, score_sum = time.monotonic(), 0, 0.0
    with AppendLog(log_path) as log:
        pending: list[dict[str, Any]] = []

        def flush() -> None:
            nonlocal backend, done, score_sum
            if not pending:
                return
            if backend is None:
                from golongrl.inference import make_backend

                backend = make_backend(spec.policy)
            requests = [GenerationRequest(messages=tuple(messages(r)), sampling=sampling) for r in pending]
            for row, generation in zip(pending, backend.generate(requests)):
                gt = row["reward_model"]["ground_truth"]
                scores = [compute_score(row["data_source"], t, gt, row["extra_info"], **options) for t in generation.texts]
                rate = sum(scores) / len(scores) if scores else 0.0
                uid = row["extra_info"]["uid"]
                log.add(f"{spec.stage}/{spec.policy}/{uid}", uid=uid, rate=rate, scores=scores,
                        task=row["extra_info"]["task_type"])
                rates[uid] = rate
                done += 1
                score_sum += rate
            pending.clear()
            if task_id is not None:
                elapsed = max(1e-9, time.monotonic() - started)
                bar.update(task_id, completed=len(rates),
                           note=f"mean pass {score_sum / max(1, done):.3f}, {done / elapsed:.2f} rows/s")

        for row in rows:
            uid = row["extra_info"]["uid"]
            key = f"{spec.stage}/{spec.policy}/{uid}"
            if key in log.items:
                rates[uid] = float(log.items[key]["rate"])
                continue
            pending.append(row)
            if len(pending) >= spec.batch_size:
                flush()
        flush()
    if task_id is not None:
        bar.update(task_id, completed=len(rates), total=len(rates))
    return rates


def refine(config: DataConfig, rows: RowSource, counter: Any, work: Path, bar: Any = None, *,
           backends: dict[str, Any] | None = None) -> tuple[Verdicts, dict[str, Any]]:
    """Phase 4 in order, each only if configured: decontamination, shortcut probe,
    calibration. ``rows`` is called once per pass and streams the built rows. Returns the
    per-row verdicts (drops and ``extra_info`` updates) and the report."""
    verdicts = Verdicts()
    report: dict[str, Any] = {}
    backends = backends or {}

    def alive() -> Iterator[dict[str, Any]]:
        return (r for r in rows() if verdicts.keep(r))

    if config.decontamination.benchmarks:
        from golongrl.data.decontam import build_index, contamination_hits

        dc = config.decontamination
        index = build_index(dc.benchmarks, counter, n=dc.n, text_field=dc.text_field, max_chars=dc.max_chars)
        total, hit_items = 0, set()
        for chunk in _batched(alive(), 512):
            for row, item in zip(chunk, contamination_hits([r["extra_info"]["question"] for r in chunk], index, counter)):
                total += 1
                if item is not None:
                    verdicts.drops[row["extra_info"]["uid"]] = "contaminated"
                    hit_items.add(item)
        removed = sum(r == "contaminated" for r in verdicts.drops.values())
        report["decontamination"] = {
            "n": index.n, "benchmark_items": index.items, "removed": removed,
            "contamination_rate": removed / total if total else 0.0, "benchmark_items_hit": len(hit_items),
            "benchmark_hit_rate": len(hit_items) / index.items if index.items else 0.0,
        }
    if config.shortcut_probe.enabled:
        sp = config.shortcut_probe
        baselines, counts = baseline_means(alive())
        thresholds = {t: probe_threshold(per, counts[t], t, sp.margin) for t, per in baselines.items()}
        spec = RolloutSpec("shortcut", sp.policy, sp.rollouts, 1.0, sp.max_new_tokens, batch_size=sp.batch_size)
        rates = stream_pass_rates(spec, alive(), question_only, work / "shortcut.jsonl", seed=config.seed,
                                  bar=bar, backend=backends.get(sp.policy))
        by_task: dict[str, list[float]] = {}
        for row in alive():
            info = row["extra_info"]
            rate = rates[info["uid"]]
            by_task.setdefault(info["task_type"], []).append(rate)
            verdicts.note(info["uid"], shortcut_pass_rate=round(rate, 4))
            if rate > thresholds[info["task_type"]]:
                verdicts.drops[info["uid"]] = "shortcut"
        report["shortcut_probe"] = {
            "policy": sp.policy, "margin": sp.margin, "baselines": baselines,
            "threshold": thresholds,
            "mean_pass_rate": {t: sum(v) / len(v) for t, v in sorted(by_task.items())},
            "dropped": sum(r == "shortcut" for r in verdicts.drops.values()),
        }
    if config.calibration.enabled:
        report["difficulty"] = calibrate(alive, config.calibration, work, config.seed, verdicts, bar, backends)
    _write_summary(work / "refinement.json", report)
    return verdicts, report


def calibrate(rows: RowSource, cfg: CalibrationConfig, work: Path, seed: int, verdicts: Verdicts,
              bar: Any = None, backends: dict[str, Any] | None = None) -> dict[str, int]:
    """Two-stage labelling; records labels and pass rates in ``verdicts`` and drops discards
    (and easy rows unless ``keep_easy``). Returns the tally of labels."""
    backends = backends or {}
    common = dict(rollouts=cfg.rollouts, temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens,
                  thinking_budget=cfg.thinking_budget, batch_size=cfg.batch_size)
    small = stream_pass_rates(RolloutSpec("small", cfg.small_policy, **common), rows(), full_prompt,
                              work / "calibration.jsonl", seed=seed, bar=bar, backend=backends.get(cfg.small_policy))
    labels = {uid: stage_one_label(rate, cfg) for uid, rate in small.items()}
    for uid, rate in small.items():
        verdicts.note(uid, pass_rate_small=round(rate, 4))
    if cfg.large_policy and any(v == "unsolved" for v in labels.values()):
        unsolved = (r for r in rows() if labels.get(r["extra_info"]["uid"]) == "unsolved")
        large = stream_pass_rates(RolloutSpec("large", cfg.large_policy, **common), unsolved, full_prompt,
                                  work / "calibration.jsonl", seed=seed, bar=bar, backend=backends.get(cfg.large_policy))
        for uid, rate in large.items():
            labels[uid] = stage_two_label(rate, cfg)
            verdicts.note(uid, pass_rate_large=round(rate, 4))
    else:
        labels = {u: ("hard" if cfg.keep_unsolved else "discard") if v == "unsolved" else v for u, v in labels.items()}
    tally: dict[str, int] = {}
    for uid, label in labels.items():
        tally[label] = tally.get(label, 0) + 1
        verdicts.note(uid, difficulty=label)
        if label == "discard" or (label == "easy" and not cfg.keep_easy):
            verdicts.drops[uid] = "calibration"
    return dict(sorted(tally.items()))


def _write_summary(path: Path, report: dict[str, Any]) -> None:
    from golongrl.data.io import atomic_output

    with atomic_output(path, "w") as handle:
        handle.write(json.dumps(report, indent=2, sort_keys=True) + "\n")


__all__ = [
    "RolloutSpec",
    "Verdicts",
    "baseline_means",
    "probe_threshold",
    "calibrate",
    "full_prompt",
    "lazy_responses",
    "question_only",
    "refine",
    "stage_one_label",
    "stage_two_label",
    "stream_pass_rates",
]
