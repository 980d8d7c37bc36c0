"""Row schema validation and JSONL/parquet IO: published GoLongRL rows read unchanged, every
malformed field named with file and row, writes atomic."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from golongrl.data.io import atomic_output, read_records, read_valid_records, write_records
from golongrl.data.schema import DataError, validate_record


def _row(**over):
    row = {
        "data_source": "longbench_pro",
        "prompt": [{"role": "user", "content": "Context...\nQuestion?"}],
        "ability": "sequence reconstruction and ordering",
        "reward_model": {"style": "rule", "ground_truth": {"doc_ids": ["a", "b"], "golden_label": "", "summary": "English"}},
        "extra_info": {"reward_mode": "T2.1 Global Timeline Reconstruction", "question": "Order them."},
    }
    row.update(over)
    return row


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_roundtrip_keeps_rows_and_numbers_them_from_one(tmp_path: Path, suffix: str) -> None:
    rows = [_row(), _row(data_source="EM", reward_model={"style": "rule", "ground_truth": {"doc_ids": [], "golden_label": "42", "summary": ""}})]
    path = tmp_path / f"d{suffix}"
    assert write_records(path, rows) == 2
    got = list(read_records(path))
    assert [n for n, _ in got] == [1, 2]
    assert got[0][1]["reward_model"]["ground_truth"]["doc_ids"] == ["a", "b"]
    assert [validate_record(r)["data_source"] for _, r in got] == ["longbench_pro", "EM"]


def test_published_forms_list_gold_and_json_string_fields_normalise() -> None:
    gold = {"doc_ids": ["x"], "golden_label": "", "summary": ""}
    listed = validate_record(_row(reward_model={"style": "rule", "ground_truth": [{"doc_ids": ["old"]}, gold]}))
    assert listed["reward_model"]["ground_truth"] == gold
    as_text = _row(prompt=json.dumps(_row()["prompt"]), reward_model=json.dumps({"ground_truth": gold}), extra_info=json.dumps(_row()["extra_info"]))
    norm = validate_record(as_text)
    assert norm["prompt"][0]["role"] == "user" and norm["reward_model"]["ground_truth"] == gold
    math_row = validate_record(_row(data_source="math_longcot_math_verify", reward_model={"ground_truth": "3/4"}, extra_info={}))
    assert math_row["reward_model"]["ground_truth"] == "3/4"


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"data_source": 3}, "data_source"),
        ({"data_source": "no_such_source", "ability": None}, "data_source"),
        ({"extra_info": {"reward_mode": "T99 Nothing"}}, "extra_info.reward_mode"),
        ({"prompt": []}, "prompt"),
        ({"prompt": [{"role": "robot", "content": "x"}]}, "prompt[0].role"),
        ({"prompt": [{"role": "user", "content": 5}]}, "prompt[0].content"),
        ({"prompt": "{not json"}, "prompt"),
        ({"reward_model": {"style": "rule"}}, "reward_model.ground_truth"),
        ({"reward_model": {"ground_truth": {"doc_ids": []}}}, "reward_model.ground_truth.doc_ids"),
        ({"reward_model": {"ground_truth": {"doc_ids": ["a", 2]}}}, "reward_model.ground_truth.doc_ids"),
        ({"data_source": "EM", "reward_model": {"ground_truth": {"golden_label": " "}}}, "reward_model.ground_truth.golden_label"),
        ({"data_source": "multitableqa_pretraining", "reward_model": {"ground_truth": {"golden_label": "[1]"}}}, "reward_model.ground_truth.golden_label"),
        ({"extra_info": {"reward_mode": "T2.1 Global Timeline Reconstruction", "question": 7}}, "extra_info.question"),
        ({"extra_info": {"task_type": "juggling"}}, "extra_info.task_type"),
    ],
)
def test_malformed_row_names_file_row_and_field(override: dict, field: str) -> None:
    with pytest.raises(DataError) as info:
        validate_record(_row(**override), source="train.jsonl", row=7)
    err = info.value
    assert (err.source, err.row, err.field) == ("train.jsonl", 7, field)
    assert str(err).startswith(f"train.jsonl: row 7: field {field!r}: ")


def test_bad_jsonl_line_reports_its_line_number(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(_row()) + "\n\n{oops\n", encoding="utf-8")
    rows = read_records(path)
    assert next(rows)[0] == 1
    with pytest.raises(DataError, match=r"d.jsonl: row 3: not valid JSON"):
        next(rows)
    with pytest.raises(DataError, match="unsupported file type"):
        list(read_records(tmp_path / "d.csv"))


def test_read_valid_records_stops_at_first_bad_row(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    write_records(path, [_row(), _row(prompt=[])])
    with pytest.raises(DataError, match="row 2: field 'prompt'"):
        list(read_valid_records(path))


def test_failed_write_leaves_previous_file_untouched(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    write_records(path, [_row()])
    before = path.read_bytes()
    with pytest.raises(DataError, match="row 2: cannot encode"):
        write_records(path, [_row(), _row(extra_info={"bad": float("nan")})])
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["d.jsonl"]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_atomic_write_gives_the_mode_plain_open_would(tmp_path: Path, umask: int, suffix: str) -> None:
    previous = os.umask(umask)
    try:
        plain = tmp_path / "plain.txt"
        with open(plain, "w") as handle:
            handle.write("x")
        written = tmp_path / f"d{suffix}"
        write_records(written, [_row()])
        with atomic_output(tmp_path / "report.json", "w") as handle:
            handle.write("{}")
    finally:
        os.umask(previous)
    assert _mode(written) == _mode(plain) == 0o666 & ~umask
    assert _mode(tmp_path / "report.json") == _mode(plain)


def test_atomic_rewrite_keeps_an_existing_files_mode(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    write_records(path, [_row()])
    path.chmod(0o640)
    write_records(path, [_row(), _row()])
    assert _mode(path) == 0o640
