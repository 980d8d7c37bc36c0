"""Plots and the markdown report of a training run (PNG via matplotlib's Agg backend).

The report says plainly when a task's reward did not move: a change counts only when the mean
paired (per-prompt) change exceeds twice its standard error (:mod:`golongrl.training.paired`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from golongrl.data.io import atomic_output
from golongrl.training.evaluate import EvalResult
from golongrl.training.paired import Z_MOVED, PairedAnalysis, PairedStats, fmt_signed, fmt_z

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


def plot_eval(before: EvalResult, after: EvalResult, paired: PairedAnalysis, path: Path) -> Path:
    """Two panels: held-out reward per task before vs after training (bars with each
    evaluation's standard error), and the mean paired change per task and overall with ±2
    paired SE, the band a change must clear to count."""
    plt = _pyplot()
    tasks = sorted(set(before.per_task) | set(after.per_task))
    x = range(len(tasks))
    width = max(6, 1.1 * len(tasks))
    fig, (ax, diff_ax) = plt.subplots(1, 2, figsize=(2 * width, 4.5))
    for offset, (label, res) in zip((-0.2, 0.2), (("before", before), ("after", after))):
        vals = [res.per_task.get(t, float("nan")) for t in tasks]
        errs = [0.0 if math.isnan(res.stderr.get(t, float("nan"))) else res.stderr[t] for t in tasks]
        ax.bar([i + offset for i in x], vals, width=0.4, yerr=errs, capsize=3, label=label)
    ax.set_xticks(list(x))
    ax.set_xticklabels(tasks, rotation=30, ha="right", fontsize=8)
    ax.set(ylabel="held-out reward", title="Held-out reward per task, before vs after training")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    groups = [(t, paired.per_task[t]) for t in tasks if t in paired.per_task]
    groups += [("all (pooled)", paired.pooled), ("all (balanced)", paired.balanced)]
    colours = {"up": "tab:green", "down": "tab:red"}
    for i, (label, st) in enumerate(groups):
        err = 0.0 if math.isnan(st.se) else 2 * st.se
        diff_ax.bar(i, 0.0 if math.isnan(st.mean_diff) else st.mean_diff, width=0.6, yerr=err, capsize=3,
                    color=colours.get(st.verdict, "tab:gray"))
        diff_ax.annotate(f"z {fmt_z(st.z)}", (i, 0), textcoords="offset points", xytext=(0, -12),
                         ha="center", fontsize=7)
    diff_ax.axhline(0, color="black", linewidth=0.8)
    diff_ax.set_xticks(range(len(groups)))
    diff_ax.set_xticklabels([g[0] for g in groups], rotation=30, ha="right", fontsize=8)
    diff_ax.set(ylabel="mean paired change (after - before)",
                title=f"Paired change per task, ±2 SE (green up, red down at |z| > {Z_MOVED:g})")
    diff_ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


HELDOUT_PREFIX = "heldout/"


def heldout_curve(history: Sequence[dict[str, Any]]) -> dict[int, dict[str, float]]:
    """``{step: {task or "overall": reward}}`` of the ``heldout/*`` metrics (the main job's
    held-out curve), in step order."""
    points: dict[int, dict[str, float]] = {}
    for row in history:
        values = {k[len(HELDOUT_PREFIX):]: float(v) for k, v in row.items()
                  if k.startswith(HELDOUT_PREFIX) and v is not None}
        if values:
            points.setdefault(int(row["step"]), {}).update(values)
    return dict(sorted(points.items()))


def plot_heldout_curve(points: Mapping[int, Mapping[str, float]], path: Path) -> Path:
    """Held-out reward against the training step: one thin line per task, overall thick."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9.5, 4.5))
    steps = list(points)
    tasks = sorted({t for values in points.values() for t in values} - {"overall"})
    for task in tasks:
        pts = [(s, points[s][task]) for s in steps if task in points[s]]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], linewidth=1, marker="o", markersize=2.5, alpha=0.7,
                label=task)
    pts = [(s, points[s]["overall"]) for s in steps if "overall" in points[s]]
    ax.plot([p[0] for p in pts], [p[1] for p in pts], linewidth=3, color="black", marker="o", label="overall")
    ax.set(title="Held-out reward during training (fixed held-out subset)", xlabel="training step",
           ylabel="held-out reward")
    ax.grid(alpha=0.3)
    ax.xaxis.get_major_locator().set_params(integer=True)
    if points:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        ax.text(0.5, 0.5, "no held-out curve points", ha="center", va="center", transform=ax.transAxes)
    return _save(fig, path)


def _fmt(v: float | None) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def _stats_cells(st: PairedStats) -> str:
    verdict = st.verdict + (f" ({st.note})" if st.note else "")
    return (f"{st.n} | {_fmt(st.mean_before)} | {_fmt(st.mean_after)} | {fmt_signed(st.mean_diff)} | "
            f"{_fmt(st.se)} | {fmt_z(st.z)} | {verdict}")


def paired_section(paired: PairedAnalysis) -> list[str]:
    """The paired before/after table (per task, overall pooled and task-balanced) and the
    one-line outcome against issue 12's target."""
    lines = ["## Held-out reward, paired before/after", "",
             "Each held-out prompt is scored before and after training; its change is after − before. "
             "SE = sample SD of the per-prompt changes / √n; z = mean change / SE; a task counts as up or "
             f"down only beyond |z| > {Z_MOVED:g}. *Pooled* weighs every prompt equally; *task-balanced* "
             "weighs every task equally (mean of the per-task changes, SE from the per-task SEs).", "",
             "| task | prompts | before | after | mean change | SE | z | verdict |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    lines += [f"| {t} | {_stats_cells(st)} |" for t, st in paired.per_task.items()]
    lines.append(f"| **all (pooled)** | {_stats_cells(paired.pooled)} |")
    lines.append(f"| **all (task-balanced)** | {_stats_cells(paired.balanced)} |")
    lines.append("")
    lines.append(paired.outcome())
    lines.append("")
    flat = [t for t, st in paired.per_task.items() if st.verdict not in ("up", "down")]
    if flat:
        lines.append(f"**Did not move** (|z| ≤ {Z_MOVED:g} or too few prompts): {', '.join(flat)}.")
    if paired.tasks_up or paired.tasks_down:
        moved = [f"{t} ({paired.per_task[t].verdict})" for t in paired.tasks_up + paired.tasks_down]
        lines.append(f"**Moved beyond noise:** {', '.join(moved)}.")
    if paired.unpaired_before or paired.unpaired_after:
        lines.append(f"Unpaired prompts (scored in only one evaluation, left out): {paired.unpaired_before} "
                     f"before, {paired.unpaired_after} after.")
    lines.append("")
    return lines


def length_section(paired: PairedAnalysis, *, train_max_tokens: int | None = None) -> list[str]:
    """The paired before/after table by context length."""
    basis = ("the dataset's nominal context length (`target_tokens`)" if paired.length_basis == "target" else
             "buckets of prompt tokens as the model saw them (chat template included)")
    lines = ["## Held-out reward by context length", "",
             f"Grouped by {basis}, paired before/after as above"
             + (f"; the longest training prompt had {train_max_tokens} tokens" if train_max_tokens else "") + ".",
             "", "| context length | prompt tokens | prompts | before | after | mean change | SE | z | verdict |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for label, st in paired.by_length.items():
        lo, hi = paired.length_tokens.get(label, (None, None))
        span = "n/a" if lo is None else f"{lo}" if lo == hi else f"{lo}-{hi}"
        lines.append(f"| {label} | {span} | {_stats_cells(st)} |")
    lines.append("")
    return lines


def curve_section(points: Mapping[int, Mapping[str, float]], *, prompts: int, every: int) -> list[str]:
    """The held-out curve as a table (one row per evaluated step)."""
    if not points:
        return []
    tasks = sorted({t for values in points.values() for t in values} - {"overall"})
    when = f"every {every} step{'s' if every > 1 else ''} and at the last step" if every else "and at the last step"
    lines = ["## Held-out curve", "",
             f"Reward on a fixed subset of {prompts} held-out prompts (balanced over tasks, shortest first), "
             f"evaluated like the table above at step 0 (the base policy: the before-evaluation's scores of "
             f"those prompts), {when}.", "",
             "| step | overall | " + " | ".join(tasks) + " |", "|---:|---:|" + "---:|" * len(tasks)]
    for step, values in points.items():
        lines.append(f"| {step} | {_fmt(values.get('overall'))} | "
                     + " | ".join(_fmt(values.get(t)) for t in tasks) + " |")
    lines.append("")
    return lines


def signal_section(calibration: Mapping[str, Any] | None, history: Sequence[dict[str, Any]],
                   before_rows: Sequence[Mapping[str, Any]], paired: PairedAnalysis) -> list[str]:
    """Where the learning signal was, per task: why a task that did not move could not.

    A GRPO-family advantage is zero for a group whose rollouts all score the same, so a task
    whose training prompts the base policy never solves contributes no gradient at all. The
    table puts side by side what the difficulty filter saw (``calibration``: the content of
    ``calibration.json``), how many prompt groups of the task carried signal into the updates
    (``task_metrics/<task>/num_queries`` summed over the steps: the kept, non-constant groups),
    and how many held-out prompts the base policy scored exactly 0.
    """
    per_task = dict((calibration or {}).get("per_task", {}))
    used = {task: sum(values) for task, (_, values) in task_series(history, "num_queries").items()}
    zeros: dict[str, list[int]] = {}
    for row in before_rows:
        bucket = zeros.setdefault(str(row["task"]), [0, 0])
        bucket[0] += float(row["score"]) <= 0.0
        bucket[1] += 1
    tasks = sorted(set(per_task) | set(used) | set(zeros) | set(paired.per_task))
    if not tasks:
        return []
    samples = (calibration or {}).get("samples")
    # Columns only where the filter used them: the probe's skipped prompts, a task dropped at chance.
    extra = [(key, title) for key, title in (("skipped", "not sampled (probe kept none)"),
                                             ("at_chance", "solved sometimes, at chance (dropped)"))
             if any(v.get(key) for v in per_task.values())]
    lines = ["## Where the learning signal was", "",
             "A group whose rollouts all earn the same reward has zero advantage and adds nothing to the update, "
             "so a task the base policy never solves cannot move, whatever the learning rate. Per task: the "
             + (f"difficulty filter's count of training prompts the base policy solved in none of {samples} samples, "
                "in some (kept) and in all; " if samples else "")
             + "the prompt groups with unequal rewards that reached the updates (summed over steps); the held-out "
               "prompts the base policy scored 0; the paired verdict.", "",
             "| task | training prompts | never solved | kept | always solved | "
             + "".join(f"{title} | " for _, title in extra)
             + "groups with signal in updates | held-out at 0 before | verdict |",
             "|---|---:|---:|---:|---:|" + "---:|" * len(extra) + "---:|---:|---|"]
    columns = ("prompts", "never", "kept", "always") + tuple(key for key, _ in extra)
    for task in tasks:
        cal = per_task.get(task, {})
        cells = [str(cal.get(k, 0 if cal and k in ("skipped", "at_chance") else "–")) for k in columns]
        zero = zeros.get(task)
        st = paired.per_task.get(task)
        lines.append(f"| {task} | " + " | ".join(cells) + f" | {int(used.get(task, 0))} | "
                     + (f"{zero[0]}/{zero[1]}" if zero else "–") + f" | {st.verdict if st else 'n/a'} |")
    lines.append("")
    for task in tasks:
        cal = per_task.get(task, {})
        if cal.get("at_chance") is not None and "mean_reward" in cal:
            lines += [f"{task}: the base policy's calibration samples earned {cal['mean_reward']:.2f} on average "
                      f"where blind guessing earns {cal['chance']:.2f}, so the prompts it solved sometimes were "
                      "guesses, not reading; training on them only sharpens the policy's favourite answer "
                      "(`data.calibration_min_z`).", ""]
    return lines


def write_report(run_dir: Path, *, cfg_dict: dict[str, Any], before: EvalResult, after: EvalResult,
                 paired: PairedAnalysis, history: Sequence[dict[str, Any]], timings: dict[str, float],
                 plots: Sequence[Path], header: Sequence[str] = (),
                 curve: Mapping[int, Mapping[str, float]] | None = None, curve_prompts: int = 0,
                 curve_every: int = 0, train_max_tokens: int | None = None,
                 calibration: Mapping[str, Any] | None = None,
                 before_rows: Sequence[Mapping[str, Any]] = ()) -> Path:
    """Write ``report.md``: the paired before/after table with the outcome against the target,
    the table by context length, the held-out curve, training trends, plots, timings and the
    exact config. Returns its path."""
    lines = ["# golongrl main job report", ""]
    lines += list(header) + [""] if header else []
    lines += paired_section(paired)
    lines += length_section(paired, train_max_tokens=train_max_tokens)
    lines += curve_section(curve or {}, prompts=curve_prompts, every=curve_every)
    lines += signal_section(calibration, history, before_rows, paired)
    if before.dropped_overlong or after.dropped_overlong:
        lines.append(f"Evaluation prompts dropped as over-long: {before.dropped_overlong}.")
    for label, res in (("before", before), ("after", after)):
        if res.reasons:
            listed = ", ".join(f"{k}: {v}" for k, v in sorted(res.reasons.items()))
            lines.append(f"Zero-reward reasons {label} training (responses): {listed}.")
    lines.append("")
    history = [row for row in history if row.get("step", 0) > 0]  # step 0 holds only the curve's base point
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
    if "heldout_curve_s" in timings:
        lines += ["`heldout_curve_s` (the held-out curve's evaluations) is part of `train_s`.", ""]
    lines += ["## Config", "", "```yaml", yaml.safe_dump(cfg_dict, sort_keys=False).rstrip(), "```", ""]
    path = run_dir / "report.md"
    with atomic_output(path, "w") as handle:
        handle.write("\n".join(lines))
    return path

