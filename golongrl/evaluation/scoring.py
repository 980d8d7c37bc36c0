"""Rule-based scorers of the reference harness (§7), reproduced rule for rule.

Each function takes an already think-stripped response. Deviations from the reference are
deliberate and listed here (and in docs/evaluation.md):

* DocMath's normaliser ends with Python ``eval`` on the model's answer; we evaluate the same
  small language (numbers, arithmetic, ``math.pow``, tuples/lists, booleans, quoted strings)
  with a safe AST walker instead, and anything else becomes 0 exactly as a failing ``eval`` did.
* DocMath booleans are compared with the typed gold value; the reference compared against
  ``bool(str(gold))``, which is ``True`` for a ``False`` gold.
"""

from __future__ import annotations

import ast
import math
import operator
import re
import string
import unicodedata
from collections import Counter
from difflib import SequenceMatcher
from typing import Any


# --------------------------------------------------------------------------------------- MRCR
def score_mrcr(response: str, answer: str, random_string_to_prepend: str) -> float:
    """OpenAI MRCR grading: 0.0 unless ``response`` starts with the random prefix; otherwise the
    ``difflib.SequenceMatcher`` ratio of response and answer, each with the prefix removed.
    Range [0, 1]."""
    if not response.startswith(random_string_to_prepend):
        return 0.0
    response = response.removeprefix(random_string_to_prepend)
    answer = answer.removeprefix(random_string_to_prepend)
    return float(SequenceMatcher(None, response, answer).ratio())


#: openai/mrcr's length bins (upper bounds in tokens); a row of n tokens falls in the first bin
#: whose upper bound is >= n.
MRCR_BIN_EDGES = (4096, 8192, 16384, 32768, 65536, 131072, 262144, 524288, 1048576)


def mrcr_bin(n_tokens: int) -> str:
    """``"lo-hi"`` label of the openai/mrcr bin holding ``n_tokens`` (e.g. ``"65536-131072"``)."""
    lower = 0
    for upper in MRCR_BIN_EDGES:
        if n_tokens <= upper:
            return f"{lower}-{upper}"
        lower = upper
    return f"{lower}-inf"


# ------------------------------------------------------------------------------------ DocMath
_DOCMATH_ANSWER = re.compile(r"the answer is (\=?\≈?\`?\%?\$?\°?\£?\€?\¥?-?[0-9\.,]+)", re.IGNORECASE)


def docmath_extract_answer(response: str) -> str:
    """The number after "the answer is" (asterisks and parentheses removed first, commas and a
    trailing period dropped), else the whole response."""
    response = response.replace("*", "").replace("(", "").replace(")", "")
    match = _DOCMATH_ANSWER.search(response)
    if match:
        return match.group(1).replace(",", "").rstrip(".")
    return response


_BIN_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY_OPS = {ast.UAdd: operator.pos, ast.USub: operator.neg}


