"""The row schema of a golongrl / GoLongRL / verl RL dataset, and its validation.

A row is what verl's RL dataset loader and :func:`golongrl.rewards.compute_score` read::

    {
      "data_source": "EM" | "selection" | "longbench_pro" | "math_longcot_math_verify"
                     | "multitableqa_pretraining" | ...,
      "prompt": [{"role": "user", "content": "<context + question>"}, ...],
      "ability": "precise long-range information retrieval",
      "reward_model": {"style": "rule",
                       "ground_truth": {"doc_ids": [str, ...], "golden_label": str,
                                        "summary": str}},
      "extra_info": {"reward_mode": str, "question": str, "task_type": str, "split": str,
                     "index": int, ...provenance},
    }

The published GoLongRL files are read unchanged: ``reward_model.ground_truth`` may be a dict or
a list whose last element is the gold (the reference reward manager does the same), and parquet
writers sometimes store nested fields as JSON strings. :func:`normalize_record` undoes both;
:func:`validate_record` normalises and then checks everything a scorer or trainer relies on, so a
bad row fails here, with its file, row and field, rather than as a silent zero reward later.
"""

from __future__ import annotations

import json
from os import PathLike
from typing import Any, Mapping

from golongrl.rewards.ground_truth import GroundTruthError
from golongrl.tasks import TASK_TYPES, UnknownTaskError, get_task, resolve_task

#: Chat roles a prompt message may carry (the roles chat templates understand).
PROMPT_ROLES: frozenset[str] = frozenset({"system", "user", "assistant", "tool"})

#: Fields that parquet writers of the published data sometimes store as JSON text.
_JSON_FIELDS: tuple[str, ...] = ("prompt", "reward_model", "extra_info")


class DataError(ValueError):
    """A malformed dataset row or file. The message names the file, the row and the field.

    Attributes:
        source: the file (or other origin) the row came from, or ``None``.
        row: 1-based row number (the line number for JSONL), or ``None`` for file-level errors.
        field: dotted path of the offending field (``reward_model.ground_truth.doc_ids``), or
            ``None`` when the whole row is unreadable.
        reason: what is wrong, without the location prefix.
    """

    def __init__(
        self,
        reason: str,
        *,
        source: str | PathLike[str] | None = None,
        row: int | None = None,
        field: str | None = None,
    ) -> None:
        self.source = None if source is None else str(source)
        self.row = row
        self.field = field
        self.reason = reason
        where = [
            part
            for part in (
                self.source,
                None if row is None else f"row {row}",
                None if field is None else f"field {field!r}",
            )
            if part is not None
        ]
        super().__init__(f"{': '.join(where)}: {reason}" if where else reason)


def _decode_json_field(value: Any, name: str, source: Any, row: int | None) -> Any:
    if isinstance(value, (str, bytes)):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"is a string but not valid JSON ({exc.msg} at char {exc.pos})",
                source=source,
                row=row,
                field=name,
            ) from None
    return value


def normalize_record(
    record: Mapping[str, Any],
    *,
    source: str | PathLike[str] | None = None,
    row: int | None = None,
) -> dict[str, Any]:
    """Return a copy of ``record`` in canonical form (the input is not modified).

    JSON-string ``prompt`` / ``reward_model`` / ``extra_info`` / ``ground_truth`` are decoded; a
    list-valued ``ground_truth`` becomes its last element; a missing ``extra_info`` becomes
    ``{}``. Raises :class:`DataError` only if a JSON string cannot be decoded or the row is not a
    mapping; everything else is left for :func:`validate_record` to judge.
    """
    if not isinstance(record, Mapping):
        raise DataError(
            f"row is a {type(record).__name__}, expected a JSON object", source=source, row=row
        )
    out = dict(record)
    for name in _JSON_FIELDS:
        if name in out:
            out[name] = _decode_json_field(out[name], name, source, row)
    if out.get("extra_info") is None:
        out["extra_info"] = {}
    reward_model = out.get("reward_model")
    if isinstance(reward_model, Mapping) and "ground_truth" in reward_model:
        reward_model = dict(reward_model)
        gt = reward_model["ground_truth"]
        # A numerical-reasoning gold may legitimately be a bare string such as "42"; only
        # strings that look like JSON containers are decoded.
        if isinstance(gt, str) and gt.lstrip()[:1] in ("{", "["):
            gt = _decode_json_field(gt, "reward_model.ground_truth", source, row)
        if isinstance(gt, (list, tuple)) and gt:
            # The reference reward manager scores against the last element of a list gold.
            gt = gt[-1]
            if isinstance(gt, str) and gt.lstrip()[:1] == "{":
                gt = _decode_json_field(gt, "reward_model.ground_truth", source, row)
        reward_model["ground_truth"] = gt
        out["reward_model"] = reward_model
    return out


def _fail(reason: str, field: str, source: Any, row: int | None) -> DataError:
    return DataError(reason, source=source, row=row, field=field)


def _check_str_list(value: Any, field: str, source: Any, row: int | None) -> None:
    if not isinstance(value, (list, tuple)):
        raise _fail(f"must be a list of strings, got {type(value).__name__}", field, source, row)
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise _fail(
                f"item {i} is a {type(item).__name__}, expected a string", field, source, row
            )
    if not value:
        raise _fail("is empty; the scorer gives 0 to every response for empty gold", field, source, row)


