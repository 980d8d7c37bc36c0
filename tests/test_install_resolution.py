"""golongrl's declared dependencies resolve next to verl 0.9.1's GPU extras (and TRL 1.16.0).

A real ``pip install --dry-run`` of ``golongrl[verl] verl[sglang]`` would fetch multi-GB CUDA
wheels (PyPI serves no separate metadata for torch/sglang/vllm) and build flash-attn's sdist, so
the check runs over the packages' metadata instead: golongrl's own (pyproject.toml), verl's
(the installed 0.9.1 distribution) and, when PyPI answers, SGLang 0.5.12's and vLLM 0.24.0's
(read from their wheels on PyPI through HTTP range requests, a few hundred KB each). Every exact pin (``torch==2.11.0``, ``transformers==5.9.0``,
``flash-attn==2.8.3``...) any of them declares must satisfy every other package's range for that
name, and ranges of the same name must overlap. That is where the conflicts live: verl's GPU
stacks are pins, golongrl's side is ranges.
"""

from __future__ import annotations

import importlib.metadata
import io
import json
import tomllib
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]

#: A Linux x86_64 CPython 3.11 GPU node (the environment the extras' markers are evaluated in).
NODE = {
    "python_version": "3.11", "python_full_version": "3.11.9", "sys_platform": "linux",
    "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
    "implementation_name": "cpython", "platform_python_implementation": "CPython",
    "platform_release": "", "platform_version": "", "implementation_version": "3.11.9",
}
VERL_GPU_EXTRAS = ["sglang", "vllm", "fsdp", "megatron"]
SGLANG_VERSION = "0.5.12"  # what verl 0.9.1's sglang extra pins
VLLM_VERSION = "0.24.0"  # and its vllm extra


@dataclass(frozen=True)
class Need:
    requirement: Requirement
    who: str  # "golongrl[verl]", "verl[sglang]", ...


def golongrl_requirements(pyproject: dict) -> list[str]:
    """pyproject's dependencies and optional-dependencies as dist-metadata strings."""
    project = pyproject["project"]
    out = list(project["dependencies"])
    for extra, reqs in project.get("optional-dependencies", {}).items():
        for req in reqs:
            parsed = Requirement(req)
            marker = f"({parsed.marker}) and extra == '{extra}'" if parsed.marker else f"extra == '{extra}'"
            parsed.marker = Marker(marker)
            out.append(str(parsed))
    return out


def collect(root: str, extras: set[str], metadata: dict[str, list[str]]) -> list[Need]:
    """Every requirement reached from ``root[extras]`` on :data:`NODE`, following self-extras
    (``verl[verl-core]``) and the packages whose metadata is in ``metadata``."""
    needs: list[Need] = []
    seen: set[tuple[str, str]] = set()
    todo = [(canonicalize_name(root), extra) for extra in sorted(extras | {""})]
    while todo:
        name, extra = todo.pop()
        if (name, extra) in seen:
            continue
        seen.add((name, extra))
        who = f"{name}[{extra}]" if extra else name
        for text in metadata[name]:
            req = Requirement(text)
            if req.marker is None:
                if extra:  # unconditional: already collected under the bare name
                    continue
            elif not req.marker.evaluate({**NODE, "extra": extra}):
                continue
            dep = canonicalize_name(req.name)
            if dep == name or dep in metadata:
                todo += [(dep, e) for e in sorted(set(req.extras) | {""})]
            if dep != name:
                needs.append(Need(req, who))
    return needs


def conflicts(needs: list[Need], installed: dict[str, str]) -> list[str]:
    """Names whose requirements no single version satisfies.

    Exact pins decide where there are any (the only candidates then). For range-only names the
    candidates are the versions the specifiers name (a non-empty intersection of ``>=a``/``<b``
    ranges contains its largest lower bound) plus the version installed here and ``0`` (for
    ranges bounded only from above).
    """
    by_name: dict[str, list[Need]] = {}
    for need in needs:
        by_name.setdefault(canonicalize_name(need.requirement.name), []).append(need)
    problems = []
    for name, group in sorted(by_name.items()):
        specs = [spec for need in group for spec in need.requirement.specifier if not spec.version.endswith(".*")]
        pins = {spec.version for spec in specs if spec.operator in ("==", "===")}
        candidates = pins or ({spec.version for spec in specs} | {installed.get(name, "0"), "0"})
        fits = [v for v in candidates if all(need.requirement.specifier.contains(Version(v).public, prereleases=True)
                                             for need in group)]
        if not fits:
            detail = "; ".join(f"{need.who} needs {need.requirement.specifier or 'any'}" for need in group)
            problems.append(f"{name}: no version fits ({detail})")
    return problems


