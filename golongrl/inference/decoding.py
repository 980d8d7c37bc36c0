"""Fast KV-cached decoding for :func:`~golongrl.inference.transformers_backend.sample_responses`.

transformers' ``DynamicLayer`` appends each decode step's key/value with ``torch.cat``, which
copies the whole cache every step (64 % of a decode step at 24 rows x 1K context on a CPU).
:func:`preallocate_cache` moves a prefilled cache into buffers with room for the whole rollout,
written in place. Only full-attention ``DynamicLayer`` caches are moved; anything else (sliding
window, linear attention, quantized or offloaded caches) keeps transformers' own layers.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer


class PreallocatedLayer(DynamicLayer):
    """One full-attention layer's keys and values in a buffer of ``capacity`` positions.

    ``keys`` / ``values`` are views of the first ``get_seq_length()`` positions; ``update`` writes
    the new positions into the buffer, so a step copies only the new tokens, never the cache.
    The prefilled rows are laid out ``repeats`` times each (row ``r`` becomes rows
    ``r * repeats ... r * repeats + repeats - 1``, as ``batch_repeat_interleave`` would).
    """

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, *, repeats: int, capacity: int) -> None:
        super().__init__()
        rows, heads, length, _ = keys.shape
        if capacity < length:
            raise ValueError(f"capacity {capacity} is below the prefilled length {length}")
        self.capacity = capacity
        self._key_buffer = keys.new_empty((rows * repeats, heads, capacity, keys.shape[-1]))
        self._value_buffer = values.new_empty((rows * repeats, values.shape[1], capacity, values.shape[-1]))
        for buffer, prefilled in ((self._key_buffer, keys), (self._value_buffer, values)):
            grouped = buffer.view(rows, repeats, *buffer.shape[1:])
            grouped[:, :, :, :length] = prefilled.unsqueeze(1)
        self.dtype, self.device = keys.dtype, keys.device
        self.is_initialized = True
        self._set_length(length)

    def _set_length(self, length: int) -> None:
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
        self._set_length(end)
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.length

    def get_max_cache_shape(self) -> int:
        return self.capacity

    def crop(self, max_length: int) -> None:
        if max_length < 0:
            max_length = self.length + max_length
        self._set_length(min(self.length, max_length))

    # Row reordering would detach ``keys`` from the buffer; the sampler never needs it.
    def batch_repeat_interleave(self, repeats: int) -> None:
        raise NotImplementedError("PreallocatedLayer repeats rows when it is built (repeats=...)")

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        raise NotImplementedError("PreallocatedLayer does not reorder rows")

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        raise NotImplementedError("PreallocatedLayer does not reorder rows")


def preallocate_cache(cache: Any, *, repeats: int, capacity: int) -> bool:
    """Move a prefilled ``cache`` into :class:`PreallocatedLayer` buffers, in place.

    Each prefilled row is repeated ``repeats`` times and every layer gets room for ``capacity``
    positions. Returns False, leaving ``cache`` untouched, when the cache is not a plain
    ``DynamicCache`` of full-attention ``DynamicLayer`` layers (a sliding-window layer drops old
    positions, a linear-attention layer keeps a recurrent state, quantized and offloaded caches
    move their tensors): the caller then decodes with transformers' own cache.
    """
    if type(cache) is not DynamicCache or getattr(cache, "offloading", False) or not cache.layers:
        return False
    if any(type(layer) is not DynamicLayer or not layer.is_initialized for layer in cache.layers):
        return False
    cache.layers = [PreallocatedLayer(layer.keys, layer.values, repeats=repeats, capacity=capacity)
                    for layer in cache.layers]
    return True
