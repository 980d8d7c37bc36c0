"""The data pipeline: row schema and IO, corpus ingestion, the nine task constructions, context
assembly to exact token lengths, calibration, decontamination, statistics and export.

Light names (schema, IO) import eagerly; the pipeline entry point loads on first use so that
``from golongrl.data import read_records`` stays cheap for the trainer and the scorer.
"""

from __future__ import annotations

from typing import Any

from golongrl.data.io import read_records, read_valid_records, write_records
from golongrl.data.schema import DataError, normalize_record, validate_record


def __getattr__(name: str) -> Any:
    if name == "build_dataset":
        from golongrl.data.pipeline import build_dataset

        return build_dataset
    raise AttributeError(f"module 'golongrl.data' has no attribute {name!r}")


__all__ = [
    "DataError",
    "build_dataset",
    "normalize_record",
    "read_records",
    "read_valid_records",
    "validate_record",
    "write_records",
]
