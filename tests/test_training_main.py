"""`golongrl main --quick` on a tiny model: the run folder and report have the promised structure."""

from __future__ import annotations

import json
import sys
import zlib
from pathlib import Path

import torch
from typer.testing import CliRunner

from golongrl.cli import app

sys.path.insert(0, str(Path(__file__).parent))
from training_fixtures import REPO, write_dataset  # noqa: E402


def _graded_by_prompt(items: list, **_: object) -> list:
    """A deterministic reward in {0, .25, ..., 1} of the response and the prompt's gold answer."""
    from golongrl.rewards import ScoreResult

    return [ScoreResult(score=(zlib.crc32((it.solution_str + json.dumps(it.ground_truth)).encode()) % 5) / 4,
                        task="fake", reason=None) for it in items]


def test_main_quick_writes_a_complete_report(tmp_path: Path, monkeypatch) -> None:
    # Pre-built rows stand in for the default corpus build (over a minute on 2 cores; the data
    # pipeline's own tests cover it); everything after the build is the real main job.
    train = write_dataset(tmp_path / "train.jsonl", per_task=3)
    held_out = write_dataset(tmp_path / "eval.jsonl", per_task=2)
    run = tmp_path / "run"
    args = ["main", "--config", str(REPO / "configs" / "tiny-test.yaml"), "--output", str(run), "--quick",
            "--set", "data.build_config=null", "--set", f"data.train_files=[{train}]",
            "--set", f"data.eval_files=[{held_out}]", "--set", "rollout.max_new_tokens=8",
            "--set", "evaluation.max_new_tokens=8", "--set", "data.calibration_samples=2",
            # The held-out curve on the 3 shortest held-out prompts (one per task) at steps 0, 1, 2.
            "--set", "evaluation.curve_rows=3", "--set", "evaluation.every_steps=1",
            # As configs/cpu-demo.yaml: sampled and evaluated by a bf16 copy of the fp32 policy.
            "--set", "rollout.dtype=bfloat16"]
    # A random tiny model scores zero under the real rewards; graded fake rewards give the
    # calibration and training spread, and the evaluations scores that differ between prompts.
    import golongrl.evaluation.policy as policy
    from training_fixtures import use_fake_reward

    use_fake_reward(monkeypatch)
    monkeypatch.setattr(policy, "score_batch", _graded_by_prompt)
    import golongrl.training.main_job as main_job

    evaluated_in, real_evaluation = [], main_job.run_evaluation
    monkeypatch.setattr(main_job, "run_evaluation", lambda model, *a, **k: evaluated_in.append(
        next(model.parameters()).dtype) or real_evaluation(model, *a, **k))
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert evaluated_in == [torch.bfloat16] * 4  # before, curve after steps 1 and 2, after
    report = (run / "report.md").read_text()
    for section in ("## Held-out reward, paired before/after", "## Held-out reward by context length",
                    "## Held-out curve", "## Where the learning signal was", "## Training", "## Plots",
                    "## Timings", "## Config"):
        assert section in report
    for task in ("precise_retrieval", "comprehension", "numerical_reasoning"):
        assert f"| {task} | 2 |" in report
    assert "| **all (pooled)** | 6 |" in report and "| **all (task-balanced)** | 6 |" in report
    assert "**Target met**" in report or "**Target not met**" in report
    assert "| ≤1K | " in report  # the fixture's rows have no nominal length: prompt-token buckets
    assert "Did not move" in report or "Moved beyond noise" in report
    for png in ("task_reward", "rate_adv", "rate_num", "diagnostics", "eval_before_after", "heldout_curve"):
        assert (run / "plots" / f"{png}.png").stat().st_size > 1000
        assert f"plots/{png}.png" in report
    timings = json.loads((run / "timings.json").read_text())
    assert {"eval_before_s", "train_s", "eval_after_s", "total_s"} <= set(timings)
    before = json.loads((run / "eval" / "before.json").read_text())
    assert set(before["per_task"]) == {"precise_retrieval", "comprehension", "numerical_reasoning"}
    paired = json.loads((run / "eval" / "paired.json").read_text())
    assert paired["pooled"]["n"] == 6 and set(paired["per_task"]) == set(before["per_task"])
    assert paired["length_basis"] == "prompt" and paired["by_length"]["≤1K"]["n"] == 6

    # The curve: step 0 from the before-evaluation's scores, then a point after every step.
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in metrics] == [0, 1, 2]
    curve_keys = {f"heldout/{t}" for t in before["per_task"]} | {"heldout/overall"}
    assert all(curve_keys <= set(row) for row in metrics)
    assert set(metrics[0]) == curve_keys | {"step"}  # the base point carries nothing else
    before_rows = [json.loads(line) for line in (run / "eval" / "before.jsonl").read_text().splitlines()]
    shortest = {}
    for row in before_rows:  # each task's shortest held-out prompt
        if row["task"] not in shortest or row["prompt_tokens"] < shortest[row["task"]]["prompt_tokens"]:
            shortest[row["task"]] = row
    for task, row in shortest.items():
        assert metrics[0][f"heldout/{task}"] == row["score"]
    assert len({row["score"] for row in before_rows}) > 1  # the fake reward spreads the scores
    for step in (1, 2):
        points = [json.loads(line) for line in (run / "eval" / f"curve-step-{step}.jsonl").read_text().splitlines()]
        assert {p["prompt_id"] for p in points} == {r["prompt_id"] for r in shortest.values()}
        assert metrics[step]["heldout/overall"] == sum(p["score"] for p in points) / 3
    assert "| 0 |" in report.split("## Held-out curve")[1].split("##")[0]
    assert (run / "final" / "config.json").is_file()
    # The difficulty filter ran (the report says what it kept).
    calibration = json.loads((run / "data" / "calibration.json").read_text())
    assert calibration["prompts"] == 9 and calibration["samples"] == 2
    assert "Difficulty filter:" in report

    # Rerunning resumes. Here the run is made to look killed after step 1 (step 2's checkpoint
    # and metrics lost, its curve point and the evaluations already written): the resume trains
    # step 2 again, keeps the logged curve points and re-evaluates nothing.
    import shutil

    shutil.rmtree(run / "checkpoints" / "step-000002")
    (run / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in metrics[:2]))

    def no_generation(*_: object, **__: object) -> None:
        raise AssertionError("a finished evaluation was run again")

    monkeypatch.setattr(main_job, "evaluate_policy", no_generation)
    resumed = CliRunner().invoke(app, args)
    assert resumed.exit_code == 0, resumed.output
    assert json.loads((run / "eval" / "before.json").read_text()) == before
    again_metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in again_metrics] == [0, 1, 2]
    assert again_metrics[:2] == metrics[:2]
    assert {k: again_metrics[2][k] for k in curve_keys} == {k: metrics[2][k] for k in curve_keys}


