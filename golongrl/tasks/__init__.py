"""The nine capability-oriented task types, their registry, and how the reference's labels
map onto them.

Each task type is one unit, the package ``golongrl/tasks/<name>/`` whose ``TASK`` (a
:class:`~golongrl.tasks.base.Task`) holds its labels, gold parser, answer instruction, answer
extraction, metric in both modes, reference response and gold-independent baselines; its data
constructions sit beside it in ``constructions.py``.

Every layer of golongrl (rewards, data pipeline, advantages, trainer, verl plugin, evaluation)
speaks of tasks by the canonical names in :data:`TASK_TYPES`. Labels coming from the published
GoLongRL data (``data_source``, the 25 LongBench-Pro ``extra_info.reward_mode`` names and the
``ability`` strings) are resolved here and nowhere else, so a name seen in a log can be found
with one search.
"""

from __future__ import annotations

from typing import Any, Mapping

from golongrl.tasks.base import Gold, Task
from golongrl.tasks.comprehension import TASK as _COMPREHENSION
from golongrl.tasks.exhaustive_retrieval import TASK as _EXHAUSTIVE_RETRIEVAL
from golongrl.tasks.graded_ranking import TASK as _GRADED_RANKING
from golongrl.tasks.numerical_reasoning import TASK as _NUMERICAL_REASONING
from golongrl.tasks.precise_retrieval import TASK as _PRECISE_RETRIEVAL
from golongrl.tasks.sequence_ordering import TASK as _SEQUENCE_ORDERING
from golongrl.tasks.structured_extraction import TASK as _STRUCTURED_EXTRACTION
from golongrl.tasks.structured_matching import TASK as _STRUCTURED_MATCHING
from golongrl.tasks.summarization import TASK as _SUMMARIZATION

#: The nine task units by canonical name, in the reference's order.
TASK_TYPES: dict[str, Task] = {
    t.name: t
    for t in (
        _PRECISE_RETRIEVAL,
        _COMPREHENSION,
        _EXHAUSTIVE_RETRIEVAL,
        _NUMERICAL_REASONING,
        _STRUCTURED_EXTRACTION,
        _STRUCTURED_MATCHING,
        _GRADED_RANKING,
        _SEQUENCE_ORDERING,
        _SUMMARIZATION,
    )
}

#: The 25 LongBench-Pro secondary tasks and the metric each is scored with (identical to the
#: official LongBench-Pro evaluation table that GoLongRL reuses).
LBP_REWARD_MODES: dict[str, str] = {
    "T1.1 Global Cohesive Retrieval": "NDCG",
    "T1.2 Key-Snippet Retrieval": "NDCG",
    "T2.1 Global Timeline Reconstruction": "Pairwise_Accuracy",
    "T2.2 Local Causal Chain Sorting": "Pairwise_Accuracy",
    "T3.1 Multi-Doc Integration QA": "Accuracy",
    "T3.2 Single-Hop Fact QA": "Accuracy",
    "T4.1 Global-Coverage Constrained Summary": "Summary",
    "T4.2 Query-Focused Summary": "Summary",
    "T5.1 Full-Sentence Citation Alignment": "F1_Score",
    "T5.2 Key-Statement Citation Alignment": "F1_Score",
    "T6.1 Large-Scale Document Clustering": "SubEM",
    "T6.2 Targeted Subset Cluster Identification": "F1_Score",
    "T6.3 Global Frequency Analysis": "Pairwise_Accuracy",
    "T7.1 Global Conflict & Inconsistency Localization": "F1_Score",
    "T7.2 Targeted Rule or Condition Violation Detection": "F1_Score",
    "T7.3 Comprehensive Error & Anomaly Sweep": "F1_Score",
    "T8.1 Structured Multi-Source Consistency Verification": "SubEM",
    "T8.2 Single-Source Targeted Aggregation": "SubEM",
    "T8.3 Long-Context Procedural State Tracking": "SubEM",
    "T9.1 Dependency-Aware Multi-Version Impact Analysis": "F1_Score",
    "T9.2 Localized Interface Change Detection": "F1_Score",
    "T10.1 Large-Scale In-Context Rule Induction": "SubEM",
    "T10.2 Targeted Example-Based Rule Induction": "SubEM",
    "T11.1 Long-Range Entity & Commitment Tracking": "Accuracy",
    "T11.2 Short-Range Reference Resolution & State Query": "Accuracy",
}

