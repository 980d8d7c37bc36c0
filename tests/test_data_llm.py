"""The LLM track against a scripted OpenAI-compatible HTTP server: for each of the nine task
types a good generation becomes a verified row, and every kind of bad generation (malformed
JSON, schema violations, answers or evidence not in the context, answers the verifier cannot
reproduce with the context, answers it reproduces without it, non-unique answers, the
accepted-junk multiple-choice question) is rejected with its reason."""

from __future__ import annotations

import copy
import json
import random
import re
from pathlib import Path
from typing import Any

import pytest

from golongrl.data.assembly import UnitCache, assemble_context
from golongrl.data.config import DataConfig
from golongrl.data.corpus import Document, load_default_corpus
from golongrl.data.llm import (
    LLM_TASKS, Plan, RateLimiter, Verifier, build_llm_samples, locate, make_llm_backend, make_sample)
from golongrl.data.tokens import get_counter
from golongrl.data.verify import reference_response
from golongrl.rewards import compute_score

from openai_stub_server import StubServer, last_user_message

REPORT = """## Harbour Board minutes

The Harbour Board of Eastmere met on 3 March 1952 under its chair, Agnes Whitlow. The board approved a new pier at a cost of 4,200 pounds, to be built by the dredging firm Calder and Sons.

## Budget

The fishing fleet paid 1,150 pounds in harbour dues. The ferry company paid 2,875 pounds in harbour dues. The timber yard paid 640 pounds in harbour dues.

## Rainfall table

station, year, rain_mm
Northpoint, 1951, 810
Southgate, 1951, 640
Northpoint, 1950, 905

## Events

In April the old lighthouse keeper, Tobias Fenn, retired after forty years. In June the storm wall collapsed near the fish market. In September the rebuilt storm wall was opened by the mayor. In November the board elected Martha Quill as treasurer.

## Letters

The petition about mooring fees was signed by the oyster growers. The complaint about night noise came from the residents of Gull Lane. The offer to lease the old warehouse came from the brewery of Hollis Brothers."""

SHIPPING = """## Shipping log of the schooner Wren

The Wren left Port Alder on 2 May carrying 310 barrels of salt cod for the merchants of Kessley. The mate, Owen Brask, recorded a gale on the fourth day that split the foresail.

## Cargo

At Kessley the crew unloaded 180 barrels and took on 95 crates of glassware. The purser, Lydia Morrow, paid 212 shillings in port charges. At Fennick the remaining 130 barrels were sold to the cooperage of Hale and Daughters.

## Crew

The cook, Samuel Pike, fell ill with fever at Fennick and was left ashore with the harbour physician. A boy named Jory Tamsin joined the ship as a deckhand in his place, and the Wren sailed home in fair weather."""


def _doc(id_: str, title: str, text: str) -> Document:
    return Document(id=id_, title=title, domain="reports", kind="prose", text=text,
                    provenance={"package": "test", "version": "", "license": "test", "origin": id_})


