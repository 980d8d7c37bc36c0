"""Numerical reasoning: a number (or expression) in ``\\boxed{}``, checked with math_verify."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from golongrl.rewards import guard
from golongrl.rewards.options import REASON_TIMEOUT
from golongrl.tasks.base import REASON_PARSE, Gold, Result, ScoreOptions, Task, row_question

_NUMBER_IN_TEXT = re.compile(r"(?<![\w.])-?\d+(?:,\d{3})*(?:\.\d+)?")
_PLAIN_NUMBER = re.compile(r"^[-+]?(?:\d+(?:,\d{3})*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$")
_FRAC = re.compile(r"^(-?)\\[dt]?frac\{(-?[\d.]+)\}\{(-?[\d.]+)\}$")
_LATEX_NOISE = re.compile(r"\\[,;!: ]|\\text\{[^{}]*\}|\\mathrm\{[^{}]*\}|\$|\\left|\\right|\\\(|\\\)")
_MAX_BOXES = 32


def boxed_contents(text: str) -> list[str]:
    """The contents of every ``\\boxed{...}`` / ``\\fbox{...}`` in ``text`` (braces matched;
    at most 32, scanning linearly)."""
    out: list[str] = []
    for match in re.finditer(r"\\(?:boxed|fbox)\s*\{", text):
        depth, start = 1, match.end()
        for i in range(start, min(len(text), start + 2000)):
            ch = text[i]
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    out.append(text[start:i])
                    break
        if len(out) >= _MAX_BOXES:
            break
    return out


def number_values(text: str) -> set[Fraction] | None:
    """The exact values a plain numeric answer may mean, or ``None`` if it is not one.

    ``50\\%`` means 50 or 0.5 (a percentage is accepted as written and as a fraction), ``1,234``
    means 1234, ``\\frac{1}{4}`` means 1/4; LaTeX spacing, ``$`` and ``\\text{units}`` are ignored.
    """
    s = _LATEX_NOISE.sub("", text).strip()
    percent = s.endswith("%")
    s = s.rstrip("%").rstrip("\\").strip().rstrip(".")
    value: Fraction | None = None
    frac = _FRAC.match(s)
    try:
        if frac:
            den = Decimal(frac.group(3))
            if den == 0:
                return None
            value = Fraction(Decimal(frac.group(2))) / Fraction(den)
            value = -value if frac.group(1) else value
        elif _PLAIN_NUMBER.match(s):
            digits = s.replace(",", "")
            if len(digits) > 60:
                return None
            value = Fraction(Decimal(digits))
    except (InvalidOperation, ValueError, ZeroDivisionError):
        return None
    if value is None:
        return None
    return {value, value / 100} if percent else {value}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _number_text(value: float) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


class _OwnTimeouts(logging.Filter):
    """math_verify warns once that its timeouts are off; here they are replaced, not off."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Timeout is disabled")


for _name in ("math_verify.parser", "math_verify.grader"):
    logging.getLogger(_name).addFilter(_OwnTimeouts())


def _limited(seconds: float, call: Callable[[], Any]) -> Any:
    # The reference's math_verify timeouts (parse, verify), rebuilt on guard's SIGALRM timer:
    # math_verify's own ``signal.alarm`` would cancel any enclosing timer (the per-sample cap
    # of score_batch, or a caller's).  Off the main thread no timer exists; a killable
    # worker process bounds the work instead (the caller runs this sample there).
    if guard.alarm_available():
        return guard.call_with_alarm(seconds, call)
    return call()