def test_readme_train_command_works_as_written(tmp_path: Path, monkeypatch) -> None:
    # README: `golongrl train --config configs/tiny-test.yaml --output runs/tiny`; the preset names
    # no data files, so the trainer builds the data its build_config describes into the run.
    monkeypatch.chdir(REPO)
    run = tmp_path / "tiny"
    result = CliRunner().invoke(app, ["train", "--config", "configs/tiny-test.yaml", "--output", str(run),
                                      "--set", "training.total_steps=1", "--set", "rollout.max_new_tokens=4"])
    assert result.exit_code == 0, result.output
    assert (run / "data" / "train.jsonl").is_file()
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1]


def test_job_budget_leaves_room_for_the_after_evaluation(tmp_path: Path, monkeypatch) -> None:
    # The base evaluation is made to look slow (a 40 s measurement); with a 40 s job budget no
    # time is left for training, so the budget falls to its floor: the one step that always runs.
    import golongrl.training.main_job as main_job
    from training_fixtures import use_fake_reward

    train = write_dataset(tmp_path / "train.jsonl", per_task=2)
    held_out = write_dataset(tmp_path / "eval.jsonl", per_task=1)
    use_fake_reward(monkeypatch)
    real_evaluation = main_job.run_evaluation

    def slow_looking(*args: object, **kwargs: object):
        result = real_evaluation(*args, **kwargs)
        result.seconds = 40.0
        return result

    monkeypatch.setattr(main_job, "run_evaluation", slow_looking)
    run = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "main", "--config", str(REPO / "configs" / "tiny-test.yaml"), "--output", str(run),
        "--set", "data.build_config=null", "--set", f"data.train_files=[{train}]",
        "--set", f"data.eval_files=[{held_out}]", "--set", "rollout.max_new_tokens=4",
        "--set", "evaluation.max_new_tokens=4", "--set", "data.calibration_samples=0",
        "--set", "training.total_steps=3", "--set", "training.time_budget_s=600", "--set", "training.job_budget_s=40",
        "--set", "algorithm.dynamic_sampling.enabled=false"])
    assert result.exit_code == 0, result.output
    assert "training time budget 0 s (job budget 40 s, after-evaluation expected to take 40 s)" in result.output
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1]
    assert json.loads((run / "eval" / "before.json").read_text())["seconds"] > 0