def _safe_eval(node: ast.AST) -> Any:
    # Stand-in for the reference's eval(): the same tiny expression language, nothing else.
    if isinstance(node, ast.Expression):
        return _safe_eval(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, complex, str, bool)):
        return node.value
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        values = [_safe_eval(e) for e in node.elts]
        return tuple(values) if isinstance(node, ast.Tuple) else values
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY_OPS:
        return _UNARY_OPS[type(node.op)](_safe_eval(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BIN_OPS:
        left, right = _safe_eval(node.left), _safe_eval(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > 1000:
            raise ValueError("exponent too large")
        return _BIN_OPS[type(node.op)](left, right)
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "math"
        and node.func.attr == "pow"
        and len(node.args) == 2
    ):
        base, exponent = (_safe_eval(a) for a in node.args)
        if abs(exponent) > 1000:
            raise ValueError("exponent too large")
        return math.pow(base, exponent)
    raise ValueError(f"unsupported expression {type(node).__name__}")


def _is_number(text: str) -> bool:
    return bool(re.match(r"^[-+]?(\d{1,3}(,\d{3})*|(\d+))(\.\d+)?$", text))


def docmath_normalize(prediction: str) -> Any:
    """DocMath's answer normaliser: strip currency/scale words and symbols, map yes/no and
    true/false to booleans, drop a unit before or after the number, turn ``10^k`` and
    ``x``/``×`` into arithmetic, then evaluate; anything unparseable becomes 0."""
    prediction = prediction.strip().rstrip(".")
    for money in ["£", "€", "¥", "million", "billion", "thousand", "US", "USD", "RMB"]:
        prediction = prediction.replace(money, "")
    if "=" in prediction:
        prediction = prediction.split("=")[-1].strip()
    if "≈" in prediction:
        prediction = prediction.split("≈")[-1].strip()
    for symbol in ("`", "%", "$", "°"):
        prediction = prediction.replace(symbol, "")
    if prediction in ("true", "yes", "false", "no"):
        prediction = "True" if prediction in ("true", "yes") else "False"
    if "True" in prediction or "False" in prediction:
        prediction = "True" if "True" in prediction else "False"
    if "approximately" in prediction:
        prediction = prediction.replace("approximately", "").strip()
    if " or " in prediction:
        prediction = prediction.split(" or ")[0]
    number = r"[-+]?(?:[\d,]*\.*\d+)"
    if re.match(rf"{number} [^0-9 ]+$", prediction):
        prediction = re.search(rf"({number}) [^0-9 ]+$", prediction).group(1)  # type: ignore[union-attr]
    if re.match(rf"[^0-9 ]+ {number}$", prediction):
        prediction = re.search(rf"[^0-9 ]+ ({number})$", prediction).group(1)  # type: ignore[union-attr]
    if re.match(rf"{number}[^\d]{{1,2}}$", prediction):
        prediction = re.search(rf"({number})[^\d]{{1,2}}$", prediction).group(1)  # type: ignore[union-attr]
    if re.match(r"[^-+\d]{1,2}(?:[\d,]*\.*\d+)$", prediction):
        prediction = re.search(r"[^-+\d]{1,2}((?:[\d,]*\.*\d+))$", prediction).group(1)  # type: ignore[union-attr]
    if "10^" in prediction:
        prediction = re.sub(r"10\^(-?\d+)", r"math.pow(10, \1)", prediction)
    prediction = prediction.replace(" x ", "*").replace(" × ", "*")
    if _is_number(prediction):
        prediction = prediction.replace(",", "")
    if any(f"({c})" in prediction for c in "abcd"):
        prediction = '"' + re.search(r"\([a-d]\)", prediction).group(0) + '"'  # type: ignore[union-attr]
    if not prediction:
        prediction = "0"
    try:
        value = _safe_eval(ast.parse(prediction, mode="eval"))
    except (SyntaxError, ValueError, TypeError, ZeroDivisionError, OverflowError, RecursionError):
        value = 0
    if isinstance(value, (set, tuple)):
        value = list(value)
        if value and isinstance(value[0], complex):
            value = [v.real for v in value]
    elif isinstance(value, complex):
        value = value.real
    return value


def _within_eps(pred: float, gt: float) -> bool:
    eps = abs(gt) * 0.0015
    return gt - eps <= pred <= gt + eps


def _round_up(number: float, decimals: int) -> float:
    factor = 10**decimals
    return math.ceil(number * factor) / factor


def docmath_compare_numbers(p: Any, gt: float) -> bool:
    """DocMath's numeric match: equal up to a power of ten, or one value ~100/1000/100000 times
    the other (percent and scale slips), or equal after rounding both up to 2 decimals, or
    within 0.15 % of the gold."""
    if not isinstance(p, (int, float)):  # bool passes as an int (True == 1), as in the reference
        return False
    v1, v2 = max(abs(gt), abs(p)), min(abs(gt), abs(p))
    if v1 != 0 and v2 != 0:
        ratio = math.log10(v1 / v2)
        if int(ratio) == ratio:
            return True
    if v2 <= v1 / 50 and _within_eps(v2 * 100, v1):
        return True
    if v2 <= v1 / 500 and _within_eps(v2 * 1000, v1):
        return True
    if v2 <= v1 / 50000 and _within_eps(v2 * 100000, v1):
        return True
    if _round_up(v1, 2) == _round_up(v2, 2):
        return True
    return _within_eps(p, gt)


def score_docmath_rule(response: str, gold: Any) -> float:
    """1.0 if the extracted, normalised answer matches ``gold`` (int, float or bool), else 0.0."""
    try:
        prediction = docmath_normalize(docmath_extract_answer(response))
        if isinstance(gold, bool):
            return float(prediction == gold)
        if isinstance(gold, (int, float)):
            return float(docmath_compare_numbers(prediction, float(gold)))
        return float(docmath_compare_numbers(prediction, float(str(gold).replace(",", ""))))
    except (ValueError, TypeError, OverflowError):
        return 0.0


# ------------------------------------------------------------------------------------- Frames
def frames_normalize(text: str) -> str:
    """NFKD, lower case, articles removed, digit-group commas joined, punctuation removed."""
    text = unicodedata.normalize("NFKD", str(text)).lower()
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    text = re.sub(r"(\d),(\d)", r"\1\2", text)
    text = text.translate(str.maketrans("", "", string.punctuation))
    return " ".join(text.split()).strip()


def cover_exact_match(prediction: str, target: str) -> bool:
    """Frames' CEM: the normalised gold occurs in the normalised output on word boundaries."""
    pred, gold = frames_normalize(prediction), frames_normalize(target)
    if not gold:
        return False
    return re.search(r"\b" + re.escape(gold) + r"\b", pred) is not None


# ------------------------------------------------------------------------ LongBench v1 token F1
def longbench_normalize(text: str) -> str:
    """SQuAD-style normalisation used by LongBench's ``qa_f1_score``."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def token_f1(prediction: str, reference: str) -> float:
    """Token-level F1 of normalised prediction and reference (LongBench's classic QA metric)."""
    pred, gold = longbench_normalize(prediction).split(), longbench_normalize(reference).split()
    common = Counter(pred) & Counter(gold)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(gold)
    return 2 * precision * recall / (precision + recall)


# ------------------------------------------------------------------------ LongBench v2 letters
_ANSWER_LETTER = re.compile(r"ANSWER\s*[:：]\s*[\*\s]*\(?\[?([A-D])\b", re.IGNORECASE)


def extract_choice_letter(response: str) -> str | None:
    """The letter of the last ``ANSWER: X`` line (``X`` in A-D; brackets and bold tolerated)."""
    matches = _ANSWER_LETTER.findall(response)
    return matches[-1].upper() if matches else None
