"""``golongrl main``: build data, evaluate, train with TMN-Reweight, evaluate again, report.

Run folder layout::

    config.yaml            the resolved config this run used
    data/                  the built dataset (train/test splits) when data.build_config is set
    eval/before.json       held-out per-task reward of the base policy (+ before.jsonl, per prompt)
    eval/after.json        the same after training (+ after.jsonl)
    eval/cache.sqlite      generation cache: an interrupted evaluation resumes
    metrics.jsonl, tensorboard/, checkpoints/   the training run (see golongrl.training.trainer)
    plots/*.png            per-task reward, rate_adv, rate_num, diagnostics, eval before/after
    timings.json, report.md

Every phase is resumable: rerunning the same command after an interrupt reuses the built
data, the finished evaluations (JSON files) and the newest training checkpoint.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

from golongrl.data.io import atomic_output
from golongrl.inference.base import SamplingParams
from golongrl.training.config import TrainConfig
from golongrl.training.evaluate import EvalResult, evaluate_policy, select_rows
from golongrl.training.report import plot_eval, plot_training, write_report
from golongrl.training.trainer import (Trainer, build_dataset_files, generate_rollouts, load_prompts, load_rows,
                                      score_rollouts)


def calibrate_training_rows(model: Any, tokenizer: Any, cfg: TrainConfig, out_dir: Path,
                            *, log: Callable[[str], None]) -> list[str]:
    """The difficulty filter: keep the training rows the base policy solves sometimes.

    Samples ``data.calibration_samples`` responses per training prompt with the rollout
    sampler, scores them with the training reward, and writes the rows whose mean reward is
    strictly between 0 and 1 to ``calibrated-train.jsonl`` (reused on rerun) with per-task
    counts in ``calibration.json``. Returns the files to train on (the originals if none passes).
    """
    from golongrl.data.io import write_records

    target, summary = out_dir / "calibrated-train.jsonl", out_dir / "calibration.json"
    if target.is_file() and summary.is_file():
        return [str(target)] if json.loads(summary.read_text())["kept"] else list(cfg.data.train_files)
    out_dir.mkdir(parents=True, exist_ok=True)
    prompts, _ = load_prompts(cfg.data.train_files, tokenizer, cfg)
    rollout = cfg.rollout.model_copy(update={"n": cfg.data.calibration_samples})
    ro = generate_rollouts(model, tokenizer, prompts, rollout, micro_batch=cfg.batch.generation_micro_batch)
    score_rollouts(ro, cfg)
    k = cfg.data.calibration_samples
    per_task: dict[str, dict[str, int]] = {}
    kept_rows = []
    for g, prompt in enumerate(prompts):
        mean = sum(ro.scores[g * k:(g + 1) * k]) / k
        bucket = per_task.setdefault(prompt.task, {"prompts": 0, "never": 0, "always": 0, "kept": 0})
        bucket["prompts"] += 1
        key = "never" if mean <= 0 else "always" if mean >= 1 else "kept"
        bucket[key] += 1
        if key == "kept":
            kept_rows.append(prompt.record)
    write_records(target, kept_rows)
    with atomic_output(summary, "w") as handle:
        json.dump({"samples": k, "kept": len(kept_rows), "prompts": len(prompts), "per_task": per_task}, handle, indent=2)
    log(f"      calibration kept {len(kept_rows)} of {len(prompts)} training prompts (0 < pass rate < 1 over {k})")
    return [str(target)] if kept_rows else list(cfg.data.train_files)


def eval_sampling(cfg: TrainConfig) -> SamplingParams:
    ec = cfg.evaluation
    return SamplingParams(max_new_tokens=ec.max_new_tokens or cfg.rollout.max_new_tokens, temperature=ec.temperature,
                          top_p=ec.top_p, n=ec.n, seed=cfg.training.seed, enable_thinking=cfg.rollout.enable_thinking)


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
    try:
        result = evaluate_policy(backend, rows, sampling=eval_sampling(cfg), reward_mode=cfg.reward.mode,
                                 timeout_s=cfg.reward.timeout_s, workers=cfg.reward.workers,
                                 max_prompt_tokens=cfg.rollout.max_prompt_tokens, tokenizer=tokenizer,
                                 progress=progress, output=out_dir / f"{name}.jsonl")
    finally:
        model.train(was_training)
    with atomic_output(summary, "w") as handle:
        json.dump(result.to_dict(), handle, indent=2)
    return result


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
    eval_rows = select_rows([rec for _, _, rec in load_rows(cfg.data.eval_files)], cfg.data.max_eval_rows)
    timings["build_data_s"] = time.perf_counter() - t

    t = time.perf_counter()
    log(f"[2/5] loading the policy {cfg.model.name_or_path}")
    tokenizer = tokenizer or load_tokenizer(cfg.model.tokenizer or cfg.model.name_or_path)
    model = model if model is not None else load_causal_lm(cfg.model.name_or_path, dtype=cfg.model.dtype)
    timings["load_model_s"] = time.perf_counter() - t

    t = time.perf_counter()
    log(f"[3/5] evaluating the base policy on {len(eval_rows)} held-out prompts")
    before = run_evaluation(model, tokenizer, eval_rows, cfg, run / "eval", "before", progress=cfg.logging.progress)
    timings["eval_before_s"] = time.perf_counter() - t

    t = time.perf_counter()
    if cfg.data.calibration_samples:
        log(f"      calibrating the training prompts with {cfg.data.calibration_samples} samples each")
        cfg.data.train_files = calibrate_training_rows(model, tokenizer, cfg, run / "data", log=log)
    timings["calibrate_s"] = time.perf_counter() - t

    t = time.perf_counter()
    log("[4/5] training with " + cfg.algorithm.estimator.name)
    trainer = Trainer(cfg, run, model=model, tokenizer=tokenizer)
    trainer.train()
    timings["train_s"] = time.perf_counter() - t

    t = time.perf_counter()
    log("[5/5] evaluating the trained policy")
    after = run_evaluation(trainer.model, tokenizer, eval_rows, cfg, run / "eval", f"after-step-{trainer.step}",
                           progress=cfg.logging.progress)
    timings["eval_after_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - start

    from golongrl.training.tracking import read_metrics

    history = read_metrics(run / "metrics.jsonl")
    plots = plot_training(history, run / "plots") + [plot_eval(before, after, run / "plots" / "eval_before_after.png")]
    with atomic_output(run / "timings.json", "w") as handle:
        json.dump(timings, handle, indent=2)
    header = [f"Policy `{cfg.model.name_or_path}`, estimator `{cfg.algorithm.estimator.name}`, "
              f"{trainer.step} training steps, {len(trainer.prompts)} training prompts "
              f"({sum(trainer.dropped.values())} dropped as longer than {cfg.rollout.max_prompt_tokens} tokens), "
              f"{sum(after.counts.values())} held-out prompts, wall time {timings['total_s'] / 60:.1f} min."]
    calibration = run / "data" / "calibration.json"
    if cfg.data.calibration_samples and calibration.is_file():
        cal = json.loads(calibration.read_text())
        header.append(f"Difficulty filter: {cal['kept']} of {cal['prompts']} training prompts kept (base-policy mean "
                      f"reward strictly between 0 and 1 over {cal['samples']} samples); per task: "
                      + ", ".join(f"{t} {v['kept']}/{v['prompts']} (never {v['never']}, always {v['always']})"
                                  for t, v in sorted(cal["per_task"].items())) + ".")
    return write_report(run, cfg_dict=cfg.to_dict(), before=before, after=after, history=history,
                        timings=timings, plots=plots, header=header)
