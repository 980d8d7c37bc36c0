"""``golongrl main``: build data, evaluate, train with TMN-Reweight, evaluate again, report.

Run folder layout::

    config.yaml            the resolved config this run used
    data/                  the built dataset (train/test splits) when data.build_config is set
    eval/before.json       held-out per-task reward of the base policy (+ before.jsonl, per prompt)
    eval/after-step-N.json the same after training (+ .jsonl)
    eval/paired.json       the paired before/after statistics (golongrl.training.paired)
    eval/curve-step-N.json the held-out curve's points (evaluation.curve_rows prompts; + .jsonl)
    eval/cache.sqlite      generation cache: an interrupted evaluation resumes
    metrics.jsonl, tensorboard/, checkpoints/   the training run (see golongrl.training.trainer)
    plots/*.png            per-task reward, rate_adv, rate_num, diagnostics, eval before/after,
                           the held-out curve
    timings.json, report.md

Every phase is resumable: rerunning the same command after an interrupt reuses the built
data, the finished evaluations (JSON files, curve points included) and the newest training
checkpoint; curve points already in ``metrics.jsonl`` are kept.
"""

from __future__ import annotations

import collections
import json
import math
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from golongrl.data.io import atomic_output
from golongrl.data.schema import DataError
from golongrl.evaluation.policy import prompt_id
from golongrl.inference.base import SamplingParams
from golongrl.tasks import get_task
from golongrl.training.checkpoint import capture_rng, restore_rng
from golongrl.training.config import TrainConfig
from golongrl.training.evaluate import EvalResult, evaluate_policy, select_rows
from golongrl.training.paired import analyse, read_eval_rows
from golongrl.training.report import (HELDOUT_PREFIX, heldout_curve, plot_eval, plot_heldout_curve, plot_training,
                                      write_report)
from golongrl.training.trainer import (Trainer, build_dataset_files, generate_rollouts, load_prompts, load_rows,
                                      sampling_copy, score_rollouts)


