"""Summarization: a free-text summary scored by ROUGE-L against reference summaries."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any

from golongrl.rewards import text as T
from golongrl.rewards.metrics import RougeRecursionError, rouge_l_summary_level, rouge_l_tokens
from golongrl.rewards.options import REASON_ERROR
from golongrl.tasks.base import REASON_PARSE, Gold, Result, ScoreOptions, row_prompt, row_question
from golongrl.tasks.listing import ListTask

_WORD = re.compile(r"\w+")
_QUOTED = re.compile(r'"([^"\n]{1,200})"')
_jieba_lock = threading.Lock()


def jieba_cut() -> Callable[[str], list[str]]:
    """jieba's precise-mode tokenizer, loaded once (its dictionary takes ~1 s to build)."""
    import jieba

    with _jieba_lock:
        if not jieba.dt.initialized:
            jieba.setLogLevel(logging.WARNING)
            jieba.initialize()
    return lambda text: list(jieba.cut(text, cut_all=False))


def _tokens(text: str, is_zh: bool, vocab: dict[str, int]) -> list[int]:
    words = [w for w in jieba_cut()(text) if _WORD.search(w)] if is_zh else _WORD.findall(text)
    return [vocab.setdefault(w, len(vocab)) for w in words]


def without(tokens: list[int], banned: set[int]) -> list[int]:
    """``tokens`` minus every token in ``banned`` (order kept)."""
    return [t for t in tokens if t not in banned]


class Summarization(ListTask):
    """Hardened: ROUGE-L F1 over word tokens (jieba for Chinese gold) of the text after the
    answer marker, max over references, with the question's words removed from both sides:
    echoing the question, the title it quotes, or any words taken from it earns 0, and a
    summary is paid for what it adds from the document."""

    name = "summarization"
    title = "Summarization"
    metric = "rouge_l"
    ability = "long document summarization"
    lbp_metric = "Summary"
    answer_format = "[Answer] then the summary (reference scores the whole response)"
    instruction = "Write [Answer] on its own line, then the summary as one paragraph."
    chance = 0.0

    def faithful(self, gold: Gold, response: str, options: ScoreOptions) -> Result:
        if not response.strip():
            return 0.0, REASON_PARSE
        if not gold.items:
            return 0.0, None
        if gold.language is None:  # the reference reads ground_truth["summary"] and raises
            return 0.0, REASON_ERROR
        refs = T.normalize_gold(list(gold.items))
        prediction = T.fix_space(response.lower())
        if gold.language == "Chinese":
            cut = jieba_cut()
            refs = [" ".join(cut(g)) for g in refs]
            prediction = " ".join(cut(prediction))
        try:
            scores = [rouge_l_summary_level(g, prediction, recursion_budget=options.rouge_recursion_budget)
                      for g in refs]
        except ValueError:
            return 0.0, REASON_PARSE
        except RougeRecursionError:
            return 0.0, REASON_ERROR
        return max(scores), None

    def hardened(self, gold: Gold, answer: str, options: ScoreOptions) -> Result:
        prediction = T.fix_space(T.hardened_answer_area(answer).lower())
        if not prediction:
            return 0.0, REASON_PARSE
        question = T.fix_space(gold.question.lower())
        best = 0.0
        for reference in T.normalize_gold(list(gold.items)):
            vocab: dict[str, int] = {}
            is_zh = T.is_mostly_chinese(reference)
            ref_tokens = _tokens(reference, is_zh, vocab)
            hyp_tokens = _tokens(prediction, is_zh, vocab)
            # Words the question already holds are free to copy, so neither side is scored
            # on them; a reference made only of them leaves the plain score.
            asked = set(_tokens(question, is_zh, vocab)) if question else set()
            novel_ref = without(ref_tokens, asked)
            if novel_ref:
                ref_tokens, hyp_tokens = novel_ref, without(hyp_tokens, asked)
            best = max(best, rouge_l_tokens(ref_tokens, hyp_tokens))
        return best, None

    def reference_response(self, gold: Gold) -> str:
        return "[Answer]\n" + gold.items[0]

    def baselines(self, row: Mapping[str, Any]) -> dict[str, str]:
        question = row_question(row)
        out = {"echo_question": "[Answer]\n" + question}
        quoted = _QUOTED.findall(question)
        if quoted:
            out["quoted_title"] = "[Answer]\n" + quoted[0]
            out["title_sentence"] = f"[Answer]\nThe {quoted[0]} dataset: a description of {quoted[0]}."
        context = row_prompt(row)
        body = [line for line in context.splitlines() if line.strip() and not line.startswith("#")]
        if body:
            out["lead_of_context"] = "[Answer]\n" + " ".join(" ".join(body[:3]).split()[:40])
        return out


TASK = Summarization()