def test_unknown_estimator_fails_at_config_load_naming_the_key(tmp_path: Path) -> None:
    import pytest

    from golongrl.training.config import ConfigError, load_config

    bad = tmp_path / "typo.yaml"
    bad.write_text((REPO / "configs" / "tiny-test.yaml").read_text().replace("name: tmn_reweight", "name: tmn_rewieght"))
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    assert "algorithm.estimator" in str(err.value) and "tmn_rewieght" in str(err.value) and "tmn_reweight" in str(err.value)


def test_difficulty_filter_keeps_prompts_the_policy_solves_sometimes(tmp_path: Path, monkeypatch) -> None:
    import torch

    from golongrl.inference.models import load_causal_lm, load_tokenizer
    from golongrl.training.main_job import calibrate_training_rows
    from training_fixtures import tiny_config, use_fake_reward

    use_fake_reward(monkeypatch)  # graded scores in {0, .25, ..., 1} from the response text
    cfg = tiny_config(write_dataset(tmp_path / "train.jsonl", per_task=3),
                      data={"calibration_samples": 3, "calibration_min_z": 0})
    tok, model = load_tokenizer("tiny:0"), load_causal_lm("tiny:0")
    torch.manual_seed(0)
    files = calibrate_training_rows(model, tok, cfg, tmp_path / "cal", log=lambda _: None)
    summary = json.loads((tmp_path / "cal" / "calibration.json").read_text())
    assert summary["prompts"] == 9 and sum(v["prompts"] for v in summary["per_task"].values()) == 9
    assert sum(v["kept"] + v["never"] + v["always"] for v in summary["per_task"].values()) == 9
    kept = [json.loads(line) for line in (tmp_path / "cal" / "calibrated-train.jsonl").read_text().splitlines()]
    assert len(kept) == summary["kept"] >= 1
    assert files == [str(tmp_path / "cal" / "calibrated-train.jsonl")]
    # A rerun reuses the calibration instead of sampling again.
    monkeypatch.setattr("golongrl.training.main_job.generate_rollouts", None)
    assert calibrate_training_rows(model, tok, cfg, tmp_path / "cal", log=lambda _: None) == files


