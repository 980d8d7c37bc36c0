"""Length in the target model's tokens: counting, batch counting and exact truncation.

The target tokenizer comes from :func:`golongrl.inference.models.load_tokenizer` (default
``"smollm2"``, shipped in the repo). Counting goes straight to the underlying Rust
``tokenizers.Tokenizer`` (no special tokens, no Python per-token work), which is what makes
measuring and assembling a 1M-token context take seconds.
"""

from __future__ import annotations

import functools
import gzip
from typing import Any, Sequence


class TokenCounter:
    """Counts and cuts text in the tokens of one tokenizer spec.

    Counts exclude special tokens (BOS, chat markup): they measure the text itself, and the
    chat template's overhead is added once per prompt by the exporter's length filter.
    """

    def __init__(self, spec: str = "smollm2") -> None:
        self.spec = spec
        self._tok = _rust_tokenizer(spec)

    def count(self, text: str) -> int:
        """Tokens in ``text``."""
        return len(self._tok.encode(text, add_special_tokens=False).ids) if text else 0

    def count_many(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text (batched; the Rust tokenizer parallelises across texts)."""
        if not texts:
            return []
        return [len(e.ids) for e in self._tok.encode_batch(list(texts), add_special_tokens=False)]

    def encode_many(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text (batched)."""
        if not texts:
            return []
        return [e.ids for e in self._tok.encode_batch(list(texts), add_special_tokens=False)]

    def head(self, text: str, n: float) -> str:
        """The longest prefix of ``text`` ending on a token boundary with at most ``n`` tokens."""
        n = int(n)
        if n <= 0:
            return ""
        offsets = self._tok.encode(text, add_special_tokens=False).offsets
        return text if len(offsets) <= n else text[: offsets[n - 1][1]]

    def tail(self, text: str, n: float) -> str:
        """The longest suffix of ``text`` starting on a token boundary with at most ``n`` tokens."""
        n = int(n)
        if n <= 0:
            return ""
        offsets = self._tok.encode(text, add_special_tokens=False).offsets
        return text if len(offsets) <= n else text[offsets[len(offsets) - n][0] :]


def _rust_tokenizer(spec: str) -> Any:
    from golongrl.inference.models import SMOLLM2_ASSETS, load_tokenizer

    if spec == "smollm2" or spec == "tiny" or spec.startswith("tiny:"):
        # The same tokenizer.json that load_tokenizer wraps, read without importing
        # transformers (seconds saved on every `golongrl data` command).
        from tokenizers import Tokenizer

        raw = gzip.decompress((SMOLLM2_ASSETS / "tokenizer.json.gz").read_bytes()).decode("utf-8")
        return Tokenizer.from_str(raw)
    backend = getattr(load_tokenizer(spec), "backend_tokenizer", None)
    if backend is None:
        raise TypeError(f"tokenizer {spec!r} is not a fast (Rust) tokenizer; golongrl needs one")
    return backend


@functools.lru_cache(maxsize=4)
def get_counter(spec: str = "smollm2") -> TokenCounter:
    """A shared :class:`TokenCounter` per spec (loading a tokenizer takes ~0.5 s)."""
    return TokenCounter(spec)


__all__ = ["TokenCounter", "get_counter"]
