"""Per-step metrics to ``metrics.jsonl``, TensorBoard and (opt-in) Weights & Biases.

``metrics.jsonl`` holds one JSON object per training step ``{"step": N, "<name>": value, ...}``.
On resume from step K, lines after K are dropped (those steps are re-run), so the file always
reads as one clean run; TensorBoard gets ``purge_step`` for the same reason.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from golongrl.data.io import atomic_output
from golongrl.training.config import LoggingConfig


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """All step records of a ``metrics.jsonl`` (a torn last line from a kill is ignored)."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return rows


def _clean(value: Any) -> Any:
    # JSON has no NaN/inf; null keeps the file parseable by every reader.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class MetricsLogger:
    """Writes each step's flat ``{name: number}`` dict to every enabled sink."""

    def __init__(self, run_dir: Path, cfg: LoggingConfig, *, resume_step: int = 0,
                 config_dict: dict[str, Any] | None = None) -> None:
        self.path = run_dir / "metrics.jsonl"
        self.cfg = cfg
        self.logged_steps: set[int] = set()
        """Steps ``metrics.jsonl`` already holds (those kept on resume)."""
        if cfg.jsonl:
            kept = [r for r in read_metrics(self.path) if r.get("step", 0) <= resume_step]
            with atomic_output(self.path, "w") as handle:
                for row in kept:
                    handle.write(json.dumps(row) + "\n")
            self.logged_steps = {int(r.get("step", 0)) for r in kept}
        self._tb = None
        if cfg.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(run_dir / "tensorboard"), purge_step=resume_step + 1)
        self._wandb = None
        if cfg.wandb.enabled:
            try:
                import wandb
            except ImportError as err:
                raise RuntimeError("logging.wandb.enabled is true but wandb is not installed: "
                                   "pip install wandb (or disable it in the config)") from err
            self._wandb = wandb.init(project=cfg.wandb.project, entity=cfg.wandb.entity,
                                     name=cfg.wandb.run_name or run_dir.name, config=config_dict,
                                     resume="allow", dir=str(run_dir))

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        row = {"step": step, **{k: _clean(v) for k, v in sorted(metrics.items())}}
        if self.cfg.jsonl:
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
        if self._tb is not None:
            for key, value in row.items():
                if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
                    self._tb.add_scalar(key, value, step)
            self._tb.flush()
        if self._wandb is not None:
            self._wandb.log(metrics, step=step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()
