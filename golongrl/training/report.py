"""Plots and the markdown report of a training run (PNG via matplotlib's Agg backend).

The report says plainly when a task's reward did not move: a change counts only when it
exceeds twice the standard error of the difference between the two evaluations.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import yaml

from golongrl.data.io import atomic_output
from golongrl.training.evaluate import EvalResult

_TASK_PREFIX = "task_metrics/"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


def task_series(history: Sequence[dict[str, Any]], name: str, prefix: str = _TASK_PREFIX
                ) -> dict[str, tuple[list[int], list[float]]]:
    """``{task: (steps, values)}`` of ``<prefix><task>/<name>`` over the logged steps.

    A task absent from a step's batch (dynamic sampling dropped all its groups) is plotted as a
    gap, not as zero, so a curve never fakes a collapse.
    """
    out: dict[str, tuple[list[int], list[float]]] = {}
    for row in history:
        for key, value in row.items():
            if key.startswith(prefix) and key.endswith("/" + name) and value is not None:
                task = key[len(prefix):-len(name) - 1]
                steps, values = out.setdefault(task, ([], []))
                steps.append(int(row["step"]))
                values.append(float(value))
    return dict(sorted(out.items()))


def plot_task_metric(history: Sequence[dict[str, Any]], name: str, path: Path, *, title: str, ylabel: str,
                     prefix: str = _TASK_PREFIX) -> Path:
    """One line per task of ``<prefix><task>/<name>`` against the training step (a PNG that
    says so when there is nothing to draw, rather than no file)."""
    series = task_series(history, name, prefix)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for task, (steps, values) in series.items():
        ax.plot(steps, values, marker="o", markersize=3, label=task)
    ax.set(title=title, xlabel="training step", ylabel=ylabel)
    ax.grid(alpha=0.3)
    if series:
        ax.legend(fontsize=7, ncol=2, loc="best")
    else:
        ax.text(0.5, 0.5, "no data: dynamic sampling kept no prompt group in any step",
                ha="center", va="center", transform=ax.transAxes)
    return _save(fig, path)


def plot_training(history: Sequence[dict[str, Any]], out_dir: Path) -> list[Path]:
    """Per-task reward, rate_adv and rate_num curves, plus the batch-level loss diagnostics."""
    made = [
        plot_task_metric(history, "mean_reward", out_dir / "task_reward.png", prefix="generated/",
                         title="Training reward per task (all generated rollouts)", ylabel="mean reward"),
        plot_task_metric(history, "rate_adv", out_dir / "rate_adv.png",
                         title="rate_adv: task share of the summed within-prompt reward std", ylabel="share"),
        plot_task_metric(history, "rate_num", out_dir / "rate_num.png",
                         title="rate_num: task share of prompts in the batch", ylabel="share"),
    ]
    keys = [k for k in ("reward/mean_generated", "actor/pg_loss", "actor/grad_norm", "actor/pg_clipfrac",
                        "rollout/response_length_mean", "rollout/gen_batches")
            if any(row.get(k) is not None for row in history)]
    if keys:
        plt = _pyplot()
        fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 3))
        for ax, key in zip(axes if len(keys) > 1 else [axes], keys):
            pts = [(r["step"], r[key]) for r in history if r.get(key) is not None]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=3)
            ax.set_title(key, fontsize=8)
            ax.grid(alpha=0.3)
        made.append(_save(fig, out_dir / "diagnostics.png"))
    return made


def plot_eval(before: EvalResult, after: EvalResult, path: Path) -> Path:
    """Grouped bars: held-out reward per task before and after training, with standard errors."""
    plt = _pyplot()
    tasks = sorted(set(before.per_task) | set(after.per_task))
    x = range(len(tasks))
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(tasks)), 4.5))
    for offset, (label, res) in zip((-0.2, 0.2), (("before", before), ("after", after))):
        vals = [res.per_task.get(t, float("nan")) for t in tasks]
        errs = [0.0 if math.isnan(res.stderr.get(t, float("nan"))) else res.stderr[t] for t in tasks]
        ax.bar([i + offset for i in x], vals, width=0.4, yerr=errs, capsize=3, label=label)
    ax.set_xticks(list(x))
    ax.set_xticklabels(tasks, rotation=30, ha="right", fontsize=8)
    ax.set(ylabel="held-out reward", title="Held-out reward per task, before vs after training")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def verdict(before: float, after: float, se_before: float, se_after: float) -> str:
    """``improved`` / ``worse`` when the change exceeds 2 standard errors of the difference,
    otherwise ``no significant change`` (also when there are too few prompts to tell)."""
    se = math.sqrt((0 if math.isnan(se_before) else se_before) ** 2 + (0 if math.isnan(se_after) else se_after) ** 2)
    delta = after - before
    if math.isnan(se_before) or math.isnan(se_after) or abs(delta) <= max(2 * se, 1e-9):
        return "no significant change"
    return "improved" if delta > 0 else "worse"


def _fmt(v: float) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def write_report(run_dir: Path, *, cfg_dict: dict[str, Any], before: EvalResult, after: EvalResult,
                 history: Sequence[dict[str, Any]], timings: dict[str, float], plots: Sequence[Path],
                 header: Sequence[str] = ()) -> Path:
    """Write ``report.md``: per-task before/after table with verdicts, training-curve trends,
    plots, timings and the exact config. Returns its path."""
    tasks = sorted(set(before.per_task) | set(after.per_task))
    lines = ["# golongrl main job report", ""]
    lines += list(header) + [""] if header else []
    lines += ["## Held-out reward per task", "",
              "Mean reward over held-out prompts (± standard error); a change counts only beyond two "
              "standard errors of the difference.", "",
              "| task | prompts | before | after | change | verdict |", "|---|---:|---:|---:|---:|---|"]
    moved = []
    for t in tasks:
        b, a = before.per_task.get(t, float("nan")), after.per_task.get(t, float("nan"))
        sb, sa = before.stderr.get(t, float("nan")), after.stderr.get(t, float("nan"))
        v = verdict(b, a, sb, sa)
        if v != "no significant change":
            moved.append(t)
        lines.append(f"| {t} | {after.counts.get(t, before.counts.get(t, 0))} | {_fmt(b)} ± {_fmt(sb)} | "
                     f"{_fmt(a)} ± {_fmt(sa)} | {a - b:+.3f} | {v} |")
    lines.append(f"| **all** | {sum(after.counts.values())} | {_fmt(before.overall)} | {_fmt(after.overall)} | "
                 f"{after.overall - before.overall:+.3f} | |")
    lines.append("")
    still = [t for t in tasks if t not in moved]
    if still:
        lines.append(f"**Did not move** (within noise): {', '.join(still)}. A small model trained for minutes "
                     "and judged on a handful of prompts per task usually does not move beyond noise; the "
                     "table says so rather than reading trends into it.")
    if moved:
        lines.append(f"**Moved beyond noise:** {', '.join(f'{t} ({verdict_word(before, after, t)})' for t in moved)}.")
    if before.dropped_overlong or after.dropped_overlong:
        lines.append(f"Evaluation prompts dropped as over-long: {before.dropped_overlong}.")
    for label, res in (("before", before), ("after", after)):
        if res.reasons:
            listed = ", ".join(f"{k}: {v}" for k, v in sorted(res.reasons.items()))
            lines.append(f"Zero-reward reasons {label} training (responses): {listed}.")
    lines.append("")
    lines += ["## Training", ""]
    series = task_series(history, "mean_reward", "generated/")
    if series:
        lines += ["Reward on all generated training rollouts per task, first vs last step in which the task was "
                  "drawn (different training prompts each step, sampled at temperature 1: noisy, and not comparable "
                  "with the held-out numbers above):", "",
                  "| task | steps seen | first | last |", "|---|---:|---:|---:|"]
        for task, (steps, values) in series.items():
            lines.append(f"| {task} | {len(steps)} | {values[0]:.3f} | {values[-1]:.3f} |")
        lines.append("")
    if history:
        updated = sum(1 for row in history if row.get("actor/updated"))
        lines.append(f"Steps that updated the policy: {updated} of {len(history)} (a step whose every prompt "
                     "group had equal rewards makes no update).")
        lines.append("")
        last = history[-1]
        keys = ["reward/mean_generated", "rollout/kept_groups", "rollout/gen_batches", "actor/pg_loss",
                "actor/grad_norm", "actor/pg_clipfrac", "rollout/response_length_mean", "time/step_s"]
        lines.append("Last step: " + ", ".join(f"`{k}` = {_fmt(last.get(k, float('nan')))}" for k in keys if k in last))
        lines.append("")
    if plots:
        lines += ["## Plots", ""] + [f"![{p.stem}]({p.relative_to(run_dir).as_posix()})" for p in plots] + [""]
    lines += ["## Timings", "", "| phase | seconds |", "|---|---:|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in timings.items()] + [""]
    lines += ["## Config", "", "```yaml", yaml.safe_dump(cfg_dict, sort_keys=False).rstrip(), "```", ""]
    path = run_dir / "report.md"
    with atomic_output(path, "w") as handle:
        handle.write("\n".join(lines))
    return path


def verdict_word(before: EvalResult, after: EvalResult, task: str) -> str:
    return verdict(before.per_task[task], after.per_task[task], before.stderr[task], after.stderr[task])
