"""``golongrl score DATA RESPONSES``: score saved responses against a dataset's gold."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import typer

from golongrl.rewards.scoring import (
    MODES,
    REASON_ERROR,
    REASON_FORMAT,
    REASON_GOLD,
    REASON_PARSE,
    REASON_TIMEOUT,
)

#: Why a zero was not a plain wrong answer, one table column each (``gold``: the row itself
#: cannot be scored, which faithful mode lets through to scoring).
_REASON_COLUMNS = (REASON_FORMAT, REASON_PARSE, REASON_TIMEOUT, REASON_ERROR, REASON_GOLD)


def _load_responses(path: Path) -> list[tuple[int, str]]:
    """``(dataset row index, response)`` pairs from a JSONL of responses."""
    from golongrl.data.io import read_records
    from golongrl.data.schema import DataError

    out: list[tuple[int, str]] = []
    for number, row in read_records(path):
        response = row.get("response", row.get("solution_str"))
        if not isinstance(response, str):
            raise DataError('needs a string field "response"', source=path, row=number)
        index = row.get("index", len(out))
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise DataError('field "index" must be a non-negative integer', source=path, row=number)
        out.append((index, response))
    return out


def score_files(
    data: Path,
    responses: Path,
    *,
    mode: str = "hardened",
    timeout_s: float = 10.0,
    workers: int | None = None,
    require_think: bool | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Score a responses JSONL against a dataset file; return the JSON-ready report.

    Each response line has ``response`` (or ``solution_str``) and an optional ``index``: the
    0-based dataset row it answers (default: its own position), so several rollouts of one
    prompt can share an index.
    """
    from golongrl.data.io import read_records
    from golongrl.data.schema import DataError, normalize_record, validate_record
    from golongrl.rewards.batch import ScoreRequest, score_batch

    # Hardened scoring checks every row up front, so a bad gold is reported with the dataset's
    # file, row and field; faithful mode scores rows the way the reference does, quirks included.
    check = validate_record if mode == "hardened" else normalize_record
    rows = [check(row, source=data, row=n) for n, row in read_records(data)]
    pairs = _load_responses(responses)
    requests = []
    for line, (index, response) in enumerate(pairs, start=1):
        if index >= len(rows):
            raise DataError(
                f"index {index} is past the dataset's {len(rows)} rows", source=responses, row=line
            )
        row = rows[index]
        gt = (row.get("reward_model") or {}).get("ground_truth")
        requests.append(
            ScoreRequest(row.get("data_source", ""), response, gt, row.get("extra_info"))
        )
    options = {} if require_think is None else {"require_think": require_think}
    results = score_batch(
        requests, mode=mode, timeout_s=timeout_s, workers=workers, progress=progress, **options
    )
    per_task: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"n": 0, "score_sum": 0.0, "reasons": defaultdict(int)}
    )
    for r in results:
        agg = per_task[r.task]
        agg["n"] += 1
        agg["score_sum"] += r.score
        if r.reason:
            agg["reasons"][r.reason] += 1
    summary = {
        task: {"n": a["n"], "mean_score": a["score_sum"] / a["n"], "reasons": dict(a["reasons"])}
        for task, a in sorted(per_task.items())
    }
    return {
        "mode": mode,
        "data": str(data),
        "responses": str(responses),
        "n": len(results),
        "mean_score": sum(r.score for r in results) / len(results) if results else 0.0,
        "per_task": summary,
        "items": [
            {"index": idx, "task": r.task, "score": r.score, "reason": r.reason}
            for (idx, _), r in zip(pairs, results)
        ],
    }


