"""``golongrl audit``: prove that a reward pays only for doing the task.

For every task type in a dataset, every row is answered by each of the task's gold-independent
strategies (:meth:`golongrl.tasks.Task.baselines`: echo the question, list every candidate in
the given order or reversed, a constant label, the title, all table rows, ...) plus
``another_row_gold`` (the reference response of a different row of the same task), and - with
a model - ``context_free_probe``: the policy's answer to the question alone, without the
context.  Each strategy's mean reward is reported beside the gold's (the task's reference
response), and a strategy is *flagged* when it earns more than ``max(task.chance, gate)``; a
gold below 1 is flagged too.  The data pipeline uses the audit as its gate.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from golongrl.rewards.options import MODES, ScoreOptions
from golongrl.tasks import TASK_TYPES, Task, get_task
from golongrl.tasks.base import row_question

#: A strategy earning more than this (or the task's chance, if higher) is flagged.
DEFAULT_GATE = 0.3
GOLD = "gold"
OTHER_ROW_GOLD = "another_row_gold"
PROBE = "context_free_probe"
_PERFECT = 1.0 - 1e-6
EMPTY_THINK = "<think>\n</think>\n"


@dataclass
class TaskAudit:
    """One task's audit: the number of rows, the gold's mean reward, and each strategy's
    ``(mean reward, rows it applied to)``."""

    task: str
    rows: int
    chance: float
    threshold: float
    gold: float
    strategies: dict[str, tuple[float, int]] = field(default_factory=dict)

    @property
    def flagged(self) -> list[str]:
        """Strategies above the threshold, and ``gold`` when the gold is not paid in full."""
        out = [name for name, (mean, _) in self.strategies.items() if mean > self.threshold + 1e-9]
        if self.gold < _PERFECT:
            out.insert(0, GOLD)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "chance": self.chance,
            "threshold": self.threshold,
            "gold": self.gold,
            "strategies": {k: {"mean": m, "n": n} for k, (m, n) in self.strategies.items()},
            "flagged": self.flagged,
        }


def rows_of(data: Path) -> list[dict[str, Any]]:
    """Validated rows of a dataset file, or of every ``*.jsonl`` split in a built dataset
    folder (``documents.jsonl`` and ``failures.jsonl`` excepted)."""
    from golongrl.data.io import read_valid_records

    if data.is_dir():
        files = sorted(p for p in data.glob("*.jsonl") if p.stem not in ("documents", "failures"))
        if not files:
            raise FileNotFoundError(f"{data}: no dataset split (*.jsonl) in this folder")
    else:
        files = [data]
    return [row for path in files for _, row in read_valid_records(path)]


def _probe_answers(backend: Any, tasks_rows: Mapping[str, list[dict[str, Any]]],
                   max_new_tokens: int, progress: bool) -> dict[tuple[str, int], str]:
    """The model's answer to each question without its context (question + instruction)."""
    from golongrl.inference import GenerationRequest, SamplingParams, chat

    keys, requests = [], []
    sampling = SamplingParams(max_new_tokens=max_new_tokens, temperature=0.0, enable_thinking=False)
    for name, rows in tasks_rows.items():
        task = get_task(name)
        for i, row in enumerate(rows):
            keys.append((name, i))
            requests.append(GenerationRequest(chat(f"{row_question(row)}\n\n{task.instruction}"), sampling))
    generations = backend.generate(requests, progress=progress)
    return {key: (g.texts[0] if g.texts else "") for key, g in zip(keys, generations)}


def _other_row(rows: Sequence[Mapping[str, Any]], i: int) -> int | None:
    """The next row (cyclically) that asks a different question; a row repeating this one's
    question would make its gold this row's correct answer, not a blind one."""
    question = row_question(rows[i])
    for step in range(1, len(rows)):
        j = (i + step) % len(rows)
        if row_question(rows[j]) != question:
            return j
    return None


def _score(task: Task, gold: Any, response: str, mode: str, options: ScoreOptions) -> float:
    """The reward of ``response``; in faithful mode an answer without a think block gets an
    empty one, so the audit measures the metric rather than the reference's format gate."""
    from golongrl.rewards.scoring import Prepared, score_prepared

    if mode == "faithful" and "</think>" not in response:
        response = EMPTY_THINK + response
    return score_prepared(Prepared(task.name, gold), response, mode, options)[0]