LBP_METRIC_TO_TASK: dict[str, str] = {
    t.lbp_metric: t.name for t in TASK_TYPES.values() if t.lbp_metric is not None
}
DATA_SOURCE_TO_TASK: dict[str, str] = {
    t.data_source: t.name for t in TASK_TYPES.values() if t.data_source != "longbench_pro"
}
ABILITY_TO_TASK: dict[str, str] = {t.ability.casefold(): t.name for t in TASK_TYPES.values()}

#: The reference's numerical-reasoning dispatch is a substring test on data_source.
_MATH_DATA_SOURCE_MARKER = "math_longcot_math_verify"


class UnknownTaskError(ValueError):
    """A label that maps to none of the nine task types."""


def get_task(name: str) -> Task:
    """Return the task type with canonical ``name`` (raises :class:`UnknownTaskError`)."""
    try:
        return TASK_TYPES[name]
    except KeyError:
        raise UnknownTaskError(
            f"unknown task type {name!r}; known: {', '.join(TASK_TYPES)}"
        ) from None


def task_for_reward_mode(reward_mode: str) -> str:
    """Map one of the 25 LongBench-Pro ``reward_mode`` names (or a canonical name) to a task."""
    if reward_mode in TASK_TYPES:
        return reward_mode
    metric = LBP_REWARD_MODES.get(reward_mode)
    if metric is None:
        raise UnknownTaskError(
            f"reward_mode {reward_mode!r} is neither a task type nor one of the 25 "
            "LongBench-Pro task names"
        )
    return LBP_METRIC_TO_TASK[metric]


def resolve_task(
    data_source: str,
    extra_info: Mapping[str, Any] | None = None,
    ability: str | None = None,
) -> str:
    """Resolve a dataset row's labels to a canonical task name.

    The order follows the reference's reward dispatch: ``data_source`` decides, and for
    ``longbench_pro`` rows ``extra_info.reward_mode`` selects the metric. A golongrl-built row
    may also carry its canonical name in ``extra_info.task_type``. ``ability`` is a fallback for
    rows whose data_source is unknown.
    """
    extra_info = extra_info or {}
    explicit = extra_info.get("task_type")
    if isinstance(explicit, str) and explicit in TASK_TYPES:
        return explicit
    if data_source == "longbench_pro":
        mode = extra_info.get("reward_mode")
        if not isinstance(mode, str):
            raise UnknownTaskError(
                "data_source 'longbench_pro' needs extra_info.reward_mode (one of the 25 "
                "LongBench-Pro task names)"
            )
        return task_for_reward_mode(mode)
    if data_source in DATA_SOURCE_TO_TASK:
        return DATA_SOURCE_TO_TASK[data_source]
    if _MATH_DATA_SOURCE_MARKER in data_source:
        return "numerical_reasoning"
    if data_source in TASK_TYPES:
        return data_source
    if ability and ability.casefold() in ABILITY_TO_TASK:
        return ABILITY_TO_TASK[ability.casefold()]
    raise UnknownTaskError(
        f"data_source {data_source!r} maps to no task type (known: "
        f"{', '.join(sorted(DATA_SOURCE_TO_TASK))}, longbench_pro, or a canonical task name)"
    )


def reference_task_key(data_source: str, extra_info: Mapping[str, Any] | None = None) -> str:
    """The grouping key the reference trainer uses for TMN (spec §5): the LBP metric name for
    the 25 LongBench-Pro modes, ``extra_info.reward_mode`` verbatim otherwise, ``""`` if absent.

    golongrl groups by :func:`resolve_task` by default; this key exists so a user can reproduce
    the reference's grouping exactly.
    """
    mode = (extra_info or {}).get("reward_mode")
    if not isinstance(mode, str):
        return ""
    return LBP_REWARD_MODES.get(mode, mode)


__all__ = [
    "ABILITY_TO_TASK",
    "Gold",
    "Task",
    "DATA_SOURCE_TO_TASK",
    "LBP_METRIC_TO_TASK",
    "LBP_REWARD_MODES",
    "TASK_TYPES",
    "UnknownTaskError",
    "get_task",
    "reference_task_key",
    "resolve_task",
    "task_for_reward_mode",
]
