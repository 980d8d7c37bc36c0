"""Fast KV-cached decoding for :func:`~golongrl.inference.transformers_backend.sample_responses`.

transformers' ``DynamicLayer`` appends each decode step's key/value with ``torch.cat``, which
copies the whole cache every step (64 % of a decode step at 24 rows x 1K context on a CPU).
:func:`preallocate_cache` moves a prefilled cache into buffers with room for the whole rollout,
written in place. Only full-attention ``DynamicLayer`` caches are moved; anything else (sliding
window, linear attention, quantized or offloaded caches) keeps transformers' own layers.

SDPA's CPU kernel is slow for a single query (it re-reads K and V per head, and with a padding
mask first copies them once per query head): :func:`single_query_decoding` swaps in
:func:`single_query_attention`, which reads them once, for the sampler's decode steps.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from transformers import AttentionInterface
from transformers.cache_utils import DynamicCache, DynamicLayer
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask


class PreallocatedLayer(DynamicLayer):
    """One full-attention layer's keys and values in a buffer of ``capacity`` positions.

    ``keys`` / ``values`` are views of the first ``get_seq_length()`` positions; ``update`` writes
    the new positions into the buffer, so a step copies only the new tokens, never the cache.
    Callers lay each prefilled prompt out ``repeats`` times (prompt ``r`` in rows
    ``r * repeats ... r * repeats + repeats - 1``, as ``batch_repeat_interleave`` would).
    """

    def __init__(self, rows: int, keys: torch.Tensor, values: torch.Tensor, *, capacity: int) -> None:
        """An empty layer of ``rows`` rows shaped like ``keys``/``values`` [*, H, *, D] with room for
        ``capacity`` positions, zero-filled so masked padding positions hold finite values; fill
        it with :meth:`place`, then :meth:`set_length`."""
        super().__init__()
        self.capacity = capacity
        self._key_buffer = keys.new_zeros((rows, keys.shape[1], capacity, keys.shape[-1]))
        self._value_buffer = values.new_zeros((rows, values.shape[1], capacity, values.shape[-1]))
        self.dtype, self.device = keys.dtype, keys.device
        self.is_initialized = True
        self.set_length(0)

    def place(self, first_row: int, repeats: int, keys: torch.Tensor, values: torch.Tensor, *, end: int) -> None:
        """Write one prefilled prompt's ``keys``/``values`` [1, H, L, D] into rows
        ``first_row ... first_row + repeats - 1`` at positions ``end - L ... end - 1``."""
        length = keys.shape[-2]
        if end > self.capacity or length > end:
            raise ValueError(f"cannot place {length} positions ending at {end} in a buffer of {self.capacity}")
        rows = slice(first_row, first_row + repeats)
        self._key_buffer[rows, :, end - length:end] = keys
        self._value_buffer[rows, :, end - length:end] = values

    def set_length(self, length: int) -> None:
        """Expose the first ``length`` positions as ``keys`` / ``values``."""
        self.length = length
        self.keys = self._key_buffer[:, :, :length]
        self.values = self._value_buffer[:, :, :length]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any,
               **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        end = self.length + key_states.shape[-2]
        if end > self.capacity:
            raise RuntimeError(f"KV buffer full: {end} positions needed, capacity {self.capacity}")
        self._key_buffer[:, :, self.length:end] = key_states
        self._value_buffer[:, :, self.length:end] = value_states
        self.set_length(end)
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.length

    def get_max_cache_shape(self) -> int:
        return self.capacity

    def crop(self, max_length: int) -> None:
        if max_length < 0:
            max_length = self.length + max_length
        self.set_length(min(self.length, max_length))

    # Row reordering would detach ``keys`` from the buffer; the sampler never needs it.
    def batch_repeat_interleave(self, repeats: int) -> None:
        raise NotImplementedError("PreallocatedLayer repeats rows when it is built (repeats=...)")

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        raise NotImplementedError("PreallocatedLayer does not reorder rows")

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        raise NotImplementedError("PreallocatedLayer does not reorder rows")


def _holdable(cache: Any) -> bool:
    """Whether ``cache`` is a plain ``DynamicCache`` of initialised full-attention layers."""
    return (type(cache) is DynamicCache and not getattr(cache, "offloading", False) and bool(cache.layers)
            and all(type(layer) is DynamicLayer and layer.is_initialized for layer in cache.layers))


def prefill_unpadded(model: Any, prompt_ids: Sequence[Sequence[int]], *, repeats: int, capacity: int,
                     device: Any) -> tuple[Any, torch.Tensor] | None:
    """Prefill each prompt alone (no padding, no attention mask) and lay the caches out
    left-padded to the longest prompt in :class:`PreallocatedLayer` buffers, each row
    ``repeats`` times; returns ``(cache, last-position logits [rows, V])``.

    Why not one padded batch: with a padding mask SDPA's CPU kernels leave the causal fast
    path (and may materialise [B, H, T, T] scores), which at 4K-token prompts costs far more
    than the lost batching; a single unmasked prompt of hundreds of tokens already keeps the
    matmuls busy. The padded positions hold zeros and are masked at decode. ``None`` (nothing
    kept) when the model's cache is not one :func:`preallocate_cache` can hold: the caller then
    prefills the padded batch and decodes through transformers' own cache.
    """
    width = max(len(p) for p in prompt_ids)
    cache, layers, logits = None, None, []
    for row, prompt in enumerate(prompt_ids):
        out = model(input_ids=torch.tensor([list(prompt)], dtype=torch.long, device=device), use_cache=True,
                    logits_to_keep=1)
        if not _holdable(out.past_key_values):
            return None
        if layers is None:
            cache = out.past_key_values
            layers = [PreallocatedLayer(len(prompt_ids) * repeats, layer.keys, layer.values, capacity=capacity)
                      for layer in cache.layers]
        for layer, prefilled in zip(layers, out.past_key_values.layers):
            layer.place(row * repeats, repeats, prefilled.keys, prefilled.values, end=width)
        logits.append(out.logits[:, -1])
    for layer in layers:
        layer.set_length(width)
    cache.layers = layers
    return cache, torch.cat(logits, dim=0)


def preallocate_cache(cache: Any, *, repeats: int, capacity: int) -> bool:
    """Move a prefilled ``cache`` into :class:`PreallocatedLayer` buffers, in place.

    Each prefilled row is repeated ``repeats`` times and every layer gets room for ``capacity``
    positions. Returns False, leaving ``cache`` untouched, when the cache is not a plain
    ``DynamicCache`` of full-attention ``DynamicLayer`` layers (a sliding-window layer drops old
    positions, a linear-attention layer keeps a recurrent state, quantized and offloaded caches
    move their tensors): the caller then decodes with transformers' own cache.
    """
    if not _holdable(cache):
        return False
    layers = []
    for layer in cache.layers:
        rows, _, length, _ = layer.keys.shape
        held = PreallocatedLayer(rows * repeats, layer.keys, layer.values, capacity=capacity)
        for row in range(rows):
            held.place(row * repeats, repeats, layer.keys[row:row + 1], layer.values[row:row + 1], end=length)
        held.set_length(length)
        layers.append(held)
    cache.layers = layers
    return True


#: The name under which :func:`single_query_attention` is registered with transformers.
DECODE_ATTENTION = "golongrl_single_query"


def single_query_attention(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                           attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                           is_causal: bool | None = None, **kwargs: Any) -> tuple[torch.Tensor, None]:
    """transformers' SDPA attention, computed for one query position per row as two grouped matmuls.

    ``query`` [B, H, 1, D] is viewed as [B, Hkv, G, D] (query head ``h`` reads key head
    ``h // G``, as SDPA's grouped-query expansion does) and multiplied by ``key`` [B, Hkv, L, D]
    directly, so K and V are each read once per step; SDPA's CPU flash kernel re-reads them per
    head and, with a padding mask, first copies them G times. The scores are scaled, masked
    (``attention_mask``: SDPA's boolean mask, True = attend, or an additive float mask) and
    softmaxed in float32. Anything else (a prefill, dropout) goes to SDPA unchanged.
    """
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    batch, heads, q_length, head_dim = query.shape
    kv_heads = key.shape[1]
    if q_length != 1 or dropout > 0 or heads % kv_heads:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    scale = head_dim ** -0.5 if scaling is None else scaling
    grouped = query.view(batch, kv_heads, heads // kv_heads, head_dim)
    # key @ query^T reads the cache in its own layout; query @ key^T would make the CPU's
    # batched GEMM copy a transposed K every step (20 ms per layer at 24 rows x 1K in bf16).
    scores = torch.matmul(key, grouped.transpose(-1, -2)).transpose(-1, -2).float() * scale  # [B, Hkv, G, L]
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            scores = scores.masked_fill(attention_mask.logical_not(), float("-inf"))
        else:
            scores = scores + attention_mask.float()
    probs = torch.softmax(scores, dim=-1).to(value.dtype)
    output = torch.matmul(probs, value)  # [B, Hkv, G, D]
    return output.reshape(batch, 1, heads, value.shape[-1]), None


# Registered once, here: the registries are process-global, and re-registering per block would
# write them from every sampling thread.
AttentionInterface.register(DECODE_ATTENTION, single_query_attention)
AttentionMaskInterface.register(DECODE_ATTENTION, sdpa_mask)  # the very masks SDPA gets

_switch_lock = threading.Lock()
# id(config) -> [config, blocks inside]; holding the config keeps its id from being reused.
_switched: dict[int, list[Any]] = {}


@contextlib.contextmanager
def single_query_decoding(model: Any) -> Iterator[None]:
    """Run ``model`` with :func:`single_query_attention` inside the block, restoring its attention
    implementation afterwards (also on error).

    Switched only where it was measured to beat SDPA (``benchmarks/rollout.py``): a float32 or bfloat16 model
    on the CPU whose attention is SDPA and whose config has no sub-configs (one implementation
    to swap and restore). Everything else runs unchanged.

    Thread-safe for a model shared across threads: the switch is the config's attribute, seen by
    every thread, so it is counted per config under a lock; the first block in switches it, the
    last one out restores SDPA, and a block entered while another holds the switch joins it (it
    would otherwise read the switched implementation as "not SDPA" and, worse, an early leaver
    would switch it back under a thread still decoding). A thread running the model outside any
    block meanwhile gets the same numbers: :func:`single_query_attention` hands every call but a
    one-query step to SDPA and matches it on those. The switch is not left on for good because
    it is a property of the model that outlives the sampler: a training forward, a saved config
    or a model later moved to a GPU must see the SDPA its owner chose.
    """
    config = getattr(model, "config", None)
    parameter = next(model.parameters())
    entry: list[Any] | None = None
    if (not getattr(config, "sub_configs", None) and parameter.device.type == "cpu"
            and parameter.dtype in (torch.float32, torch.bfloat16)):
        with _switch_lock:
            entry = _switched.get(id(config))
            if entry is None and getattr(config, "_attn_implementation", None) == "sdpa":
                entry = _switched[id(config)] = [config, 0]
                config._attn_implementation_internal = DECODE_ATTENTION
            if entry is not None:
                entry[1] += 1
    if entry is None:
        yield
        return
    try:
        yield
    finally:
        with _switch_lock:
            entry[1] -= 1
            if entry[1] == 0:
                del _switched[id(config)]
                # Unless someone chose another implementation meanwhile: theirs stays.
                if getattr(config, "_attn_implementation_internal", None) == DECODE_ATTENTION:
                    config._attn_implementation_internal = "sdpa"
