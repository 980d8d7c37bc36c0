"""CLI: ``golongrl train``, ``golongrl evaluate`` and ``golongrl main``."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Optional

import typer

from golongrl.cli.errors import fail as _fail

_CONFIG_HELP = "Training config YAML (see configs/*.yaml and docs/training.md)."
_SET_HELP = "Override a config key, e.g. --set rollout.n=4 --set model.lora.enabled=true (repeatable)."


def _load(config: Path, overrides: list[str], quick: bool, *, allow_config_change: bool = False):  # -> TrainConfig
    from golongrl.training.config import ConfigError, load_config

    if allow_config_change:
        overrides = [*overrides, "checkpoint.allow_config_change=true"]
    try:
        cfg = load_config(config, overrides=overrides, quick=quick)
    except ConfigError as err:
        _fail(str(err))
    return cfg


def _train_with_verl(config: Path, output: Path, overrides: list[str], dry_run: bool) -> None:
    """Hand the run to verl (optional extra) through the golongrl plugin's launcher."""
    from golongrl.training.config import ConfigError

    try:
        from golongrl.engines.verl import launcher
    except ImportError as err:
        _fail(f"{err}\nInstall the verl extra from the repository: pip install -e '.[verl]'")
    try:
        job = launcher.load_job(config, [*overrides, f"verl.output_dir={output.resolve()}"])
        if dry_run:
            typer.echo(launcher.dry_run(job))
            return
        code = launcher.launch(job)
    except ConfigError as err:
        _fail(str(err))
    raise typer.Exit(code)


def _train_with_trl(config: Path, output: Path, overrides: list[str]) -> None:
    """Train with TRL's GRPOTrainer (optional extra) and golongrl's rewards and estimators."""
    from golongrl.training.config import ConfigError

    try:
        from golongrl.engines.trl import launcher
    except ImportError as err:
        _fail(f"{err}\nInstall the trl extra: pip install -e '.[trl]'")
    try:
        job = launcher.load_job(config, overrides)
        launcher.launch(job, output)
    except ConfigError as err:
        _fail(str(err))
    typer.echo(f"trained with TRL; run folder: {output}")


