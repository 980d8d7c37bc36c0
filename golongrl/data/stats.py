"""``golongrl data stats``: diagnostics of a dataset file as a table and PNG plots.

Per-task counts (by split), context-length and pass-rate histograms, and the domain mix. Works
on golongrl builds and on the published GoLongRL files (fields golongrl adds, such as
``context_tokens`` or ``domain``, are measured or shown as missing when absent).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from golongrl.data.io import read_records
from golongrl.data.schema import prompt_text, record_task, validate_record
from golongrl.tasks import TASK_TYPES


@dataclass
class DatasetStats:
    """Aggregates of one dataset file."""

    rows: int = 0
    per_task: Counter[str] = field(default_factory=Counter)
    per_split: Counter[str] = field(default_factory=Counter)
    per_domain: Counter[str] = field(default_factory=Counter)
    per_difficulty: Counter[str] = field(default_factory=Counter)
    lengths: dict[str, list[int]] = field(default_factory=dict)
    pass_rates: dict[str, list[float]] = field(default_factory=dict)
    length_unit: str = "tokens"


def collect(rows: Iterable[dict[str, Any]], counter: Any | None = None) -> DatasetStats:
    """Aggregate normalised rows. Length is ``extra_info.context_tokens`` when present, else the
    prompt measured with ``counter`` (tokens) or, without one, in characters."""
    stats = DatasetStats()
    if counter is None:
        stats.length_unit = "tokens (characters where not recorded)"
    for row in rows:
        info = row.get("extra_info") or {}
        task = record_task(row)
        stats.rows += 1
        stats.per_task[task] += 1
        stats.per_split[str(info.get("split") or "-")] += 1
        stats.per_domain[str(info.get("domain") or "unknown")] += 1
        if info.get("difficulty"):
            stats.per_difficulty[str(info["difficulty"])] += 1
        length = info.get("context_tokens")
        if not isinstance(length, int):
            text = prompt_text(row)
            length = counter.count(text) if counter is not None else len(text)
        stats.lengths.setdefault(task, []).append(length)
        rate = info.get("pass_rate_small")
        if isinstance(rate, (int, float)):
            stats.pass_rates.setdefault(task, []).append(float(rate))
    return stats


def load_stats(path: str | Path, counter: Any | None = None) -> DatasetStats:
    """:func:`collect` over a JSONL/parquet file (rows are validated on the way)."""
    return collect((validate_record(r, source=path, row=n) for n, r in read_records(path)), counter)


def render_table(stats: DatasetStats) -> Any:
    """A rich table: one line per task with count, share and length percentiles."""
    import numpy as np
    from rich.table import Table

    table = Table(title=f"{stats.rows} rows; lengths in {stats.length_unit}", show_footer=False)
    table.add_column("task", no_wrap=True, min_width=max(len(t) for t in TASK_TYPES))
    for name in ("rows", "share", "median", "p90", "max", "pass rate"):
        table.add_column(name, justify="right")
    for task in TASK_TYPES:
        n = stats.per_task.get(task, 0)
        lengths = stats.lengths.get(task, [])
        rates = stats.pass_rates.get(task, [])
        table.add_row(
            task,
            str(n),
            f"{n / stats.rows:.1%}" if stats.rows else "-",
            f"{np.median(lengths):.0f}" if lengths else "-",
            f"{np.percentile(lengths, 90):.0f}" if lengths else "-",
            f"{max(lengths)}" if lengths else "-",
            f"{np.mean(rates):.2f}" if rates else "-",
        )
    return table


def save_plots(stats: DatasetStats, out_dir: str | Path) -> list[Path]:
    """Write ``lengths.png``, ``tasks_domains.png`` and (if calibrated) ``pass_rates.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    fig, ax = plt.subplots(figsize=(8, 4.5))
    tasks = [t for t in TASK_TYPES if stats.lengths.get(t)]
    ax.hist([stats.lengths[t] for t in tasks], bins=20, stacked=True, label=tasks)
    ax.set_xlabel(f"context length ({stats.length_unit})")
    ax.set_ylabel("rows")
    ax.set_title("Context length by task")
    if tasks:
        ax.legend(fontsize=7)
    fig.tight_layout()
    written.append(out / "lengths.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    names = list(TASK_TYPES)
    left.barh(names, [stats.per_task.get(t, 0) for t in names])
    left.invert_yaxis()
    left.set_title("Rows per task")
    domains = sorted(stats.per_domain)
    right.bar(domains, [stats.per_domain[d] for d in domains])
    right.set_title("Domain mix (main document)")
    right.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    written.append(out / "tasks_domains.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)

    if stats.pass_rates:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        tasks = [t for t in TASK_TYPES if stats.pass_rates.get(t)]
        ax.hist([stats.pass_rates[t] for t in tasks], bins=[i / 10 for i in range(11)], stacked=True, label=tasks)
        ax.set_xlabel("pass rate of the calibration policy")
        ax.set_ylabel("rows")
        ax.set_title("Pass-rate histogram")
        ax.legend(fontsize=7)
        fig.tight_layout()
        written.append(out / "pass_rates.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    return written


__all__ = ["DatasetStats", "collect", "load_stats", "render_table", "save_plots"]
