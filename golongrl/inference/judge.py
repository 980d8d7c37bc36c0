"""LLM-as-judge with the reference harness's prompts and verdict rules (golongrl-reference §7).

The prompts are reproduced verbatim because the published numbers depend on them:

* ``orm``: the "general ORM" equivalence prompt (system) + ``Problem / Answer 1 / Answer 2`` (user),
  used by DocMath, Frames and CorpusQA. Verdict rules differ per benchmark, as in the reference:
  DocMath and Frames (evalscope) put the gold answer first and count a verdict as correct when
  the reply contains ``YES`` anywhere
  (:func:`verdict_yes_substring`); CorpusQA requires ``[[YES]]`` and no ``[[NO]]``
  (:func:`verdict_yes_brackets`).
* ``lbv1``: LongBench v1 QA's single-message variant of the same prompt; the first
  ``[[yes]]``/``[[no]]`` (any case, inner spaces allowed) decides, and a reply with neither is
  asked again (up to 3 attempts, then wrong) (:func:`verdict_lbv1`).
* ``longmemeval``: the lenient LongMemEval prompt; correct iff ``[[CORRECT]]`` is present and
  ``[[INCORRECT]]`` is not (:func:`verdict_correct_brackets`).

The judge runs at temperature 0 on any :class:`InferenceBackend`; re-asks after an unparseable
reply use a different seed so the cache does not return the same reply again.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from .base import GenerationRequest, InferenceBackend, SamplingParams

ORM_SYSTEM_PROMPT = """You are an expert in verifying if two answers are the same.
Your input is a problem and two answers, Answer 1 and Answer 2. You need to check if they are equivalent.
Your task is to determine if two answers are equivalent, without attempting to solve the original problem.
Compare the answers to verify they represent identical values or meaning, even when written in different forms or notations.

Your output must follow the following format:
1) Provide an explanation for why the answers are equivalent or not.
2) Then provide your final answer in the form of: [[YES]] or [[NO]]"""

ORM_USER_TEMPLATE = """
Problem: {problem}
Answer 1: {answer_1}
Answer 2: {answer_2}
"""

LBV1_JUDGE_TEMPLATE = """You are an expert in verifying if two answers are the same.
Your input is a problem and two answers, Answer1 and Answer2. You need to check if they are equivalent.
Your task is to determine if two answers are equivalent, without attempting to solve the original problem.
Compare the answers to verify they represent identical values or meaning, even when written in different forms or notations.
Your output must follow the following format:
1) Provide an explanation for why the answers are equivalent or not.
2) Then provide your final answer in the form of: [[YES]] or [[NO]]
Problem: {question}
Answer 1: {pred}
Answer 2: {answer}"""

LONGMEMEVAL_JUDGE_SYSTEM = """You are an expert evaluator. Given a question, a reference answer, and a model's hypothesis, determine whether the hypothesis correctly answers the question based on the reference answer.

Guidelines:
1. The hypothesis does not need to be an exact match. It should capture the key information in the reference answer.
2. If the reference answer contains multiple key points, the hypothesis should address all of them.
3. Minor differences in phrasing, formatting, or additional correct details are acceptable.
4. If the question is unanswerable (abstention), the hypothesis should indicate that the information is not available or unknown.
5. Be lenient with partial matches if the core information is correct.

Your output must follow the following format:
1) Provide a brief explanation for your judgment.
2) Then provide your final verdict in the form of: [[CORRECT]] or [[INCORRECT]]"""

LONGMEMEVAL_JUDGE_USER = """Question: {question}
Reference Answer: {answer}
Model's Response: {hypothesis}"""

_LBV1_VERDICT = re.compile(r"\[\[\s*(yes|no)\s*\]\]", re.IGNORECASE)


def verdict_yes_substring(reply: str) -> bool | None:
    """DocMath's rule: correct iff ``YES`` occurs anywhere in the reply (case-sensitive)."""
    return "YES" in reply


def verdict_yes_brackets(reply: str) -> bool | None:
    """CorpusQA's rule: correct iff ``[[YES]]`` occurs and ``[[NO]]`` does not."""
    return "[[YES]]" in reply and "[[NO]]" not in reply


def verdict_lbv1(reply: str) -> bool | None:
    """LongBench v1 QA's rule: the first ``[[yes]]``/``[[no]]`` in any case; None if neither."""
    match = _LBV1_VERDICT.search(reply)
    if match is None:
        return None
    return match.group(1).lower() == "yes"


def verdict_correct_brackets(reply: str) -> bool | None:
    """LongMemEval's rule: correct iff ``[[CORRECT]]`` occurs and ``[[INCORRECT]]`` does not."""
    return "[[CORRECT]]" in reply and "[[INCORRECT]]" not in reply


@dataclass(frozen=True)
class JudgeCase:
    """What the judge compares: the question, the model's (extracted) answer and the gold one."""

    question: str
    prediction: str
    reference: str


@dataclass
class Verdict:
    """``correct`` is the parsed verdict; ``reply`` the judge's last raw reply."""

    correct: bool
    reply: str
    attempts: int = 1