def calibrate_training_rows(model: Any, tokenizer: Any, cfg: TrainConfig, out_dir: Path,
                            *, log: Callable[[str], None]) -> list[str]:
    """The difficulty filter: keep the training rows the base policy solves sometimes.

    Samples ``data.calibration_samples`` responses per training prompt with the rollout
    sampler, scores them with the training reward, and writes the rows whose mean reward is
    strictly between 0 and 1 to ``calibrated-train.jsonl`` (reused on rerun) with per-task
    counts in ``calibration.json``. With ``data.calibration_probe`` the first prompts of each
    task are sampled first and the rest only for the tasks where one of them was kept (the
    others count as ``skipped``). Returns the files to train on (the originals if none passes).
    """
    from golongrl.data.io import write_records

    target, summary = out_dir / "calibrated-train.jsonl", out_dir / "calibration.json"
    if target.is_file() and summary.is_file():
        return [str(target)] if json.loads(summary.read_text())["kept"] else list(cfg.data.train_files)
    out_dir.mkdir(parents=True, exist_ok=True)
    prompts, _ = load_prompts(cfg.data.train_files, tokenizer, cfg)
    k, probe = cfg.data.calibration_samples, cfg.data.calibration_probe
    rollout = cfg.rollout.model_copy(update={"n": k})
    verdicts: dict[int, str] = {}
    samples: dict[int, list[float]] = {}

    def sample(indices: list[int]) -> None:
        if not indices:
            return
        ro = generate_rollouts(model, tokenizer, [prompts[i] for i in indices], rollout,
                               micro_batch=cfg.batch.generation_micro_batch)
        score_rollouts(ro, cfg)
        for g, i in enumerate(indices):
            samples[i] = list(ro.scores[g * k:(g + 1) * k])
            mean = sum(samples[i]) / k
            verdicts[i] = "never" if mean <= 0 else "always" if mean >= 1 else "kept"

    def guessing_tasks() -> dict[str, tuple[float, float]]:
        """(mean reward, chance) of each task whose samples so far do not beat guessing."""
        pooled: dict[str, list[float]] = {}
        for i, xs in samples.items():
            pooled.setdefault(prompts[i].task, []).extend(xs)
        out = {}
        for task, xs in pooled.items():
            chance = get_task(task).chance
            if cfg.data.calibration_min_z and chance > 0:
                mean = sum(xs) / len(xs)
                if mean <= chance + cfg.data.calibration_min_z * math.sqrt(chance * (1 - chance) / len(xs)):
                    out[task] = (mean, chance)
        return out

    if probe:
        first: list[int] = []
        probed: collections.Counter[str] = collections.Counter()
        for i, prompt in enumerate(prompts):
            if probed[prompt.task] < probe:
                first.append(i)
                probed[prompt.task] += 1
        sample(first)
        live = {prompts[i].task for i in first if verdicts[i] == "kept"} - guessing_tasks().keys()
        sample([i for i, prompt in enumerate(prompts) if i not in verdicts and prompt.task in live])
    else:
        sample(list(range(len(prompts))))
    guessing = guessing_tasks()
    per_task: dict[str, dict[str, Any]] = {}
    kept_rows = []
    for i, prompt in enumerate(prompts):
        bucket = per_task.setdefault(prompt.task, {"prompts": 0, "never": 0, "always": 0, "kept": 0, "skipped": 0})
        bucket["prompts"] += 1
        verdict = verdicts.get(i, "skipped")
        if verdict == "kept" and prompt.task in guessing:
            verdict = "at_chance"
            bucket.setdefault("at_chance", 0)
        bucket[verdict] += 1
        if verdict == "kept":
            kept_rows.append(prompt.record)
    for task, (mean, chance) in guessing.items():
        per_task[task].update(mean_reward=round(mean, 4), chance=chance)
    write_records(target, kept_rows)
    with atomic_output(summary, "w") as handle:
        json.dump({"samples": k, "probe": probe, "kept": len(kept_rows), "prompts": len(prompts),
                   "sampled": len(verdicts), "per_task": per_task}, handle, indent=2)
    skipped = len(prompts) - len(verdicts)
    log(f"      calibration kept {len(kept_rows)} of {len(prompts)} training prompts (0 < pass rate < 1 over {k})"
        + (f"; {skipped} skipped: their task kept none of its first {probe}" if skipped else "")
        + "".join(f"; {t} dropped: mean {m:.2f} does not beat guessing ({c:.2f})" for t, (m, c) in guessing.items()))
    return [str(target)] if kept_rows else list(cfg.data.train_files)


def eval_sampling(cfg: TrainConfig) -> SamplingParams:
    ec = cfg.evaluation
    return SamplingParams(max_new_tokens=ec.max_new_tokens or cfg.rollout.max_new_tokens, temperature=ec.temperature,
                          top_p=ec.top_p, n=ec.n, seed=cfg.training.seed, enable_thinking=cfg.rollout.enable_thinking)


def eval_prompt_limit(cfg: TrainConfig) -> int:
    """Held-out prompts longer than this many tokens are dropped (``evaluation.max_prompt_tokens``,
    else the training cap ``rollout.max_prompt_tokens``)."""
    return cfg.evaluation.max_prompt_tokens or cfg.rollout.max_prompt_tokens