def register(app: typer.Typer, data_app: typer.Typer) -> None:
    del data_app  # training adds no data subcommands

    @app.command("train")
    def train(
        config: Path = typer.Option(..., "--config", "-c", help=_CONFIG_HELP, exists=True, dir_okay=False),
        output: Path = typer.Option(..., "--output", "-o", help="Run folder (metrics.jsonl, tensorboard/, checkpoints/, plots/)."),
        overrides: list[str] = typer.Option([], "--set", help=_SET_HELP),
        quick: bool = typer.Option(False, "--quick", help="Apply the config's `quick:` overrides (a short run)."),
        engine: str = typer.Option("local", "--engine", help="local: this machine's trainer; verl: multi-GPU/multi-node through the golongrl verl plugin (configs/verl-*.yaml); trl: TRL's GRPOTrainer on one GPU (configs/trl-*.yaml)."),
        dry_run: bool = typer.Option(False, "--dry-run", help="With --engine verl: print the resolved verl command and config, start nothing."),
        allow_config_change: bool = typer.Option(False, "--allow-config-change", help="Resume OUTPUT's checkpoint even though the settings changed (they are refused otherwise, naming the keys)."),
    ) -> None:
        """Train a policy with GoLongRL's algorithm on one machine (CPU or one accelerator), or
        on a GPU cluster through verl with ``--engine verl``.

        Resumes from the newest checkpoint in OUTPUT when there is one.
        """
        if engine == "verl":
            _train_with_verl(config, output, overrides, dry_run)
            return
        if engine == "trl" and not dry_run:
            _train_with_trl(config, output, overrides)
            return
        if engine not in ("local", "trl"):
            _fail(f"--engine must be 'local', 'verl' or 'trl', got {engine!r}")
        if dry_run:
            _fail("--dry-run applies to --engine verl only")
        from golongrl.data.schema import DataError
        from golongrl.training.report import plot_training
        from golongrl.training.tracking import read_metrics
        from golongrl.training.trainer import Trainer

        cfg = _load(config, overrides, quick, allow_config_change=allow_config_change)
        try:
            trainer = Trainer(cfg, output)
        except (DataError, ValueError) as err:
            _fail(str(err))
        trainer.train()
        if cfg.logging.plots:
            plot_training(read_metrics(output / "metrics.jsonl"), output / "plots")
        typer.echo(f"trained {trainer.step} steps; run folder: {output}")

    @app.command("evaluate")
    def evaluate(
        model: str = typer.Option(..., "--model", "-m", help="Model spec: HF folder (e.g. RUN/final), smollm2, tiny:<seed>, or openai:<url>#<model>."),
        data: list[Path] = typer.Option(..., "--data", "-d", help="Dataset split file(s) (.jsonl/.parquet, golongrl schema)."),
        output: Path = typer.Option(..., "--output", "-o", help="Output folder: results.json, predictions.jsonl, cache.sqlite."),
        config: Optional[Path] = typer.Option(None, "--config", "-c", help="Take evaluation/reward/rollout settings from this training config."),
        limit: Optional[int] = typer.Option(None, "--limit", min=1, help="At most this many prompts, round-robin over tasks."),
        temperature: Optional[float] = typer.Option(None, help="0 = greedy (default from config: 0)."),
        n: Optional[int] = typer.Option(None, help="Samples per prompt (scores are averaged)."),
        max_new_tokens: Optional[int] = typer.Option(None, help="Response cap."),
        batch_size: Optional[int] = typer.Option(None, help="Prompts generated together."),
        reward_mode: Optional[str] = typer.Option(None, help="hardened or faithful."),
    ) -> None:
        """Evaluate a policy on a golongrl dataset split: per-task reward, batched and resumable.

        Generations are cached in OUTPUT/cache.sqlite, so rerunning after an interrupt only
        generates what is missing.
        """
        from pydantic import ValidationError

        from golongrl.data.io import atomic_output, remove_orphans
        from golongrl.data.schema import DataError
        from golongrl.inference import load_tokenizer, make_backend, parse_openai_spec
        from golongrl.training.config import TrainConfig
        from golongrl.training.evaluate import evaluate_policy, select_rows
        from golongrl.training.main_job import eval_prompt_limit, eval_sampling
        from golongrl.training.trainer import load_rows

        cfg = _load(config, [], False) if config else TrainConfig()
        sets = {"temperature": temperature, "n": n, "max_new_tokens": max_new_tokens, "batch_size": batch_size}
        # Each option goes through the config's own validation, so --n 0 is refused like n: 0.
        options = [(cfg.evaluation, key, value) for key, value in sets.items() if value is not None]
        if reward_mode is not None:
            options.append((cfg.reward, "mode", reward_mode))
        for section, key, value in options:
            try:
                setattr(section, key, value)
            except ValidationError as err:
                flag = "--" + ("reward-mode" if key == "mode" else key.replace("_", "-"))
                _fail(f"{flag} {value}: {err.errors()[0]['msg']}")
        try:
            rows = select_rows([rec for _, _, rec in load_rows([str(p) for p in data])], limit)
        except DataError as err:
            _fail(str(err))
        if not rows:
            _fail(f"no rows to evaluate in {', '.join(map(str, data))}: the file(s) are empty")
        output.mkdir(parents=True, exist_ok=True)
        remove_orphans(output)
        local = parse_openai_spec(model) is None
        backend = make_backend(model, cache=output / "cache.sqlite",
                               **({"batch_size": cfg.evaluation.batch_size} if local else {}))
        result = evaluate_policy(backend, rows, sampling=eval_sampling(cfg), reward_mode=cfg.reward.mode,
                                 timeout_s=cfg.reward.timeout_s, workers=cfg.reward.workers,
                                 max_prompt_tokens=eval_prompt_limit(cfg) if local else None,
                                 tokenizer=load_tokenizer(model) if local else None, progress=True,
                                 output=output / "predictions.jsonl")
        with atomic_output(output / "results.json", "w") as handle:
            json.dump(result.to_dict(), handle, indent=2)
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"{model} on {len(rows)} prompts")
        for col in ("task", "prompts", "reward", "stderr"):
            table.add_column(col)
        for task, value in result.per_task.items():
            se = result.stderr[task]
            table.add_row(task, str(result.counts[task]), f"{value:.3f}", "n/a" if math.isnan(se) else f"{se:.3f}")
        table.add_row("all", str(sum(result.counts.values())), f"{result.overall:.3f}", "")
        Console().print(table)

    @app.command("main")
    def main(
        config: Path = typer.Option(Path("configs/cpu-demo.yaml"), "--config", "-c", help=_CONFIG_HELP, exists=True, dir_okay=False),
        output: Path = typer.Option(Path("runs/main"), "--output", "-o", help="Run folder (report.md, plots/, eval/, checkpoints/)."),
        overrides: list[str] = typer.Option([], "--set", help=_SET_HELP),
        quick: bool = typer.Option(False, "--quick", help="The config's `quick:` variant (about 5 minutes on 2 CPU cores)."),
    ) -> None:
        """The main job: build the default dataset, evaluate the base policy per task, train with
        TMN-Reweight, evaluate again, and write OUTPUT/report.md with plots and timings.

        Rerunning the same command resumes every phase.
        """
        from golongrl.data.schema import DataError
        from golongrl.training.main_job import run_main_job

        cfg = _load(config, overrides, quick)
        try:
            report = run_main_job(cfg, output, log=lambda m: typer.secho(m, fg=typer.colors.CYAN))
        except DataError as err:
            _fail(str(err))
        typer.echo(f"report: {report}")
        sys.stdout.flush()
