"""The controlled multitask experiment (same code as ``golongrl simulate``), with each
estimator's learning compared to GRPO's as a ratio, run side by side in one process.

    .venv/bin/python benchmarks/simulate.py [--seeds 3] [--steps 150] [--out-dir runs/simulate]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

from golongrl.simulation import SimulationConfig, plot_simulation, run_simulation, simulation_tables

BASELINE = "grpo"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--out-dir", type=Path, default=Path("runs/simulate"))
    args = parser.parse_args()
    console = Console(width=max(Console().width, 150))
    base = SimulationConfig(seeds=tuple(range(args.seeds)), steps=args.steps)
    start = time.perf_counter()
    for clip in (1.0, 0.05):
        result = run_simulation(replace(base, grad_clip=clip))
        for table in simulation_tables(result):
            console.print(table)
        ratios = Table(title=f"grad clip {clip}: learning relative to {BASELINE} (final and area under the curve)")
        for column in ("estimator", "headroom", "hard headroom", "AUC", "hard AUC"):
            ratios.add_column(column, justify="left" if column == "estimator" else "right")
        ref_final, ref_auc = result.final[BASELINE], result.auc[BASELINE]
        for estimator in result.config.estimators:
            final, auc = result.final[estimator], result.auc[estimator]
            ratios.add_row(
                estimator,
                f"{final['headroom'][0] / ref_final['headroom'][0]:.2f}x",
                f"{final['headroom/hard'][0] / ref_final['headroom/hard'][0]:.2f}x",
                f"{auc['headroom'] / ref_auc['headroom']:.2f}x",
                f"{auc['headroom/hard'] / ref_auc['headroom/hard']:.2f}x",
            )
        console.print(ratios)
        stem = args.out_dir / f"simulate-clip{clip:g}"
        plot_simulation(result, f"{stem}-curves.png", f"{stem}-shares.png")
    console.print(f"wall time {time.perf_counter() - start:.1f} s for 2 regimes x {len(base.estimators)} estimators "
                  f"x {args.seeds} seeds x {args.steps} steps; plots in {args.out_dir}")


if __name__ == "__main__":
    main()