def test_difficulty_filter_probe_samples_only_tasks_with_signal(tmp_path: Path, monkeypatch) -> None:
    """With ``calibration_probe`` the first prompt of each task is sampled first; a task the
    base policy never solves there (or always solves) is not sampled further."""
    import itertools

    import golongrl.training.main_job as main_job
    import golongrl.training.trainer as trainer
    from golongrl.inference.models import load_causal_lm, load_tokenizer
    from golongrl.rewards import ScoreResult
    from golongrl.tasks import resolve_task
    from training_fixtures import tiny_config

    alternate = itertools.cycle((0.0, 1.0))
    fixed = {"precise_retrieval": 0.0, "numerical_reasoning": 1.0}
    sampled: list[str] = []

    def by_task(items: list, **_: object) -> list:
        out = []
        for it in items:
            task = resolve_task(it.data_source, it.extra_info)
            sampled.append(task)
            out.append(ScoreResult(fixed[task] if task in fixed else next(alternate), task, None))
        return out

    monkeypatch.setattr(trainer, "score_batch", by_task)
    cfg = tiny_config(write_dataset(tmp_path / "train.jsonl", per_task=3),
                      data={"calibration_samples": 3, "calibration_probe": 1, "calibration_min_z": 0})
    tok, model = load_tokenizer("tiny:0"), load_causal_lm("tiny:0")
    main_job.calibrate_training_rows(model, tok, cfg, tmp_path / "cal", log=lambda _: None)
    summary = json.loads((tmp_path / "cal" / "calibration.json").read_text())
    per_task = summary["per_task"]
    assert per_task["comprehension"] == {"prompts": 3, "never": 0, "always": 0, "kept": 3, "skipped": 0}
    assert per_task["precise_retrieval"] == {"prompts": 3, "never": 1, "always": 0, "kept": 0, "skipped": 2}
    assert per_task["numerical_reasoning"] == {"prompts": 3, "never": 0, "always": 1, "kept": 0, "skipped": 2}
    assert summary["sampled"] == 5 and summary["probe"] == 1
    # 3 samples each: one probe prompt per task, then the two other comprehension prompts only.
    assert sorted(sampled) == sorted(["comprehension"] * 9 + ["precise_retrieval"] * 3 + ["numerical_reasoning"] * 3)
    kept = [json.loads(line) for line in (tmp_path / "cal" / "calibrated-train.jsonl").read_text().splitlines()]
    assert len(kept) == 3


def test_difficulty_filter_drops_a_task_the_policy_only_guesses(tmp_path: Path, monkeypatch) -> None:
    """Multiple choice answered at chance (a quarter of the samples right) is solved "sometimes"
    on most prompts; the filter drops the task instead of training on guesses. A task with no
    chance level (precise retrieval, 0 when blind) keeps its sometimes-solved prompts."""
    import itertools

    import golongrl.training.main_job as main_job
    import golongrl.training.trainer as trainer
    from golongrl.inference.models import load_causal_lm, load_tokenizer
    from golongrl.rewards import ScoreResult
    from golongrl.tasks import resolve_task
    from golongrl.training.paired import analyse
    from golongrl.training.report import signal_section
    from training_fixtures import tiny_config

    streams = {"comprehension": itertools.cycle((1.0, 0.0, 0.0, 0.0)),  # 1 in 4: chance
               "precise_retrieval": itertools.cycle((1.0, 0.0, 0.0, 0.0)),
               "numerical_reasoning": itertools.cycle((1.0, 1.0, 1.0, 0.0))}

    def by_task(items: list, **_: object) -> list:
        tasks = [resolve_task(it.data_source, it.extra_info) for it in items]
        return [ScoreResult(next(streams[t]), t, None) for t in tasks]

    monkeypatch.setattr(trainer, "score_batch", by_task)
    cfg = tiny_config(write_dataset(tmp_path / "train.jsonl", per_task=4), data={"calibration_samples": 4})
    tok, model = load_tokenizer("tiny:0"), load_causal_lm("tiny:0")
    main_job.calibrate_training_rows(model, tok, cfg, tmp_path / "cal", log=lambda _: None)
    per_task = json.loads((tmp_path / "cal" / "calibration.json").read_text())["per_task"]
    comprehension = per_task["comprehension"]
    assert comprehension["kept"] == 0 and comprehension["at_chance"] == 4
    assert comprehension["mean_reward"] == 0.25 and comprehension["chance"] == 0.25
    assert per_task["precise_retrieval"]["kept"] == 4 and "at_chance" not in per_task["precise_retrieval"]
    assert per_task["numerical_reasoning"]["kept"] == 4
    kept = [json.loads(line) for line in (tmp_path / "cal" / "calibrated-train.jsonl").read_text().splitlines()]
    assert {resolve_task(r["data_source"], r["extra_info"]) for r in kept} == {"precise_retrieval", "numerical_reasoning"}
    # The report's signal table shows the drop and says why.
    calibration = json.loads((tmp_path / "cal" / "calibration.json").read_text())
    text = "\n".join(signal_section(calibration, [], [], analyse([], [])))
    assert "| comprehension | 4 | 0 | 0 | 0 | 4 | 0 | – | n/a |" in text
    assert "comprehension: the base policy's calibration samples earned 0.25 on average where blind guessing earns 0.25" in text