def run_evaluation(model: Any, tokenizer: Any, rows: list[dict[str, Any]], cfg: TrainConfig, out_dir: Path,
                   name: str, *, progress: bool) -> EvalResult:
    """Evaluate an in-memory policy; the result is stored as ``<name>.json`` and reused on rerun."""
    from golongrl.inference.transformers_backend import TransformersBackend

    summary = out_dir / f"{name}.json"
    if summary.is_file():
        return EvalResult(**{k: v for k, v in json.loads(summary.read_text()).items()})
    backend = TransformersBackend.from_model(model, tokenizer, name=name, batch_size=cfg.evaluation.batch_size,
                                             cache=out_dir / "cache.sqlite")
    was_training = model.training
    model.eval()
    began = time.perf_counter()
    try:
        result = evaluate_policy(backend, rows, sampling=eval_sampling(cfg), reward_mode=cfg.reward.mode,
                                 timeout_s=cfg.reward.timeout_s, workers=cfg.reward.workers,
                                 max_prompt_tokens=eval_prompt_limit(cfg), tokenizer=tokenizer,
                                 progress=progress, output=out_dir / f"{name}.jsonl")
    finally:
        model.train(was_training)
    result.seconds = time.perf_counter() - began
    with atomic_output(summary, "w") as handle:
        json.dump(result.to_dict(), handle, indent=2)
    return result


