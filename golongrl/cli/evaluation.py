"""``golongrl eval``: benchmarks and length sweeps for a local model or a served endpoint."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

BENCHMARK_HELP = (
    "NAME=PATH of an official benchmark file or folder you downloaded (repeatable); NAME is one of "
    "docmath, lbv2, frames, mrcr, corpusqa, lbv1qa, longmemeval, golongrl. See docs/evaluation.md."
)


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def _lengths(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        part = part.strip().upper()
        if not part:
            continue
        scale = {"K": 1024, "M": 1024 * 1024}.get(part[-1], 1)
        out.append(int(float(part[:-1] if scale > 1 else part) * scale))
    return out


def eval_command(
    model: Annotated[str, typer.Argument(help="Local HF folder, 'smollm2', 'tiny:<seed>', or 'openai:<base_url>#<model>'.")],
    benchmark: Annotated[Optional[list[str]], typer.Option("--benchmark", "-b", help=BENCHMARK_HELP)] = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="Folder with one sub-folder or file per benchmark, named after it.")] = None,
    sweep: Annotated[str, typer.Option(help="Comma-separated sweep tasks: retrieval, ordering, mrcr ('' for none).")] = "",
    lengths: Annotated[str, typer.Option(help="Sweep lengths in target tokens, e.g. 4K,8K,128K,1M.")] = "4K,8K,16K,32K",
    depths: Annotated[str, typer.Option(help="Sweep needle depths in [0, 1].")] = "0,0.25,0.5,0.75,1",
    samples: Annotated[int, typer.Option(help="Sweep items per (length, depth) cell.")] = 1,
    out: Annotated[Path, typer.Option("--output", "--out", "-o", help="Output folder (results JSON, predictions, summary.md, plots, cache).")] = Path("eval-out"),
    judge: Annotated[Optional[str], typer.Option(help="Judge backend spec; default from JUDGE_BASE_URL/JUDGE_MODEL/JUDGE_API_KEY.")] = None,
    tokenizer: Annotated[Optional[str], typer.Option(help="Tokenizer for truncation and sweep lengths (default: the model's; required for endpoints).")] = None,
    limit: Annotated[Optional[int], typer.Option(help="At most N items per benchmark subset / per sweep task (quick runs).")] = None,
    max_input_tokens: Annotated[Optional[int], typer.Option(help="Override each benchmark's token budget for middle truncation.")] = None,
    max_new_tokens: Annotated[int, typer.Option(help="Generation budget (reference: 51200).")] = 51_200,
    temperature: Annotated[float, typer.Option(help="Sampling temperature (reference: 0.7).")] = 0.7,
    top_p: Annotated[float, typer.Option(help="Top-p (reference: 0.95).")] = 0.95,
    seed: Annotated[int, typer.Option(help="Sampling seed and sweep seed.")] = 0,
    thinking: Annotated[Optional[bool], typer.Option("--thinking/--no-thinking", help="Chat-template thinking switch (unset: template default).")] = None,
    yarn_factor: Annotated[Optional[float], typer.Option(help="YaRN factor for a local model (reference: 2 for 128K-512K, 4 for 512K-1M).")] = None,
    yarn_original: Annotated[int, typer.Option(help="original_max_position_embeddings for YaRN (Qwen3: 262144).")] = 262_144,
    concurrency: Annotated[int, typer.Option(help="Requests in flight for endpoints.")] = 8,
    max_retries: Annotated[int, typer.Option(help="Retries of a failed endpoint request (exponential backoff).")] = 4,
    batch_size: Annotated[int, typer.Option(help="Prompts per forward pass for local models.")] = 4,
    decontaminate: Annotated[Optional[Path], typer.Option(help="golongrl dataset file: report 13-gram overlap of benchmark questions with it.")] = None,
    published: Annotated[bool, typer.Option("--published/--no-published", help="Add the paper's rows to the table.")] = True,
) -> None:
    """Evaluate a model on long-context benchmarks and length sweeps; write results, a
    markdown table in the paper's layout and PNG plots to --out. Interrupted runs resume from
    the cache in --out."""
    from rich.console import Console

    from golongrl.inference import SamplingParams, load_tokenizer, make_backend, parse_openai_spec
    from golongrl.inference.judge import make_judge
    from golongrl.inference.openai_backend import BackendError
    from golongrl.inference.models import yarn_rope_scaling

    from golongrl.evaluation.benchmarks import LoadOptions, get_benchmark
    from golongrl.evaluation.report import markdown_report, plot_sweep, write_text
    from golongrl.evaluation.runner import RunSettings, evaluate_items, run_benchmark, summarize, write_results
    from golongrl.evaluation.sweeps import SWEEP_TASKS, generate_sweep, score_sweep

    console = Console(stderr=True)
    from golongrl.data.io import remove_orphans

    out.mkdir(parents=True, exist_ok=True)
    remove_orphans(out)
    cache = out / "cache.sqlite"
    remote = parse_openai_spec(model) is not None
    backend_kwargs: dict[str, Any] = {"cache": cache}
    if remote:
        backend_kwargs["concurrency"] = concurrency
        backend_kwargs["max_retries"] = max_retries
        if yarn_factor:
            raise typer.BadParameter("--yarn-factor applies to local models; start vLLM with --rope-scaling instead")
    else:
        backend_kwargs["batch_size"] = batch_size
        if yarn_factor:
            backend_kwargs["rope_scaling"] = yarn_rope_scaling(yarn_factor, yarn_original)

    targets: dict[str, Path] = {}
    for spec in benchmark or []:
        name, sep, path = spec.partition("=")
        if not sep:
            raise typer.BadParameter(f"--benchmark {spec!r}: expected NAME=PATH")
        get_benchmark(name)
        targets[name] = Path(path)
    if data_dir is not None:
        for candidate in sorted(data_dir.iterdir()):
            name = candidate.name.split(".")[0]
            try:
                get_benchmark(name)
            except KeyError:
                continue
            targets.setdefault(name, candidate)
    tasks = [t.strip() for t in sweep.split(",") if t.strip()]
    for task in tasks:
        if task not in SWEEP_TASKS:
            raise typer.BadParameter(f"unknown sweep task {task!r}; known: {', '.join(SWEEP_TASKS)}")
    if not targets and not tasks:
        raise typer.BadParameter("nothing to evaluate: pass --benchmark NAME=PATH, --data-dir or --sweep")

    tok_spec = tokenizer or (None if remote else model)
    tok = load_tokenizer(tok_spec) if tok_spec else None
    if tasks and tok is None:
        raise typer.BadParameter("sweeps are sized in target-tokenizer tokens: pass --tokenizer for an endpoint")
    judge_client = None
    if judge is not None or any(get_benchmark(n).uses_judge for n in targets):
        try:
            judge_client = make_judge(judge, cache=cache)
        except ValueError as exc:
            console.print(f"[yellow]judge: {exc}; judge-scored parts are skipped or rule-only[/]")
    sampling = SamplingParams(
        max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed, enable_thinking=thinking
    )
    backend = make_backend(model, **backend_kwargs)
    summaries: dict[str, dict[str, Any]] = {}
    questions: dict[str, list[str]] = {}

    for name, path in targets.items():
        bench = get_benchmark(name)
        budget = max_input_tokens if max_input_tokens is not None else bench.default_max_input_tokens
        console.print(f"[bold]{bench.title}[/] from {path}")
        items = bench.loader(path, LoadOptions(tokenizer=tok, max_input_tokens=budget, limit=limit))
        questions[name] = [it.question for it in items if it.question]
        settings = RunSettings(model, sampling, judge or ("env" if judge_client else None), budget, limit)
        try:
            summary = run_benchmark(bench, items, backend, out, judge=judge_client, settings=settings, progress=True)
        except BackendError as exc:
            # Everything that finished is cached in --out: rerunning resumes from there.
            console.print(f"[red]{name}: {exc}\nrerun the same command to retry only the failed requests[/]")
            raise typer.Exit(1) from None
        except ValueError as exc:
            console.print(f"[red]{name}: {exc}[/]")
            continue
        summaries[name] = summary
        console.print(f"  {name}: {summary['overall']:.1f} over {summary['n']} items")

    for task in tasks:
        console.print(f"[bold]sweep {task}[/]: lengths {lengths}, depths {depths}")
        items = generate_sweep(task, tokenizer=tok, lengths=_lengths(lengths), depths=_floats(depths), samples=samples, seed=seed)
        items = items[:limit] if limit else items
        start = time.perf_counter()
        results, raw = evaluate_items(
            items, lambda i, r, j, t=task: score_sweep(t, i, r), backend,
            judge=None, sampling=sampling, progress=True,
        )
        summary = summarize(results)
        settings = RunSettings(model, sampling, None, None, limit)
        write_results(out, f"sweep-{task}", summary, items, results, raw, settings, time.perf_counter() - start)
        rows = [{"groups": r.groups, "score": r.score} for r in results]
        plot_sweep(task, rows, out)
        summaries[f"sweep-{task}"] = summary
        console.print(f"  sweep-{task}: {summary['overall']:.1f} over {summary['n']} items")

    extra = ""
    if decontaminate is not None:
        from golongrl.evaluation.decontamination import decontamination_report, decontamination_markdown

        report = decontamination_report(questions, decontaminate, tokenizer=tok_spec or "smollm2")
        write_text(out / "decontamination.json", json.dumps(report, indent=2))
        extra = decontamination_markdown(report)
    write_text(out / "summary.md", markdown_report(model, summaries, extra=extra, published=published))
    write_text(out / "summary.json", json.dumps(summaries, indent=2, allow_nan=True))
    console.print(f"wrote {out / 'summary.md'}")


def register(app: typer.Typer, data_app: typer.Typer) -> None:
    app.command("eval")(eval_command)
