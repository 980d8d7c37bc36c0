"""Checkpoints that survive SIGKILL: a step's folder appears whole or not at all.

Layout of ``<run>/checkpoints/step-000012/``::

    policy.safetensors   trainable parameters only (all of them for full fine-tuning; the
                         adapters for LoRA; the unfrozen layers when lower layers are frozen).
                         Frozen weights come back from the model spec, so they are not repeated.
    state.pt             optimizer, LR scheduler, torch RNG states, data-stream position, step
    meta.json            step, model spec, the run's settings (written last; its presence = complete)

A checkpoint is written into a hidden temporary folder, fsynced and renamed into place, so an
interrupt, an OOM kill or a full disk leaves the previous checkpoint untouched. Old
checkpoints beyond ``keep_last`` are removed only after the new one is in place; hidden
folders a killed save left behind are removed by the next save.

A resume is refused when the run's settings differ from those the checkpoint recorded
(:func:`check_resume_config`), unless ``checkpoint.allow_config_change`` is set.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from golongrl.data.io import default_dir_mode, remove_orphans
from golongrl.training.config import ConfigError, TrainConfig, config_diff, resume_settings

_STEP_DIR = re.compile(r"^step-(\d+)$")


@dataclass
class TrainingState:
    """Everything besides the weights that a resumed run needs to continue identically."""

    step: int
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    data: dict[str, Any]
    rng: dict[str, Any]


def capture_rng() -> dict[str, Any]:
    """torch CPU (and CUDA, if present) generator states: the only RNGs the trainer draws from."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Trainable parameters by name (tied weights appear once, as named_parameters dedups them)."""
    return {n: p.detach().cpu().contiguous().clone() for n, p in model.named_parameters() if p.requires_grad}


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(root: Path, model: torch.nn.Module, state: TrainingState, meta: dict[str, Any],
                    *, keep_last: int) -> Path:
    """Write ``root/step-<N>`` atomically and prune older checkpoints; returns the folder."""
    bad = [n for n, p in model.named_parameters() if p.requires_grad and not torch.isfinite(p).all()]
    if bad:
        raise FloatingPointError(
            f"step {state.step}: {len(bad)} parameters hold inf/NaN (first: {bad[0]}); nothing was "
            "saved. Lower optimizer.lr or set optimizer.grad_clip, then resume from the last checkpoint")
    root.mkdir(parents=True, exist_ok=True)
    remove_orphans(root, r"step-\d+")
    final = root / f"step-{state.step:06d}"
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=root))
    tmp.chmod(default_dir_mode())  # mkdtemp makes it owner-only; give it mkdir's mode
    try:
        try:
            save_file(trainable_state(model), str(tmp / "policy.safetensors"))
            torch.save({"step": state.step, "optimizer": state.optimizer, "scheduler": state.scheduler,
                        "data": state.data, "rng": state.rng}, tmp / "state.pt")
        except RuntimeError as exc:  # torch and safetensors report a failed write this way
            raise OSError(errno.EIO, f"writing failed ({str(exc).splitlines()[0][:120]}); is the disk full?",
                          str(final)) from None
        (tmp / "meta.json").write_text(json.dumps({"step": state.step, **meta}, indent=2))
        for f in tmp.iterdir():
            with open(f, "rb") as handle:
                os.fsync(handle.fileno())
        if final.exists():  # a re-run of the same step after a resume: replace it
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync_dir(root)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    for old in list_checkpoints(root)[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(root: Path) -> list[Path]:
    """Complete checkpoints under ``root``, oldest first (hidden temp folders are ignored)."""
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        m = _STEP_DIR.match(p.name)
        if m and (p / "meta.json").is_file():
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def check_resume_config(root: Path, cfg: TrainConfig) -> None:
    """Raise ConfigError when the newest checkpoint under ``root`` was written with other
    settings than ``cfg`` (see :func:`golongrl.training.config.resume_settings`), naming the
    differing keys; ``cfg.checkpoint.allow_config_change`` lets the resume go ahead."""
    ckpt = latest_checkpoint(root)
    if ckpt is None or cfg.checkpoint.allow_config_change:
        return
    try:
        recorded = json.loads((ckpt / "meta.json").read_text(encoding="utf-8")).get("config")
    except (OSError, ValueError):
        recorded = None
    if not isinstance(recorded, dict):
        return  # written before checkpoints recorded their settings: nothing to compare
    changed = config_diff(recorded, resume_settings(cfg))
    if changed:
        shown = ", ".join(changed[:8]) + (f" and {len(changed) - 8} more" if len(changed) > 8 else "")
        raise ConfigError(
            f"{ckpt}: this checkpoint was written with different settings ({shown}); use a new "
            "--output folder, or pass --allow-config-change to resume it under the new settings")


def latest_checkpoint(root: Path) -> Path | None:
    ckpts = list_checkpoints(root)
    return ckpts[-1] if ckpts else None


def load_checkpoint(path: Path, model: torch.nn.Module) -> TrainingState:
    """Load trainable weights into ``model`` (strictly: every saved name must exist and be
    trainable) and return the rest of the state."""
    weights = load_file(str(path / "policy.safetensors"))
    params = dict(model.named_parameters())
    unknown = sorted(set(weights) - {n for n, p in params.items() if p.requires_grad})
    if unknown:
        raise ValueError(f"{path}: checkpoint holds parameters this model does not train: {unknown[:5]}"
                         " (was it written with a different model/LoRA/freezing setup?)")
    with torch.no_grad():
        for name, tensor in weights.items():
            params[name].copy_(tensor)
    raw = torch.load(path / "state.pt", map_location="cpu", weights_only=True)
    return TrainingState(step=raw["step"], optimizer=raw["optimizer"], scheduler=raw["scheduler"],
                         data=raw["data"], rng=raw["rng"])
