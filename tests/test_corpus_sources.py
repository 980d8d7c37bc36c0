"""The shipped corpus' new domains (papers with abstracts, groups of related tables, the larger
State of the Union set) and user documents in PDF and EPUB."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from golongrl.data.corpus import (
    AVAILABLE_DOMAINS, CORPUS_DIR, DEFAULT_DOMAINS, ingest_folder, load_default_corpus, read_epub, read_pdf)

WORDS = "The harbour board met in March and approved the new pier after a long debate about its cost. " * 12


def _pdf(text: str) -> bytes:
    """A one-page PDF whose text layer is ``text`` (hand-assembled: objects, xref, trailer)."""
    stream = f"BT /F1 10 Tf 40 800 Td ({text}) Tj ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def _epub(path: Path, chapters: list[str], title: str = "Harbour Chronicle") -> None:
    with zipfile.ZipFile(path, "w") as book:
        book.writestr("mimetype", "application/epub+zip")
        book.writestr("META-INF/container.xml", '<?xml version="1.0"?><container xmlns="urn:oasis:names:tc:opendocument:xmlns:container" version="1.0"><rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/></rootfiles></container>')
        items = "".join(f'<item id="c{i}" href="text/c{i}.xhtml" media-type="application/xhtml+xml"/>' for i in range(len(chapters)))
        # The spine lists the chapters in reverse file order: reading order must follow the spine.
        spine = "".join(f'<itemref idref="c{i}"/>' for i in reversed(range(len(chapters))))
        book.writestr("OEBPS/content.opf", f'<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0"><metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>{title}</dc:title></metadata><manifest>{items}</manifest><spine>{spine}</spine></package>')
        for i, body in enumerate(chapters):
            book.writestr(f"OEBPS/text/c{i}.xhtml", f"<html><body><h1>Chapter {i}</h1><p>{body}</p></body></html>")


def test_shipped_files_match_their_manifest() -> None:
    manifest = json.loads((CORPUS_DIR / "manifest.json").read_text())
    assert {"papers", "multitables"} <= set(manifest)
    for domain, entry in manifest.items():
        packed = (CORPUS_DIR / f"{domain}.jsonl.xz").read_bytes()
        assert hashlib.sha256(packed).hexdigest() == entry["sha256"], domain
        assert len(packed) == entry["bytes_xz"]


def test_papers_carry_abstracts_and_provenance() -> None:
    papers = load_default_corpus(["papers"])
    assert len(papers) == 17
    assert all(p.domain == "papers" and p.kind == "prose" for p in papers)
    with_abstract = [p for p in papers if p.summary and len(p.summary.split()) >= 40]
    assert len(with_abstract) >= 15
    for paper in papers:
        assert paper.provenance["package"].startswith("r-cran-") and "GPL" in paper.provenance["license"]
        # The abstract is held out: it is the summarisation reference, not part of the text.
        assert paper.summary is None or paper.summary[:200] not in paper.text
        assert "<<" not in paper.text and "\\begin{document}" not in paper.text
    lmer = next(p for p in papers if p.id == "paper/lmer")
    assert "lme4" in lmer.title and lmer.words > 10_000 and "## " in lmer.text


def test_multitable_groups_are_joinable() -> None:
    tables = load_default_corpus(["multitables"])
    groups: dict[str, list] = {}
    for table in tables:
        assert table.kind == "table"
        groups.setdefault(table.meta["group"], []).append(table)
    assert len(groups) == 4 and all(len(g) >= 2 for g in groups.values())
    minard = {t.id.rsplit("/", 1)[1]: t for t in groups["HistData/minard"]}
    headers = {name: t.text.split("\n", 1)[0].split(",") for name, t in minard.items()}
    assert all("long" in h for h in headers.values())  # the key the group joins on
    troops_longs = {line.split(",")[0] for line in minard["Minard.troops"].text.split("\n")[1:]}
    city_longs = {line.split(",")[0] for line in minard["Minard.cities"].text.split("\n")[1:]}
    assert troops_longs & city_longs
    assert all(t.meta["group_tables"] == [x.id for x in g] for g in groups.values() for t in g)


def test_government_covers_more_addresses_and_defaults_unchanged() -> None:
    speeches = load_default_corpus(["government"])
    years = sorted(d.meta["year"] for d in speeches)
    assert len(speeches) == 140 and years[0] == 1790 and years[-1] >= 2020
    assert set(DEFAULT_DOMAINS) == {"literature", "government", "technical", "legal", "tables", "dialogues"}
    assert set(AVAILABLE_DOMAINS) >= set(DEFAULT_DOMAINS) | {"papers", "multitables"}
    with pytest.raises(ValueError, match="unknown default-corpus domains"):
        load_default_corpus(["filings"])


def test_pdf_and_epub_documents(tmp_path: Path) -> None:
    folder = tmp_path / "docs" / "reports"
    folder.mkdir(parents=True)
    (folder / "minutes.pdf").write_bytes(_pdf(WORDS))
    _epub(folder / "chronicle.epub", ["First the storm wall fell. " * 20, "Then the pier was opened. " * 20])
    assert "approved the new pier" in read_pdf(folder / "minutes.pdf")
    text, title = read_epub(folder / "chronicle.epub")
    assert title == "Harbour Chronicle"
    assert text.index("the pier was opened") < text.index("the storm wall fell")  # spine order
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 this is not a pdf")
    (folder / "broken.epub").write_bytes(b"PK not a zip")
    docs, skipped = ingest_folder(tmp_path / "docs")
    by_id = {d.id: d for d in docs}
    assert set(by_id) == {"reports/minutes.pdf", "reports/chronicle.epub"}
    assert by_id["reports/chronicle.epub"].title == "Harbour Chronicle"
    assert all(d.domain == "reports" and d.words >= 50 for d in docs)
    reasons = {s.source: s.reason for s in skipped}
    assert "not a readable PDF" in reasons["reports/broken.pdf"]
    assert "not a readable EPUB" in reasons["reports/broken.epub"]
