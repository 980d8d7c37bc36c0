"""The registry of rule-based constructions: every task's ``golongrl/tasks/<name>/constructions.py``
contributes its :class:`~golongrl.construct.ConstructionSpec` tuple ``CONSTRUCTIONS``.

The machinery they share (:class:`~golongrl.construct.Sample`, :class:`~golongrl.construct.Env`,
table and section helpers) lives in the low layer :mod:`golongrl.construct`; this module only
collects them, which is why it may sit in :mod:`golongrl.data`.
"""

from __future__ import annotations

import importlib

from golongrl.construct import ConstructionSpec
from golongrl.tasks import LBP_REWARD_MODES, TASK_TYPES, get_task


def _collect() -> dict[str, ConstructionSpec]:
    found: dict[str, ConstructionSpec] = {}
    for task in TASK_TYPES:
        module = importlib.import_module(f"golongrl.tasks.{task}.constructions")
        for spec in module.CONSTRUCTIONS:
            if spec.name in found:
                raise ValueError(f"construction {spec.name!r} is registered twice")
            if spec.lbp_task not in LBP_REWARD_MODES:
                raise ValueError(f"construction {spec.name!r}: {spec.lbp_task!r} is not a LongBench-Pro task")
            found[spec.name] = spec
    return found


CONSTRUCTIONS: dict[str, ConstructionSpec] = _collect()


def constructions_for(task: str) -> list[ConstructionSpec]:
    """The registered rule-based constructions of ``task`` (validated task name)."""
    get_task(task)
    return [c for c in CONSTRUCTIONS.values() if c.task == task]


__all__ = ["CONSTRUCTIONS", "constructions_for"]
