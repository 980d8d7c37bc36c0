"""The ``golongrl data build`` configuration: one validated pydantic model per YAML section.

Unknown keys are errors (a typo must not silently fall back to a default). Every field has a
default, so an empty YAML file builds the demo dataset from the default corpus.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from golongrl.data.corpus import AVAILABLE_DOMAINS, DEFAULT_DOMAINS
from golongrl.data.schema import DataError
from golongrl.safe_yaml import YamlLimitError, load_yaml
from golongrl.tasks import TASK_TYPES

_ALL_TASKS: tuple[str, ...] = tuple(TASK_TYPES)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CorpusConfig(_Strict):
    """Phase 1: where documents come from and which are rejected."""

    default_domains: list[str] = Field(
        default_factory=lambda: list(DEFAULT_DOMAINS),
        description="Domains of the built-in corpus to use ([] for none).",
    )
    folders: list[Path] = Field(default_factory=list, description="User document folders.")
    max_dialogues: int = Field(60, ge=0, description="Chats taken from chitchat-dataset.")
    min_words: int = Field(50, ge=1, description="Shorter documents are skipped.")
    max_line_chars: int = Field(100_000, ge=100, description="Longer lines mark a malformed file.")
    near_duplicate_threshold: float = Field(0.8, gt=0, le=1, description="Jaccard of word 5-shingles.")

    @field_validator("default_domains")
    @classmethod
    def _known_domains(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(AVAILABLE_DOMAINS))
        if unknown:
            raise ValueError(f"unknown default-corpus domains {unknown}; known: {list(AVAILABLE_DOMAINS)}")
        return value


class ContextConfig(_Strict):
    """Context assembly: lengths in target-tokenizer tokens and the answer's depth."""

    train_lengths: list[int] = Field(default_factory=lambda: [1024, 2048, 4096], description="Cycled per sample.")
    eval_lengths: list[int] = Field(default_factory=lambda: [2048, 4096])
    position: float | Literal["uniform"] | None = Field(
        "uniform", description="Answer depth 0-1, 'uniform' (spread evenly over samples) or null (random)."
    )
    tolerance: float = Field(
        0.005, gt=0, le=0.01,
        description="Allowed relative length error (contexts of whole table rows may use up to 1 %).",
    )

    @field_validator("train_lengths", "eval_lengths")
    @classmethod
    def _lengths(cls, value: list[int]) -> list[int]:
        if not value or any(n < 64 or n > 1_048_576 for n in value):
            raise ValueError("lengths must be a non-empty list of token counts in [64, 1048576]")
        return value


class LLMConfig(_Strict):
    """LLM-backed construction through an OpenAI-compatible endpoint (off by default).

    A generator model writes a question and its gold as JSON (one schema per task); a verifier
    model (``verifier_backend``, default the generator's endpoint) then answers it with and
    without the context, and lists every answer it finds (see :mod:`golongrl.data.llm`)."""

    enabled: bool = False
    backend: str = Field("", description="'openai:<base_url>#<model>'; the key comes from api_key_env.")
    verifier_backend: str | None = Field(None, description="Verifier endpoint (default: the generator's).")
    api_key_env: str = "OPENAI_API_KEY"
    tasks: list[str] = Field(default_factory=lambda: list(_ALL_TASKS))
    domains: list[str] = Field(default_factory=list, description="Main documents' domains (empty: any).")
    samples_per_task: int = Field(2, ge=0, description="Train-split samples per task.")
    eval_samples_per_task: int = Field(0, ge=0, description="Eval-split samples per task.")
    concurrency: int = Field(4, ge=1, description="Requests in flight at once.")
    requests_per_second: float = Field(0.0, ge=0, description="Request rate limit (0: none).")
    max_retries: int = Field(3, ge=0)
    timeout_s: float = Field(120.0, gt=0)
    max_new_tokens: int = Field(768, ge=16)
    temperature: float = Field(0.0, ge=0)
    verify: bool = Field(True, description="Run the verifier calls (off: only the rule checks).")

    @model_validator(mode="after")
    def _backend_when_enabled(self) -> "LLMConfig":
        if self.enabled and not self.backend:
            raise ValueError("llm.enabled needs llm.backend ('openai:<base_url>#<model>')")
        bad = sorted(set(self.tasks) - set(_ALL_TASKS))
        if bad:
            raise ValueError(f"llm.tasks must be task types ({', '.join(_ALL_TASKS)}); got {bad}")
        return self


