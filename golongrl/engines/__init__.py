"""Adapters that run golongrl's algorithm inside third-party RL engines.

Each engine lives in its own subpackage and imports that engine; nothing in the golongrl core
imports an engine, so golongrl installs without any of them (from the repository:
``pip install -e .``). :mod:`golongrl.engines.verl` (``.[verl]``) runs multi-GPU, multi-node
jobs on verl 0.9.1; :mod:`golongrl.engines.trl` (``.[trl]``) runs one-GPU jobs on TRL 1.16.0.
The two extras live in separate environments (verl's GPU extras pin trl==0.27.0).
"""
