"""Every rule-based construction, on the real default corpus: valid rows whose gold scores 1.0
under hardened scoring, no gold-independent strategy (the task's ``baselines``, what
``golongrl audit`` scores) above 0.3 mean reward (or the task's chance), balanced golds, and
contexts made of same-domain real documents only."""

from __future__ import annotations

from collections import Counter

import pytest

from golongrl.data.assembly import UnitCache
from golongrl.data.config import DataConfig
from golongrl.data.constructions import CONSTRUCTIONS
from golongrl.data.corpus import annotate_tokens, load_default_corpus
from golongrl.data.pipeline import Builder, task_pools
from golongrl.data.refine import lazy_responses
from golongrl.data.schema import validate_record
from golongrl.data.tokens import get_counter
from golongrl.rewards import compute_score
from golongrl.tasks import LBP_REWARD_MODES, TASK_TYPES, get_task

SAMPLES = 8
GATE = 0.3


@pytest.fixture(scope="module")
def builder() -> Builder:
    counter = get_counter("smollm2")
    docs = load_default_corpus(max_dialogues=30)
    annotate_tokens(docs, counter)
    config = DataConfig.model_validate(
        {"levels": ["core", "warmup"], "context": {"train_lengths": [1024, 2048]}, "max_attempts": 6}
    )
    return Builder(config, UnitCache(counter), {"train": task_pools(docs)})


@pytest.fixture(scope="module")
def samples(builder: Builder) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for name, spec in CONSTRUCTIONS.items():
        rows = [builder.attempt("train", spec.task, i, SAMPLES, construction=name)[0] for i in range(SAMPLES)]
        out[name] = [r for r in rows if r is not None]
    return out


def test_every_task_has_two_constructions_with_lbp_labels_of_its_metric() -> None:
    by_task = Counter(spec.task for spec in CONSTRUCTIONS.values())
    assert set(by_task) == set(TASK_TYPES)
    assert all(n >= 2 for n in by_task.values())
    for spec in CONSTRUCTIONS.values():
        task = get_task(spec.task)
        if task.lbp_metric and task.data_source == "longbench_pro":
            assert LBP_REWARD_MODES[spec.lbp_task] == task.lbp_metric, spec.name


@pytest.mark.parametrize("name", sorted(CONSTRUCTIONS))
def test_construction_rows_are_valid_gold_scores_one_and_lazy_strategies_do_not(name: str, samples: dict) -> None:
    rows = samples[name]
    assert len(rows) >= SAMPLES // 2, f"{name} built only {len(rows)} of {SAMPLES}"
    task = get_task(CONSTRUCTIONS[name].task)
    lazy: dict[str, float] = {}
    for raw in rows:
        row = validate_record(raw)
        info = row["extra_info"]
        assert info["construction"] == name and info["lbp_task"] == CONSTRUCTIONS[name].lbp_task
        assert abs(info["context_tokens"] - info["target_tokens"]) <= 0.01 * info["target_tokens"]
        gt = row["reward_model"]["ground_truth"]
        gold = task.reference_response(task.parse_gold(gt, info, data_source=row["data_source"]))
        assert compute_score(row["data_source"], gold, gt, info, mode="hardened") >= 1 - 1e-6
        # Sections are real documents of one domain (no filler from other genres).
        assert info["sections"] == len(info["provenance"])
        assert {p["domain"] for p in info["provenance"]} == {info["domain"]}
        for strategy, text in lazy_responses(row).items():
            lazy[strategy] = lazy.get(strategy, 0.0) + compute_score(row["data_source"], text, gt, info) / len(rows)
    limit = max(task.chance, GATE) + 1e-9
    assert all(v <= limit for v in lazy.values()), {k: round(v, 3) for k, v in lazy.items() if v > limit}


def test_golds_are_balanced(samples: dict) -> None:
    letters = Counter(r["reward_model"]["ground_truth"]["golden_label"] for r in samples["most_mentions_choice"])
    assert len(letters) >= 3 and max(letters.values()) <= len(samples["most_mentions_choice"]) // 2
    totals = Counter(r["reward_model"]["ground_truth"]["golden_label"] for r in samples["term_total"])
    assert max(totals.values()) <= 2, totals  # no majority count


def test_questions_do_not_name_the_answer(samples: dict) -> None:
    for name in ("sentence_section", "excerpt_section_match", "sections_by_term_count"):
        for row in samples[name]:
            gt = row["reward_model"]["ground_truth"]
            answers = [gt["golden_label"]] if gt["golden_label"] else [i.split(": ", 1)[-1] for i in gt["doc_ids"]]
            assert not any(a and a in row["extra_info"]["question"] for a in answers), (name, answers)