GOOD: dict[str, dict[str, Any]] = {
    "precise_retrieval": {"question": "Which dredging firm will build the new pier at Eastmere?",
                          "answer": "Calder and Sons",
                          "evidence": "The board approved a new pier at a cost of 4,200 pounds, to be built by the dredging firm Calder and Sons."},
    "comprehension": {"question": "Why did Eastmere need a rebuilt storm wall that the mayor opened in September?",
                      "options": ["The storm wall had collapsed near the fish market in June",
                                  "The lighthouse keeper retired", "The ferry company asked for it",
                                  "The brewery leased the warehouse"],
                      "correct": "A", "evidence": "In June the storm wall collapsed near the fish market."},
    "exhaustive_retrieval": {"question": "Which payers of harbour dues are named in the Eastmere budget?",
                             "items": [{"item": "The fishing fleet", "evidence": "The fishing fleet paid 1,150 pounds in harbour dues."},
                                       {"item": "The ferry company", "evidence": "The ferry company paid 2,875 pounds in harbour dues."},
                                       {"item": "The timber yard", "evidence": "The timber yard paid 640 pounds in harbour dues."}]},
    "numerical_reasoning": {"question": "How many pounds of harbour dues did the fishing fleet and the ferry company pay together?",
                            "answer": "4025",
                            "evidence": ["The fishing fleet paid 1,150 pounds in harbour dues.",
                                         "The ferry company paid 2,875 pounds in harbour dues."]},
    "structured_extraction": {"question": "List station and rain_mm of the 1951 rows of the rainfall table.",
                              "rows": [["Northpoint", "810"], ["Southgate", "640"]],
                              "evidence": ["Northpoint, 1951, 810", "Southgate, 1951, 640"]},
    "structured_matching": {"question": "Who sent each of these letters to the Eastmere board?",
                            "pairs": [{"excerpt": "The petition about mooring fees", "answer": "the oyster growers"},
                                      {"excerpt": "The complaint about night noise", "answer": "the residents of Gull Lane"},
                                      {"excerpt": "The offer to lease the old warehouse", "answer": "Hollis Brothers"}]},
    "graded_ranking": {"question": "Rank these payers by the harbour dues they paid, most first.",
                       "items": [{"item": "The timber yard", "value": 640, "evidence": "The timber yard paid 640 pounds in harbour dues."},
                                 {"item": "The ferry company", "value": 2875, "evidence": "The ferry company paid 2,875 pounds in harbour dues."},
                                 {"item": "The fishing fleet", "value": 1150, "evidence": "The fishing fleet paid 1,150 pounds in harbour dues."}]},
    "sequence_ordering": {"question": "Put these events of the Eastmere harbour year in the order they happened.",
                          "events": [{"item": "the storm wall reopens", "evidence": "In September the rebuilt storm wall was opened by the mayor."},
                                     {"item": "a treasurer is elected", "evidence": "In November the board elected Martha Quill as treasurer."},
                                     {"item": "the keeper retires", "evidence": "In April the old lighthouse keeper, Tobias Fenn, retired after forty years."},
                                     {"item": "the wall collapses", "evidence": "In June the storm wall collapsed near the fish market."}]},
    "summarization": {"question": "Summarise what the Eastmere Harbour Board decided and recorded in 1952.",
                      "summary": "Eastmere's harbour board approved a pier by Calder and Sons, collected dues from the fleet, "
                                 "the ferry and the timber yard, rebuilt the collapsed storm wall and chose Martha Quill as treasurer."},
}

FABRICATED = "The moon council approved ninety zeppelins for the glass harbour."


def _fabricate(task: str, gen: dict[str, Any]) -> dict[str, Any]:
    """The same reply with its answers and evidence replaced by text that is not in the context."""
    bad = copy.deepcopy(gen)
    if task == "summarization":  # the summary's counterpart: copied verbatim from the context
        bad["summary"] = "The board approved a new pier at a cost of 4,200 pounds, to be built by the dredging firm Calder and Sons."
        return bad
    if isinstance(bad.get("evidence"), str):
        bad["evidence"] = FABRICATED
    elif isinstance(bad.get("evidence"), list):
        bad["evidence"] = [FABRICATED]
    if task == "precise_retrieval":
        bad["answer"] = "ninety zeppelins"
    for group in ("items", "events", "pairs"):
        for item in bad.get(group, []):
            for key in ("evidence", "item", "excerpt"):
                if key in item:
                    item[key] = FABRICATED + f" ({key} {id(item)})"
    if task == "structured_extraction":
        bad["rows"] = [["Zeppelin Point", "999"]]
    return bad


def _duplicate(task: str, gen: dict[str, Any]) -> dict[str, Any] | None:
    """A reply whose answer is not unique by construction (list tasks), or None where the
    verifier's answer listing decides (single-answer tasks) or uniqueness does not apply."""
    bad = copy.deepcopy(gen)
    if task in ("exhaustive_retrieval", "sequence_ordering"):
        group = "items" if task == "exhaustive_retrieval" else "events"
        bad[group][1] = copy.deepcopy(bad[group][0])
    elif task == "graded_ranking":
        bad["items"][1]["value"] = bad["items"][0]["value"]
    elif task == "structured_extraction":
        bad["rows"][1] = list(bad["rows"][0])
    elif task == "structured_matching":
        bad["pairs"][1]["excerpt"] = bad["pairs"][0]["excerpt"]
    else:
        return None
    return bad


def _question_part(prompt: str) -> str:
    return prompt.rsplit("Question: ", 1)[-1]