def test_heldout_curve_subset_and_schedule(tmp_path: Path, monkeypatch) -> None:
    import torch

    import golongrl.training.main_job as main_job
    from golongrl.evaluation.policy import prompt_id
    from golongrl.training.evaluate import EvalResult
    from golongrl.training.main_job import HeldoutCurve, curve_point
    from training_fixtures import make_row, tiny_config

    # Per task: rows of growing length (filler 4, 1, 3): the curve takes each task's shortest first.
    rows = [make_row(t, i, filler=f) for i, f in enumerate((4, 1, 3))
            for t in ("precise_retrieval", "comprehension", "numerical_reasoning")]
    before_rows = [{"prompt_id": prompt_id(r), "task": r["extra_info"]["task_type"], "score": 0.25 * i}
                   for i, r in enumerate(rows)]
    cfg = tiny_config(tmp_path / "unused.jsonl", evaluation={"curve_rows": 4, "every_steps": 3})
    curve = HeldoutCurve(cfg, rows, before_rows, tmp_path, model=None, tokenizer=None, total_steps=7)
    fillers = [(r["extra_info"]["task_type"], r["prompt"][0]["content"].count("harbour office")) for r in curve.rows]
    assert fillers == [("precise_retrieval", 1), ("comprehension", 1), ("numerical_reasoning", 1),
                       ("precise_retrieval", 3)]
    assert [s for s in range(8) if curve.due(s)] == [0, 3, 6, 7]
    assert curve(1) == {}  # not due: nothing evaluated, nothing logged
    # Step 0 is the before-evaluation's scores of the subset (rows 3, 4, 5 and 6 above).
    assert curve(0) == {"heldout/comprehension": 1.0, "heldout/numerical_reasoning": 1.25,
                        "heldout/precise_retrieval": (0.75 + 1.5) / 2, "heldout/overall": (0.75 + 1.0 + 1.25 + 1.5) / 4}
    assert curve_point([]) == {}

    # A later point is an evaluation of the subset; whatever random numbers it draws, training's
    # torch RNG continues as if it had not run.
    def drawing_evaluation(model, tokenizer, subset, cfg, out_dir, name, *, progress):
        torch.rand(100)
        (out_dir / f"{name}.jsonl").write_text("".join(
            json.dumps({"prompt_id": prompt_id(r), "task": r["extra_info"]["task_type"], "score": 1.0}) + "\n"
            for r in subset))
        return EvalResult(per_task={}, stderr={}, counts={"any": len(subset)}, overall=1.0)

    monkeypatch.setattr(main_job, "run_evaluation", drawing_evaluation)
    torch.manual_seed(3)
    point = curve(3)
    after_point = torch.rand(1)
    torch.manual_seed(3)
    assert torch.equal(after_point, torch.rand(1))
    assert point["heldout/overall"] == 1.0 and set(point) == {
        "heldout/precise_retrieval", "heldout/comprehension", "heldout/numerical_reasoning", "heldout/overall"}
    no_every = HeldoutCurve(tiny_config(tmp_path / "unused.jsonl", evaluation={"curve_rows": 4}), rows, before_rows,
                            tmp_path, model=None, tokenizer=None, total_steps=7)
    assert [s for s in range(8) if no_every.due(s)] == [0, 7]