def math_verify_score(tail: str, gold: str, options: ScoreOptions) -> Result:
    """The reference's ``math_verify_from_sky``: parse the tail; a string hit on the parsed
    answer or a math_verify equivalence with ``\\boxed{gold}`` scores 1.  A parse over
    ``options.math_timeout_s`` counts as no answer, a verification over it as incorrect (the
    reference's outcomes; its verify limits each comparison, this the whole call).  A tail
    that :func:`golongrl.rewards.guard.screen_math` knows to explode scores ``timeout``."""
    from math_verify import parse, verify

    # sympy runs from here on.  Text known to explode is refused; inside score_batch, what no
    # timer here can cap (off the main thread, or numbers too big for one to interrupt) moves
    # to a killable worker (guard.NeedsWorker).
    why, digits = guard.screen_math(tail)
    if why:
        return 0.0, REASON_TIMEOUT
    if digits > guard.IN_PROCESS_MAX_DIGITS or not guard.alarm_available():
        guard.require_worker()
    limit = options.math_timeout_s
    try:
        parsed = _limited(limit, lambda: parse(tail, parsing_timeout=None))
    except Exception:  # math_verify raises arbitrary sympy/ANTLR errors on junk; or timed out
        return 0.0, REASON_PARSE
    if len(parsed) < 2:
        return 0.0, REASON_PARSE
    if parsed[1] in [gold]:
        return 1.0, None
    try:
        gold_parsed = _limited(limit, lambda: parse(f"\\boxed{{{gold}}}", parsing_timeout=None))
        ok = _limited(limit, lambda: verify(gold_parsed, parsed, timeout_seconds=None))
    except Exception:  # same as above: the reference counts any failure as incorrect
        return 0.0, None
    return (1.0 if ok else 0.0), None


class NumericalReasoning(Task):
    """Hardened: every ``\\boxed{}`` after ``</think>`` must hold the same answer (boxing several
    numbers earns 0); plain numbers are compared exactly by value with percent/decimal
    equivalence (``\\boxed{50\\%}``, ``\\boxed{0.5}`` and ``\\boxed{50}`` all match gold
    ``50\\%``); anything else goes to math_verify against ``\\boxed{gold}``."""

    name = "numerical_reasoning"
    title = "Numerical reasoning"
    metric = "math_verify"
    binary = True
    data_source = "math_longcot_math_verify"
    ground_truth_field = "golden_label"
    ability = "numerical extraction and quantitative reasoning"
    answer_format = "final answer in \\boxed{} near the end"
    instruction = "Put the final number in \\boxed{} at the end of your reply."
    chance = 0.0

    def parse_gold(self, ground_truth: Any, extra_info: Mapping[str, Any] | None = None, *,
                   data_source: str | None = None, strict: bool = True) -> Gold:
        """A bare string or number is the label (the reference accepts ``gt`` as a string),
        and a numeric ``golden_label`` is read as its decimal text."""
        gt = ground_truth[-1] if isinstance(ground_truth, (list, tuple)) and ground_truth else ground_truth
        if isinstance(gt, Mapping) and _is_number(gt.get("golden_label")):
            gt = {**gt, "golden_label": _number_text(gt["golden_label"])}
        elif _is_number(gt):
            gt = _number_text(gt)
        return super().parse_gold(gt, extra_info, data_source=data_source, strict=strict)

    def faithful(self, gold: Gold, response: str, options: ScoreOptions) -> Result:
        return math_verify_score(response[-options.math_tail_chars :], gold.label, options)

    def hardened(self, gold: Gold, answer: str, options: ScoreOptions) -> Result:
        answer = answer.strip()  # trailing padding must not push the answer out of the tail
        if not answer:
            return 0.0, REASON_PARSE
        boxes = [b.strip() for b in boxed_contents(answer)]
        if len(set(boxes)) > 1:
            values = [number_values(b) for b in boxes]
            if any(v is None for v in values) or len({frozenset(v) for v in values if v}) > 1:
                return 0.0, REASON_PARSE
        gold_values = number_values(gold.label.strip())
        if boxes and gold_values is not None:
            mine = number_values(boxes[-1])
            if mine is not None:
                return (1.0 if mine & gold_values else 0.0), None
        return math_verify_score(answer[-options.math_tail_chars :], gold.label, options)

    def reference_response(self, gold: Gold) -> str:
        return f"\\boxed{{{gold.label.strip()}}}"

    def baselines(self, row: Mapping[str, Any]) -> dict[str, str]:
        question = row_question(row)
        out = {"echo_question": question, "boxed_0": "\\boxed{0}", "boxed_1": "\\boxed{1}",
               "boxed_2": "\\boxed{2}"}
        numbers = _NUMBER_IN_TEXT.findall(question)
        if numbers:
            out["number_in_question"] = f"\\boxed{{{numbers[-1]}}}"
        out["several_boxes"] = " ".join(f"\\boxed{{{n}}}" for n in range(0, 10))
        return out


TASK = NumericalReasoning()
