"""``golongrl simulate``: the controlled multitask experiment comparing advantage estimators."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import typer

DEFAULT_CLIPS = (1.0, 0.05)


def simulate(
    out_dir: Path = typer.Option(Path("runs/simulate"), "--output", "--out-dir", "-o", help="Where the JSON and PNGs go."),
    estimators: str = typer.Option(
        "grpo,qwenlong_task_norm,tmn,tmn_reweight,dr_grpo", help="Comma-separated estimator names."
    ),
    seeds: int = typer.Option(3, min=1, help="Seeds 0..N-1; every estimator sees the same ones."),
    steps: int = typer.Option(150, min=1, help="Training steps per run."),
    grad_clip: list[float] = typer.Option(
        list(DEFAULT_CLIPS), help="Global grad-norm clip; repeat for several regimes (1.0: loose, 0.05: binding)."
    ),
    lr: float = typer.Option(30.0, min=0.0, help="SGD learning rate on the logits."),
) -> None:
    """Train a softmax-policy toy on five GoLongRL-like tasks with each estimator and compare.

    Prints a table per clip regime and writes ``simulate-clip<C>.json``, ``-curves.png``
    (per-task reward curves) and ``-shares.png`` (per-task gradient share vs rate_num).
    """
    from rich.console import Console
    from rich.progress import Progress

    from golongrl.advantages import ESTIMATORS
    from golongrl.data.io import atomic_output
    from golongrl.simulation import SimulationConfig, plot_simulation, run_simulation, simulation_tables

    names = tuple(name.strip() for name in estimators.split(",") if name.strip())
    unknown = [name for name in names if name not in ESTIMATORS]
    if unknown or not names:
        raise typer.BadParameter(f"unknown estimator(s) {unknown}; choose from {sorted(ESTIMATORS)}",
                                 param_hint="--estimators")
    console = Console(width=max(Console().width, 150))
    base = SimulationConfig(estimators=names, seeds=tuple(range(seeds)), steps=steps, lr=lr)
    written: list[str] = []
    for clip in grad_clip:
        if clip <= 0:
            raise typer.BadParameter(f"must be > 0, got {clip}", param_hint="--grad-clip")
        config = replace(base, grad_clip=clip)
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"grad clip {clip}", total=len(names) * seeds * steps)
            result = run_simulation(config, progress=lambda: progress.advance(task))
        for table in simulation_tables(result):
            console.print(table)
        stem = out_dir / f"simulate-clip{clip:g}"
        payload: dict[str, Any] = result.to_json()
        with atomic_output(f"{stem}.json", "w") as handle:
            json.dump(payload, handle, indent=1)
        plot_simulation(result, f"{stem}-curves.png", f"{stem}-shares.png")
        written += [f"{stem}.json", f"{stem}-curves.png", f"{stem}-shares.png"]
    console.print("wrote " + ", ".join(written))


def register(app: typer.Typer, data_app: typer.Typer) -> None:
    """Add ``golongrl simulate``."""
    app.command("simulate")(simulate)
