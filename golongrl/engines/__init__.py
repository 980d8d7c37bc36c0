"""Adapters that run golongrl's algorithm inside third-party RL engines.

Each engine lives in its own subpackage and imports that engine; nothing in the golongrl core
imports an engine, so ``pip install golongrl`` works without any of them. Today there is one:
:mod:`golongrl.engines.verl` (``pip install golongrl[verl]``) for multi-GPU, multi-node runs.
"""