def _installed_versions() -> dict[str, str]:
    return {canonicalize_name(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()}


def _verl_metadata() -> list[str]:
    try:
        dist = importlib.metadata.distribution("verl")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("verl is not installed (pip install -e '.[verl]')")
    if dist.version != "0.9.1":
        pytest.skip(f"the check is written for verl 0.9.1's extras, found verl {dist.version}")
    return list(dist.requires or [])


def _metadata(**more: list[str]) -> dict[str, list[str]]:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    return {"golongrl": golongrl_requirements(pyproject), "verl": _verl_metadata(), **more}


def rejected_pins(ours: list[Need], stack: list[Need]) -> list[str]:
    """Exact pins of the engine stack that one of golongrl's own requirements refuses."""
    out = []
    for pin in stack:
        for spec in pin.requirement.specifier:
            if spec.operator not in ("==", "===") or spec.version.endswith(".*"):
                continue
            for need in ours:
                same = canonicalize_name(need.requirement.name) == canonicalize_name(pin.requirement.name)
                if same and not need.requirement.specifier.contains(Version(spec.version).public, prereleases=True):
                    out.append(f"{need.who} needs {need.requirement.name}{need.requirement.specifier} but "
                               f"{pin.who} pins {pin.requirement.name}{pin.requirement.specifier}")
    return out


def _split(metadata: dict[str, list[str]], gpu_extra: str) -> tuple[list[Need], list[Need]]:
    """golongrl's own requirements (base + verl extra) and the verl[gpu_extra] stack's."""
    ours = [n for n in collect("golongrl", {"verl"}, metadata) if n.who.startswith("golongrl")]
    return ours, collect("verl", {gpu_extra}, metadata)


@pytest.mark.parametrize("gpu_extra", VERL_GPU_EXTRAS)
def test_golongrl_verl_resolves_with_each_verl_gpu_extra(gpu_extra):
    ours, stack = _split(_metadata(), gpu_extra)
    pinned = {canonicalize_name(n.requirement.name) for n in stack if "==" in str(n.requirement.specifier)}
    assert {"torch", "transformers"} & pinned  # the extra really brings its GPU pins into the check
    assert rejected_pins(ours, stack) == []
    assert conflicts(ours + stack, _installed_versions()) == conflicts(stack, _installed_versions()) == []


def test_the_check_reports_the_old_cpu_pin_against_verls_gpu_torch():
    metadata = _metadata()
    metadata["golongrl"] = [r for r in metadata["golongrl"] if Requirement(r).name != "torch"] + ["torch==2.13.0"]
    ours, stack = _split(metadata, "sglang")
    assert rejected_pins(ours, stack) == ["golongrl needs torch==2.13.0 but verl[sglang] pins torch==2.11.0"]
    problems = conflicts(ours + stack, _installed_versions())
    assert len(problems) == 1 and problems[0].startswith("torch: no version fits")
    assert "golongrl needs ==2.13.0" in problems[0] and "verl[sglang] needs ==2.11.0" in problems[0]


def test_golongrl_trl_resolves_with_trl_metadata():
    try:
        trl = importlib.metadata.distribution("trl")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("trl is not installed (pip install -e '.[trl]')")
    metadata = _metadata(trl=list(trl.requires or []))
    assert conflicts(collect("golongrl", {"trl"}, metadata), _installed_versions()) == []


class _RemoteFile(io.RawIOBase):
    """A wheel on PyPI read through HTTP range requests: zipfile seeks to the central directory
    and the METADATA member, so a 280 MB vLLM wheel costs a few hundred KB."""

    def __init__(self, url: str, size: int) -> None:
        self.url, self.size, self.pos = url, size, 0

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = {0: offset, 1: self.pos + offset, 2: self.size + offset}[whence]
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        count = min(len(buffer), self.size - self.pos)
        if count <= 0:
            return 0
        request = urllib.request.Request(self.url, headers={"Range": f"bytes={self.pos}-{self.pos + count - 1}"})
        data = urllib.request.urlopen(request, timeout=30).read()
        buffer[: len(data)] = data
        self.pos += len(data)
        return len(data)


def wheel_requirements(project: str, version: str) -> list[str]:
    """Requires-Dist of ``project==version``'s Linux x86_64 wheel for CPython 3.11, from PyPI."""
    index = urllib.request.Request(f"https://pypi.org/simple/{project}/",
                                   headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    try:
        files = json.load(urllib.request.urlopen(index, timeout=30))["files"]
        wheel = next(f for f in files if f["filename"].startswith(f"{project}-{version}-")
                     and f["filename"].endswith(".whl") and "x86_64" in f["filename"]
                     and ("cp311" in f["filename"] or "abi3" in f["filename"]))
        with zipfile.ZipFile(io.BufferedReader(_RemoteFile(wheel["url"], wheel["size"]), buffer_size=1 << 20)) as z:
            name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
            text = z.read(name).decode("utf-8")
    except (OSError, StopIteration, KeyError, ValueError, zipfile.BadZipFile) as err:
        pytest.skip(f"PyPI unreachable or unexpected for {project}=={version}: {err}")
    return [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Requires-Dist:")]


@pytest.mark.slow
def test_golongrl_verl_accepts_sglangs_own_pins():
    """One level further: SGLang 0.5.12's own pins (torch 2.11.0, transformers 5.6.0, ...).

    verl 0.9.1 and SGLang 0.5.12 disagree with each other on transformers (verl: !=5.6.0 and,
    in its sglang extra, ==5.9.0; SGLang: ==5.6.0), so that stack resolves only the way verl's
    images build it (SGLang installed without its transformers pin); golongrl must add no
    conflict of its own and must accept whichever of those pins the image carries."""
    metadata = _metadata(sglang=wheel_requirements("sglang", SGLANG_VERSION))
    ours, stack = _split(metadata, "sglang")
    assert any(n.who.startswith("sglang") for n in stack)
    assert rejected_pins(ours, stack) == []
    installed = _installed_versions()
    names = [problem.split(":")[0] for problem in conflicts(stack, installed)]
    assert names == ["transformers"]
    assert [problem.split(":")[0] for problem in conflicts(ours + stack, installed)] == names


@pytest.mark.slow
def test_golongrl_verl_resolves_with_vllms_own_pins():
    """vLLM 0.24.0 (verl[vllm]'s pin) needs torch==2.11.0 and transformers>=5.5.3: that stack,
    golongrl included, has no conflict at all."""
    metadata = _metadata(vllm=wheel_requirements("vllm", VLLM_VERSION))
    ours, stack = _split(metadata, "vllm")
    assert any(n.who.startswith("vllm") for n in stack)
    assert rejected_pins(ours, stack) == []
    assert conflicts(ours + stack, _installed_versions()) == []
