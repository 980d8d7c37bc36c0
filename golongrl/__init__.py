"""golongrl: long-context reinforcement learning with verifiable rewards.

Data flows one way: documents -> tasks -> samples -> rollouts -> rewards -> advantages ->
loss -> checkpoints -> evaluation, and the subpackages follow that flow.
"""

__version__ = "0.1.0"
