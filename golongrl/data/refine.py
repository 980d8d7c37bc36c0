"""Phase 4: decontamination, the shortcut probe and two-stage difficulty calibration.

Pass rate of a row under a policy = mean hardened reward of ``rollouts`` sampled responses
(:func:`golongrl.rewards.compute_score`). Policies are any :class:`InferenceBackend` spec
(:func:`golongrl.inference.make_backend`): a local transformers model or an OpenAI-compatible
endpoint. Per-row results are logged to ``<out>/.work/*.jsonl`` so a resumed build does not
roll out again.

Difficulty rule (spec §4, thresholds in :class:`~golongrl.data.config.CalibrationConfig`):
the small policy labels a row easy / medium / unsolved; the large policy (if any) resolves
the unsolved into medium / hard / discard.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from golongrl.data.config import CalibrationConfig, DataConfig
from golongrl.data.constructions import ANSWER_INSTRUCTIONS
from golongrl.data.io import AppendLog


def pass_rates(
    backend: Any,
    rows: Sequence[dict[str, Any]],
    messages: Callable[[dict[str, Any]], list[dict[str, str]]],
    *,
    rollouts: int,
    temperature: float,
    max_new_tokens: int,
    seed: int,
) -> list[float]:
    """Mean hardened reward over ``rollouts`` samples of ``backend`` for each row."""
    from golongrl.inference import GenerationRequest, SamplingParams
    from golongrl.rewards import compute_score

    sampling = SamplingParams(max_new_tokens=max_new_tokens, temperature=temperature, n=rollouts, seed=seed)
    requests = [GenerationRequest(messages=tuple(messages(r)), sampling=sampling) for r in rows]
    rates = []
    for row, generation in zip(rows, backend.generate(requests)):
        gt = row["reward_model"]["ground_truth"]
        scores = [compute_score(row["data_source"], text, gt, row["extra_info"]) for text in generation.texts]
        rates.append(sum(scores) / len(scores) if scores else 0.0)
    return rates


def question_only(row: dict[str, Any]) -> list[dict[str, str]]:
    """The prompt without its context: what the shortcut probe asks."""
    info = row["extra_info"]
    return [{"role": "user", "content": f"Question: {info['question']}\n\n{ANSWER_INSTRUCTIONS[info['task_type']]}"}]


def full_prompt(row: dict[str, Any]) -> list[dict[str, str]]:
    return [dict(m) for m in row["prompt"]]


def stage_one_label(rate: float, cfg: CalibrationConfig) -> str:
    if rate >= cfg.easy_min:
        return "easy"
    return "medium" if rate >= cfg.medium_min else "unsolved"


def stage_two_label(rate: float, cfg: CalibrationConfig) -> str:
    if rate >= cfg.large_medium_min:
        return "medium"
    return "hard" if rate > cfg.large_hard_min else "discard"


def _logged_rates(
    log_path: Path, stage: str, spec: str, rows: list[dict[str, Any]], messages: Callable[[dict[str, Any]], list[dict[str, str]]],
    *, rollouts: int, temperature: float, max_new_tokens: int, seed: int,
) -> list[float]:
    from golongrl.inference import make_backend

    with AppendLog(log_path) as log:
        todo = [r for r in rows if f"{stage}/{r['extra_info']['uid']}" not in log.items]
        if todo:
            backend = make_backend(spec)
            rates = pass_rates(backend, todo, messages, rollouts=rollouts, temperature=temperature,
                               max_new_tokens=max_new_tokens, seed=seed)
            for row, rate in zip(todo, rates):
                log.add(f"{stage}/{row['extra_info']['uid']}", rate=rate)
        return [float(log.items[f"{stage}/{r['extra_info']['uid']}"]["rate"]) for r in rows]


def calibrate(rows: list[dict[str, Any]], cfg: CalibrationConfig, work: Path, seed: int) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Label difficulty, drop discards (and easy rows unless ``keep_easy``); returns kept rows
    and a tally of labels."""
    params = dict(rollouts=cfg.rollouts, temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens, seed=seed)
    small = _logged_rates(work / "calibration.jsonl", f"small:{cfg.small_policy}", cfg.small_policy, rows, full_prompt, **params)
    labels = [stage_one_label(r, cfg) for r in small]
    for row, rate in zip(rows, small):
        row["extra_info"]["pass_rate_small"] = round(rate, 4)
    unsolved = [row for row, label in zip(rows, labels) if label == "unsolved"]
    if cfg.large_policy and unsolved:
        large = _logged_rates(work / "calibration.jsonl", f"large:{cfg.large_policy}", cfg.large_policy, unsolved, full_prompt, **params)
        resolved = {id(row): stage_two_label(rate, cfg) for row, rate in zip(unsolved, large)}
        for row, rate in zip(unsolved, large):
            row["extra_info"]["pass_rate_large"] = round(rate, 4)
        labels = [resolved.get(id(row), label) for row, label in zip(rows, labels)]
    else:
        labels = [("hard" if cfg.keep_unsolved else "discard") if label == "unsolved" else label for label in labels]
    tally: dict[str, int] = {}
    kept = []
    for row, label in zip(rows, labels):
        tally[label] = tally.get(label, 0) + 1
        row["extra_info"]["difficulty"] = label
        if label == "discard" or (label == "easy" and not cfg.keep_easy):
            continue
        kept.append(row)
    return kept, dict(sorted(tally.items()))


def refine(config: DataConfig, rows: list[dict[str, Any]], counter: Any, work: Path) -> tuple[list[dict[str, Any]], dict[str, int], dict[str, Any]]:
    """Phase 4 in order: decontamination, shortcut probe, calibration (each only if configured).

    Returns (kept rows, number dropped per reason, report)."""
    dropped: dict[str, int] = {}
    report: dict[str, Any] = {}
    if config.decontamination.benchmarks:
        from golongrl.data.decontam import build_index, decontaminate

        dc = config.decontamination
        index = build_index(dc.benchmarks, counter, n=dc.n, text_field=dc.text_field, max_chars=dc.max_chars)
        rows, report["decontamination"] = decontaminate(rows, index, counter)
        dropped["contaminated"] = report["decontamination"]["removed"]
    if config.shortcut_probe.enabled and rows:
        sp = config.shortcut_probe
        rates = _logged_rates(work / "shortcut.jsonl", f"shortcut:{sp.policy}", sp.policy, rows, question_only,
                              rollouts=sp.rollouts, temperature=1.0, max_new_tokens=sp.max_new_tokens, seed=config.seed)
        kept = []
        for row, rate in zip(rows, rates):
            row["extra_info"]["shortcut_pass_rate"] = round(rate, 4)
            if rate <= sp.max_pass_rate:
                kept.append(row)
        dropped["shortcut"] = len(rows) - len(kept)
        rows = kept
    if config.calibration.enabled and rows:
        before = len(rows)
        rows, report["difficulty"] = calibrate(rows, config.calibration, work, config.seed)
        dropped["calibration"] = before - len(rows)
    return rows, dropped, report


__all__ = ["calibrate", "pass_rates", "question_only", "refine", "stage_one_label", "stage_two_label"]