def audit_rows(
    rows: Sequence[Mapping[str, Any]],
    *,
    mode: str = "hardened",
    gate: float = DEFAULT_GATE,
    backend: Any = None,
    probe_tokens: int = 128,
    progress: bool = False,
) -> dict[str, TaskAudit]:
    """Audit validated rows (each carrying ``extra_info.task_type``); one entry per task present.

    ``backend`` (an :class:`golongrl.inference.InferenceBackend`) adds the context-free probe.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    from golongrl.data.schema import record_task

    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_task[record_task(row)].append(dict(row))
    probes = _probe_answers(backend, by_task, probe_tokens, progress) if backend is not None else {}
    options = ScoreOptions()
    out: dict[str, TaskAudit] = {}
    for name in [t for t in TASK_TYPES if t in by_task]:
        task, task_rows = get_task(name), by_task[name]
        golds = [
            task.parse_gold(r["reward_model"]["ground_truth"], r.get("extra_info"),
                            data_source=r.get("data_source"), strict=mode == "hardened")
            for r in task_rows
        ]
        sums: dict[str, list[float]] = defaultdict(list)
        gold_scores = []
        for i, (row, gold) in enumerate(zip(task_rows, golds)):
            gold_scores.append(_score(task, gold, task.reference_response(gold), mode, options))
            answers = dict(task.baselines(row))
            other = _other_row(task_rows, i)
            if other is not None:
                answers[OTHER_ROW_GOLD] = task.reference_response(golds[other])
            if (name, i) in probes:
                answers[PROBE] = probes[(name, i)]
            for strategy, response in answers.items():
                sums[strategy].append(_score(task, gold, response, mode, options))
        out[name] = TaskAudit(
            task=name,
            rows=len(task_rows),
            chance=task.chance,
            threshold=max(task.chance, gate),
            gold=sum(gold_scores) / len(gold_scores),
            strategies={s: (sum(v) / len(v), len(v)) for s, v in sorted(sums.items())},
        )
    return out


def report(audits: Mapping[str, TaskAudit], *, data: str, mode: str, gate: float) -> dict[str, Any]:
    """The JSON-ready audit report; ``passed`` is true when nothing is flagged."""
    flagged = {name: a.flagged for name, a in audits.items() if a.flagged}
    return {
        "data": data,
        "mode": mode,
        "gate": gate,
        "passed": not flagged,
        "flagged": flagged,
        "tasks": {name: a.to_json() for name, a in audits.items()},
    }


def write_plot(audits: Mapping[str, TaskAudit], path: Path) -> None:
    """A PNG bar chart: one panel per task, the gold's bar and each strategy's, the threshold
    as a dashed line; written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from golongrl.data.io import atomic_output

    names = list(audits)
    cols = min(3, max(1, len(names)))
    nrows = max(1, math.ceil(len(names) / cols))
    fig, axes = plt.subplots(nrows, cols, figsize=(6 * cols, 3.6 * nrows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        audit = audits[name]
        labels = [GOLD, *audit.strategies]
        values = [audit.gold, *(m for m, _ in audit.strategies.values())]
        colors = ["tab:green"] + [
            "tab:red" if v > audit.threshold + 1e-9 else "tab:blue" for v in values[1:]
        ]
        ax.barh(range(len(labels)), values, color=colors)
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.invert_yaxis()
        ax.axvline(audit.threshold, color="black", linestyle="--", linewidth=1)
        ax.set_xlim(0, 1.05)
        ax.set_title(f"{name} ({audit.rows} rows)", fontsize=9)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.suptitle("golongrl audit: mean reward per strategy (red: above the gate)")
    fig.tight_layout()
    with atomic_output(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=110)
    plt.close(fig)


def write_report(result: Mapping[str, Any], audits: Mapping[str, TaskAudit], out_dir: Path) -> tuple[Path, Path]:
    """Write ``audit.json`` and ``audit.png`` into ``out_dir`` (atomically); return both paths."""
    from golongrl.data.io import atomic_output

    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, png_path = out_dir / "audit.json", out_dir / "audit.png"
    with atomic_output(json_path, "w") as handle:
        json.dump(result, handle, ensure_ascii=False, indent=1)
    write_plot(audits, png_path)
    return json_path, png_path


__all__ = [
    "DEFAULT_GATE",
    "TaskAudit",
    "audit_rows",
    "report",
    "rows_of",
    "write_plot",
    "write_report",
]
