"""The CLI's one error path under hostile input and faults (issue 14 items 2, 10, 11, 12, 13).

Every expected failure must end in exactly one ``error:`` line naming what, where and what to do,
with a non-zero exit and no traceback; ``--debug`` shows the traceback. Models are the tiny random
Llama, servers the local stub, and the trainer runs at most two one-step invocations.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path

import pytest
import yaml
from openai_stub_server import StubReply, StubServer
from training_fixtures import make_row, tiny_config, write_dataset
from typer.testing import CliRunner

from golongrl.cli import app

runner = CliRunner()


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def _one_error_line(code: int, output: str, *fragments: str) -> str:
    """Assert the failure shape and return the error line."""
    assert code == 2, output
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output
    for fragment in fragments:
        assert fragment in errors[0], output
    return errors[0]


def _config_file(tmp_path: Path, data: Path, name: str = "train.yaml", **sections: object) -> Path:
    sections.setdefault("training", {"total_steps": 1})
    sections.setdefault("checkpoint", {"every_steps": 1, "export_final": False})
    sections.setdefault("logging", {"tensorboard": False, "plots": False, "progress": False})
    cfg = tiny_config(data, **sections).to_dict()
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "train.jsonl", per_task=2)


def test_resume_with_changed_config_is_refused_then_allowed_and_leftovers_go(tmp_path: Path, data: Path) -> None:
    config, run = _config_file(tmp_path, data), tmp_path / "run"
    code, output = _run("train", "-c", config, "-o", run)
    assert code == 0, output
    written = (run / "config.yaml").read_text()
    # What a SIGKILL in the middle of atomic writes leaves behind.
    leftovers = [Path(tempfile.mkstemp(prefix=".metrics.jsonl.", suffix=".tmp", dir=run)[1]),
                 Path(tempfile.mkdtemp(prefix=".step-000002.", dir=run / "checkpoints")),
                 Path(tempfile.mkdtemp(prefix=".final.", dir=run))]

    code, output = _run("train", "-c", config, "-o", run, "--set", "optimizer.lr=0.5", "--set", "rollout.n=2")
    _one_error_line(code, output, "optimizer.lr, rollout.n", "--allow-config-change")
    assert (run / "config.yaml").read_text() == written  # nothing of the refused run was written

    code, output = _run("train", "-c", config, "-o", run, "--set", "training.total_steps=2", "--allow-config-change")
    assert code == 0, output
    assert not any(p.exists() for p in leftovers)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-000001", "step-000002"]


def test_full_disk_while_checkpointing_is_one_line_and_leaves_no_step(
    tmp_path: Path, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    def full_disk(*args: object, **kwargs: object) -> None:
        raise RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 64 vs 0")

    monkeypatch.setattr(torch, "save", full_disk)
    run = tmp_path / "run"
    code, output = _run("train", "-c", _config_file(tmp_path, data), "-o", run)
    _one_error_line(code, output, "step-000001", "is the disk full?")
    assert list((run / "checkpoints").iterdir()) == []


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [
        (["--set", "algorithm.estimator.name=tmn_reweigth"], ["algorithm.estimator.name", "tmn_reweight"]),
        (["--set", "model.device=gpu7"], ["model.device", "pattern"]),
        (["--set", "rollout.n=["], ["override 'rollout.n=['", "invalid YAML"]),
        (["--set", "rollout=1", "--set", "rollout.n=2"], ["override 'rollout.n=2' conflicts"]),
        (["--set", "optimizer.lr=.inf"], ["optimizer.lr", "finite"]),
        (["--set", "training.total_steps=true"], ["training.total_steps", "valid integer"]),
    ],
)
def test_train_config_mistakes_fail_before_any_run_file(
    tmp_path: Path, data: Path, extra: list[str], fragments: list[str]
) -> None:
    run = tmp_path / "run"
    code, output = _run("train", "-c", _config_file(tmp_path, data), "-o", run, *extra)
    _one_error_line(code, output, *fragments)
    assert not run.exists()


def test_bad_utf8_config_and_debug_traceback(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_bytes(b"model: {name_or_path: \xff}")
    _one_error_line(*_run("train", "-c", config, "-o", tmp_path / "run"), "bad.yaml", "not UTF-8")
    result = runner.invoke(app, ["--debug", "train", "-c", str(config), "-o", str(tmp_path / "run")])
    assert result.exit_code != 0 and type(result.exception).__name__ == "ConfigError"


def _deep_row_file(path: Path) -> Path:
    row = make_row("precise_retrieval", 0)
    row["extra_info"]["nest"] = json.loads("[" * 900 + "]" * 900)
    path.write_text(json.dumps(row) + "\n")
    return path


@pytest.mark.parametrize(
    ("make_data", "fragments"),
    [
        (lambda p: (p / "empty.jsonl").write_text("") and None or p / "empty.jsonl", ["no training rows", "empty"]),
        (lambda p: p, ["is a folder, expected a .jsonl or .parquet file"]),
        (lambda p: _deep_row_file(p / "deep.jsonl"), ["deep.jsonl: row 1", "nested deeper than 64 levels"]),
    ],
    ids=["empty", "folder", "deep-json"],
)
def test_train_data_problems_are_one_line(tmp_path: Path, make_data, fragments: list[str]) -> None:  # noqa: ANN001
    folder = tmp_path / "inputs"
    folder.mkdir()
    data = make_data(folder)
    config = _config_file(tmp_path, data)
    _one_error_line(*_run("train", "-c", config, "-o", tmp_path / "run"), *fragments)


def test_over_long_row_is_dropped_without_tokenising_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from golongrl.inference import load_tokenizer
    from golongrl.training import trainer as trainer_mod

    huge = make_row("precise_retrieval", 0)
    huge["prompt"][0]["content"] = "harbour ledger " * 350_000  # ~5 MB, far past 4096 tokens
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [huge, make_row("comprehension", 1)]) + "\n")
    encoded: list[int] = []
    real = trainer_mod.encode_prompt
    monkeypatch.setattr(trainer_mod, "encode_prompt",
                        lambda tok, prompt, thinking: encoded.append(len(prompt[0]["content"])) or real(tok, prompt, thinking))
    prompts, dropped = trainer_mod.load_prompts([str(path)], load_tokenizer("tiny:0"), tiny_config(path))
    assert dropped == {"precise_retrieval": 1} and [p.task for p in prompts] == ["comprehension"]
    assert max(encoded) < 10_000  # only the short row went through the tokenizer


def test_validate_empty_folder_and_deep_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    code, output = _run("data", "validate", empty)
    assert code == 1 and "no rows: the file is empty" in output
    code, output = _run("data", "validate", tmp_path)
    assert code == 1 and "is a folder" in output
    code, output = _run("data", "validate", _deep_row_file(tmp_path / "deep.jsonl"))
    assert code == 1 and "deep.jsonl: row 1: nested deeper than 64 levels" in output and "Traceback" not in output


def test_score_names_file_row_and_field(tmp_path: Path) -> None:
    rows = [make_row("precise_retrieval", 0), make_row("precise_retrieval", 1)]
    del rows[1]["reward_model"]["ground_truth"]["golden_label"]
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    responses = tmp_path / "responses.jsonl"
    responses.write_text('{"response": "7"}\n{"response": "8"}\n')
    _one_error_line(*_run("score", data, responses, "--workers", "0"), "data.jsonl: row 2", "golden_label")
    _one_error_line(*_run("score", _deep_row_file(tmp_path / "deep.jsonl"), responses, "--workers", "0"),
                    "deep.jsonl: row 1", "nested deeper")
    nan_source = make_row("precise_retrieval", 0)
    nan_source["data_source"] = float("nan")
    nan_data = tmp_path / "nan.jsonl"
    nan_data.write_text(json.dumps(nan_source) + "\n")  # Python writes the non-standard NaN token
    _one_error_line(*_run("score", nan_data, responses, "--workers", "0"), "nan.jsonl: row 1", "data_source")


@pytest.mark.parametrize(
    ("option", "fragment"),
    [
        (["--n", "0"], "--n 0"),
        (["--batch-size", "0"], "--batch-size 0"),
        (["--temperature", "-1"], "--temperature -1"),
        (["--max-new-tokens", "0"], "--max-new-tokens 0"),
        (["--reward-mode", "bogus"], "--reward-mode bogus"),
    ],
)
def test_evaluate_option_checks(tmp_path: Path, data: Path, option: list[str], fragment: str) -> None:
    _one_error_line(*_run("evaluate", "-m", "tiny:0", "-d", data, "-o", tmp_path / "out", *option), fragment)


def test_evaluate_limit_zero_is_a_usage_error(tmp_path: Path, data: Path) -> None:
    code, output = _run("evaluate", "-m", "tiny:0", "-d", data, "-o", tmp_path / "out", "--limit", "0")
    assert code == 2 and "NaN" not in output and "Traceback" not in output
    assert not (tmp_path / "out" / "results.json").exists()


def test_evaluate_against_an_always_failing_endpoint(
    tmp_path: Path, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("golongrl.inference.openai_backend.time.sleep", lambda s: None)  # skip backoff waits
    with StubServer(StubReply(status=500)) as server:
        code, output = _run("evaluate", "-m", f"openai:{server.base_url}#m", "-d", data, "-o", tmp_path / "out")
        assert server.request_count == 6 * 5  # six prompts, one try and four retries each
    _one_error_line(code, output, "6 of 6 requests failed", "HTTP 500", "rerun the same command")


def _full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    def fsync(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", fsync)


def test_full_disk_in_score_evaluate_and_data_build(
    tmp_path: Path, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    responses = tmp_path / "responses.jsonl"
    responses.write_text('{"response": "7"}\n')
    with StubServer("7") as server:
        _full_disk(monkeypatch)
        score = _run("score", data, responses, "--workers", "0")
        evaluate = _run("evaluate", "-m", f"openai:{server.base_url}#m", "-d", data, "-o", tmp_path / "eval")
        build = _run("data", "build", "-c", Path(__file__).parents[1] / "configs" / "data-tiny.yaml",
                     "-o", tmp_path / "build", "--no-progress")
    for code, output in (score, evaluate, build):
        _one_error_line(code, output, "the disk is full", "rerun the same command")
    assert not (tmp_path / "responses.scores.json").exists()
    assert not (tmp_path / "eval" / "results.json").exists()
    leftovers = [p for folder in (tmp_path, tmp_path / "eval", tmp_path / "build")
                 for p in folder.glob(".*.tmp")]
    assert leftovers == []


def test_data_build_with_missing_corpus_folder_leaves_no_blocking_work(tmp_path: Path) -> None:
    tiny = yaml.safe_load((Path(__file__).parents[1] / "configs" / "data-tiny.yaml").read_text())
    bad = {**tiny, "corpus": {**tiny.get("corpus", {}), "folders": [str(tmp_path / "missing")]}}
    bad_config = tmp_path / "bad.yaml"
    bad_config.write_text(yaml.safe_dump(bad))
    out = tmp_path / "build"
    _one_error_line(*_run("data", "build", "-c", bad_config, "-o", out, "--no-progress"), "missing", "does not exist")
    assert not out.exists()
    tok_config = tmp_path / "tok.yaml"
    tok_config.write_text(yaml.safe_dump({**tiny, "tokenizer": "no-such-tokenizer"}))
    _one_error_line(*_run("data", "build", "-c", tok_config, "-o", out, "--no-progress"), "no-such-tokenizer")
    assert not out.exists()
    utf8_config = tmp_path / "latin1.yaml"
    utf8_config.write_bytes(b"seed: 0 # caf\xe9\n")
    _one_error_line(*_run("data", "build", "-c", utf8_config, "-o", out, "--no-progress"), "latin1.yaml", "not UTF-8")


def test_unreadable_training_file_is_one_line(tmp_path: Path, data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests may run as root, for whom chmod 000 changes nothing: make the OS answer "no access".
    import golongrl.data.io as io_mod

    real_access = os.access
    monkeypatch.setattr(io_mod.os, "access", lambda path, mode: Path(path) != data and real_access(path, mode))
    _one_error_line(*_run("train", "-c", _config_file(tmp_path, data), "-o", tmp_path / "run"),
                    "train.jsonl", "not readable (permission denied)")


def test_os_errors_from_anywhere_become_one_line() -> None:
    from golongrl.cli.errors import describe

    denied = PermissionError(errno.EACCES, "Permission denied", "/data/train.jsonl")
    assert describe(denied) == "cannot use /data/train.jsonl: permission denied: check the file's permissions or choose another path"
    assert "the disk is full" in describe(OSError(errno.ENOSPC, "No space left on device", "/runs/x"))
    assert describe(KeyError("a bug")) is None  # bugs keep their traceback