def _check_prompt(prompt: Any, source: Any, row: int | None) -> None:
    if not isinstance(prompt, (list, tuple)) or not prompt:
        raise _fail(
            "must be a non-empty list of chat messages {role, content}", "prompt", source, row
        )
    for i, message in enumerate(prompt):
        field = f"prompt[{i}]"
        if not isinstance(message, Mapping):
            raise _fail(
                f"is a {type(message).__name__}, expected {{role, content}}", field, source, row
            )
        role = message.get("role")
        if role not in PROMPT_ROLES:
            raise _fail(
                f"role {role!r} is not one of {sorted(PROMPT_ROLES)}", f"{field}.role", source, row
            )
        if not isinstance(message.get("content"), str):
            raise _fail("must be a string", f"{field}.content", source, row)
    if not any(m.get("role") == "user" and m.get("content", "").strip() for m in prompt):
        raise _fail("has no non-empty user message", "prompt", source, row)


def _check_ground_truth(task_name: str, rec: Mapping[str, Any], source: Any, row: int | None) -> None:
    """The task's own gold parser (the one the scorer uses) decides; its error names the field."""
    try:
        get_task(task_name).parse_gold(
            rec["reward_model"]["ground_truth"], rec.get("extra_info"), data_source=rec.get("data_source")
        )
    except GroundTruthError as exc:
        raise _fail(str(exc), _gold_field(str(exc)), source, row) from None


def _gold_field(message: str) -> str:
    for name in ("doc_ids", "golden_label", "summary"):
        if name in message:
            return f"reward_model.ground_truth.{name}"
    return "reward_model.ground_truth"


def validate_record(
    record: Mapping[str, Any],
    *,
    source: str | PathLike[str] | None = None,
    row: int | None = None,
) -> dict[str, Any]:
    """Check one dataset row and return it normalised (see :func:`normalize_record`).

    Raises :class:`DataError` naming ``source``, ``row`` and the first offending field. Checks:
    ``data_source`` resolves to one of the nine tasks (with ``extra_info.reward_mode`` for
    ``longbench_pro``); ``prompt`` is a non-empty chat with a user turn; ``ability`` and
    ``extra_info.question`` are strings when present; the gold field the task's scorer reads
    exists with the right type (non-empty ``doc_ids`` list of strings, non-empty
    ``golden_label``, and for structured extraction a ``{"data": [...]}`` JSON table).
    """
    rec = normalize_record(record, source=source, row=row)
    data_source = rec.get("data_source")
    if not isinstance(data_source, str) or not data_source:
        raise _fail("must be a non-empty string", "data_source", source, row)
    extra_info = rec["extra_info"]
    if not isinstance(extra_info, Mapping):
        raise _fail(
            f"must be an object, got {type(extra_info).__name__}", "extra_info", source, row
        )
    ability = rec.get("ability")
    if ability is not None and not isinstance(ability, str):
        raise _fail("must be a string when present", "ability", source, row)
    for key in ("question", "reward_mode", "split"):
        if key in extra_info and extra_info[key] is not None and not isinstance(extra_info[key], str):
            raise _fail("must be a string when present", f"extra_info.{key}", source, row)
    task_type = extra_info.get("task_type")
    if task_type is not None and task_type not in TASK_TYPES:
        raise _fail(
            f"{task_type!r} is not one of {', '.join(TASK_TYPES)}",
            "extra_info.task_type",
            source,
            row,
        )
    try:
        task_name = resolve_task(data_source, extra_info, ability)
    except UnknownTaskError as exc:
        field = "extra_info.reward_mode" if data_source == "longbench_pro" else "data_source"
        raise _fail(str(exc), field, source, row) from None
    _check_prompt(rec.get("prompt"), source, row)
    reward_model = rec.get("reward_model")
    if not isinstance(reward_model, Mapping):
        raise _fail("must be an object with a ground_truth", "reward_model", source, row)
    if "ground_truth" not in reward_model:
        raise _fail("is missing", "reward_model.ground_truth", source, row)
    style = reward_model.get("style")
    if style is not None and not isinstance(style, str):
        raise _fail("must be a string when present", "reward_model.style", source, row)
    _check_ground_truth(task_name, rec, source, row)
    # Resolved once here and carried, so scorers that see only extra_info (verl's signature)
    # score a row that only its ability string labels.
    rec["extra_info"] = {**extra_info, "task_type": task_name}
    return rec


def record_task(record: Mapping[str, Any]) -> str:
    """The canonical task name of a normalised row (see :func:`golongrl.tasks.resolve_task`)."""
    return resolve_task(
        str(record.get("data_source", "")), record.get("extra_info") or {}, record.get("ability")
    )


def prompt_text(record: Mapping[str, Any]) -> str:
    """All message contents of a normalised row's prompt, joined with blank lines."""
    return "\n\n".join(str(m.get("content", "")) for m in record.get("prompt") or ())


__all__ = [
    "DataError",
    "PROMPT_ROLES",
    "normalize_record",
    "prompt_text",
    "record_task",
    "validate_record",
]
