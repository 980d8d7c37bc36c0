"""End-to-end data builds from the real default corpus: all nine tasks in both splits, every
row valid, every gold scoring 1.0, determinism and byte-identical resume, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from golongrl.cli import app
from golongrl.data.config import DataConfig, load_config
from golongrl.data.io import read_records, write_records
from golongrl.data.pipeline import build_dataset
from golongrl.data.schema import DataError, validate_record
from golongrl.data.verify import reference_response
from golongrl.rewards import compute_score
from golongrl.tasks import TASK_TYPES

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "data-tiny.yaml"
OUTPUTS = ("train.jsonl", "train.parquet", "eval.jsonl", "eval.parquet", "documents.jsonl", "failures.jsonl", "report.json")


@pytest.fixture(scope="module")
def tiny_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny-build")
    build_dataset(load_config(TINY), out)
    return out


def test_every_task_in_both_splits_from_disjoint_documents(tiny_build: Path) -> None:
    report = json.loads((tiny_build / "report.json").read_text())
    config = load_config(TINY)
    assert report["counts"]["train"] == {t: config.samples_per_task for t in TASK_TYPES}
    assert report["counts"]["eval"] == {t: config.eval_samples_per_task for t in TASK_TYPES}
    docs = {split: {r["extra_info"]["doc_id"] for _, r in read_records(tiny_build / f"{split}.jsonl")} for split in ("train", "eval")}
    assert not docs["train"] & docs["eval"]
    assert set(report["documents_by_domain"]) >= {"literature", "government", "technical", "legal", "tables", "dialogues"}


@pytest.mark.parametrize("name", ["train.jsonl", "eval.parquet"])
def test_rows_are_valid_and_every_gold_scores_one(tiny_build: Path, name: str) -> None:
    rows = list(read_records(tiny_build / name))
    assert rows
    for number, raw in rows:
        row = validate_record(raw, source=name, row=number)
        info = row["extra_info"]
        assert info["index"] == number - 1 and info["split"] == name.split(".")[0]
        assert abs(info["context_tokens"] - info["target_tokens"]) <= 0.01 * info["target_tokens"]
        assert info["question"] in row["prompt"][0]["content"]
        score = compute_score(row["data_source"], reference_response(row), row["reward_model"]["ground_truth"], info, mode="hardened")
        assert score >= 1 - 1e-6, (info["uid"], info["construction"], score)
        assert all(p["license"] for p in info["provenance"])


def test_documents_metadata_has_provenance_and_token_lengths(tiny_build: Path) -> None:
    docs = [r for _, r in read_records(tiny_build / "documents.jsonl")]
    assert docs and all(d["tokens"] > 0 and d["words"] > 0 and d["language"] == "en" for d in docs)
    assert all({"package", "version", "license"} <= set(d["provenance"]) for d in docs)


def test_resume_after_kill_is_byte_identical(tiny_build: Path, tmp_path: Path) -> None:
    config = load_config(TINY)
    out = tmp_path / "resumed"
    build_dataset(config, out, stop_after=7)
    assert not (out / "train.jsonl").exists()
    with (out / ".work" / "samples.jsonl").open("a") as handle:
        handle.write('{"key": "train/comprehension/1", "row": {"trunc')  # killed mid-write
    build_dataset(config, out)
    for name in OUTPUTS:
        assert (out / name).read_bytes() == (tiny_build / name).read_bytes(), name


def test_changed_config_refuses_to_resume(tiny_build: Path) -> None:
    changed = load_config(TINY).model_copy(update={"seed": 1})
    with pytest.raises(DataError, match="different config"):
        build_dataset(changed, tiny_build)


def test_config_rejects_unknown_keys_with_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("context:\n  train_length: [512]\n")
    with pytest.raises(DataError, match=r"bad.yaml: field 'context.train_length': Extra inputs"):
        load_config(path)
    path.write_text("tasks:\n  juggling: 3\n")
    with pytest.raises(DataError, match="unknown task types"):
        load_config(path)
    assert DataConfig().train_count("summarization") == DataConfig().samples_per_task


def test_cli_validate_stats_export(tiny_build: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    rows = [r for _, r in read_records(tiny_build / "train.jsonl")][:3]
    rows[1]["prompt"] = []
    rows[2]["reward_model"]["ground_truth"] = {"doc_ids": [], "golden_label": "", "summary": ""}
    bad = tmp_path / "bad.jsonl"
    write_records(bad, rows)
    result = runner.invoke(app, ["data", "validate", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}: row 2: field 'prompt'" in result.output
    assert f"{bad}: row 3: field 'reward_model.ground_truth." in result.output
    assert "3 rows, 2 malformed" in result.output

    result = runner.invoke(app, ["data", "stats", str(tiny_build / "train.parquet"), "--plots", str(tmp_path / "plots")])
    assert result.exit_code == 0, result.output
    assert f"{len(list(read_records(tiny_build / 'train.parquet')))} rows" in result.output
    assert {p.name for p in (tmp_path / "plots").iterdir()} == {"lengths.png", "tasks_domains.png"}

    out = tmp_path / "verl.parquet"
    result = runner.invoke(app, ["data", "export", str(tiny_build / "train.jsonl"), "-o", str(out), "--max-prompt-length", "1400"])
    assert result.exit_code == 0, result.output
    import pyarrow.parquet as pq

    table = pq.read_table(out)
    assert {"data_source", "prompt", "ability", "reward_model", "extra_info"} <= set(table.column_names)
    assert 0 < table.num_rows < len(list(read_records(tiny_build / "train.jsonl")))


def test_forked_workers_write_identical_files(tiny_build: Path, tmp_path: Path) -> None:
    config = load_config(TINY).model_copy(update={"workers": 2})
    out = tmp_path / "forked"
    build_dataset(config, out)
    for name in ("train.jsonl", "eval.jsonl", "failures.jsonl"):
        assert (out / name).read_bytes() == (tiny_build / name).read_bytes(), name
