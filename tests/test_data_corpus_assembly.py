"""Corpus ingestion (default corpus, user folders, malformed documents, deduplication) and
context assembly to an exact token length."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from golongrl.data.assembly import AssemblyError, UnitCache, assemble_context, assemble_sections
from golongrl.data.corpus import (
    CleaningRules,
    Document,
    clean_corpus,
    ingest_folder,
    load_default_corpus,
    near_duplicate_pairs,
)
from golongrl.data.tokens import get_counter


@pytest.fixture(scope="module")
def corpus() -> list[Document]:
    return load_default_corpus(("literature", "government", "technical", "legal", "tables"))


@pytest.fixture(scope="module")
def cache() -> UnitCache:
    return UnitCache(get_counter("smollm2"))


def test_default_corpus_has_six_domains_with_provenance_and_token_counts() -> None:
    docs = load_default_corpus(max_dialogues=5)
    assert {d.domain for d in docs} == {"literature", "government", "technical", "legal", "tables", "dialogues"}
    for doc in docs:
        assert doc.provenance["license"] and doc.provenance["package"] and doc.provenance["version"]
    shipped = [d for d in docs if d.domain != "dialogues"]
    counter = get_counter("smollm2")
    sample = shipped[::25]
    assert [d.meta["tokens"]["smollm2"] for d in sample] == counter.count_many([d.text for d in sample])
    assert all(d.summary for d in docs if d.kind == "table")


def test_folder_ingestion_skips_malformed_documents_with_reasons(tmp_path: Path) -> None:
    def text(tag: str) -> str:
        return " ".join(f"{tag}{i}" for i in range(120)) + "."

    good = text("copy")
    (tmp_path / "legal").mkdir()
    (tmp_path / "legal" / "act.md").write_text("# Act\n\n" + text("act"))
    (tmp_path / "page.html").write_text(f"<html><head><style>x{{}}</style></head><body><h2>Title</h2><p>{text('page')}</p></body></html>")
    (tmp_path / "table.csv").write_text("name,value\n" + "\n".join(f"row{i},{i}" for i in range(40)))
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 ".encode("latin-1") * 100)
    (tmp_path / "empty.txt").write_text("   \n\n")
    (tmp_path / "oneline.txt").write_text("word " * 30_000)
    (tmp_path / "docs.jsonl").write_text('{"text": "%s", "title": "J", "domain": "x"}\n{broken\n' % good)
    (tmp_path / "copy.txt").write_text(good)
    docs, skipped = ingest_folder(tmp_path)
    kept, dropped = clean_corpus(docs, CleaningRules(max_line_chars=100_000))
    reasons = {s.source: s.reason for s in skipped + dropped}
    assert reasons["latin1.txt"].startswith("not UTF-8")
    assert reasons["empty.txt"] == "empty after normalisation"
    assert "single line" in reasons["oneline.txt"]
    assert reasons["docs.jsonl:2"].startswith("not valid JSON")
    assert any("duplicate" in r for r in reasons.values())
    by_id = {d.id: d for d in kept}
    assert by_id["legal/act.md"].domain == "legal"
    assert by_id["page.html"].text.startswith("## Title") and "x{}" not in by_id["page.html"].text
    assert by_id["table.csv"].kind == "table"


def test_near_duplicates_found_exactly_and_distinct_texts_kept(corpus: list[Document]) -> None:
    text = corpus[0].text[:20000]
    edited = text.replace(" the ", " a ", 3)
    pairs = near_duplicate_pairs([text, corpus[1].text[:20000], edited])
    assert [(i, j) for i, j, _ in pairs] == [(0, 2)]
    assert pairs[0][2] > 0.9


@pytest.mark.parametrize("target", [256, 1000, 4096, 32768])
@pytest.mark.parametrize("doc_id", ["austen/persuasion", "license/apache-2.0", "table/berndt-cps-wages-1985"])
def test_context_length_within_one_percent(corpus, cache, target: int, doc_id: str) -> None:
    rng = random.Random(target)
    main = next(d for d in corpus if d.id == doc_id)
    ctx = assemble_context(main, corpus[::-1], target, cache, rng, position=rng.random())
    assert ctx.tokens == cache.counter.count(ctx.text)
    assert abs(ctx.tokens - target) <= 0.01 * target
    assert ctx.main.doc is main and ctx.main.units


def test_position_places_main_window_and_distractors_are_real(corpus, cache) -> None:
    main = next(d for d in corpus if d.id == "license/gpl-3")
    others = [d for d in corpus if d.domain != "legal"]
    early = assemble_context(main, others, 20000, cache, random.Random(0), position=0.0)
    late = assemble_context(main, others, 20000, cache, random.Random(0), position=1.0)
    assert early.main_index == 0 and late.main_index == len(late.blocks) - 1
    texts = {d.id: d.text for d in corpus}
    for block in late.blocks:
        assert all(unit in texts[block.doc.id] for unit in block.units[1:-1])


def test_impossible_target_is_a_clear_error(corpus, cache) -> None:
    with pytest.raises(AssemblyError, match="1 %"):
        assemble_context(corpus[0], [], 2_000_000, cache, random.Random(0))


@pytest.mark.parametrize("domain,target", [("government", 4096), ("technical", 32768), ("tables", 2048), ("literature", 8192)])
def test_sections_of_same_domain_documents_meet_the_target_exactly_measured(
    corpus: list[Document], cache: UnitCache, domain: str, target: int
) -> None:
    counter = cache.counter
    docs = [d for d in corpus if d.domain == domain and (d.kind != "table" or len(d.text.split("\n", 1)[0]) < 600)]
    rng = random.Random(f"sections/{domain}")
    picked = rng.sample(docs, min(len(docs), 5))
    for d in picked:
        d.tokens = d.tokens or counter.count(d.text)
    ctx = assemble_sections(picked, target, cache, rng, main_index=len(picked) // 2)
    # The line-by-line measurement is the exact count of the whole text.
    assert ctx.tokens == counter.count(ctx.text)
    tolerance = 0.01 if domain == "tables" else 0.005
    assert abs(ctx.tokens - target) <= tolerance * target
    roles = [b.role for b in ctx.blocks]
    assert roles.count("main") == 1 and ctx.blocks[ctx.main_index].doc is picked[len(picked) // 2]
    # Only real documents of the domain: one section per document (plus the tables' own notes).
    assert {b.doc.domain for b in ctx.blocks} == {domain}
    assert [b.doc.id for b in ctx.blocks if b.role != "notes"] == [d.id for d in picked]
    # Every unit, including a window's cut edge, is verbatim text of its document.
    assert all(u in block.doc.text for block in ctx.blocks for u in block.units)