def oracle(task: str, gen: dict[str, Any], prompt: str) -> str:
    """The answer a perfect reader of ``prompt`` gives (what a strong verifier replies)."""
    q = _question_part(prompt)
    numbered = dict(re.findall(r"(?m)^(\d+)\. (.+)$", q))
    if task == "precise_retrieval":
        return gen["answer"]
    if task == "comprehension":
        gold = gen["options"]["ABCD".index(gen["correct"])]
        letter = re.search(r"\(([A-D])\) " + re.escape(gold), q).group(1)
        return f"Reasoning.\nThe correct answer is ({letter})"
    if task == "exhaustive_retrieval":
        return "[Answer]\n" + "\n".join(i["item"] for i in gen["items"])
    if task == "numerical_reasoning":
        return f"So the total is \\boxed{{{gen['answer']}}}"
    if task == "structured_extraction":
        return "<answer>" + json.dumps({"data": gen["rows"]}) + "</answer>"
    if task == "structured_matching":
        by_excerpt = {f'"{p["excerpt"]}"': p["answer"] for p in gen["pairs"]}
        return "[Answer]\n" + "\n".join(f"{n}: {by_excerpt[e]}" for n, e in sorted(numbered.items()))
    if task == "graded_ranking":
        return "[Answer]\n" + "\n".join(i["item"] for i in sorted(gen["items"], key=lambda i: -i["value"]))
    if task == "sequence_ordering":
        where = {e["item"]: prompt.find(e["evidence"]) for e in gen["events"]}
        return "[Answer]\n" + "\n".join(n for n, e in sorted(numbered.items(), key=lambda kv: where[kv[1]]))
    return "[Answer]\n" + gen["summary"]


class ScriptedModel:
    """One callable answering as generator, verifier (with / without context) and ambiguity
    checker, scripted per test."""

    def __init__(self) -> None:
        self.generation: dict[str, Any] | str = {}
        self.task = ""
        self.with_context = "right"  # or "wrong"
        self.without_context = "wrong"  # or "right"
        self.answers: list[str] | None = None  # the ambiguity checker's list (default: one)
        self.by_title: dict[str, dict[str, Any]] = {}

    def __call__(self, body: dict[str, Any]) -> str | dict[str, Any]:
        system = body["messages"][0]["content"]
        prompt = last_user_message(body)
        if system.startswith("You write"):
            task = re.search(r"Task \((\w+)\)", prompt).group(1)
            title = re.search(r'Passage from "([^"]+)"', prompt).group(1)
            if self.by_title:
                return self.by_title[title][task]
            return self.generation
        if system.startswith("You check"):
            return {"answers": self.answers if self.answers is not None else ["the one answer"]}
        blind = prompt.startswith("Question: ")
        mode = self.without_context if blind else self.with_context
        if mode == "wrong" and self.task == "comprehension":
            right = oracle("comprehension", self.generation, prompt)[-2]
            return f"The correct answer is ({'B' if right == 'A' else 'A'})"
        if mode == "wrong":
            return "I cannot tell.\n[Answer]\nnothing\n\\boxed{0}\nThe correct answer is (D)" if not blind else "I cannot tell."
        task = self.task or _task_of(prompt)
        gen = self.generation if isinstance(self.generation, dict) else {}
        if self.by_title:
            gen = self.by_title[next(t for t in self.by_title if t in prompt)][task]
        return oracle(task, gen, prompt)


def _task_of(prompt: str) -> str:
    from golongrl.tasks import get_task

    return next(t for t in LLM_TASKS if get_task(t).instruction in prompt)


@pytest.fixture(scope="module")
def stub():
    model = ScriptedModel()
    with StubServer(model) as server:
        yield server, model


@pytest.fixture(scope="module")
def setting(stub):
    server, _ = stub
    config = DataConfig.model_validate({"llm": {"enabled": True, "backend": f"openai:{server.base_url}#stub-model",
                                                "max_retries": 0, "concurrency": 2}})
    counter = get_counter("smollm2")
    cache = UnitCache(counter)
    report = _doc("test/eastmere", "Eastmere Harbour Board, 1952", REPORT)
    filler = load_default_corpus(["legal"])
    ctx = assemble_context(report, filler, counter.count(REPORT) + 400, cache, random.Random(1), position=0.5)
    assert REPORT.split("\n\n")[-1] in ctx.text
    generator = make_llm_backend(config.llm.backend, config.llm, RateLimiter(0), None)
    verifier = Verifier(make_llm_backend(config.llm.backend, config.llm, RateLimiter(0), None))
    return config, ctx, generator, verifier


