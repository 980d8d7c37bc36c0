"""What every engine launcher does to a preset before its own checks: a preset is an ordinary
golongrl training config plus one section named after the engine (``trl:``, ``verl:``).

This module imports no engine, so each launcher can use it without importing another.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from golongrl.rewards import ScoreOptions
from golongrl.training.config import ConfigError, TrainConfig, config_from_dict, parse_overrides, resolve_path

SectionT = TypeVar("SectionT", bound=BaseModel)


def read_preset(path: Path, overrides: list[str] | None, section: str) -> tuple[TrainConfig, dict[str, Any]]:
    """The validated training config (data paths resolved against the preset's folder) and the
    raw engine ``section`` (the file's, updated by the ``section.*`` overrides).

    ``overrides`` are ``KEY=VALUE`` strings for either part. Raises :class:`ConfigError` naming
    the file (and key) when the file cannot be read, is not a YAML mapping, or the training
    config is invalid.
    """
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(raw).__name__}")
    requested = parse_overrides(overrides or [])
    section_raw = {**(raw.pop(section, None) or {}), **requested.pop(section, {})}
    train = config_from_dict(raw, source=str(path), overrides=requested)
    base = path.resolve().parent
    train.data.train_files = [resolve_path(p, base) for p in train.data.train_files]
    train.data.eval_files = [resolve_path(p, base) for p in train.data.eval_files]
    return train, section_raw


def validate_section(model: type[SectionT], raw: dict[str, Any], path: Path, section: str) -> SectionT:
    """``raw`` as the engine's section model; a :class:`ConfigError` lists every invalid key
    as ``<file>: <section>.<key>: <message>``."""
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        lines = [f"{path}: {section}.{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in err.errors()]
        raise ConfigError("\n".join(lines)) from None


def known_reward_options(value: dict[str, Any]) -> dict[str, Any]:
    """``value`` when every key is a :class:`golongrl.rewards.ScoreOptions` field; else a
    :class:`ValueError` naming the unknown and the known ones (a section's field validator)."""
    known = {f.name for f in fields(ScoreOptions)}
    unknown = sorted(set(value) - known)
    if unknown:
        raise ValueError(f"unknown {unknown}; known: {sorted(known)}")
    return value


__all__ = ["known_reward_options", "read_preset", "validate_section"]
