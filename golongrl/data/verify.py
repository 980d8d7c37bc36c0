"""Phase 3 verification: a constructed sample becomes a row only if its gold is provably right.

Checks, in order: every evidence span occurs verbatim in the context; every item-by-item check
of the construction passes (recomputed from the context text); the row passes the schema; and
the gold response scores 1.0 under the task's own reward in hardened mode
(:func:`golongrl.rewards.compute_score`). The gold response is wrapped in a closed think block,
so it also passes the faithful mode's ``</think>`` gate.
"""

from __future__ import annotations

from typing import Any, Mapping

from golongrl.data.schema import DataError, validate_record
from golongrl.tasks import get_task

#: A gold response must score at least this (ROUGE-L's F has a 1e-8 smoothing term).
PERFECT = 1.0 - 1e-6
GOLD_THINK = "<think>\nThe answer follows from the context.\n</think>\n"


def gold_response(answer: str) -> str:
    """The full response a perfect policy would give: a closed think block, then the answer."""
    return GOLD_THINK + answer


def reference_response(row: Mapping[str, Any]) -> str:
    """A correct response built from a row's stored gold alone, in the format its prompt asks
    for (used by tests and diagnostics to re-check a dataset independently of how it was
    constructed): the task's :meth:`~golongrl.tasks.Task.reference_response` after a closed
    think block."""
    from golongrl.data.schema import record_task

    task = get_task(record_task(row))
    gold = task.parse_gold(row["reward_model"]["ground_truth"], row.get("extra_info"),
                           data_source=row.get("data_source"))
    return gold_response(task.reference_response(gold))


def verify_row(row: Mapping[str, Any], context: str, answer: str, evidence: list[str],
               checks: list[tuple[str, bool]]) -> list[str]:
    """Reasons the row fails verification (empty list: verified)."""
    from golongrl.rewards import compute_score

    failures = [f"evidence not in context: {span[:60]!r}" for span in evidence if span not in context]
    failures += [f"check failed: {what}" for what, ok in checks if not ok]
    try:
        validate_record(row)
    except DataError as exc:
        failures.append(f"schema: {exc}")
        return failures
    score = compute_score(
        row["data_source"], gold_response(answer), row["reward_model"]["ground_truth"],
        row["extra_info"], mode="hardened",
    )
    if score < PERFECT:
        failures.append(f"gold response scores {score:.4f} < 1 under its own reward (hardened)")
    return failures


__all__ = ["GOLD_THINK", "PERFECT", "gold_response", "reference_response", "verify_row"]