def _run(setting, stub, task: str, generation: Any, **script: Any) -> dict[str, Any]:
    config, ctx, generator, verifier = setting
    _, model = stub
    model.generation, model.task, model.by_title = generation, task, {}
    model.with_context = script.get("with_context", "right")
    model.without_context = script.get("without_context", "wrong")
    model.answers = script.get("answers")
    return make_sample(Plan(f"train/llm/{task}/0", "train", task, 0, ctx, ctx.target_tokens), generator, verifier, config)


@pytest.mark.parametrize("task", LLM_TASKS)
def test_good_generation_becomes_a_verified_row(setting, stub, task: str) -> None:
    decision = _run(setting, stub, task, GOOD[task])
    assert "row" in decision, decision.get("reason")
    row = decision["row"]
    assert row["extra_info"]["task_type"] == task
    assert row["extra_info"]["construction"] == f"llm_{task}"
    assert row["extra_info"]["llm_verification"]["with_context"] >= 0.8 - 1e-9
    score = compute_score(row["data_source"], reference_response(row), row["reward_model"]["ground_truth"], row["extra_info"])
    assert score >= 1 - 1e-6


BAD_KINDS = ["malformed_json", "schema", "not_in_context", "verifier_disagrees", "answerable_without_context", "not_unique"]
EXPECTED_STAGE = {"malformed_json": "json:", "schema": "schema:", "not_in_context": ("answer:", "evidence:"),
                  "verifier_disagrees": "with the context", "answerable_without_context": "without the context",
                  "not_unique": "uniqueness:"}


@pytest.mark.parametrize("kind", BAD_KINDS)
@pytest.mark.parametrize("task", LLM_TASKS)
def test_bad_generation_is_rejected_with_its_reason(setting, stub, task: str, kind: str) -> None:
    script: dict[str, Any] = {}
    generation: Any = GOOD[task]
    if kind == "malformed_json":
        generation = '{"question": "Which firm", "answer": '
    elif kind == "schema":
        generation = {k: v for k, v in GOOD[task].items() if k != "question"}
    elif kind == "not_in_context":
        generation = _fabricate(task, GOOD[task])
    elif kind == "verifier_disagrees":
        script["with_context"] = "wrong"
    elif kind == "answerable_without_context":
        script["without_context"] = "right"
    else:
        duplicate = _duplicate(task, GOOD[task])
        if duplicate is None and task == "summarization":
            pytest.skip("a summary has no single answer to be unique")
        if duplicate is None:
            script["answers"] = ["one answer", "another answer"]
        else:
            generation = duplicate
    decision = _run(setting, stub, task, generation, **script)
    assert "row" not in decision
    reason = decision["reason"]
    expected = EXPECTED_STAGE[kind]
    assert any(e in reason for e in ((expected,) if isinstance(expected, str) else expected)), reason
    if kind == "not_in_context" and task == "summarization":
        assert "copied" in reason


def test_accepted_junk_multiple_choice_is_rejected(setting, stub) -> None:
    junk = {"question": "What does the passage say?", "options": ["X", "Y", "Z", "W"], "correct": "A",
            "evidence": GOOD["comprehension"]["evidence"]}
    reason = _run(setting, stub, "comprehension", junk)["reason"]
    assert "question: the question names nothing" in reason
    specific = {**junk, "question": "Which event of June does the Eastmere report describe?"}
    assert "options: an option is a placeholder" in _run(setting, stub, "comprehension", specific)["reason"]


def test_fuzzy_evidence_is_replaced_by_the_context_span(setting) -> None:
    ctx = setting[1]
    paraphrase = "The board approved a new pier at a cost of 4200 pounds, to be built by the dredging firm Calder & Sons."
    found = locate(paraphrase, ctx.text)
    assert found is not None and found in ctx.text and "Calder and Sons" in found
    assert locate(FABRICATED, ctx.text) is None