class CalibrationConfig(_Strict):
    """Two-stage difficulty calibration (spec §4, P3). Pass rate = mean reward over rollouts.

    Stage 1 (small policy): pass rate >= ``easy_min`` -> easy; >= ``medium_min`` -> medium;
    below -> unsolved. Stage 2 (large policy, unsolved only): >= ``large_medium_min`` -> medium;
    > ``large_hard_min`` -> hard; otherwise discard. Without a large policy the unsolved are
    kept as ``hard`` when ``keep_unsolved`` else discarded. The paper does not publish its
    thresholds; these defaults are golongrl's.
    """

    enabled: bool = False
    small_policy: str = Field("tiny", description="Backend spec (local folder, smollm2, tiny, openai:...).")
    large_policy: str | None = None
    rollouts: int = Field(4, ge=1)
    temperature: float = Field(1.0, ge=0)
    max_new_tokens: int = Field(128, ge=1, description="Tokens for the answer.")
    thinking_budget: int = Field(
        0, ge=0, description="Extra tokens for a <think> block; > 0 also demands the block be closed."
    )
    batch_size: int = Field(16, ge=1, description="Rows per backend call; each batch is logged when it returns.")
    easy_min: float = Field(0.8, ge=0, le=1)
    medium_min: float = Field(0.2, ge=0, le=1)
    large_medium_min: float = Field(0.5, ge=0, le=1)
    large_hard_min: float = Field(0.0, ge=0, le=1)
    keep_easy: bool = Field(True, description="The paper's figure retains easy samples.")
    keep_unsolved: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> "CalibrationConfig":
        if self.medium_min > self.easy_min:
            raise ValueError("calibration.medium_min must be <= easy_min")
        if self.large_hard_min > self.large_medium_min:
            raise ValueError("calibration.large_hard_min must be <= large_medium_min")
        return self


class ShortcutConfig(_Strict):
    """Shortcut probe: ask without the context; drop samples answered too often anyway."""

    enabled: bool = False
    policy: str = "tiny"
    rollouts: int = Field(2, ge=1)
    max_new_tokens: int = Field(64, ge=1)
    margin: float = Field(
        0.1, ge=0, le=1,
        description="Drop a row whose no-context pass rate exceeds its task's best lazy-strategy mean by this.",
    )
    batch_size: int = Field(16, ge=1, description="Rows per backend call; each batch is logged when it returns.")


class DecontaminationConfig(_Strict):
    """13-gram decontamination of ``extra_info.question`` against benchmark files (spec §4)."""

    benchmarks: list[Path] = Field(default_factory=list, description="JSONL/parquet files, or .lst files listing them.")
    n: int = Field(13, ge=1)
    text_field: str = "text"
    max_chars: int = Field(4000, ge=1, description="Characters of each benchmark text indexed.")


class DataConfig(_Strict):
    """Top level of a ``golongrl data build`` YAML file."""

    seed: int = 0
    tokenizer: str = Field("smollm2", description="Target tokenizer spec (golongrl.inference.models).")
    samples_per_task: int = Field(4, ge=0, description="Train samples per task unless tasks overrides.")
    eval_samples_per_task: int = Field(2, ge=0)
    tasks: dict[str, int] = Field(default_factory=dict, description="Per-task train counts (override).")
    levels: list[Literal["core", "warmup"]] = Field(
        default_factory=lambda: ["core"],
        description="Construction tiers to build from: core (full difficulty) and/or warmup (short contexts, "
                    "one-step skills a small policy solves sometimes).")
    eval_fraction: float = Field(0.25, ge=0, lt=1, description="Share of each domain's documents held out.")
    max_attempts: int = Field(12, ge=1, description="Construction tries per sample before giving up.")
    workers: int = Field(1, ge=1, description="Processes building samples (forked; output is identical).")
    formats: list[Literal["jsonl", "parquet"]] = Field(default_factory=lambda: ["jsonl", "parquet"])
    corpus: CorpusConfig = Field(default_factory=CorpusConfig)
    context: ContextConfig = Field(default_factory=ContextConfig)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    calibration: CalibrationConfig = Field(default_factory=CalibrationConfig)
    shortcut_probe: ShortcutConfig = Field(default_factory=ShortcutConfig)
    decontamination: DecontaminationConfig = Field(default_factory=DecontaminationConfig)

    @field_validator("levels")
    @classmethod
    def _levels(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("levels must name at least one tier (core, warmup)")
        return value

    @field_validator("tasks")
    @classmethod
    def _task_names(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(value) - set(TASK_TYPES))
        if unknown:
            raise ValueError(f"unknown task types {unknown}; known: {list(TASK_TYPES)}")
        if any(n < 0 for n in value.values()):
            raise ValueError("task counts must be >= 0")
        return value

    def train_count(self, task: str) -> int:
        return self.tasks.get(task, self.samples_per_task)

    def fingerprint(self) -> str:
        """Hash of everything that shapes the output (resume refuses a changed config);
        ``workers`` does not, so a build may resume with another worker count."""
        payload = json.dumps(self.model_dump(mode="json", exclude={"workers"}), sort_keys=True)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def load_config(path: str | Path | None) -> DataConfig:
    """Read and validate a YAML config (``None``: all defaults). Errors name file and field."""
    if path is None:
        return DataConfig()
    path = Path(path)
    try:
        raw = load_yaml(path.read_text(encoding="utf-8")) or {}
    except (OSError, YamlLimitError) as exc:
        raise DataError(f"cannot read YAML ({exc})", source=path) from None
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text (byte {exc.start}); save the config as UTF-8", source=path) from None
    if not isinstance(raw, dict):
        raise DataError("top level must be a mapping", source=path)
    try:
        return DataConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise DataError(f"{first['msg']} ({len(exc.errors())} error(s) in total)", source=path, field=field) from None


__all__ = [
    "CalibrationConfig",
    "ContextConfig",
    "CorpusConfig",
    "DataConfig",
    "DecontaminationConfig",
    "LLMConfig",
    "ShortcutConfig",
    "load_config",
]
