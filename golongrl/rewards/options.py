"""Scoring options and the reasons attached to a zero, shared by the scorer and the task units.

Kept apart from :mod:`golongrl.rewards.scoring` so that ``golongrl.tasks`` (which the scorer
dispatches to) can read them without an import circle.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

MODES = ("faithful", "hardened")

#: Reasons attached to a zero that was not a plain wrong answer.
REASON_FORMAT = "format"  # failed the think/length gate
REASON_PARSE = "parse"  # no answer could be extracted (no letter, no parse, invalid JSON...)
REASON_TIMEOUT = "timeout"
REASON_ERROR = "error"  # the scorer itself failed (in faithful mode: where the reference raises)
REASON_GOLD = "gold"  # the row's gold or labels cannot be scored against

Result = tuple[float, str | None]

_log = logging.getLogger("golongrl.rewards")


@dataclass(frozen=True)
class ScoreOptions:
    """Knobs of the scorers; defaults are the reference's values.

    Attributes:
        require_think: demand a ``</think>``; ``None`` means the mode's default (True in
            faithful, False in hardened so non-thinking policies are scorable; set it for
            thinking models, whose truncated responses then fail the gate).
        max_response_chars: hardened only; longer responses score 0 with reason ``format``.
        math_tail_chars: how much of the (answer) text math_verify sees (reference: 500).
        math_timeout_s: the reference's math_verify parse/verify timeouts (5 s), kept on the
            main thread and in workers with golongrl's nestable SIGALRM timer (math_verify's
            own would cancel the per-sample cap); off the main thread ``score_batch`` runs
            such math in a killable worker.
        rouge_recursion_budget: faithful only; the deepest recursive LCS reconstruction the
            reference survives: ``sys.getrecursionlimit()`` (1000) minus the stack depth at
            which the reference calls ``Rouge.get_scores`` minus 6.  960 assumes a verl
            reward loop ~34 frames deep; it only matters for sentence pairs of ~480+ words.
    """

    require_think: bool | None = None
    max_response_chars: int = 262_144
    math_tail_chars: int = 500
    math_timeout_s: int = 5
    rouge_recursion_budget: int = 960


_OPTION_NAMES = frozenset(ScoreOptions.__dataclass_fields__)
_DEFAULT_OPTIONS = ScoreOptions()  # frozen: safe to share
# verl's reward manager passes these to every custom reward function; they mean nothing here.
_VERL_PASSTHROUGH = frozenset(
    {
        "sandbox_fusion_url",
        "concurrent_semaphore",
        "memory_limit_mb",
        "enable_repetition_penalty",
        "reward_router_address",
        "reward_model_tokenizer",
    }
)
_warned: set[str] = set()


def make_options(options: ScoreOptions | None = None, **kwargs: Any) -> ScoreOptions:
    """Build :class:`ScoreOptions` from keyword overrides; unknown names are ignored with one
    warning each (verl forwards its own reward kwargs, and a new verl must not break training)."""
    opts = options or _DEFAULT_OPTIONS
    if not kwargs:  # every score_batch call without options (a verl micro-batch costs it)
        return opts
    known = {k: v for k, v in kwargs.items() if k in _OPTION_NAMES}
    for name in kwargs.keys() - _OPTION_NAMES - _VERL_PASSTHROUGH - _warned:
        _warned.add(name)
        _log.warning("golongrl.rewards: ignoring unknown scoring option %r", name)
    return replace(opts, **known) if known else opts