def test_rate_limiter_spaces_requests() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    limiter = RateLimiter(4.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        limiter.acquire()
    assert slept == pytest.approx([0.25] * 4, rel=1e-9)
    assert RateLimiter(0).interval == 0


def test_both_splits_all_tasks_resume_and_cache(stub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server, model = stub
    monkeypatch.setenv("GOLONGRL_CACHE", str(tmp_path / "cache"))
    shipping_good = {
        **GOOD,
        "precise_retrieval": {"question": "Who bought the last barrels of salt cod at Fennick?", "answer": "Hale and Daughters",
                              "evidence": "At Fennick the remaining 130 barrels were sold to the cooperage of Hale and Daughters."},
    }
    model.by_title = {"Eastmere Harbour Board, 1952": GOOD, "Log of the Wren": shipping_good}
    model.task, model.with_context, model.without_context, model.answers = "", "right", "wrong", None
    filler = load_default_corpus(["legal"])
    splits = {"train": [_doc("test/eastmere", "Eastmere Harbour Board, 1952", REPORT), *filler[:4]],
              "eval": [_doc("test/wren", "Log of the Wren", SHIPPING), *filler[4:]]}
    config = DataConfig.model_validate({
        "seed": 3, "context": {"train_lengths": [1100], "eval_lengths": [1100]},
        "llm": {"enabled": True, "backend": f"openai:{server.base_url}#stub-model", "samples_per_task": 1,
                "eval_samples_per_task": 1, "domains": ["reports"], "tasks": list(LLM_TASKS), "max_retries": 0,
                "concurrency": 3, "requests_per_second": 500}})
    cache = UnitCache(get_counter("smollm2"))
    server.reset_stats()
    server.delay_s = 0.05  # long enough for requests of different threads to overlap
    try:
        rows, failures = build_llm_samples(config, splits, cache, tmp_path / "work")
    finally:
        server.delay_s = 0.0
    first = server.request_count
    train = {r["extra_info"]["task_type"] for r in rows if r["extra_info"]["split"] == "train"}
    assert train == set(LLM_TASKS), failures
    eval_rows = [r for r in rows if r["extra_info"]["split"] == "eval"]
    # The shipping log has no matching precise-retrieval gold in GOOD for the other tasks: those
    # generations quote the harbour report and are rejected as not in the context.
    assert {r["extra_info"]["task_type"] for r in eval_rows} >= {"precise_retrieval"}
    assert all("not in the context" in f["reason"] or "does not occur" in f["reason"] or "names nothing" in f["reason"]
               for f in failures), failures
    assert len(rows) + len(failures) == 18
    assert 1 < server.max_in_flight <= 3
    assert server.requests[0]["response_format"] == {"type": "json_object"}
    again, failures_again = build_llm_samples(config, splits, cache, tmp_path / "work")
    assert server.request_count == first  # every decision came from the decision log
    assert [r["extra_info"]["uid"] for r in again] == [r["extra_info"]["uid"] for r in rows]
    (tmp_path / "work" / "llm-decisions.jsonl").unlink()
    build_llm_samples(config, splits, cache, tmp_path / "work2")
    assert server.request_count == first  # ... and without it, from the request cache


def test_build_dataset_writes_llm_rows_and_records_failures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from golongrl.data.io import read_records
    from golongrl.data.pipeline import build_dataset

    monkeypatch.setenv("GOLONGRL_CACHE", str(tmp_path / "cache"))
    summary = {"question": "Summarise the terms this licence sets for copying and changing the covered work.",
               "summary": "The licence lets anyone copy, change and share the covered work under conditions about notices and source."}

    def reply(body: dict) -> str | dict:
        system, prompt = body["messages"][0]["content"], last_user_message(body)
        if system.startswith("You write"):
            return summary
        return "I cannot tell." if prompt.startswith("Question: ") else "[Answer]\n" + summary["summary"]

    with StubServer(reply) as server:
        config = DataConfig.model_validate({
            "samples_per_task": 0, "eval_samples_per_task": 0, "eval_fraction": 0,
            "corpus": {"default_domains": ["legal"], "max_dialogues": 0},
            "context": {"train_lengths": [512]},
            "llm": {"enabled": True, "backend": f"openai:{server.base_url}#stub-model", "samples_per_task": 3,
                    "tasks": ["summarization"], "max_retries": 0, "concurrency": 1}})
        server.fail_next(1)
        build_dataset(config, tmp_path / "a")
        rows = [r for _, r in read_records(tmp_path / "a" / "train.jsonl")]
        failures = [json.loads(line)["reason"] for line in (tmp_path / "a" / "failures.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(r["extra_info"]["construction"] == "llm_summarization" for r in rows)
    assert len(failures) == 1 and "endpoint failed" in failures[0]


def test_config_accepts_every_task_and_rejects_unknown_ones() -> None:
    assert DataConfig.model_validate({"llm": {"enabled": True, "backend": "openai:http://x/v1#m"}}).llm.tasks == list(LLM_TASKS)
    with pytest.raises(ValueError, match="llm.tasks must be task types"):
        DataConfig.model_validate({"llm": {"enabled": True, "backend": "openai:http://x/v1#m", "tasks": ["trivia"]}})