def register(app: typer.Typer, data_app: typer.Typer) -> None:
    """Add ``golongrl score`` to the CLI."""

    @app.command("score")
    def score(
        data: Path = typer.Argument(
            ..., help="Dataset rows (.jsonl or .parquet), verl/GoLongRL schema."
        ),
        responses: Path = typer.Argument(
            ..., help='JSONL with "response" per line and optional 0-based dataset "index".'
        ),
        mode: str = typer.Option("hardened", help=f"Scoring mode: {' or '.join(MODES)}."),
        out: Path = typer.Option(
            None, "--output", "--out", "-o",
            help="Write the JSON report here (default: RESPONSES.scores.json).",
        ),
        timeout: float = typer.Option(10.0, help="Per-sample time cap in seconds."),
        workers: int = typer.Option(
            None, help="Worker processes (default: all CPUs; 0 = in-process)."
        ),
        require_think: bool = typer.Option(
            None, "--require-think/--no-require-think",
            help="Demand a </think> (default: on in faithful, off in hardened).",
        ),
    ) -> None:
        """Score responses against a dataset's gold; print a per-task table and write JSON."""
        from rich import box
        from rich.console import Console
        from rich.table import Table

        from golongrl.data.io import atomic_output, remove_orphans
        from golongrl.data.schema import DataError
        from golongrl.rewards.ground_truth import GroundTruthError
        from golongrl.tasks import UnknownTaskError

        if mode not in MODES:
            raise typer.BadParameter(f"must be one of {', '.join(MODES)}", param_hint="--mode")
        try:
            report = score_files(
                data, responses, mode=mode, timeout_s=timeout, workers=workers,
                require_think=require_think, progress=True,
            )
        except (DataError, GroundTruthError, UnknownTaskError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(code=2) from None
        # Compact (no vertical rules), so all eight columns fit 80 characters untruncated.
        table = Table(title=f"golongrl score ({mode})", box=box.SIMPLE_HEAD, show_edge=False,
                      collapse_padding=True)
        for column in ("task", "n", "mean score", *_REASON_COLUMNS):
            table.add_column(column, justify="left" if column == "task" else "right", no_wrap=True)
        totals: dict[str, int] = defaultdict(int)
        for task, row in report["per_task"].items():
            reasons = row["reasons"]
            for k, count in reasons.items():
                totals[k] += count
            table.add_row(
                task, str(row["n"]), f"{row['mean_score']:.4f}",
                *(str(reasons.get(k, 0)) for k in _REASON_COLUMNS),
            )
        table.add_row("all", str(report["n"]), f"{report['mean_score']:.4f}",
                      *(str(totals[k]) for k in _REASON_COLUMNS))
        Console().print(table)
        target = out or responses.with_suffix(".scores.json")
        remove_orphans(target.parent, re.escape(target.name))
        with atomic_output(target, "w") as handle:
            json.dump(report, handle, ensure_ascii=False, indent=1)
        typer.echo(f"wrote {target}")

    @app.command("audit")
    def audit(
        data: Path = typer.Argument(
            ..., help="Dataset rows (.jsonl/.parquet) or a built dataset folder (all its splits)."
        ),
        mode: str = typer.Option("hardened", help=f"Scoring mode: {' or '.join(MODES)}."),
        out: Path = typer.Option(
            None, "--output", "--out", "-o",
            help="Folder for audit.json and audit.png (default: DATA's folder / audit).",
        ),
        model: str = typer.Option(
            None, "--model",
            help="Also probe a policy without the context (a make_backend spec: tiny, smollm2, "
            "openai:URL#model).",
        ),
        gate: float = typer.Option(
            0.3, help="Flag a strategy whose mean reward exceeds max(task chance, GATE)."
        ),
        probe_tokens: int = typer.Option(128, help="Max new tokens of the context-free probe."),
    ) -> None:
        """Score gold-independent strategies on every task; flag any the reward pays.

        Prints a table per task (each strategy's mean reward beside the gold's), writes
        audit.json and audit.png, and exits with status 1 if anything is flagged.
        """
        from rich.console import Console
        from rich.table import Table

        from golongrl.audit import audit_rows, report, rows_of, write_report
        from golongrl.data.schema import DataError

        if mode not in MODES:
            raise typer.BadParameter(f"must be one of {', '.join(MODES)}", param_hint="--mode")
        try:
            rows = rows_of(data)
        except (DataError, FileNotFoundError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(code=2) from None
        backend = None
        if model:
            from golongrl.inference import make_backend

            backend = make_backend(model)
        audits = audit_rows(rows, mode=mode, gate=gate, backend=backend,
                            probe_tokens=probe_tokens, progress=True)
        result = report(audits, data=str(data), mode=mode, gate=gate)
        console = Console()
        for name, a in audits.items():
            table = Table(title=f"{name}: {a.rows} rows, threshold {a.threshold:.2f}")
            for column in ("strategy", "rows", "mean reward", ""):
                table.add_column(column, justify="left" if column in ("strategy", "") else "right")
            table.add_row("gold", str(a.rows), f"{a.gold:.3f}", "[red]LOW[/]" if "gold" in a.flagged else "")
            for strategy, (mean, n) in a.strategies.items():
                flag = "[red]PAID[/]" if strategy in a.flagged else ""
                table.add_row(strategy, str(n), f"{mean:.3f}", flag)
            console.print(table)
        target = out or (data if data.is_dir() else data.parent) / "audit"
        json_path, png_path = write_report(result, audits, target)
        verdict = "passed" if result["passed"] else f"FLAGGED: {result['flagged']}"
        typer.echo(f"audit {verdict}; wrote {json_path} and {png_path}")
        if not result["passed"]:
            raise typer.Exit(code=1)
