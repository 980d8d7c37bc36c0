"""The markdown summary in the paper's table layout, and the sweep plots (PNG)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from golongrl.data.io import atomic_output

#: Paper table columns (golongrl-reference §8) and the benchmark filling each.
PAPER_COLUMNS: tuple[tuple[str, str], ...] = (
    ("DocMath", "docmath"),
    ("LBV2", "lbv2"),
    ("Frames", "frames"),
    ("MRCR", "mrcr"),
    ("CorpusQA", "corpusqa"),
    ("LBV1-QA", "lbv1qa"),
)

#: Published rows (golongrl-reference §8.1, §8.2): Avg then the six columns above.
PUBLISHED_ROWS: tuple[tuple[str, tuple[float, ...]], ...] = (
    ("Qwen3-4B-Thinking-2507", (53.0, 61.0, 40.2, 64.4, 38.4, 49.9, 64.0)),
    ("GoLongRL-4B (w. GRPO)", (62.2, 62.5, 45.5, 66.6, 67.5, 65.1, 65.9)),
    ("GoLongRL-4B (w. TMN-Reweight)", (63.0, 62.3, 47.1, 67.4, 65.5, 69.6, 65.9)),
    ("Qwen3-30B-A3B-Thinking-2507", (60.1, 63.3, 48.7, 70.2, 41.6, 70.5, 66.5)),
    ("GoLongRL-30B-A3B (GRPO)", (69.8, 65.3, 55.1, 74.5, 81.6, 73.6, 68.7)),
)


def _fmt(value: float | None) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.1f}"


def paper_table(model: str, summaries: Mapping[str, Mapping[str, Any]], *, published: bool = True) -> str:
    """Markdown table ``Model | Avg | DocMath | LBV2 | Frames | MRCR | CorpusQA | LBV1-QA``.

    Avg is the mean of the six columns and only shown when all six were run (a partial mean
    would not be comparable with the paper's)."""
    header = "| Model | Avg | " + " | ".join(c for c, _ in PAPER_COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(PAPER_COLUMNS) + 2)]
    scores = [summaries.get(name, {}).get("overall") for _, name in PAPER_COLUMNS]
    avg = sum(scores) / len(scores) if all(s is not None for s in scores) else None  # type: ignore[arg-type]
    lines.append(f"| **{model}** (this run) | {_fmt(avg)} | " + " | ".join(_fmt(s) for s in scores) + " |")
    if published:
        for name, row in PUBLISHED_ROWS:
            lines.append(f"| {name} (published) | " + " | ".join(_fmt(v) for v in row) + " |")
    return "\n".join(lines)


def breakdown_section(name: str, summary: Mapping[str, Any]) -> str:
    """Overall score, components and each breakdown of one benchmark as markdown."""
    lines = [f"### {name}: {_fmt(summary.get('overall'))} (n = {summary.get('n', 0)})"]
    components = summary.get("components") or {}
    if components:
        lines.append("components: " + ", ".join(f"{k} {_fmt(v)}" for k, v in components.items()))
    for key, values in (summary.get("by_group") or {}).items():
        lines.append("")
        lines.append(f"| {key} | score | n |")
        lines.append("|---|---|---|")
        lines.extend(f"| {value} | {_fmt(stats['score'])} | {stats['n']} |" for value, stats in values.items())
    return "\n".join(lines)


def markdown_report(
    model: str, summaries: Mapping[str, Mapping[str, Any]], *, extra: str = "", published: bool = True
) -> str:
    """The whole ``summary.md``: the paper table, then every benchmark's breakdowns."""
    parts = [f"# Evaluation of {model}", "", paper_table(model, summaries, published=published), ""]
    for name, summary in summaries.items():
        parts += [breakdown_section(name, summary), ""]
    if extra:
        parts.append(extra)
    return "\n".join(parts).rstrip() + "\n"


def write_text(path: Path, text: str) -> None:
    with atomic_output(path, "w") as handle:
        handle.write(text)


def _grid(rows: Sequence[Mapping[str, Any]]) -> tuple[list[int], list[str], list[list[float]]]:
    cells: dict[tuple[str, int], list[float]] = {}
    for row in rows:
        key = (row["groups"]["depth"], int(row["groups"]["length"]))
        cells.setdefault(key, []).append(float(row["score"]))
    lengths = sorted({length for _, length in cells})
    depths = sorted({depth for depth, _ in cells}, key=float)
    grid = [[100 * _mean(cells.get((d, length), [])) for length in lengths] for d in depths]
    return lengths, depths, grid


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def _length_label(n: int) -> str:
    return f"{n // 1048576}M" if n >= 1048576 and n % 1048576 == 0 else f"{round(n / 1024)}K"


def plot_sweep(task: str, rows: Sequence[Mapping[str, Any]], out_dir: Path) -> list[Path]:
    """``sweep-<task>-heatmap.png`` (depth x length, score 0-100) and ``sweep-<task>-curve.png``
    (mean over depths vs length, log2 axis). ``rows``: prediction rows with groups and score."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lengths, depths, grid = _grid(rows)
    paths = []
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(lengths), 1.2 + 0.6 * len(depths)))
    image = ax.imshow(grid, vmin=0, vmax=100, cmap="RdYlGn", aspect="auto")
    ax.set_xticks(range(len(lengths)), [_length_label(n) for n in lengths])
    ax.set_yticks(range(len(depths)), [f"{float(d):.0%}" for d in depths])
    ax.set_xlabel("context length (tokens)")
    ax.set_ylabel("needle depth")
    ax.set_title(f"sweep: {task}")
    for i, row in enumerate(grid):
        for j, value in enumerate(row):
            if not math.isnan(value):
                ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=8)
    fig.colorbar(image, ax=ax, label="score")
    fig.tight_layout()
    paths.append(_save(fig, out_dir / f"sweep-{task}-heatmap.png"))
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 3.5))
    means = [_mean([grid[i][j] for i in range(len(depths)) if not math.isnan(grid[i][j])]) for j in range(len(lengths))]
    ax.plot(lengths, means, marker="o")
    ax.set_xscale("log", base=2)
    ax.set_xticks(lengths, [_length_label(n) for n in lengths])
    ax.set_ylim(0, 100)
    ax.set_xlabel("context length (tokens)")
    ax.set_ylabel("score (mean over depths)")
    ax.set_title(f"sweep: {task}")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    paths.append(_save(fig, out_dir / f"sweep-{task}-curve.png"))
    plt.close(fig)
    return paths


def _save(fig: Any, path: Path) -> Path:
    with atomic_output(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=120)
    return path