def test_metrics_logger_reports_the_steps_it_kept(tmp_path: Path) -> None:
    from golongrl.training.config import LoggingConfig
    from golongrl.training.tracking import MetricsLogger

    cfg = LoggingConfig(tensorboard=False, progress=False)
    logger = MetricsLogger(tmp_path, cfg)
    assert logger.logged_steps == set()
    for step in (0, 1, 2, 3):
        logger.log(step, {"heldout/overall": 0.1 * step})
    logger.close()
    assert MetricsLogger(tmp_path, cfg, resume_step=2).logged_steps == {0, 1, 2}


def test_a_held_out_prompt_given_twice_is_refused_before_the_model_loads(tmp_path: Path) -> None:
    held_out = write_dataset(tmp_path / "eval.jsonl", per_task=1)
    twice = tmp_path / "twice.jsonl"
    twice.write_text(held_out.read_text() + held_out.read_text().splitlines()[1] + "\n")
    args = ["main", "--config", str(REPO / "configs" / "tiny-test.yaml"), "--output", str(tmp_path / "run"),
            "--set", "data.build_config=null", "--set", f"data.train_files=[{held_out}]",
            "--set", f"data.eval_files=[{twice}]", "--set", "model.name_or_path=/nonexistent"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert f"{twice}: row 4: field 'prompt': the same prompt and gold as {twice}, row 2" in result.output


def test_signal_section_shows_why_a_task_could_not_move() -> None:
    """The report's per-task signal table: a task the base policy never solved got no groups
    into the updates; counts come from the filter, the training history and the base scores."""
    from golongrl.training.paired import analyse
    from golongrl.training.report import signal_section

    calibration = {"samples": 4, "kept": 3, "prompts": 8,
                   "per_task": {"comprehension": {"prompts": 4, "never": 1, "always": 0, "kept": 3},
                                "precise_retrieval": {"prompts": 4, "never": 4, "always": 0, "kept": 0}}}
    history = [{"step": 1, "task_metrics/comprehension/num_queries": 2.0},
               {"step": 2, "task_metrics/comprehension/num_queries": 3.0}]
    before = [{"prompt_id": f"c{i}", "task": "comprehension", "score": float(i % 2)} for i in range(4)]
    before += [{"prompt_id": f"p{i}", "task": "precise_retrieval", "score": 0.0} for i in range(3)]
    after = [dict(row, score=1.0) if row["task"] == "comprehension" else row for row in before]
    lines = signal_section(calibration, history, before, analyse(before, after))
    table = "\n".join(lines)
    assert "| comprehension | 4 | 1 | 3 | 0 | 5 | 2/4 |" in table
    assert "| precise_retrieval | 4 | 4 | 0 | 0 | 0 | 3/3 | flat |" in table
    assert signal_section(None, [], [], analyse([], [])) == []
    # A probe that skipped prompts adds a column with their count.
    calibration["per_task"]["precise_retrieval"] = {"prompts": 4, "never": 1, "always": 0, "kept": 0, "skipped": 3}
    calibration["per_task"]["comprehension"]["skipped"] = 0
    table = "\n".join(signal_section(calibration, history, before, analyse(before, after)))
    assert "not sampled (probe kept none)" in table
    assert "| precise_retrieval | 4 | 1 | 0 | 0 | 3 | 0 | 3/3 | flat |" in table
