"""Response clean-up and prompt truncation exactly as the reference harness does them (§7)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL)
_THEREFORE = re.compile(r"[Tt]herefore,?\s*the answer is:?\s*(.+)", re.IGNORECASE)
_THE_ANSWER_IS = re.compile(r"[Tt]he answer is:?\s*(.*)")

#: The marker the reference puts where LongBench v1 contexts are cut (char-level truncation).
CHAR_TRUNCATION_MARKER = "\n...[truncated]...\n"


def strip_thinking(text: str) -> str:
    """Remove reasoning before scoring: every ``<think>...</think>`` block, then, if a bare
    ``</think>`` is left (vLLM drops the opening tag), everything up to the last one; stripped.
    An unterminated ``<think>`` is left alone (the model never answered)."""
    text = _THINK_BLOCK.sub("", text)
    if "</think>" in text:
        text = text.rsplit("</think>", 1)[-1]
    return text.strip()


def truncate_middle_tokens(text: str, max_tokens: int, tokenizer: Any) -> str:
    """Keep the first and last ``max_tokens // 2`` tokens (DocMath's token-level middle cut)."""
    ids = tokenizer.encode(text, add_special_tokens=False)
    if len(ids) <= max_tokens:
        return text
    half = max_tokens // 2
    return tokenizer.decode(ids[:half] + ids[len(ids) - half :])


def truncate_middle_chars(text: str, max_chars: int) -> str:
    """Keep the first and last ``max_chars // 2`` characters joined by a marker (LongBench v1)."""
    if len(text) <= max_chars:
        return text
    half = max_chars // 2
    return text[:half] + CHAR_TRUNCATION_MARKER + text[len(text) - half :]


def chat_token_count(messages: Sequence[dict[str, str]], tokenizer: Any) -> int:
    """Tokens of the rendered chat prompt, generation prompt included (as the backends render it,
    template default for thinking)."""
    from golongrl.inference.transformers_backend import encode_prompt

    return len(encode_prompt(tokenizer, messages, None))


def truncate_mrcr_messages(
    messages: Sequence[dict[str, str]], max_tokens: int, tokenizer: Any, *, reserve: int = 1024
) -> list[dict[str, str]]:
    """MRCR's over-long handling: if the chat exceeds ``max_tokens``, merge every message before
    the final query into one user message (joined by newlines) and cut its middle to
    ``max_tokens - query_tokens - reserve`` tokens; the final query is kept intact."""
    messages = [dict(m) for m in messages]
    if max_tokens <= 0 or not messages or chat_token_count(messages, tokenizer) <= max_tokens:
        return messages
    query = messages[-1]
    query_tokens = len(tokenizer.encode(query.get("content", ""), add_special_tokens=False))
    budget = max_tokens - query_tokens - reserve
    if budget <= 0:
        return [query]
    prefix = "\n".join(m.get("content", "") for m in messages[:-1])
    ids = tokenizer.encode(prefix, add_special_tokens=False)
    if len(ids) > budget:
        half = budget // 2
        prefix = tokenizer.decode(ids[:half] + ids[len(ids) - half :], skip_special_tokens=True)
    return [{"role": "user", "content": prefix}, query]


def extract_final_answer(text: str) -> str:
    """LongBench v1 QA's extraction: the last line matching "Therefore, the answer is ...",
    else the last non-empty line; quotes, a trailing period and one pair of brackets removed."""

    def clean(s: str) -> str:
        s = s.strip().strip('"').strip("'").rstrip(".")
        if s.startswith("(") and s.endswith(")"):
            s = s[1:-1].strip()
        return s

    last = None
    for line in text.splitlines():
        match = _THEREFORE.search(line)
        if match:
            last = match
    if last is not None:
        return clean(last.group(1))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return clean(lines[-1]) if lines else text.strip()


def extract_after_answer_is(text: str) -> str:
    """CorpusQA's extraction: the rest of the line after the first "the answer is:?", else all."""
    match = _THE_ANSWER_IS.search(text)
    return match.group(1).strip() if match else text.strip()
