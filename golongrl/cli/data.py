"""``golongrl data build | validate | stats | export | import``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer, data_app: typer.Typer) -> None:
    """Attach the data commands to ``golongrl data``."""

    @data_app.command("build")
    def build(
        config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML config (default: the demo settings)."),
        output: Path = typer.Option(Path("runs/data"), "--output", "-o", help="Output folder (resumes if it holds a partial build)."),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="Rich progress per phase."),
    ) -> None:
        """Build a verified RL dataset (all four phases) from real documents.

        Killed and rerun with the same config and output folder, the build resumes and writes
        byte-identical files."""
        from rich.console import Console

        import shutil

        from golongrl.data.config import load_config
        from golongrl.data.io import remove_orphans
        from golongrl.data.pipeline import WORK_DIR, build_dataset

        console = Console()
        work = output / WORK_DIR
        fresh, created = not work.exists(), not output.exists()
        for folder in (output, work):
            remove_orphans(folder)
        try:
            result = build_dataset(load_config(config), output, progress=progress)
        except BaseException:
            # A build that failed before finishing any work (a missing corpus folder, a bad
            # tokenizer) leaves only its config record, which would refuse the corrected rerun.
            if fresh and work.is_dir() and {p.name for p in work.iterdir()} <= {"config.json"}:
                shutil.rmtree(work, ignore_errors=True)
                if created and output.is_dir() and not any(output.iterdir()):
                    output.rmdir()
            raise
        for split, counts in result.counts.items():
            console.print(f"{split}: {sum(counts.values())} rows " + ", ".join(f"{t}={n}" for t, n in counts.items()))
        if result.failures:
            console.print(f"construction retries: {sum(result.failures.values())} (see failures.jsonl)")
        if result.skipped_documents:
            console.print(f"skipped documents: {len(result.skipped_documents)} (see report.json)")
        if any(result.dropped.values()):
            console.print("dropped in refinement: " + ", ".join(f"{k}={v}" for k, v in result.dropped.items()))
        console.print(f"wrote {', '.join(result.files)} to {result.output_dir}")

    @data_app.command("validate")
    def validate(
        files: list[Path] = typer.Argument(..., help="JSONL or parquet dataset files."),
        max_errors: int = typer.Option(1000, help="Stop listing after this many errors per file."),
    ) -> None:
        """Check every row; print each malformed row's file, row number and field.

        One line per problem, never wrapped (grep-able); exit status 1 if any row is bad."""
        from golongrl.data.io import read_records
        from golongrl.data.schema import DataError, validate_record

        bad = 0
        for path in files:
            rows = errors = 0
            try:
                for number, row in read_records(path):
                    rows += 1
                    try:
                        validate_record(row, source=path, row=number)
                    except DataError as exc:
                        errors += 1
                        if errors <= max_errors:
                            typer.echo(str(exc))
            except DataError as exc:  # unreadable file or line: nothing after it can be read
                errors += 1
                typer.echo(str(exc))
            if rows == 0 and errors == 0:
                errors = 1  # an empty dataset is never what a pipeline meant to hand on
                typer.echo(f"{path}: no rows: the file is empty")
            bad += errors
            typer.echo(f"{path}: {rows} rows, {errors} malformed")
        if bad:
            raise typer.Exit(1)

    @data_app.command("stats")
    def stats(
        file: Path = typer.Argument(..., help="Dataset file (JSONL or parquet)."),
        plots: Optional[Path] = typer.Option(None, "--plots", help="Folder for PNG plots (default: beside the file)."),
        tokenizer: str = typer.Option("smollm2", help="Measures prompts that carry no context_tokens field."),
    ) -> None:
        """Per-task counts, length and pass-rate histograms, domain mix: a table and PNGs."""
        from rich.console import Console

        from golongrl.data.schema import DataError
        from golongrl.data.stats import load_stats, render_table, save_plots
        from golongrl.data.tokens import get_counter

        console = Console()
        try:
            result = load_stats(file, get_counter(tokenizer))
        except DataError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
        console.print(render_table(result))
        console.print("splits: " + ", ".join(f"{k}={v}" for k, v in sorted(result.per_split.items())))
        console.print("domains: " + ", ".join(f"{k}={v}" for k, v in sorted(result.per_domain.items())))
        if result.per_difficulty:
            console.print("difficulty: " + ", ".join(f"{k}={v}" for k, v in sorted(result.per_difficulty.items())))
        out = plots if plots is not None else file.parent / f"{file.stem}-stats"
        for path in save_plots(result, out):
            console.print(f"wrote {path}")

    @data_app.command("export")
    def export(
        file: Path = typer.Argument(..., help="Dataset file (JSONL or parquet)."),
        output: Path = typer.Option(..., "--output", "-o", help="Parquet file to write."),
        format: str = typer.Option("verl", "--format", help="Only 'verl' is supported."),  # noqa: A002
        tokenizer: str = typer.Option("smollm2", help="Tokenizer spec of the policy verl will train."),
        max_prompt_length: Optional[int] = typer.Option(None, help="verl's data.max_prompt_length; longer prompts are dropped."),
    ) -> None:
        """Write a parquet that verl's RL dataset loader reads as-is."""
        from rich.console import Console

        from golongrl.data.export import export_verl
        from golongrl.data.schema import DataError

        console = Console()
        if format != "verl":
            console.print(f"[red]error:[/red] unknown format {format!r}; supported: verl")
            raise typer.Exit(2)
        try:
            result = export_verl(file, output, tokenizer=tokenizer, max_prompt_length=max_prompt_length)
        except DataError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
        console.print(
            f"wrote {result.written} rows to {output} ({result.dropped_overlong} dropped as longer than "
            f"{max_prompt_length} tokens; longest templated prompt {result.max_prompt_tokens})"
        )

    @data_app.command("import")
    def import_(
        path: Path = typer.Argument(..., help="The GoLongRL parquet/JSONL file you downloaded, or a folder of them."),
        output: Path = typer.Option(..., "--output", "-o", help="Folder for <split>.jsonl, <split>.parquet, report.json."),
        split: str = typer.Option("train", help="Split name of the written files and of rows without one."),
        skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Leave bad rows out (listed in skipped.jsonl) instead of stopping."),
        tokenizer: str = typer.Option("smollm2", help="Tokenizer the prompt lengths are measured in."),
        max_prompt_tokens: Optional[int] = typer.Option(None, help="Skip rows whose prompt is longer (the reference keeps <= 163840)."),
    ) -> None:
        """Validate the published GoLongRL dataset, map its labels to the nine tasks, report counts
        by task and length, and write it for verl (parquet) and the local trainer (JSONL)."""
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn

        from golongrl.data.importer import import_dataset
        from golongrl.data.schema import DataError

        console = Console()
        with Progress(SpinnerColumn(), TextColumn("{task.description} {task.completed} rows"), console=console,
                      transient=True) as bar:
            job = bar.add_task("importing", total=None)
            try:
                result = import_dataset(path, output, split=split, on_error="skip" if skip_invalid else "raise",
                                        tokenizer=tokenizer, max_prompt_tokens=max_prompt_tokens,
                                        on_row=lambda: bar.advance(job))
            except DataError as exc:
                console.print(f"[red]error:[/red] {exc}")
                raise typer.Exit(2) from None
        report = result.report()
        console.print(f"read {result.rows_read} rows, wrote {result.rows_written}, skipped {len(result.skipped)}")
        for task, n in report["per_task"].items():
            lengths = report["prompt_tokens"][task]
            buckets = ", ".join(f"{b}={c}" for b, c in sorted(report["per_length_bucket"][task].items()))
            console.print(f"  {task}: {n} rows, median {lengths['median']} / max {lengths['max']} tokens ({buckets})")
        console.print(f"wrote {output / (split + '.jsonl')}, {output / (split + '.parquet')}, report.json, skipped.jsonl")