def curve_subset(rows: Sequence[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """The held-out curve's prompts: at most ``limit`` rows, round-robin over tasks, each task's
    shortest prompts first (cheap to evaluate every few steps)."""
    by_length = sorted(rows, key=lambda row: sum(len(str(m.get("content", ""))) for m in row["prompt"]))
    return select_rows(by_length, limit)


def curve_point(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    """``heldout/<task>`` (mean over that task's prompts) and ``heldout/overall`` (mean over all
    prompts) of per-prompt evaluation rows; empty for no rows."""
    by_task: dict[str, list[float]] = {}
    for row in rows:
        by_task.setdefault(str(row["task"]), []).append(float(row["score"]))
    if not by_task:
        return {}
    point = {f"{HELDOUT_PREFIX}{t}": sum(v) / len(v) for t, v in sorted(by_task.items())}
    scores = [s for v in by_task.values() for s in v]
    point[f"{HELDOUT_PREFIX}overall"] = sum(scores) / len(scores)
    return point


class HeldoutCurve:
    """The main job's held-out curve: a fixed subset of the held-out rows (:func:`curve_subset`),
    evaluated exactly as the before/after evaluations are (same sampling, same scorer) at step 0,
    every ``evaluation.every_steps`` steps and at the last step.

    Step 0 reuses the before-evaluation's scores of those prompts; each later point is stored as
    ``eval/curve-step-N.json`` and reused when a resumed run passes that step again. The
    evaluation restores the torch RNG it found, so the curve does not change training.
    """

    def __init__(self, cfg: TrainConfig, eval_rows: Sequence[dict[str, Any]], before_rows: Sequence[dict[str, Any]],
                 out_dir: Path, *, model: Any, tokenizer: Any, total_steps: int) -> None:
        self.cfg, self.out_dir, self.model, self.tokenizer = cfg, out_dir, model, tokenizer
        self.total_steps = total_steps
        self.rows = curve_subset(eval_rows, cfg.evaluation.curve_rows)
        self.ids = {prompt_id(row) for row in self.rows}
        self.base = [row for row in before_rows if row.get("prompt_id") in self.ids]
        self.seconds = 0.0

    def due(self, step: int) -> bool:
        every = self.cfg.evaluation.every_steps
        return step == 0 or step == self.total_steps or bool(every and step % every == 0)

    def from_rows(self, rows: Sequence[dict[str, Any]]) -> dict[str, float]:
        """The curve's point from another evaluation's per-prompt rows (its subset's prompts)."""
        return curve_point([row for row in rows if row.get("prompt_id") in self.ids])

    def __call__(self, step: int) -> dict[str, float]:
        if not self.due(step):
            return {}
        if step == 0:
            return curve_point(self.base)
        t, rng = time.perf_counter(), capture_rng()
        try:
            result = run_evaluation(self.model, self.tokenizer, self.rows, self.cfg, self.out_dir,
                                    f"curve-step-{step}", progress=False)
        finally:
            restore_rng(rng)
        self.seconds += time.perf_counter() - t
        return curve_point(read_eval_rows(self.out_dir / f"curve-step-{step}.jsonl")) if result.counts else {}


def check_unique_prompts(loaded: Sequence[tuple[str, int, dict[str, Any]]], selected: Sequence[dict[str, Any]]) -> None:
    """Refuse a held-out set holding the same prompt (and gold) twice: before/after pairs are
    matched by :func:`prompt_id`, and a repeated prompt would make the pairing ambiguous."""
    chosen = {id(row) for row in selected}
    seen: dict[str, tuple[str, int]] = {}
    for path, number, row in loaded:
        if id(row) not in chosen:
            continue
        pid = prompt_id(row)
        if pid in seen:
            raise DataError(f"the same prompt and gold as {seen[pid][0]}, row {seen[pid][1]}; before/after "
                            "pairing needs each held-out prompt once", source=path, row=number, field="prompt")
        seen[pid] = (path, number)


def run_main_job(cfg: TrainConfig, run_dir: str | Path, *, log: Callable[[str], None] = print,
                 model: Any = None, tokenizer: Any = None) -> Path:
    """The whole main job; returns the path of ``report.md``."""
    from golongrl.inference.models import load_causal_lm, load_tokenizer

    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    start = time.perf_counter()

    t = time.perf_counter()
    if cfg.data.build_config is not None:
        log("[1/5] building the dataset from the default real-document corpus")
        train_files, eval_files = build_dataset_files(cfg, run / "data", progress=cfg.logging.progress)
        cfg.data.train_files = cfg.data.train_files or train_files
        cfg.data.eval_files = cfg.data.eval_files or eval_files
    if not cfg.data.eval_files:
        raise ValueError("the main job needs held-out rows: set data.eval_files or data.build_config")
    load_rows(cfg.data.train_files)  # validate every training row before the model loads
    held_out = load_rows(cfg.data.eval_files)
    eval_rows = select_rows([rec for _, _, rec in held_out], cfg.data.max_eval_rows)
    check_unique_prompts(held_out, eval_rows)
    timings["build_data_s"] = time.perf_counter() - t

    t = time.perf_counter()
    log(f"[2/5] loading the policy {cfg.model.name_or_path}")
    tokenizer = tokenizer or load_tokenizer(cfg.model.tokenizer or cfg.model.name_or_path)
    model = model if model is not None else load_causal_lm(cfg.model.name_or_path, dtype=cfg.model.dtype)
    timings["load_model_s"] = time.perf_counter() - t

    t = time.perf_counter()
    log(f"[3/5] evaluating the base policy on {len(eval_rows)} held-out prompts")
    # Evaluations and the difficulty filter sample as training does: from rollout.dtype's copy.
    base_sampler = sampling_copy(model, cfg.rollout.dtype)
    before = run_evaluation(base_sampler, tokenizer, eval_rows, cfg, run / "eval", "before",
                            progress=cfg.logging.progress)
    before_rows = read_eval_rows(run / "eval" / "before.jsonl")
    timings["eval_before_s"] = time.perf_counter() - t

    t = time.perf_counter()
    if cfg.data.calibration_samples:
        log(f"      calibrating the training prompts with {cfg.data.calibration_samples} samples each")
        cfg.data.train_files = calibrate_training_rows(base_sampler, tokenizer, cfg, run / "data", log=log)
    timings["calibrate_s"] = time.perf_counter() - t
    del base_sampler  # the trainer keeps its own copy, refreshed after every update

    t = time.perf_counter()
    log("[4/5] training with " + cfg.algorithm.estimator.name)
    if cfg.training.job_budget_s is not None:
        # Training gets what the budget leaves once the after-evaluation, expected to take as
        # long as the before-evaluation, is set aside: a slower machine trains fewer steps.
        left = cfg.training.job_budget_s - (time.perf_counter() - start) - before.seconds
        cfg.training.time_budget_s = max(1e-3, min(cfg.training.time_budget_s or math.inf, left))
        log(f"      training time budget {cfg.training.time_budget_s:.0f} s (job budget {cfg.training.job_budget_s:.0f} s, "
            f"after-evaluation expected to take {before.seconds:.0f} s)")
    trainer = Trainer(cfg, run, model=model, tokenizer=tokenizer)
    curve = None
    if cfg.evaluation.curve_rows:
        curve = HeldoutCurve(cfg, eval_rows, before_rows, run / "eval", model=trainer.sampler, tokenizer=tokenizer,
                             total_steps=trainer.total_steps)
        log(f"      held-out curve: {len(curve.rows)} prompts at step 0, every {cfg.evaluation.every_steps or '-'} "
            "steps and the last")
    trainer.train(step_metrics=curve)
    timings["train_s"] = time.perf_counter() - t
    if curve is not None:
        timings["heldout_curve_s"] = curve.seconds  # part of train_s

    t = time.perf_counter()
    log("[5/5] evaluating the trained policy")
    after = run_evaluation(trainer.sampler, tokenizer, eval_rows, cfg, run / "eval", f"after-step-{trainer.step}",
                           progress=cfg.logging.progress)
    timings["eval_after_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - start

    from golongrl.training.tracking import read_metrics

    after_rows = read_eval_rows(run / "eval" / f"after-step-{trainer.step}.jsonl")
    paired = analyse(before_rows, after_rows)
    with atomic_output(run / "eval" / "paired.json", "w") as handle:
        json.dump(paired.to_dict(), handle, indent=2)
    history = read_metrics(run / "metrics.jsonl")
    points = heldout_curve(history)
    if curve is not None and trainer.step not in points:
        # A run stopped early by the time budget: the after-evaluation gives the last point.
        points[trainer.step] = {k[len(HELDOUT_PREFIX):]: v for k, v in curve.from_rows(after_rows).items()}
    plots = plot_training(history, run / "plots")
    plots.append(plot_eval(before, after, paired, run / "plots" / "eval_before_after.png"))
    if curve is not None:
        plots.append(plot_heldout_curve(points, run / "plots" / "heldout_curve.png"))
    with atomic_output(run / "timings.json", "w") as handle:
        json.dump(timings, handle, indent=2)
    header = [f"Policy `{cfg.model.name_or_path}`, estimator `{cfg.algorithm.estimator.name}`, "
              f"{trainer.step} training steps, {len(trainer.prompts)} training prompts "
              f"({sum(trainer.dropped.values())} dropped as longer than {cfg.rollout.max_prompt_tokens} tokens), "
              f"{sum(after.counts.values())} held-out prompts, wall time {timings['total_s'] / 60:.1f} min."]
    calibration, cal = run / "data" / "calibration.json", None
    if cfg.data.calibration_samples and calibration.is_file():
        cal = json.loads(calibration.read_text())
        header.append(f"Difficulty filter: {cal['kept']} of {cal['prompts']} training prompts kept (base-policy mean "
                      f"reward strictly between 0 and 1 over {cal['samples']} samples); per task: "
                      + ", ".join(f"{t} {v['kept']}/{v['prompts']} (never {v['never']}, always {v['always']}"
                                  + (f", skipped {v['skipped']}" if v.get("skipped") else "")
                                  + (f", {v['at_chance']} dropped at chance: mean {v['mean_reward']:.2f}, guessing "
                                     f"earns {v['chance']:.2f}" if "at_chance" in v else "") + ")"
                                  for t, v in sorted(cal["per_task"].items())) + "."
                      + (f" Probe: the first {cal['probe']} prompts of each task were sampled first, the rest only "
                         "where one of them was kept." if cal.get("probe") else ""))
    return write_report(run, cfg_dict=cfg.to_dict(), before=before, after=after, paired=paired, history=history,
                        timings=timings, plots=plots, header=header, curve=points,
                        curve_prompts=len(curve.rows) if curve is not None else 0,
                        curve_every=cfg.evaluation.every_steps,
                        train_max_tokens=max((len(p.input_ids) for p in trainer.prompts), default=None),
                        calibration=cal, before_rows=before_rows)