def orm_messages(case: JudgeCase) -> tuple[dict[str, str], ...]:
    """System ORM prompt; Answer 1 = model answer, Answer 2 = gold (as in CorpusQA/DocMath)."""
    user = ORM_USER_TEMPLATE.format(
        problem=case.question, answer_1=case.prediction, answer_2=case.reference
    )
    return ({"role": "system", "content": ORM_SYSTEM_PROMPT}, {"role": "user", "content": user})


def gold_first_messages(case: JudgeCase) -> tuple[dict[str, str], ...]:
    """DocMath's and Frames' order (evalscope): Answer 1 = gold, Answer 2 = extracted answer."""
    user = ORM_USER_TEMPLATE.format(
        problem=case.question, answer_1=case.reference, answer_2=case.prediction
    )
    return ({"role": "system", "content": ORM_SYSTEM_PROMPT}, {"role": "user", "content": user})


def lbv1_messages(case: JudgeCase) -> tuple[dict[str, str], ...]:
    content = LBV1_JUDGE_TEMPLATE.format(
        question=case.question, pred=case.prediction, answer=case.reference
    )
    return ({"role": "user", "content": content},)


def longmemeval_messages(case: JudgeCase) -> tuple[dict[str, str], ...]:
    user = LONGMEMEVAL_JUDGE_USER.format(
        question=case.question, answer=case.reference, hypothesis=case.prediction
    )
    return (
        {"role": "system", "content": LONGMEMEVAL_JUDGE_SYSTEM},
        {"role": "user", "content": user},
    )


@dataclass(frozen=True)
class JudgeProtocol:
    """How one benchmark asks and reads its judge."""

    build: Callable[[JudgeCase], tuple[dict[str, str], ...]]
    parse: Callable[[str], bool | None]
    attempts: int = 1  # >1: re-ask when parse returns None


PROTOCOLS: dict[str, JudgeProtocol] = {
    "docmath": JudgeProtocol(gold_first_messages, verdict_yes_substring),
    "corpusqa": JudgeProtocol(orm_messages, verdict_yes_brackets),
    "frames": JudgeProtocol(gold_first_messages, verdict_yes_substring),
    "lbv1": JudgeProtocol(lbv1_messages, verdict_lbv1, attempts=3),
    "longmemeval": JudgeProtocol(longmemeval_messages, verdict_correct_brackets),
}


class Judge:
    """Runs a judge protocol over many cases through any backend (usually the HTTP one)."""

    def __init__(self, backend: InferenceBackend, *, max_new_tokens: int = 4096) -> None:
        self.backend = backend
        self.sampling = SamplingParams(max_new_tokens=max_new_tokens, temperature=0.0)

    def judge(
        self, protocol: str | JudgeProtocol, cases: Sequence[JudgeCase], *, progress: bool = False
    ) -> list[Verdict]:
        """One verdict per case; an unparseable final reply counts as wrong."""
        proto = PROTOCOLS[protocol] if isinstance(protocol, str) else protocol
        verdicts: list[Verdict | None] = [None] * len(cases)
        todo = list(range(len(cases)))
        for attempt in range(proto.attempts):
            sampling = self.sampling if attempt == 0 else replace(self.sampling, seed=attempt)
            requests = [GenerationRequest(proto.build(cases[i]), sampling) for i in todo]
            replies = self.backend.generate(requests, progress=progress)
            retry = []
            for i, generation in zip(todo, replies):
                reply = generation.texts[0] if generation.texts else ""
                parsed = proto.parse(reply)
                verdicts[i] = Verdict(correct=bool(parsed), reply=reply, attempts=attempt + 1)
                if parsed is None:
                    retry.append(i)
            todo = retry
            if not todo:
                break
        return verdicts  # type: ignore[return-value]


def make_judge(spec: str | None = None, **backend_kwargs: object) -> Judge:
    """A judge on ``spec`` (any :func:`make_backend` spec), else on the environment:
    ``JUDGE_BASE_URL`` + ``JUDGE_MODEL`` (default ``deepseek-chat``, as in the reference).

    The key is ``JUDGE_API_KEY``, sent only to the judge's host: with ``JUDGE_BASE_URL`` set, a
    ``spec`` naming another host gets no key. ``OPENAI_API_KEY`` (the policy endpoint's key) is
    never sent to a judge."""
    from . import make_backend

    if spec is None:
        base_url = os.environ.get("JUDGE_BASE_URL")
        if not base_url:
            raise ValueError(
                "no judge configured: pass --judge openai:<base_url>#<model> or set "
                "JUDGE_BASE_URL (and JUDGE_MODEL, JUDGE_API_KEY)"
            )
        spec = f"openai:{base_url}#{os.environ.get('JUDGE_MODEL', 'deepseek-chat')}"
    backend_kwargs.setdefault("api_key_env", "JUDGE_API_KEY")
    backend_kwargs.setdefault("api_key_url_env", "JUDGE_BASE_URL")
    return Judge(make_backend(spec, **backend_kwargs))
