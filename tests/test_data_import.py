"""`golongrl data import` on rows written by hand in the published GoLongRL schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from golongrl.data.importer import bucket_name, canonical_row, import_dataset
from golongrl.data.io import read_records, read_valid_records, write_records
from golongrl.data.schema import DataError
from golongrl.rewards import compute_score

FIXTURE = Path(__file__).parent / "fixtures" / "golongrl_published_sample.jsonl"


def _fixture_rows() -> list[dict]:
    return [row for _, row in read_records(FIXTURE)]


def test_fixture_covers_the_published_label_space() -> None:
    rows = _fixture_rows()
    assert {r["data_source"] for r in rows} == {
        "EM", "selection", "math_longcot_math_verify", "multitableqa_pretraining", "longbench_pro"}
    modes = {r["extra_info"]["reward_mode"] for r in rows if r["data_source"] == "longbench_pro"}
    assert len(modes) >= 5
    assert any(isinstance(r["reward_model"]["ground_truth"], list) for r in rows)


def test_import_maps_every_row_to_its_task_and_writes_both_exports(tmp_path: Path) -> None:
    result = import_dataset(FIXTURE, tmp_path / "out")
    assert (result.rows_read, result.rows_written, result.skipped) == (12, 12, [])
    expected = {"precise_retrieval": 2, "comprehension": 2, "numerical_reasoning": 2, "structured_extraction": 1,
                "exhaustive_retrieval": 1, "structured_matching": 1, "graded_ranking": 1, "sequence_ordering": 1,
                "summarization": 1}
    assert dict(result.per_task) == expected
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["per_task"] == expected
    assert report["per_length_bucket"]["comprehension"] == {"<=8K": 2}
    jsonl = [r for _, r in read_valid_records(tmp_path / "out" / "train.jsonl")]
    parquet = [r for _, r in read_valid_records(tmp_path / "out" / "train.parquet")]
    assert [r["extra_info"]["task_type"] for r in jsonl] == [r["extra_info"]["task_type"] for r in parquet]
    by_mode = {r["extra_info"]["reward_mode"]: r["extra_info"]["task_type"] for r in jsonl}
    assert by_mode["T11.1 Long-Range Entity & Commitment Tracking"] == "comprehension"
    assert by_mode["T6.1 Large-Scale Document Clustering"] == "structured_matching"
    assert by_mode["T5.1 Full-Sentence Citation Alignment"] == "exhaustive_retrieval"
    # The list ground truth keeps its last element, as the reference reward manager does.
    list_row = jsonl[1]
    assert list_row["reward_model"]["ground_truth"]["golden_label"] == "the roads fund"
    # A bare math gold becomes golden_label; prompt lengths are recorded per row.
    assert jsonl[4]["reward_model"]["ground_truth"]["golden_label"] == "42"
    assert all(r["extra_info"]["prompt_tokens"] > 10 for r in jsonl)


def test_imported_rows_score_their_gold_answers(tmp_path: Path) -> None:
    import_dataset(FIXTURE, tmp_path)
    rows = [r for _, r in read_valid_records(tmp_path / "train.parquet")]
    em = rows[0]
    gt = em["reward_model"]["ground_truth"]
    assert compute_score(em["data_source"], "<think>x</think>Calder & Sons", gt, em["extra_info"]) == 1.0
    assert compute_score(em["data_source"], "<think>x</think>Calder", gt, em["extra_info"]) == 0.0
    lbp = rows[11]
    assert compute_score(lbp["data_source"], "<think>x</think>[Answer]\nMargaret", lbp["reward_model"]["ground_truth"],
                         lbp["extra_info"]) == 1.0


def test_numpy_array_fields_as_pandas_reads_parquet(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    write_records(tmp_path / "pub.parquet", [r for r in _fixture_rows() if not isinstance(
        r["reward_model"]["ground_truth"], (list, str))])
    frame = pd.read_parquet(tmp_path / "pub.parquet")
    record = next(r for r in frame.to_dict("records")
                  if r["extra_info"]["reward_mode"] == "T5.1 Full-Sentence Citation Alignment")
    doc_ids = record["reward_model"]["ground_truth"]["doc_ids"]
    assert type(doc_ids).__module__ == "numpy"
    row = canonical_row(record, source=tmp_path / "pub.parquet", row=6, split="train")
    assert row["reward_model"]["ground_truth"]["doc_ids"] == ["[1]", "[3]"]
    assert row["extra_info"]["task_type"] == "exhaustive_retrieval"


def test_bad_row_stops_the_import_naming_file_row_and_field(tmp_path: Path) -> None:
    rows = _fixture_rows()
    rows[6]["reward_model"]["ground_truth"]["doc_ids"] = []
    rows[8]["extra_info"]["reward_mode"] = "T99 Not A Task"
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError) as err:
        import_dataset(bad, tmp_path / "out")
    assert (err.value.row, err.value.field) == (7, "reward_model.ground_truth.doc_ids")
    assert str(bad) in str(err.value)
    assert not (tmp_path / "out" / "train.jsonl").exists()


def test_skip_mode_records_each_reason(tmp_path: Path) -> None:
    rows = _fixture_rows()
    rows[6]["reward_model"]["ground_truth"]["doc_ids"] = []
    rows[8]["extra_info"]["reward_mode"] = "T99 Not A Task"
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{not json\n")
    result = import_dataset(bad, tmp_path / "out", on_error="skip", max_prompt_tokens=80)
    skipped = [json.loads(line) for line in (tmp_path / "out" / "skipped.jsonl").read_text().splitlines()]
    fields = {(s["row"], s["field"]) for s in skipped}
    assert {(7, "reward_model.ground_truth.doc_ids"), (9, "extra_info.reward_mode"), (13, None)} <= fields
    too_long = [s for s in skipped if s["field"] == "prompt"]
    assert too_long and all("tokens (> 80)" in s["reason"] for s in too_long)
    assert result.rows_written == 10 - len(too_long)
    assert len([1 for _ in read_records(tmp_path / "out" / "train.parquet")]) == result.rows_written


def test_folder_input_and_cli(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from golongrl.cli import app

    folder = tmp_path / "download"
    folder.mkdir()
    rows = _fixture_rows()
    (folder / "part-0.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:6]))
    (folder / "part-1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[6:]))
    res = CliRunner().invoke(app, ["data", "import", str(folder), "--output", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert "read 12 rows, wrote 12, skipped 0" in res.output
    assert "summarization: 1 rows" in res.output
    broken = tmp_path / "broken.jsonl"
    rows[2]["prompt"] = []
    broken.write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = CliRunner().invoke(app, ["data", "import", str(broken), "--output", str(tmp_path / "out2")])
    assert res.exit_code == 2
    said = " ".join(res.output.split())  # a long tmp path may wrap the message on a narrow terminal
    assert "row 3" in said and "prompt" in said


def test_length_buckets() -> None:
    assert [bucket_name(n) for n in (10, 8192, 8193, 32768, 100_000, 163_840, 163_841)] == [
        "<=8K", "<=8K", "<=32K", "<=32K", "<=128K", "<=160K", ">160K"]


def test_parquet_input_and_streamed_parquet_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import golongrl.data.importer as importer

    rows = [r for r in _fixture_rows() if isinstance(r["reward_model"]["ground_truth"], dict)]
    rows[0]["extra_info"]["publisher_note"] = "only this row has this key"
    write_records(tmp_path / "pub.jsonl", rows)
    source = tmp_path / "pub.parquet"
    write_records(source, rows)
    monkeypatch.setattr(importer, "_PARQUET_BATCH_ROWS", 3)  # several batches, one schema
    result = import_dataset(source, tmp_path / "out")
    assert result.rows_written == len(rows) == 10
    back = [r for _, r in read_valid_records(tmp_path / "out" / "train.parquet")]
    assert [r["extra_info"]["task_type"] for r in back] == [
        r["extra_info"]["task_type"] for _, r in read_records(tmp_path / "out" / "train.jsonl")]
    assert back[0]["extra_info"]["publisher_note"] == "only this row has this key"
    assert back[1]["extra_info"]["publisher_note"] is None
